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
)

// frame is one parsed frame. Its byte slices point into the read buffer.
type frame struct {
	kind   byte
	seq    uint64
	inc    uint64 // frameSync
	hops   uint8
	origin []byte
	recv   int64
	text   []byte   // client pos time
	stamps [3]int64 // framePing (t1 if timed) and framePong (t1 t2 t3), Unix nanoseconds
	timed  bool     // a ping with its t1
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
		f.seq, err = parseUint(b)
		return f, err
	case frameFlood, frameReconcile:
		return parseRecord(f, rest)
	}
	return f, errFrame
}

// parseStamps parses n timestamps separated by single spaces into
// f.stamps: Unix nanoseconds, from 0 to 2^62 as a record's receive time.
func parseStamps(f *frame, b []byte, n int) error {
	for i := range n {
		field := b
		if i < n-1 {
			j := bytes.IndexByte(b, ' ')
			if j < 0 {
				return errFrame
			}
			field, b = b[:j], b[j+1:]
		}
		v, err := parseUint(field)
		if err != nil || v > 1<<62 {
			return errFrame
		}
		f.stamps[i] = int64(v)
	}
	return nil
}

func parseRecord(f frame, b []byte) (frame, error) {
	var fields [4][]byte
	for i := range fields {
		j := bytes.IndexByte(b, ' ')
		if j < 0 {
			return f, errFrame
		}
		fields[i], b = b[:j], b[j+1:]
	}
	var err error
	if f.seq, err = parseUint(fields[0]); err != nil || f.seq == 0 {
		return f, errFrame
	}
	hops, err := parseUint(fields[1])
	if err != nil || hops > 255 {
		return f, errFrame
	}
	f.hops = uint8(hops)
	f.origin = fields[2]
	if !protocol.ValidName(string(f.origin)) {
		return f, errFrame
	}
	recv, err := parseUint(fields[3])
	if err != nil || recv > 1<<62 {
		return f, errFrame
	}
	f.recv = int64(recv)
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
func appendSync(dst []byte, inc, seq uint64) []byte {
	dst = append(dst, frameSync, ' ')
	dst = strconv.AppendUint(dst, inc, 16)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, seq, 10)
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
