package bench

import (
	"bytes"
	"errors"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/herdkit/herd/pkg/protocol"
)

// respDialect is Redis's protocol (RESP2): GEOADD and GEOPOS on RESPKey.
type respDialect struct{}

var (
	respGEOADD = []byte("*5\r\n$6\r\nGEOADD\r\n" + respBulk(RESPKey))
	respGEOPOS = []byte("*3\r\n$6\r\nGEOPOS\r\n" + respBulk(RESPKey))
)

func respBulk(s string) string { return "$" + strconv.Itoa(len(s)) + "\r\n" + s + "\r\n" }

// respPositions are positions() as GEOADD's two arguments, longitude then
// latitude, each a bulk string, formatted once.
var respPositions = sync.OnceValue(func() [][]byte {
	ps := positions()
	out := make([][]byte, len(ps))
	for i, p := range ps {
		cut := bytes.IndexAny(p[1:], "+-") + 1 // the longitude's sign
		lat, lng := bytes.TrimPrefix(p[:cut], []byte("+")), bytes.TrimPrefix(p[cut:], []byte("+"))
		out[i] = []byte(respBulk(string(lng)) + respBulk(string(lat)))
	}
	return out
})

func (respDialect) appendWrite(dst, id []byte, pos int, _ []byte) []byte {
	dst = append(append(dst, respGEOADD...), respPositions()[pos]...)
	return appendBulk(dst, id)
}

func (respDialect) appendRead(dst, id []byte) []byte {
	return appendBulk(append(dst, respGEOPOS...), id)
}

func appendBulk(dst, b []byte) []byte {
	dst = strconv.AppendInt(append(dst, '$'), int64(len(b)), 10)
	return append(append(append(dst, "\r\n"...), b...), "\r\n"...)
}

func (respDialect) newReader(conn net.Conn, timeout time.Duration) replySource {
	return &respReader{conn: conn, timeout: timeout, buf: make([]byte, 0, replyBuffer)}
}

// maxRESPReply bounds a reply the reader buffers.
const maxRESPReply = 1 << 20

// respReader reads RESP replies from a connection, keeping a read deadline
// as the time-out for a reply owed, moved as replyReader moves it.
type respReader struct {
	conn     net.Conn
	timeout  time.Duration
	deadline time.Time
	buf      []byte // unread bytes are buf[off:]
	off      int
}

var errRESPTooLong = errors.New("RESP reply longer than 1 MiB")

func (r *respReader) next(kind) (protocol.ReplyKind, []byte, bool) {
	n, k := respReply(r.buf[r.off:])
	if n == 0 {
		return 0, nil, false
	}
	if n < 0 {
		return protocol.ReplyMalformed, nil, true
	}
	r.off += n
	return k, nil, true
}

func (r *respReader) fill(now time.Time) error {
	if r.deadline.Sub(now) < r.timeout-r.timeout/10 {
		r.deadline = now.Add(r.timeout)
		if err := r.conn.SetReadDeadline(r.deadline); err != nil {
			return err
		}
	}
	if r.off > 0 { // keep the unread part at the start
		r.buf = r.buf[:copy(r.buf, r.buf[r.off:])]
		r.off = 0
	}
	if len(r.buf) == cap(r.buf) {
		if cap(r.buf) >= maxRESPReply {
			return errRESPTooLong
		}
		r.buf = append(r.buf, make([]byte, cap(r.buf))...)[:len(r.buf)]
	}
	n, err := r.conn.Read(r.buf[len(r.buf):cap(r.buf)])
	r.buf = r.buf[:len(r.buf)+n]
	if n > 0 {
		return nil
	}
	return err
}

// respReply reads the RESP reply at the start of b and returns its length
// and how it went: ReplyAT for a success (an integer, a status, a value,
// an array with one value not nil, as GEOPOS gives for a known member),
// ReplyInvalid for an error or nothing (nil, or an array of nils, as
// GEOPOS gives for an unknown member). The length is 0 when the reply has
// not all arrived, -1 when b does not start with one.
func respReply(b []byte) (int, protocol.ReplyKind) {
	n, null := respValue(b, 0)
	if n <= 0 {
		return n, protocol.ReplyMalformed
	}
	switch {
	case b[0] == '-', null:
		return n, protocol.ReplyInvalid
	case b[0] == '*' && allNull(b[:n]):
		return n, protocol.ReplyInvalid
	}
	return n, protocol.ReplyAT
}

// maxRESPDepth bounds the nesting of arrays respValue follows.
const maxRESPDepth = 8

// respValue returns the length of the RESP value at the start of b (0 if
// it has not all arrived, -1 if malformed) and whether it is a nil bulk
// string or array.
func respValue(b []byte, depth int) (n int, null bool) {
	switch {
	case len(b) == 0:
		return 0, false
	case !bytes.ContainsAny(b[:1], "+-:$*"):
		return -1, false
	}
	end := bytes.Index(b, []byte("\r\n")) // after b[0], which is not \r
	if end < 0 {
		return 0, false
	}
	line := b[1:end]
	switch b[0] {
	case '+', '-', ':':
		return end + 2, false
	case '$':
		size, err := strconv.Atoi(string(line))
		switch {
		case err != nil || size < -1 || size > maxRESPReply:
			return -1, false
		case size == -1:
			return end + 2, true
		case len(b) < end+2+size+2:
			return 0, false
		case string(b[end+2+size:end+4+size]) != "\r\n":
			return -1, false
		}
		return end + 4 + size, false
	case '*':
		count, err := strconv.Atoi(string(line))
		if err != nil || count < -1 || count > maxRESPReply || depth >= maxRESPDepth {
			return -1, false
		}
		if count == -1 {
			return end + 2, true
		}
		n = end + 2
		for range count {
			m, _ := respValue(b[n:], depth+1)
			if m <= 0 {
				return m, false
			}
			n += m
		}
		return n, false
	}
	return -1, false
}

// allNull reports whether the whole array at the start of b holds only nil
// values (and at least one).
func allNull(b []byte) bool {
	end := bytes.Index(b, []byte("\r\n"))
	count, _ := strconv.Atoi(string(b[1:end]))
	n := end + 2
	for range count {
		m, null := respValue(b[n:], 1)
		if !null {
			return false
		}
		n += m
	}
	return count > 0
}
