package bench

import (
	"net"
	"time"

	"github.com/herdkit/herd/pkg/protocol"
)

// replyForm is the form of the reply to each kind of request, from the
// protocol's command table.
var replyForm = [...]protocol.ReplyForm{
	kindIAMAT:   formOf(protocol.IAMAT),
	kindWHATSAT: formOf(protocol.WHATSAT),
}

func formOf(k protocol.Kind) protocol.ReplyForm {
	s, _ := protocol.Lookup(k)
	return s.Reply
}

// replyBuffer is a reply reader's first buffer; it grows up to
// protocol.DefaultMaxReply for a longer reply.
const replyBuffer = 64 << 10

// replyReader reads the replies of one connection with the protocol's
// reader, and keeps a read deadline as the time-out for a reply owed.
type replyReader struct {
	*protocol.ReplyReader
	conn     net.Conn
	timeout  time.Duration
	deadline time.Time // the read deadline last set
}

func newReplyReader(conn net.Conn, timeout time.Duration) *replyReader {
	return &replyReader{
		ReplyReader: protocol.NewReplyReaderSize(conn, replyBuffer, protocol.DefaultMaxReply),
		conn:        conn,
		timeout:     timeout,
	}
}

// next returns the next reply to a request of kind k if the whole of it
// has arrived, with its first line.
func (rr *replyReader) next(k kind) (protocol.ReplyKind, []byte, bool) {
	r, ok := rr.Next(replyForm[k])
	if !ok {
		return 0, nil, false
	}
	return r.Kind, r.Line, true
}

// fill reads once from the connection. The read times out when nothing
// arrives for the time-out; the deadline is moved only when a tenth of it
// has passed, to spare a timer update per read.
func (rr *replyReader) fill(now time.Time) error {
	if rr.deadline.Sub(now) < rr.timeout-rr.timeout/10 {
		rr.deadline = now.Add(rr.timeout)
		if err := rr.conn.SetReadDeadline(rr.deadline); err != nil {
			return err
		}
	}
	return rr.Fill()
}
