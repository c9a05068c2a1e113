package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/herdkit/herd/pkg/protocol"
	"github.com/herdkit/herd/pkg/rawio"
	"github.com/herdkit/herd/pkg/store"
)

// Reasons a client connection closes; each is a metric label.
const (
	closeEOF          = "eof"           // the client ended its input and got every reply
	closeIdle         = "idle"          // nothing read for IdleTimeout with nothing owed
	closeLineTooLong  = "line_too_long" // a line exceeded MaxLine
	closeWriteError   = "write_error"   // a reply could not be written: the client is gone
	closeWriteTimeout = "write_timeout" // the client did not take a reply within WriteTimeout
	closeReadError    = "read_error"    // the connection broke, e.g. reset by the client
	closeShutdown     = "shutdown"      // the server is stopping
	closeNotDurable   = "not_durable"   // the journal could not write the records read, within WriteTimeout
)

// reasonAhead is the protocol log's reason for an IAMAT whose time is
// further ahead of the server's clock than MaxClockAhead.
const reasonAhead = "time too far ahead"

// lingerTime bounds how long a connection closed on a bad line keeps
// reading and discarding input, so that the replies written before the
// close are not destroyed by a reset.
const lingerTime = 500 * time.Millisecond

// Bounds of what the reader holds before it writes: replies, and IAMATs
// not yet stored. A read holds at most HERD_MAX_LINE bytes of lines, and
// the reader answers before each read, but with a large HERD_MAX_LINE one
// read can bring thousands of lines: they are answered, and stored under
// the store's lock, this many at a time.
const (
	maxBatchBytes = 64 << 10
	maxBatch      = 256
)

// conn is one client connection. Its reader goroutine (serve) reads lines,
// executes them in order and owns the fields, but for what it shares: its
// lookups, which answer WHATSATs, complete replies (under the queue's
// lock, which also serializes dc's writes), and Shutdown interrupts dc.
type conn struct {
	s      *Server
	nc     net.Conn
	id     uint64
	remote string
	log    *slog.Logger
	ctx    context.Context // done when the client is gone or shutdown gives up
	cancel context.CancelFunc

	dc      deadlineConn // the connection's input and output, with their deadlines
	replies replyQueue   // the replies owed, in order
	lookups sync.WaitGroup

	// readAt is when the last read from the connection returned: the
	// receive time of every line it brought, one clock reading for all.
	readAt time.Time
	// The replies ready in this read, and the requests they answer.
	out  []byte
	outN int
	// IAMATs answered but not yet stored: what one read brought is stored
	// in one batch before any reply goes out.
	batch  []store.Record
	stored []bool
	iamats iamatLog // the protocol log record owed for the IAMATs read in a row
}

func (s *Server) newConn(nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(s.ctx)
	id, remote := s.nextID.Add(1), nc.RemoteAddr().String()
	c := &conn{s: s, nc: nc, ctx: ctx, cancel: cancel, id: id, remote: remote,
		log:    s.log.With("conn", id, "remote", remote),
		iamats: iamatLog{lines: s.lines, conn: id, remote: remote}}
	c.dc.init(rawio.Wrap(nc), s.cfg.IdleTimeout, s.cfg.WriteTimeout, c.log, cancel)
	c.replies.init(&c.dc, s.cfg.MaxInflight)
	return c
}

// serve reads and executes commands until the input ends, then waits for
// the replies owed and closes the connection.
func (c *conn) serve() {
	reason := c.readLoop()
	c.storeBatch() // what was read is stored, even if its replies cannot go out
	c.lookups.Wait()
	c.cancel()
	if reason == closeLineTooLong || reason == closeShutdown || reason == closeNotDurable {
		// Every reply is written: end the stream cleanly rather than reset
		// it with the client's unread lines.
		c.linger()
	}
	c.nc.Close()
	c.s.m.ClientDisconnects.WithLabelValues(reason).Inc()
	c.log.Info("connection closed", "reason", reason)
	c.s.remove(c)
}

// readLoop returns why the connection should close.
func (c *conn) readLoop() string {
	br := bufio.NewReaderSize(&c.dc, c.s.cfg.MaxLine+2) // room for the line, CR and LF
	defer c.logIAMATs()                                 // a record owed when the loop gives up
	c.dc.armIdle(false)
	for {
		read := !protocol.LineBuffered(br) // ReadSlice reads from the connection
		if read {
			// About to block: send what is ready, then wait for input.
			// Checked after the idle deadline is set (see deadlineConn).
			c.flush()
			if reason := c.dc.ended(); reason != "" {
				return reason
			}
		}
		line, err := br.ReadSlice('\n')
		if read {
			c.readAt = c.s.now()
		}
		line = c.dc.withHeld(line) // the start of this line may have come before a deadline passed
		reason := ""
		if err != nil {
			reason = c.readFailed(line, err)
		} else {
			reason = c.readLine(line[:len(line)-1])
		}
		if reason != "" {
			return reason
		}
	}
}

// readFailed decides what a read that ended in err, having brought line,
// means: it returns why the connection closes, once what is ready is
// sent, or "" to read on when a deadline passed on a connection that is
// not idle.
func (c *conn) readFailed(line []byte, err error) string {
	reason := c.dc.ended()
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return c.tooLong()
	case errors.Is(err, io.EOF):
		if len(line) > 0 {
			c.execute(line)
		}
		reason = closeEOF
	case reason != "": // writing stopped, or shutdown woke the reader
	case !errors.Is(err, os.ErrDeadlineExceeded):
		reason = closeReadError
	case c.dc.idle(c.replies.owing()):
		reason = closeIdle
	default:
		// Not idle: a lookup is still running for this client, or it
		// sent something since the deadline was set.
		if len(line) > c.s.cfg.MaxLine+1 { // room for a CR
			return c.tooLong("length", len(line))
		}
		c.dc.hold(line, c.replies.owing())
		return ""
	}
	c.flush()
	return reason
}

// readLine executes a line read whole, without its LF, and returns why
// the connection should close, or "".
func (c *conn) readLine(line []byte) string {
	if k := len(line); k > 0 && line[k-1] == '\r' {
		line = line[:k-1]
	}
	if len(line) > c.s.cfg.MaxLine {
		return c.tooLong("length", len(line))
	}
	// At most MaxInflight requests may be owed a reply: behind a slow
	// lookup, stop reading until replies go out.
	if c.replies.owing() {
		if c.outN > 0 && c.replies.atLimit(c.outN) {
			c.flush()
		}
		c.replies.waitBelowLimit()
	}
	c.execute(line)
	if reason := c.dc.failed(); reason != "" {
		return reason
	}
	if len(c.out) >= maxBatchBytes || len(c.batch) >= maxBatch {
		c.flush()
	}
	return ""
}

// execute runs one command. Its reply joins out when it is ready at once;
// the reply to a WHATSAT that needs a lookup follows later, in order.
func (c *conn) execute(line []byte) {
	cmd := protocol.Parse(line)
	switch cmd.Kind {
	case protocol.IAMAT:
		c.iamat(line, &cmd)
	case protocol.WHATSAT:
		c.whatsat(line, &cmd)
	case protocol.Blank:
		c.logIAMATs() // the lines before this one first
		c.s.lines.Line(c.readAt, c.id, c.remote, line, nil, "", "")
	default:
		c.invalid(line, cmd.Verb, cmd.Reason)
	}
}

// tooLong sends what is ready and returns why the connection closes on a
// line longer than MaxLine, logging attrs.
func (c *conn) tooLong(attrs ...any) string {
	c.flush()
	c.log.Warn("line too long, closing", append([]any{"limit", c.s.cfg.MaxLine}, attrs...)...)
	return closeLineTooLong
}

// flush stores the IAMATs answered, writes their protocol log record and
// sends the replies ready.
func (c *conn) flush() {
	c.storeBatch()
	c.logIAMATs()
	c.replies.emit(c.out, c.outN)
	c.out, c.outN = c.out[:0], 0
}

// logIAMATs writes the protocol log record owed for the IAMATs read in a
// row, if any.
func (c *conn) logIAMATs() { c.iamats.flush(c.readAt, c.out) }

// storeBatch stores the IAMATs answered since the last call, in one
// store update, waits until the journal holds them, and counts them as
// done. Their replies go out only after it returns; if the journal cannot
// write them within WriteTimeout, no reply goes out any more and the
// connection closes, so that no record is acknowledged that a crash could
// lose.
func (c *conn) storeBatch() {
	if len(c.batch) == 0 {
		return
	}
	c.stored = c.s.store.ApplyAll(c.batch, store.Local, c.stored[:0])
	if j := c.s.cfg.Journal; j != nil {
		// Up to the store's last change, not only this batch's: a record
		// that was not newer is acknowledged on the strength of the newer
		// one held, which may have come from a neighbour a moment ago.
		if err := j.Wait(c.s.store.Seq(), c.s.cfg.WriteTimeout); err != nil {
			c.dc.stopWriting(closeNotDurable, slog.LevelWarn, "records not written to the journal in time; closing without replies", err)
		}
	}
	stored := 0
	for _, applied := range c.stored {
		if applied {
			stored++
		}
	}
	c.s.stats.iamats(stored, len(c.stored), c.readAt, c.s.now())
	clear(c.batch) // the records' strings are not kept alive
	c.batch = c.batch[:0]
}

// linger half-closes the connection and discards input for a moment
// before the close, so that the client reads the replies sent before a
// reset could destroy them.
func (c *conn) linger() {
	if tc, ok := c.nc.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	c.nc.SetReadDeadline(time.Now().Add(lingerTime))
	io.Copy(io.Discard, c.nc) // until the client closes, or the deadline
}
