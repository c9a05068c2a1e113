package bench

import (
	"bytes"
	"errors"
	"net"
	"time"
)

// result is what a complete reply says.
type result uint8

const (
	resValid     result = iota // IAMAT: an AT line; WHATSAT: an AT line, JSON, an empty line
	resInvalid                 // "? ..."
	resMalformed               // anything else: the framing can no longer be trusted
)

// replyState follows the lines of one reply. A valid WHATSAT reply is the
// AT line, then the JSON, which may span lines (the herd's does, in the
// layout of Google's) but has no empty line inside, then an empty line.
type replyState uint8

const (
	expectFirst  replyState = iota // the AT or "? " line
	expectJSON                     // the JSON's first line, starting with '{'
	inJSON                         // more JSON, or the empty line after a line ending with '}'
	inJSONClosed                   // as inJSON, the last line having ended with '}'
)

// feed takes the next line of a reply to a request of kind k, without its
// LF, and reports whether the reply is complete and what it says.
func (s *replyState) feed(line []byte, k kind) (done bool, r result) {
	switch *s {
	case expectFirst:
		switch {
		case bytes.HasPrefix(line, []byte("AT ")):
			if k == kindWHATSAT {
				*s = expectJSON
				return false, resValid
			}
			return true, resValid
		case bytes.HasPrefix(line, []byte("? ")):
			return true, resInvalid
		}
		return true, resMalformed
	case expectJSON:
		if t := bytes.TrimLeft(line, " \t"); len(t) > 0 && t[0] == '{' {
			s.jsonLine(line)
			return false, resValid
		}
	case inJSON, inJSONClosed:
		if len(line) > 0 {
			s.jsonLine(line)
			return false, resValid
		}
		if *s == inJSONClosed {
			*s = expectFirst
			return true, resValid
		}
	}
	*s = expectFirst
	return true, resMalformed
}

// jsonLine notes whether a JSON line ends with '}', as the last must.
func (s *replyState) jsonLine(line []byte) {
	if t := bytes.TrimRight(line, " \t\r"); len(t) > 0 && t[len(t)-1] == '}' {
		*s = inJSONClosed
	} else {
		*s = inJSON
	}
}

// maxReplyLine bounds a reply line; a WHATSAT's JSON with twenty results
// is some tens of KiB.
const maxReplyLine = 4 << 20

var errLineTooLong = errors.New("reply line too long")

// lineReader reads lines from a connection into a buffer of its own and
// hands them out without copying or allocating: a line is valid until the
// next fill.
type lineReader struct {
	conn net.Conn
	buf  []byte
	r, w int

	timeout  time.Duration
	deadline time.Time // the read deadline last set
}

func newLineReader(conn net.Conn, timeout time.Duration) *lineReader {
	return &lineReader{conn: conn, buf: make([]byte, 64<<10), timeout: timeout}
}

// line returns the next complete line without its LF, if there is one.
func (lr *lineReader) line() ([]byte, bool) {
	i := bytes.IndexByte(lr.buf[lr.r:lr.w], '\n')
	if i < 0 {
		return nil, false
	}
	l := lr.buf[lr.r : lr.r+i]
	lr.r += i + 1
	return l, true
}

// fill reads once from the connection, after moving a partial line to the
// front of the buffer. The read times out when nothing arrives for the
// time-out; the deadline is moved only when a tenth of it has passed, to
// spare a timer update per read.
func (lr *lineReader) fill(now time.Time) error {
	if lr.r > 0 {
		lr.w = copy(lr.buf, lr.buf[lr.r:lr.w])
		lr.r = 0
	}
	if lr.w == len(lr.buf) {
		if len(lr.buf) >= maxReplyLine {
			return errLineTooLong
		}
		b := make([]byte, 2*len(lr.buf))
		copy(b, lr.buf[:lr.w])
		lr.buf = b
	}
	if lr.deadline.Sub(now) < lr.timeout-lr.timeout/10 {
		lr.deadline = now.Add(lr.timeout)
		if err := lr.conn.SetReadDeadline(lr.deadline); err != nil {
			return err
		}
	}
	n, err := lr.conn.Read(lr.buf[lr.w:])
	lr.w += n
	return err
}
