package peer

import (
	"bytes"
	"errors"
	"strconv"

	"github.com/herdkit/herd/pkg/protocol"
	"github.com/herdkit/herd/pkg/store"
)

// Frame types after the handshake; see docs/peer-protocol.md.
const (
	frameFlood     = 'F' // F seq hops origin recv client pos time: a new change
	frameReconcile = 'C' // C ...same fields: a change the peer missed
	frameMark      = 'M' // M seq: the sender's changes up to seq have all been sent
	frameSynced    = 'D' // D seq: reconciliation done, everything up to seq sent
	framePing      = 'P' // P [t1]: the link is alive; with t1, a timed ping (clock.go)
	framePong      = 'Q' // Q t1 t2 t3: the answer to a timed ping
	frameSync      = 'S' // S incarnation seq: what the sender holds of the receiver's changes

	// The frames of broadcast trees (tree.go), sent only to a neighbour
	// that speaks them.
	frameAnnounce = 'I' // I seq origin recv client time: a change, announced on a lazy link
	framePrune    = 'X' // X origin: send me origin's records lazily
	frameGraft    = 'G' // G origin client: send me the client's record, and origin's records eagerly
	frameRepair   = 'R' // R hops origin recv client pos time: a record a graft asked for
	frameNone     = 'N' // N client: no record of the client to answer a graft with
)

// frame is one parsed frame. Its byte slices point into the read buffer.
type frame struct {
	kind    byte
	seq     uint64
	inc     uint64 // frameSync
	head    uint64 // frameSync: the sender's last change number, if hasHead
	hasHead bool
	hops    uint8
	origin  []byte
	recv    int64
	text    []byte   // client pos time
	client  []byte   // frameAnnounce, frameGraft, frameNone
	time    []byte   // frameAnnounce: the client's time
	stamps  [3]int64 // framePing (t1 if timed) and framePong (t1 t2 t3), Unix nanoseconds
	timed   bool     // a ping with its t1
}

var errFrame = errors.New("malformed frame")

// parseFrame parses one frame without its LF. It never allocates, and it
// accepts only records that the client protocol would have accepted.
func parseFrame(line []byte) (frame, error) {
	var f frame
	if len(line) < 1 || (len(line) > 1 && line[1] != ' ') {
		return f, errFrame
	}
	f.kind = line[0]
	rest := line[min(2, len(line)):]
	var err error
	switch f.kind {
	case framePing:
		if len(line) == 1 {
			return f, nil
		}
		f.timed = true
		return f, parseStamps(&f, rest, 1)
	case framePong:
		return f, parseStamps(&f, rest, 3)
	case frameMark, frameSynced:
		f.seq, err = parseUint(rest)
		return f, err
	case frameSync:
		a, b, ok := bytes.Cut(rest, []byte{' '})
		if !ok {
			return f, errFrame
		}
		if f.inc, err = strconv.ParseUint(string(a), 16, 64); err != nil {
			return f, errFrame
		}
		if b, head, ok := bytes.Cut(b, []byte{' '}); ok {
			// A server that speaks broadcast trees adds its head.
			if f.head, err = parseUint(head); err != nil {
				return f, err
			}
			f.hasHead = true
			f.seq, err = parseUint(b)
			return f, err
		}
		f.seq, err = parseUint(b)
		return f, err
	case frameFlood, frameReconcile:
		return parseRecord(f, rest)
	case frameRepair:
		// A record frame without the change number: it answers a graft,
		// out of the stream's order.
		return parseRecordFields(f, rest)
	case frameAnnounce:
		return parseAnnounce(f, rest)
	case framePrune:
		f.origin = rest
		if !validOrigin(rest) {
			return f, errFrame
		}
		return f, nil
	case frameGraft:
		origin, client, ok := bytes.Cut(rest, []byte{' '})
		f.origin, f.client = origin, client
		if !ok || !validOrigin(origin) || !validClient(client) {
			return f, errFrame
		}
		return f, nil
	case frameNone:
		f.client = rest
		if !validClient(rest) {
			return f, errFrame
		}
		return f, nil
	}
	return f, errFrame
}

// parseAnnounce parses the fields of an announcement: seq origin recv
// client time.
func parseAnnounce(f frame, b []byte) (frame, error) {
	var fields [4][]byte
	b, ok := cutFields(b, fields[:])
	if !ok {
		return f, errFrame
	}
	var err error
	if f.seq, err = parseUint(fields[0]); err != nil || f.seq == 0 {
		return f, errFrame
	}
	f.origin = fields[1]
	if f.recv, ok = parseRecv(fields[2]); !ok || !validOrigin(f.origin) || !validClient(fields[3]) {
		return f, errFrame
	}
	if _, _, ok := protocol.ParseTime(b); !ok {
		return f, errFrame
	}
	f.client, f.time = fields[3], b
	return f, nil
}

// cutFields cuts len(fields) fields, each ended by a space, off the front
// of b into fields, and returns the rest; false if b holds fewer.
func cutFields(b []byte, fields [][]byte) ([]byte, bool) {
	for i := range fields {
		j := bytes.IndexByte(b, ' ')
		if j < 0 {
			return b, false
		}
		fields[i], b = b[:j], b[j+1:]
	}
	return b, true
}

// parseRecv parses a record's receive time, or any timestamp of a frame:
// Unix nanoseconds from 0 to 2^62.
func parseRecv(b []byte) (int64, bool) {
	v, err := parseUint(b)
	if err != nil || v > 1<<62 {
		return 0, false
	}
	return int64(v), true
}

// validOrigin reports whether b is a server's name.
func validOrigin(b []byte) bool { return protocol.ValidName(string(b)) }

// validClient reports whether b is a client id: a run of bytes with no
// whitespace.
func validClient(b []byte) bool { return len(b) > 0 && !hasSpace(b) }

// parseStamps parses n timestamps separated by single spaces into
// f.stamps: Unix nanoseconds, from 0 to 2^62 as a record's receive time.
func parseStamps(f *frame, b []byte, n int) error {
	var fields [len(f.stamps)][]byte
	last, ok := cutFields(b, fields[:n-1])
	if !ok {
		return errFrame
	}
	fields[n-1] = last
	for i := range n {
		if f.stamps[i], ok = parseRecv(fields[i]); !ok {
			return errFrame
		}
	}
	return nil
}

// parseRecord parses a record frame's fields: seq, then those of
// parseRecordFields.
func parseRecord(f frame, b []byte) (frame, error) {
	seq, rest, ok := bytes.Cut(b, []byte{' '})
	var err error
	if f.seq, err = parseUint(seq); !ok || err != nil || f.seq == 0 {
		return f, errFrame
	}
	return parseRecordFields(f, rest)
}

// parseRecordFields parses hops origin recv client pos time.
func parseRecordFields(f frame, b []byte) (frame, error) {
	var fields [3][]byte
	b, ok := cutFields(b, fields[:])
	if !ok {
		return f, errFrame
	}
	hops, err := parseUint(fields[0])
	if err != nil || hops > 255 {
		return f, errFrame
	}
	f.hops = uint8(hops)
	f.origin = fields[1]
	if !validOrigin(f.origin) {
		return f, errFrame
	}
	if f.recv, ok = parseRecv(fields[2]); !ok {
		return f, errFrame
	}
	if !validText(b) {
		return f, errFrame
	}
	f.text = b
	return f, nil
}

// validText reports whether b is a record text that the client protocol
// could have produced: a client id, a position and a time, valid as an
// IAMAT's, separated by single spaces.
func validText(b []byte) bool {
	client, rest, ok1 := bytes.Cut(b, []byte{' '})
	pos, time, ok2 := bytes.Cut(rest, []byte{' '})
	if !ok1 || !ok2 || len(client) == 0 || hasSpace(client) {
		return false
	}
	_, _, ok := protocol.ParseTime(time)
	return ok && protocol.ValidPos(pos)
}

// parseUint parses a decimal uint64 with no sign and no leading zeros
// beyond a lone 0.
func parseUint(b []byte) (uint64, error) {
	if len(b) == 0 || len(b) > 20 || (len(b) > 1 && b[0] == '0') {
		return 0, errFrame
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, errFrame
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, errFrame
		}
		n = n*10 + d
	}
	return n, nil
}

// appendRecord appends a record frame: kind, the sender's change number,
// the hop count on arrival, origin, receive time and the record text.
func appendRecord(dst []byte, kind byte, seq uint64, r store.Packed) []byte {
	dst = append(dst, kind, ' ')
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(min(int(r.Hops)+1, 255)), 10)
	dst = append(dst, ' ')
	dst = append(dst, r.Origin...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, r.Recv, 10)
	dst = append(dst, ' ')
	dst = r.AppendText(dst)
	return append(dst, '\n')
}

// appendSeq appends a frame of one change number: a mark or synced.
func appendSeq(dst []byte, kind byte, seq uint64) []byte {
	dst = append(dst, kind, ' ')
	dst = strconv.AppendUint(dst, seq, 10)
	return append(dst, '\n')
}

// appendPing appends a timed ping sent at t1.
func appendPing(dst []byte, t1 int64) []byte {
	dst = append(dst, framePing, ' ')
	dst = strconv.AppendInt(dst, t1, 10)
	return append(dst, '\n')
}

// appendPong appends the answer to a timed ping.
func appendPong(dst []byte, t1, t2, t3 int64) []byte {
	dst = append(dst, framePong)
	for _, t := range []int64{t1, t2, t3} {
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, t, 10)
	}
	return append(dst, '\n')
}

// appendSync appends the frame that opens a link's stream: the incarnation
// of the receiver that the sender knows and the last of its changes held.
func appendSync(dst []byte, inc, have uint64) []byte {
	dst = append(dst, frameSync, ' ')
	dst = strconv.AppendUint(dst, inc, 16)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, have, 10)
	return append(dst, '\n')
}

// appendSyncHead appends the sync frame of a server that speaks broadcast
// trees, to one that does: appendSync's, and the sender's own last change
// number, its head.
func appendSyncHead(dst []byte, inc, have, head uint64) []byte {
	dst = appendSync(dst, inc, have)
	dst = append(dst[:len(dst)-1], ' ')
	dst = strconv.AppendUint(dst, head, 10)
	return append(dst, '\n')
}

func hasSpace(b []byte) bool {
	for _, c := range b {
		if protocol.IsSpace(c) {
			return true
		}
	}
	return false
}

// appendAnnounce appends the announcement of a change: its change number
// and the record's identity, its origin, receive time, client and time.
func appendAnnounce(dst []byte, seq uint64, r store.Packed) []byte {
	dst = append(dst, frameAnnounce, ' ')
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(append(append(dst, ' '), r.Origin...), ' ')
	dst = strconv.AppendInt(dst, r.Recv, 10)
	dst = append(append(append(dst, ' '), r.ClientBytes()...), ' ')
	return append(r.AppendTime(dst), '\n')
}

// appendRepair appends a record that answers a graft.
func appendRepair(dst []byte, r store.Packed) []byte {
	dst = append(dst, frameRepair, ' ')
	dst = strconv.AppendUint(dst, uint64(min(int(r.Hops)+1, 255)), 10)
	dst = append(append(append(dst, ' '), r.Origin...), ' ')
	dst = strconv.AppendInt(dst, r.Recv, 10)
	return append(r.AppendText(append(dst, ' ')), '\n')
}

// appendControl appends a frame of a tree's control: a prune (its
// origin), a graft (origin and client) or a none (client).
func appendControl(dst []byte, kind byte, fields ...string) []byte {
	dst = append(dst, kind)
	for _, f := range fields {
		dst = append(append(dst, ' '), f...)
	}
	return append(dst, '\n')
}
