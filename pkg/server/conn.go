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

	"github.com/herdkit/herd/pkg/places"
	"github.com/herdkit/herd/pkg/protocol"
	"github.com/herdkit/herd/pkg/store"
)

// Reasons a client connection closes; each is a metric label.
const (
	closeEOF         = "eof"           // the client ended its input and got every reply
	closeIdle        = "idle"          // nothing read for IdleTimeout with nothing owed
	closeLineTooLong = "line_too_long" // a line exceeded MaxLine
	closeWriteError  = "write_error"   // a reply could not be written in WriteTimeout
	closeReadError   = "read_error"    // the connection broke, e.g. reset by the client
	closeShutdown    = "shutdown"      // the server is stopping
)

// lingerTime bounds how long a connection closed on a bad line keeps
// reading and discarding input, so that the replies written before the
// close are not destroyed by a reset.
const lingerTime = 500 * time.Millisecond

type conn struct {
	s      *Server
	nc     net.Conn
	log    *slog.Logger
	ctx    context.Context // done when the client is gone or shutdown gives up
	cancel context.CancelFunc

	// mu guards the reply queue and serializes writes to nc.
	mu    sync.Mutex
	queue []*reply // replies owed, oldest first; non-empty only while a lookup is pending
	werr  error    // the first write error; nothing is written after it

	interrupted chan struct{} // closed by shutdown
	once        sync.Once
	lookups     sync.WaitGroup
	inflight    chan struct{} // one token per WHATSAT lookup in flight
}

// reply is one reply owed to a client, ready when done.
type reply struct {
	buf  []byte
	done bool
}

func (s *Server) newConn(nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(s.ctx)
	id := s.nextID.Add(1)
	return &conn{
		s: s, nc: nc, ctx: ctx, cancel: cancel,
		log:         s.log.With("conn", id, "remote", nc.RemoteAddr().String()),
		interrupted: make(chan struct{}),
		inflight:    make(chan struct{}, max(s.cfg.MaxInflight, 1)),
	}
}

// interrupt makes the reader stop at its next read, for shutdown.
func (c *conn) interrupt() {
	c.once.Do(func() { close(c.interrupted) })
	c.nc.SetReadDeadline(time.Now())
}

func (c *conn) isInterrupted() bool {
	select {
	case <-c.interrupted:
		return true
	default:
		return false
	}
}

// serve reads and executes commands until the input ends, then waits for
// the replies owed and closes the connection.
func (c *conn) serve() {
	reason := c.readLoop()
	c.lookups.Wait()
	c.cancel()
	if reason == closeLineTooLong {
		c.linger()
	}
	c.nc.Close()
	c.s.m.ClientDisconnects.WithLabelValues(reason).Inc()
	c.log.Info("connection closed", "reason", reason)
	c.s.track(c, false)
}

// readLoop returns why the connection should close.
func (c *conn) readLoop() string {
	maxLine := c.s.cfg.MaxLine
	br := bufio.NewReaderSize(c.nc, maxLine+2) // room for the line, CR and LF
	var out []byte                             // replies ready in this batch
	for {
		if br.Buffered() == 0 {
			// About to block: send what is ready, then wait for input.
			if len(out) > 0 {
				c.emit(out)
				out = out[:0]
			}
			if c.failed() {
				return closeWriteError
			}
			c.nc.SetReadDeadline(time.Now().Add(c.s.cfg.IdleTimeout))
			if c.isInterrupted() { // shutdown began before the deadline was set
				return closeShutdown
			}
		}
		line, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			line = line[:len(line)-1]
		case errors.Is(err, bufio.ErrBufferFull):
			c.emit(out)
			c.log.Warn("line too long, closing", "limit", maxLine)
			return closeLineTooLong
		case errors.Is(err, io.EOF):
			if len(line) > 0 {
				out = c.execute(out, line)
			}
			c.emit(out)
			return closeEOF
		case c.isInterrupted():
			c.emit(out)
			return closeShutdown
		case errors.Is(err, os.ErrDeadlineExceeded) && c.owed():
			continue // not idle: a lookup is still running for this client
		case errors.Is(err, os.ErrDeadlineExceeded):
			c.emit(out)
			return closeIdle
		default:
			c.emit(out)
			return closeReadError
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) > maxLine {
			c.emit(out)
			c.log.Warn("line too long, closing", "limit", maxLine, "length", len(line))
			return closeLineTooLong
		}
		out = c.execute(out, line)
		if c.failed() {
			return closeWriteError
		}
	}
}

// execute runs one command and appends its reply to out when it is ready
// at once; a WHATSAT's reply follows later, in order.
func (c *conn) execute(out, line []byte) []byte {
	start := c.s.now()
	cmd := protocol.Parse(line)
	n := len(out)
	switch cmd.Kind {
	case protocol.Blank:
		c.logLine(line, nil)
		return out
	case protocol.IAMAT:
		rec := store.Record{Text: cmd.Text(), Origin: c.s.cfg.Name, Recv: start.UnixNano()}
		_, applied := c.s.store.Apply(rec, store.NoLink)
		c.s.stats.iamat(applied)
		out = rec.AppendAT(out)
		out = append(out, '\n')
		c.s.stats.done(protocol.IAMAT, outcomeOK, start, c.s.now())
		c.logLine(line, out[n:])
		return out
	case protocol.WHATSAT:
		rec, ok := c.s.store.Get(string(cmd.Client))
		if !ok {
			cmd.Kind, cmd.Reason = protocol.Invalid, "unknown client"
			break
		}
		lat, lng, _ := protocol.ParsePos(rec.Pos())
		q := places.Query{Pos: rec.Pos(), Lat: lat, Lng: lng, RadiusKm: cmd.RadiusKm()}
		c.lookup(out, line, rec, q, cmd.Bound, start)
		return out[:0]
	}
	out = protocol.AppendInvalid(out, line)
	c.s.stats.done(cmd.Verb, outcomeInvalid, start, c.s.now())
	c.logLine(line, out[n:], "reason", cmd.Reason)
	return out
}

// lookup sends the replies ready so far, then queues a WHATSAT reply and
// fills it in from a goroutine. It waits while MaxInflight lookups run.
func (c *conn) lookup(ready, line []byte, rec store.Record, q places.Query, bound int, start time.Time) {
	c.emit(ready)
	select {
	case c.inflight <- struct{}{}:
	case <-c.ctx.Done():
		return
	}
	r := &reply{}
	c.mu.Lock()
	c.queue = append(c.queue, r)
	c.mu.Unlock()
	in := string(line)
	c.lookups.Add(1)
	go func() {
		defer c.lookups.Done()
		resp := c.s.places.Nearby(c.ctx, q)
		buf := rec.AppendAT(nil)
		buf = append(buf, '\n')
		buf = resp.AppendJSON(buf, bound)
		buf = append(buf, "\n\n"...)
		outcome := outcomeOK
		if !resp.Cacheable() {
			outcome = outcomePlacesError
		}
		c.s.stats.done(protocol.WHATSAT, outcome, start, c.s.now())
		c.logLine([]byte(in), buf, "places_status", resp.Status)
		<-c.inflight
		c.complete(r, buf)
	}()
}

// emit sends replies that are ready: at once when nothing is owed before
// them, otherwise queued behind the pending lookup.
func (c *conn) emit(b []byte) {
	if len(b) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 {
		c.write(b)
		return
	}
	c.queue = append(c.queue, &reply{buf: append([]byte(nil), b...), done: true})
}

// complete fills in a queued reply and writes every ready reply at the
// head of the queue in one write.
func (c *conn) complete(r *reply, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r.buf, r.done = b, true
	n := 0
	var w []byte
	for n < len(c.queue) && c.queue[n].done {
		w = append(w, c.queue[n].buf...)
		n++
	}
	c.queue = append(c.queue[:0], c.queue[n:]...)
	c.write(w)
}

// write sends b in one write, unless a write already failed. c.mu is held.
func (c *conn) write(b []byte) {
	if c.werr != nil || len(b) == 0 {
		return
	}
	c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
	if _, err := c.nc.Write(b); err != nil {
		c.werr = err
		c.log.Info("write failed", "err", err)
		c.cancel() // the client is gone: stop its lookups
	}
}

func (c *conn) failed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.werr != nil
}

// owed reports whether a reply is still being prepared.
func (c *conn) owed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue) > 0
}

// linger stops writing and discards input for a moment before the close,
// so that the client reads the replies sent before a reset could destroy
// them.
func (c *conn) linger() {
	if tc, ok := c.nc.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	c.nc.SetReadDeadline(time.Now().Add(lingerTime))
	io.CopyN(io.Discard, c.nc, 1<<20)
}

// logLine writes the protocol log: every input line and its reply.
func (c *conn) logLine(in, out []byte, attrs ...any) {
	if !c.log.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	args := append([]any{"in", string(in), "out", string(out)}, attrs...)
	c.log.Info("line", args...)
}
