package protocol

import (
	"bytes"
	"errors"
	"io"
	"strings"
)

// This file holds both sides of the reply grammar: the formatting the
// server does and the reading a client does, so that they cannot drift
// apart. A reply is one of
//
//	AT origin diff client position time        (a valid IAMAT; LineReply)
//	AT ... / JSON lines / an empty line        (a valid WHATSAT; PlacesReply)
//	? the line as received                     (anything invalid)
//
// every line ending in LF.

// AppendAT appends the AT line, without its line end, for a record
// received by origin at recvUnixNano: "AT origin diff fields", where fields
// is the client id, position and time joined by single spaces (Command.Text).
func AppendAT(dst []byte, origin string, recvUnixNano int64, fields string) []byte {
	sec, nsec, _ := ParseTime(fields[strings.LastIndexByte(fields, ' ')+1:])
	return AppendATParsed(dst, origin, recvUnixNano, sec, nsec, fields)
}

// AppendATParsed is AppendAT for a caller that holds the client time of
// fields parsed already, as sec and nsec (Command.Sec and Command.Nsec).
func AppendATParsed[T text](dst []byte, origin string, recvUnixNano, sec, nsec int64, fields T) []byte {
	dst = appendATHead(dst, origin, recvUnixNano, sec, nsec)
	return append(dst, fields...)
}

// AppendATFields is AppendAT for a record whose position and time are
// packed (Fields), with the client id apart.
func AppendATFields[T text](dst []byte, origin string, recvUnixNano int64, client T, f Fields) []byte {
	dst = appendATHead(dst, origin, recvUnixNano, f.Sec(), f.Nsec())
	dst = append(dst, client...)
	dst = append(dst, ' ')
	return f.Append(dst)
}

// appendATHead appends an AT line up to the client's fields: "AT", the
// origin and the time difference, each followed by a space.
func appendATHead(dst []byte, origin string, recvUnixNano, sec, nsec int64) []byte {
	dst = append(dst, "AT "...)
	dst = append(dst, origin...)
	dst = append(dst, ' ')
	dst = AppendDiff(dst, recvUnixNano, sec, nsec)
	return append(dst, ' ')
}

// AppendPlacesReply appends the reply to a valid WHATSAT: the AT line that
// appendAT appends, a newline, the places JSON that appendJSON appends
// (with no empty line inside and no line end after it), and the two
// newlines that end the reply.
func AppendPlacesReply(dst []byte, appendAT, appendJSON func([]byte) []byte) []byte {
	dst = appendAT(dst)
	dst = append(dst, '\n')
	dst = appendJSON(dst)
	return append(dst, "\n\n"...)
}

// AppendInvalid appends the reply to an invalid line: "? " and the line as
// received, without its line ending, then a newline.
func AppendInvalid(dst, line []byte) []byte {
	dst = append(dst, "? "...)
	dst = append(dst, line...)
	return append(dst, '\n')
}

// AT is an AT line's fields; they point into the line that was parsed.
type AT struct {
	Origin []byte // the server that received the IAMAT
	Diff   []byte // its receive time minus the client's time, e.g. +0.263873386
	Client []byte
	Pos    []byte
	Time   []byte
}

// ParseAT parses an AT line, without its line end: "AT", the origin, the
// time difference (as ParseDiff reads it), and the client's id, position
// and time (as an IAMAT has them), separated by whitespace.
func ParseAT(line []byte) (AT, bool) {
	var f [7][]byte
	if split(line, f[:]) != 6 || string(f[0]) != "AT" {
		return AT{}, false
	}
	if _, _, ok := ParseDiff(f[2]); !ok || !ValidPos(f[4]) {
		return AT{}, false
	}
	if _, _, ok := ParseTime(f[5]); !ok {
		return AT{}, false
	}
	return AT{Origin: f[1], Diff: f[2], Client: f[3], Pos: f[4], Time: f[5]}, true
}

// ReplyKind says what a reply is.
type ReplyKind uint8

const (
	// ReplyAT is a valid reply: an AT line, and for a PlacesReply the JSON
	// and the empty line after it.
	ReplyAT ReplyKind = iota
	// ReplyInvalid is "? " and the line, the reply to an invalid line.
	ReplyInvalid
	// ReplyMalformed is anything else: not a reply of the protocol. The
	// framing of the replies after it can no longer be trusted.
	ReplyMalformed
)

func (k ReplyKind) String() string {
	switch k {
	case ReplyAT:
		return "AT"
	case ReplyInvalid:
		return "invalid"
	}
	return "malformed"
}

// Reply is one reply as read. Its slices point into the ReplyReader's
// buffer and are valid until the reader next reads.
type Reply struct {
	Kind ReplyKind
	// Raw is the reply as received, line ends included. For a malformed
	// reply it ends with the line that showed it malformed.
	Raw []byte
	// Line is the first line without its line end: the AT line or the
	// "? " line.
	Line []byte
	// JSON is a valid PlacesReply's JSON, without the line end after it.
	JSON []byte
}

// Clone returns a copy of r that stays valid after the reader reads on.
func (r Reply) Clone() Reply {
	raw := bytes.Clone(r.Raw)
	// Line is always the start of Raw.
	return Reply{Kind: r.Kind, Raw: raw, Line: raw[:len(r.Line):len(r.Line)], JSON: bytes.Clone(r.JSON)}
}

// Reading limits.
const (
	// DefaultMaxReply bounds a reply read by a ReplyReader from
	// NewReplyReader: a WHATSAT's JSON with twenty results is some tens of
	// KiB.
	DefaultMaxReply = 4 << 20
	// defaultReplyBuffer is a ReplyReader's first buffer; it doubles up to
	// the bound when a reply does not fit.
	defaultReplyBuffer = 64 << 10
)

var (
	// ErrReplyTooLong is returned for a reply longer than the reader's
	// bound.
	ErrReplyTooLong = errors.New("reply too long")
	// ErrIncompleteReply is returned when the input ends in the middle of
	// a reply.
	ErrIncompleteReply = errors.New("connection closed in the middle of a reply")
)

// scanState is where a ReplyReader is in the reply it is reading.
type scanState uint8

const (
	scanFirst      scanState = iota // the AT or "? " line
	scanJSONStart                   // the JSON's first line, starting with '{'
	scanJSON                        // more JSON, or the empty line once a line ended with '}'
	scanJSONClosed                  // as scanJSON, the last line having ended with '}'
)

// ReplyReader reads replies from a connection into a buffer of its own
// and hands them out without copying or allocating. A reply is bounded:
// one longer than the reader's bound is an error. Lines end at LF; a CR
// before the LF is dropped. Because a WHATSAT's reply has more lines than
// an IAMAT's, the reader is told the form of the reply it expects: that of
// the command it answers (Spec.Reply, FormOf).
//
// Callers that take what has arrived and then read again, as a load
// generator does, use Next and Fill; others use ReadReply.
type ReplyReader struct {
	rd   io.Reader
	buf  []byte
	r, w int // buf[r:w] is unread; the reply being scanned starts at r
	max  int

	// The scan of the reply at r, kept across reads so that a reply that
	// arrives in pieces is looked at once.
	state     scanState
	next      int // offset from r of the next line to look at
	first     int // offset from r of the end of the first line
	jsonStart int // offsets from r of the JSON
	jsonEnd   int

	last Reply // the reply Next returned last
}

// NewReplyReader returns a reader of the replies that arrive on rd, of at
// most DefaultMaxReply bytes each.
func NewReplyReader(rd io.Reader) *ReplyReader {
	return NewReplyReaderSize(rd, defaultReplyBuffer, DefaultMaxReply)
}

// NewReplyReaderSize returns a reader of the replies that arrive on rd
// with a first buffer of size bytes, growing to at most limit: a reply
// longer than limit is an error.
func NewReplyReaderSize(rd io.Reader, size, limit int) *ReplyReader {
	limit = max(limit, 16)
	size = min(max(size, 16), limit)
	return &ReplyReader{rd: rd, buf: make([]byte, size), max: limit}
}

// Buffered returns the number of bytes that have arrived and are not yet
// part of a reply handed out.
func (rr *ReplyReader) Buffered() int { return rr.w - rr.r }

// Next returns the next reply if the whole of it has arrived, without
// reading; a reply's form is that of the command it answers, and the same
// form must be given until Next returns the reply. The Reply it points to
// is the reader's own, valid until the next call: a pointer rather than a
// copy, because the load generator reads a million replies a second.
func (rr *ReplyReader) Next(form ReplyForm) (*Reply, bool) {
	// The load generator calls this for every reply: the first line is
	// judged here, inline and with few stores, and only a WHATSAT's JSON
	// goes to scanJSON.
	buf, r, next := rr.buf[:rr.w], rr.r, rr.next
	for {
		start := r + next
		i := bytes.IndexByte(buf[start:], '\n')
		if i < 0 {
			rr.next = next
			return nil, false
		}
		next += i + 1
		end := start + i
		if i > 0 && buf[end-1] == '\r' {
			end--
		}
		if rr.state == scanFirst {
			kind := ReplyMalformed
			switch n := end - start; {
			case n >= 3 && buf[start] == 'A' && buf[start+1] == 'T' && buf[start+2] == ' ':
				kind = ReplyAT
				if form == PlacesReply {
					rr.first, rr.state = end-r, scanJSONStart
					continue
				}
			case n >= 2 && buf[start] == '?' && buf[start+1] == ' ':
				kind = ReplyInvalid
			}
			rr.r, rr.next = r+next, 0
			rr.last = Reply{Kind: kind, Raw: buf[r : r+next], Line: buf[r:end]}
			return &rr.last, true
		}
		kind, done := rr.scanJSON(buf[start:end], start-r)
		if !done {
			continue
		}
		rr.last = Reply{Kind: kind, Raw: buf[r : r+next], Line: buf[r : r+rr.first]}
		if kind == ReplyAT {
			rr.last.JSON = buf[r+rr.jsonStart : r+rr.jsonEnd]
		}
		rr.r, rr.next, rr.state = r+next, 0, scanFirst
		return &rr.last, true
	}
}

// scanJSON takes the next line of a WHATSAT's reply after its AT line,
// without its line end, which starts at offset off from the reply's start,
// and reports whether the reply is complete and what it is.
func (rr *ReplyReader) scanJSON(line []byte, off int) (ReplyKind, bool) {
	switch rr.state {
	case scanJSONStart:
		if t := bytes.TrimLeft(line, " \t"); len(t) > 0 && t[0] == '{' {
			rr.jsonStart = off
			rr.jsonLine(line, off)
			return ReplyAT, false
		}
	case scanJSON, scanJSONClosed:
		if len(line) > 0 {
			rr.jsonLine(line, off)
			return ReplyAT, false
		}
		if rr.state == scanJSONClosed {
			return ReplyAT, true
		}
	}
	return ReplyMalformed, true
}

// jsonLine notes a JSON line and whether it ends with '}', as the last
// must.
func (rr *ReplyReader) jsonLine(line []byte, off int) {
	rr.jsonEnd = off + len(line)
	if t := bytes.TrimRight(line, " \t"); len(t) > 0 && t[len(t)-1] == '}' {
		rr.state = scanJSONClosed
	} else {
		rr.state = scanJSON
	}
}

// Fill reads once from the connection, after moving what is left of the
// last reply handed out to the front of the buffer, which invalidates the
// replies handed out before. It returns ErrReplyTooLong, without reading,
// when the reply being read fills the reader's bound.
func (rr *ReplyReader) Fill() error {
	if rr.r > 0 {
		rr.w = copy(rr.buf, rr.buf[rr.r:rr.w])
		rr.r = 0
	}
	if rr.w == len(rr.buf) {
		if len(rr.buf) >= rr.max {
			return ErrReplyTooLong
		}
		b := make([]byte, min(2*len(rr.buf), rr.max))
		copy(b, rr.buf[:rr.w])
		rr.buf = b
	}
	n, err := rr.rd.Read(rr.buf[rr.w:])
	rr.w += n
	return err
}

// maxEmptyReads is how many reads in a row may bring nothing and no error
// before ReadReply gives up, as bufio does.
const maxEmptyReads = 100

// ReadReply reads until the next reply has arrived and returns it. At the
// end of the input it returns io.EOF if no part of a reply had arrived,
// and otherwise ErrIncompleteReply with what had, as a malformed Reply; a
// read error likewise comes with what had arrived.
func (rr *ReplyReader) ReadReply(form ReplyForm) (Reply, error) {
	for empty := 0; ; {
		if reply, ok := rr.Next(form); ok {
			return *reply, nil
		}
		had := rr.w - rr.r
		err := rr.Fill()
		if reply, ok := rr.Next(form); ok {
			return *reply, nil // the error, if any, comes again on the next read
		}
		if err == nil {
			if rr.w-rr.r == had {
				if empty++; empty >= maxEmptyReads {
					return rr.partial(), io.ErrNoProgress
				}
			} else {
				empty = 0
			}
			continue
		}
		if errors.Is(err, io.EOF) {
			if rr.r == rr.w {
				return Reply{}, io.EOF
			}
			err = ErrIncompleteReply
		}
		return rr.partial(), err
	}
}

// partial returns what has arrived of the next reply, as a malformed one;
// it stays in the buffer.
func (rr *ReplyReader) partial() Reply {
	raw := rr.buf[rr.r:rr.w]
	line := raw
	if i := bytes.IndexByte(raw, '\n'); i >= 0 {
		line = bytes.TrimSuffix(raw[:i], []byte("\r"))
	}
	return Reply{Kind: ReplyMalformed, Raw: raw, Line: line}
}

// Read reads bytes that are not part of a reply handed out: what has
// arrived already, then from the connection. It makes a ReplyReader an
// io.Reader for what follows the replies, such as the end of the input.
func (rr *ReplyReader) Read(p []byte) (int, error) {
	if rr.r < rr.w {
		n := copy(p, rr.buf[rr.r:rr.w])
		rr.r += n
		rr.next, rr.state = 0, scanFirst
		return n, nil
	}
	return rr.rd.Read(p)
}
