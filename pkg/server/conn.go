package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herdkit/herd/pkg/places"
	"github.com/herdkit/herd/pkg/protocol"
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

type conn struct {
	s      *Server
	nc     net.Conn
	id     uint64
	remote string
	log    *slog.Logger
	ctx    context.Context // done when the client is gone or shutdown gives up
	cancel context.CancelFunc

	// mu guards owed and serializes writes to nc. A reply is owed from
	// the moment its request is read until it is written: replies ready
	// at once go out at once while nothing is owed before them, and join
	// owed behind a lookup, so that replies keep their requests' order.
	mu      sync.Mutex
	drained *sync.Cond // signalled when owed replies are written
	owed    []*reply   // replies owed, oldest first; non-empty only while a lookup is being answered
	owedN   int        // the requests whose replies are in owed
	werr    string     // why the first write failed; nothing is written after it
	// anyOwed and broken mirror len(owed) > 0 and werr != "" so that the
	// read loop checks them per line without taking mu.
	anyOwed, broken atomic.Bool

	interrupted chan struct{} // closed by shutdown
	once        sync.Once
	lookups     sync.WaitGroup

	// IAMATs answered but not yet stored, owned by the reader: what one
	// read brought is stored in one batch before any reply goes out.
	batch  []store.Record
	stored []bool
	// readAt is when the last read from the connection returned: the
	// receive time of every line it brought, so of every IAMAT in batch,
	// which is stored before the next read.
	readAt time.Time

	// Deadlines are set lazily: setting one costs about as much as
	// parsing a request, and a busy connection would set two a request.
	// The read deadline is set when the connection opens; when it passes,
	// the reader closes the connection as idle only if nothing came for
	// IdleTimeout (in.last says when data last came) and no lookup is
	// owed; otherwise it holds the start of a line the read had brought
	// (held) and sets the deadline again. The write deadline, writeBy, is
	// set again only when a write starts less than half a WriteTimeout
	// before it; when it passes during a write that began less than
	// WriteTimeout ago, it moves to the write's start plus WriteTimeout and
	// the write goes on. Both time-outs thus count as they would with a
	// deadline set before every read and write. They use the monotonic
	// clock, not the server's.
	in      readClock // the connection's input, with when it last brought data
	held    []byte
	writeBy time.Duration // on the monotonic clock; guarded by mu

	// The protocol log record owed for the IAMATs read in a row, owned by
	// the reader: the span of the reader's reply buffer that holds their
	// replies (empty when none is owed), and their lines, joined by
	// newlines, only once one of them is not what its reply repeats (see
	// canonicalIAMAT); until then the replies hold the lines. One record
	// for the IAMATs of a read rather than one each: they share the
	// receive time, the connection and the remote address, which a record
	// per line would repeat, in one write to the sink.
	logMark, logEnd int
	logIn           []byte
}

// Bounds of what the reader holds before it writes: replies, and IAMATs
// not yet stored. A read holds at most HERD_MAX_LINE bytes of lines, and
// the reader answers before each read, but with a large HERD_MAX_LINE one
// read can bring thousands of lines: they are answered, and stored under
// the store's lock, this many at a time.
const (
	maxBatchBytes = 64 << 10
	maxBatch      = 256
)

// reply is the reply to one or more requests, ready when done.
type reply struct {
	buf      []byte
	requests int
	done     bool
}

func (s *Server) newConn(nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(s.ctx)
	id, remote := s.nextID.Add(1), nc.RemoteAddr().String()
	c := &conn{
		s: s, nc: nc, ctx: ctx, cancel: cancel, id: id, remote: remote,
		log:         s.log.With("conn", id, "remote", remote),
		interrupted: make(chan struct{}), in: readClock{r: nc, last: monotonic()},
	}
	c.drained = sync.NewCond(&c.mu)
	return c
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
	maxLine := c.s.cfg.MaxLine
	br := bufio.NewReaderSize(&c.in, maxLine+2) // room for the line, CR and LF
	var (
		out []byte // replies ready in this batch
		n   int    // the requests they answer
	)
	defer func() { c.logIAMATs(out) }() // a record owed when the loop gives up
	flush := func() {
		c.storeBatch()
		c.logIAMATs(out)
		c.emit(out, n)
		out, n = out[:0], 0
	}
	tooLong := func(attrs ...any) string {
		flush()
		c.log.Warn("line too long, closing", append([]any{"limit", maxLine}, attrs...)...)
		return closeLineTooLong
	}
	c.armIdle()
	for {
		read := !protocol.LineBuffered(br) // ReadSlice reads from the connection
		if read {
			// About to block: send what is ready, then wait for input.
			// Checked after the idle deadline is set (when the
			// connection opened, or when the last one passed), which
			// would otherwise undo the wake-up of stopWriting or
			// interrupt.
			flush()
			if reason := c.failed(); reason != "" {
				return reason
			}
			if c.isInterrupted() {
				return closeShutdown
			}
		}
		line, err := br.ReadSlice('\n')
		if read {
			c.readAt = c.s.now()
		}
		if len(c.held) > 0 { // the start of this line came before a deadline passed
			line = append(c.held, line...)
			c.held = c.held[:0]
		}
		switch {
		case err == nil:
			line = line[:len(line)-1]
		case errors.Is(err, bufio.ErrBufferFull):
			return tooLong()
		case errors.Is(err, io.EOF):
			if len(line) > 0 {
				out, n = c.execute(out, n, line)
			}
			flush()
			return closeEOF
		case c.failed() != "":
			return c.failed()
		case c.isInterrupted():
			flush()
			return closeShutdown
		case errors.Is(err, os.ErrDeadlineExceeded) && (c.anyOwed.Load() || monotonic()-c.in.last < c.s.cfg.IdleTimeout):
			// Not idle: a lookup is still running for this client, or
			// it sent something since the deadline was set.
			if len(line) > maxLine+1 { // room for a CR
				return tooLong("length", len(line))
			}
			c.held = append(c.held, line...)
			c.armIdle()
			continue
		case errors.Is(err, os.ErrDeadlineExceeded):
			flush()
			return closeIdle
		default:
			flush()
			return closeReadError
		}
		if k := len(line); k > 0 && line[k-1] == '\r' {
			line = line[:k-1]
		}
		if len(line) > maxLine {
			return tooLong("length", len(line))
		}
		// At most MaxInflight requests may be owed a reply: behind a slow
		// lookup, stop reading until replies go out.
		if c.anyOwed.Load() {
			if n > 0 && c.atLimit(n) {
				flush()
			}
			c.waitBelowLimit()
		}
		out, n = c.execute(out, n, line)
		if reason := c.failed(); reason != "" {
			return reason
		}
		if len(out) >= maxBatchBytes || len(c.batch) >= maxBatch {
			flush()
		}
	}
}

// armIdle sets the read deadline to IdleTimeout after the last read that
// brought data, or after now while a lookup is owed (its client is not
// idle) or when that time is past.
func (c *conn) armIdle() {
	at := c.in.last + c.s.cfg.IdleTimeout
	if now := monotonic(); c.anyOwed.Load() || at <= now {
		at = now + c.s.cfg.IdleTimeout
	}
	c.nc.SetReadDeadline(epoch.Add(at))
}

// readClock is a reader that notes when a read last brought data, on
// the monotonic clock.
type readClock struct {
	r    io.Reader
	last time.Duration
}

func (rc *readClock) Read(p []byte) (int, error) {
	n, err := rc.r.Read(p)
	if n > 0 {
		rc.last = monotonic()
	}
	return n, err
}

// epoch is the origin of monotonic.
var epoch = time.Now()

// monotonic returns the time since epoch. It reads only the monotonic
// clock, which costs half of time.Now's two readings: the deadlines'
// bookkeeping uses it, once or twice a request.
func monotonic() time.Duration { return time.Since(epoch) }

// execute runs one command and appends its reply to out, counting it in n,
// when it is ready at once; the reply to a WHATSAT that needs a lookup
// follows later, in order. The command's receive time is that of the read
// that brought it, one clock reading for all the lines of a read.
func (c *conn) execute(out []byte, n int, line []byte) ([]byte, int) {
	start := c.readAt
	cmd := protocol.Parse(line)
	mark := len(out)
	if cmd.Kind != protocol.IAMAT {
		c.logIAMATs(out) // the lines before this one first
	}
	switch cmd.Kind {
	case protocol.Blank:
		c.s.lines.Line(start, c.id, c.remote, line, nil, "", "")
		return out, n
	case protocol.IAMAT:
		// A time further ahead than MaxClockAhead would make the record
		// newer than every real update for ever. Records from peers are
		// not judged again: their origin did.
		if c.s.ahead > 0 && cmd.Sec > start.Unix()+c.s.ahead {
			cmd.Kind, cmd.Reason = protocol.Invalid, reasonAhead
			c.logIAMATs(out)
			break
		}
		// The reply does not depend on whether the record is newer; it
		// goes out after storeBatch stores the record.
		rec := store.Record{Text: cmd.Text(), Origin: c.s.cfg.Name, Recv: start.UnixNano()}
		c.batch = append(c.batch, rec)
		out = protocol.AppendATParsed(out, rec.Origin, rec.Recv, cmd.Sec, cmd.Nsec, rec.Text)
		out = append(out, '\n')
		if c.logEnd == c.logMark { // the first of a record
			c.logMark = mark
		}
		switch {
		case len(c.logIn) > 0: // the record's lines are written out
			c.logIn = append(append(c.logIn, '\n'), line...)
		case !canonicalIAMAT(line, rec.Text):
			// The lines before it were what their replies repeat: they
			// are written out from the replies, once, then this one.
			c.logIn = appendIAMATLines(c.logIn, out[c.logMark:mark])
			if len(c.logIn) > 0 {
				c.logIn = append(c.logIn, '\n')
			}
			c.logIn = append(c.logIn, line...)
		}
		c.logEnd = len(out)
		return out, n + 1
	case protocol.WHATSAT:
		c.storeBatch() // it may ask about a client of this batch
		rec, ok := c.s.store.Get(string(cmd.Client))
		if !ok {
			cmd.Kind, cmd.Reason = protocol.Invalid, "unknown client"
			break
		}
		lat, lng, _ := protocol.ParsePos(rec.Pos())
		q := places.Query{Pos: rec.Pos(), Lat: lat, Lng: lng, RadiusKm: cmd.RadiusKm()}
		if c.s.peek != nil {
			if resp, ok := c.s.peek.Peek(q); ok {
				out = appendWHATSAT(out, rec, resp, cmd.Bound)
				c.doneWHATSAT(line, out[mark:], resp, start)
				return out, n + 1
			}
		}
		c.emit(out, n)
		c.lookup(line, rec, q, cmd.Bound, start)
		return out[:0], 0
	}
	out = protocol.AppendInvalid(out, line)
	end := c.s.now()
	c.s.stats.done(cmd.Verb, outcomeInvalid, start, end)
	c.s.lines.Line(end, c.id, c.remote, line, out[mark:], "reason", cmd.Reason)
	return out, n + 1
}

// logIAMATs writes the protocol log record owed for the IAMATs read in a
// row, whose replies are in out, if any is owed. The reader calls it before
// their replies go out, and before it logs any other line, so that a
// connection's records keep the order of its lines.
func (c *conn) logIAMATs(out []byte) {
	if c.logEnd == c.logMark {
		return
	}
	replies := out[c.logMark:c.logEnd]
	if len(c.logIn) == 0 {
		c.s.lines.IAMATs(c.readAt, c.id, c.remote, replies)
	} else {
		c.s.lines.Line(c.readAt, c.id, c.remote, c.logIn, replies, "", "")
	}
	c.logMark, c.logEnd = 0, 0
	c.logIn = c.logIn[:0]
	if cap(c.logIn) > maxBatchBytes { // a huge line's buffer is not kept
		c.logIn = nil
	}
}

// canonicalIAMAT reports whether line is "IAMAT " and text, the fields
// its AT reply repeats: then the reply holds the line, and the protocol
// log need not.
func canonicalIAMAT(line []byte, text string) bool {
	const verb = "IAMAT "
	return len(line) == len(verb)+len(text) && string(line[:len(verb)]) == verb && string(line[len(verb):]) == text
}

// appendIAMATLines appends to dst, joined by newlines, the IAMAT lines
// that replies answer: AT lines to IAMATs that were what their replies
// repeat, each "IAMAT " and the reply's fields after the server's name and
// time difference.
func appendIAMATLines(dst, replies []byte) []byte {
	for reply := range bytes.Lines(replies) {
		fields := reply[:len(reply)-1]
		for range 3 { // "AT", the server's name, the time difference
			fields = fields[bytes.IndexByte(fields, ' ')+1:]
		}
		if len(dst) > 0 {
			dst = append(dst, '\n')
		}
		dst = append(append(dst, "IAMAT "...), fields...)
	}
	return dst
}

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
			c.mu.Lock()
			c.stopWriting(closeNotDurable, slog.LevelWarn, "records not written to the journal in time; closing without replies", err)
			c.mu.Unlock()
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

// lookup adds a WHATSAT reply to owed and fills it in from a goroutine.
func (c *conn) lookup(line []byte, rec store.Record, q places.Query, bound int, start time.Time) {
	r := &reply{requests: 1}
	c.mu.Lock()
	c.owed = append(c.owed, r)
	c.anyOwed.Store(true)
	c.owedN++
	c.mu.Unlock()
	in := bytes.Clone(line)
	c.lookups.Add(1)
	go func() {
		defer c.lookups.Done()
		resp := c.s.places.Nearby(c.ctx, q)
		buf := appendWHATSAT(nil, rec, resp, bound)
		c.doneWHATSAT(in, buf, resp, start)
		c.complete(r, buf)
	}()
}

// appendWHATSAT appends the reply to a WHATSAT about rec: its AT line, the
// places cut to bound, and the empty line that ends it.
func appendWHATSAT(dst []byte, rec store.Record, resp *places.Response, bound int) []byte {
	return protocol.AppendPlacesReply(dst,
		func(b []byte) []byte { return rec.AppendAT(b) },
		func(b []byte) []byte { return resp.AppendJSON(b, bound) })
}

// doneWHATSAT counts and logs the reply to a WHATSAT received at start.
func (c *conn) doneWHATSAT(line, reply []byte, resp *places.Response, start time.Time) {
	outcome := outcomeOK
	if !resp.Cacheable() {
		outcome = outcomePlacesError
	}
	end := c.s.now()
	c.s.stats.done(protocol.WHATSAT, outcome, start, end)
	c.s.lines.Line(end, c.id, c.remote, line, reply, "places_status", resp.Status)
}

// emit sends the replies to n requests that are ready: at once when
// nothing is owed before them, otherwise added to owed behind the lookup.
func (c *conn) emit(b []byte, n int) {
	if len(b) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.owed) == 0 {
		c.write(b)
		return
	}
	c.owed = append(c.owed, &reply{buf: append([]byte(nil), b...), requests: n, done: true})
	c.owedN += n
}

// complete fills in an owed reply and writes every ready reply at the
// head of owed in one write.
func (c *conn) complete(r *reply, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r.buf, r.done = b, true
	k := 0
	var w []byte
	for k < len(c.owed) && c.owed[k].done {
		w = append(w, c.owed[k].buf...)
		c.owedN -= c.owed[k].requests
		k++
	}
	c.owed = append(c.owed[:0], c.owed[k:]...)
	c.anyOwed.Store(len(c.owed) > 0)
	c.write(w)
	c.drained.Broadcast()
}

// atLimit reports whether n more replies would reach MaxInflight replies
// owed, counting only while a lookup is being answered.
func (c *conn) atLimit(n int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.owed) > 0 && c.owedN+n >= c.s.cfg.MaxInflight
}

// waitBelowLimit waits while MaxInflight requests are owed a reply.
// Lookups always complete (they end with the connection's context), so
// the wait ends.
func (c *conn) waitBelowLimit() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.owedN >= c.s.cfg.MaxInflight {
		c.drained.Wait()
	}
}

// write sends b in one write, unless a write already failed; it fails
// when the client has not taken b within WriteTimeout. c.mu is held.
func (c *conn) write(b []byte) {
	if c.werr != "" || len(b) == 0 {
		return
	}
	timeout := c.s.cfg.WriteTimeout
	start := monotonic()
	if c.writeBy-start < timeout/2 {
		c.setWriteBy(start + timeout)
	}
	for {
		n, err := c.nc.Write(b)
		if err == nil {
			return
		}
		if errors.Is(err, os.ErrDeadlineExceeded) && monotonic()-start < timeout {
			// The deadline was set by an earlier write: this one has
			// until its own start plus WriteTimeout.
			b = b[n:]
			c.setWriteBy(start + timeout)
			continue
		}
		reason := closeWriteError
		if errors.Is(err, os.ErrDeadlineExceeded) {
			reason = closeWriteTimeout
		}
		c.stopWriting(reason, slog.LevelInfo, "write failed", err)
		return
	}
}

// setWriteBy sets the write deadline, t on the monotonic clock. c.mu is
// held.
func (c *conn) setWriteBy(t time.Duration) {
	c.writeBy = t
	c.nc.SetWriteDeadline(epoch.Add(t))
}

// stopWriting makes reason the connection's end: nothing is written after
// it, its lookups stop and the reader wakes to close. The first reason
// stands. c.mu is held.
func (c *conn) stopWriting(reason string, level slog.Level, msg string, err error) {
	if c.werr != "" {
		return
	}
	c.werr = reason
	c.broken.Store(true)
	c.log.Log(c.ctx, level, msg, "err", err)
	c.cancel()                       // the client is gone or stuck: stop its lookups
	c.nc.SetReadDeadline(time.Now()) // and wake the reader to close
}

// failed returns why writing failed, or "".
func (c *conn) failed() string {
	if !c.broken.Load() {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.werr
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
