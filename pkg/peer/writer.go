package peer

import (
	"runtime"
	"time"

	"github.com/herdkit/herd/pkg/store"
)

// batchSize bounds the changes read from the store and written per write.
const batchSize = 512

// markDelay is how long a mark frame that would travel alone waits for a
// record frame to carry it. Most changes a link skips came from its own
// neighbour, and under load a mark for each would cost one write per
// change; a watermark late by markDelay only makes a reconnect resend the
// few records the neighbour already holds.
const markDelay = 10 * time.Millisecond

// writeLoop streams changes to the neighbour until the link fails, and
// returns why.
func (l *link) writeLoop(have uint64) string {
	w := newWriter(l)
	defer w.close()
	if reason := w.sync(have); reason != "" {
		return reason
	}
	w.start()
	for {
		more, reason := w.round()
		if reason == "" && !more {
			reason = w.wake()
		}
		if reason != "" {
			return reason
		}
	}
}

// writer is a link's writing half, run by writeLoop: it streams the
// store's change log to the neighbour from the neighbour's watermark, and
// keeps the link alive while there is nothing to send. Its methods are the
// steps of the loop: sync (the exchange of sync frames), round (a batch of
// changes), wake (the wait for the next thing to send), and one for each
// wake-up that sends (sendMark, sendPong, beat). It is on the path of every
// record forwarded: a round reuses its batch and buffer and allocates
// nothing (TestWriterRoundAllocatesNothing).
type writer struct {
	l      *link
	cfg    *Config
	st     *store.Store
	notify <-chan struct{} // from st.Subscribe: a change was stored
	done   <-chan struct{} // the manager's: closed at shutdown

	out   outbox
	batch []store.Change // the round's changes
	buf   []byte         // the write being composed

	heartbeat *time.Ticker     // nil until start
	mark      *time.Timer      // a waiting mark's delay
	markDue   <-chan time.Time // mark.C while a mark waits, else nil
	lastWrite time.Time
}

// newWriter returns l's writer, subscribed to the store's changes.
func newWriter(l *link) *writer {
	mgr := l.n.mgr
	w := &writer{l: l, cfg: &mgr.cfg, st: mgr.store, notify: mgr.store.Subscribe(), done: mgr.ctx.Done(),
		mark: time.NewTimer(markDelay)}
	w.mark.Stop()
	return w
}

// close stops the writer's timers and its subscription.
func (w *writer) close() {
	w.st.Unsubscribe(w.notify)
	if w.heartbeat != nil {
		w.heartbeat.Stop()
	}
	w.mark.Stop()
}

// sync sends this end's sync frame, which says what it holds of the
// neighbour's changes (have), waits for the neighbour's, and sets where
// the stream starts: after the neighbour's watermark of our changes if it
// knows this incarnation of ours, from the beginning otherwise.
func (w *writer) sync(have uint64) (reason string) {
	l := w.l
	// Changes up to end are reconciliation, after it flooding. It is taken
	// before our sync frame goes out: the neighbour streams nothing before
	// it gets that frame, so no record of this link is in the range, and
	// the records this link brings are not sent back to it. The
	// subscription is older, so no change after end goes unnoticed.
	end := w.st.Seq()
	w.buf = appendSync(w.buf[:0], l.remoteInc, have)
	if !l.write(w.buf) {
		return downError
	}
	var theirs frame
	select {
	case theirs = <-l.sync:
	case <-w.done:
		return downShutdown
	case <-l.stop:
		return downError
	}
	w.out = outbox{from: l.n.id, cursor: theirs.seq, end: end, reconciling: true}
	if theirs.inc != w.cfg.Incarnation || w.out.cursor > w.st.Seq() {
		w.out.cursor = 0
	}
	return ""
}

// start starts the heartbeat, once the stream begins.
func (w *writer) start() {
	w.heartbeat = time.NewTicker(w.cfg.Heartbeat)
	w.lastWrite = time.Now()
}

// round writes the next batch of changes, after a pong that waits, and
// reports whether more changes wait to be read. Skipped changes with
// nothing to write start a mark's wait (markDelay); any write ends it.
func (w *writer) round() (more bool, reason string) {
	l := w.l
	var next uint64
	w.batch, next = w.st.Changes(w.out.cursor, batchSize, w.batch[:0])
	w.buf = w.buf[:0]
	select {
	case p := <-l.pongs:
		// First in the write, so that records do not delay it.
		w.buf = w.appendPong(w.buf, p)
	default:
	}
	var flood, reconcile int
	w.buf, flood, reconcile = w.out.fill(w.buf, w.batch, next)
	if w.out.markWaits && w.markDue == nil {
		w.mark.Reset(markDelay)
		w.markDue = w.mark.C
	}
	if len(w.buf) > 0 {
		if !w.flush() {
			return false, downTimeout
		}
		w.markDue = nil
		w.mark.Stop()
		l.sent[kindFlood].Add(float64(flood))
		l.sent[kindReconcile].Add(float64(reconcile))
	}
	if len(w.batch) == batchSize {
		l.backlog.Set(float64(w.st.Seq() - w.out.cursor))
		return true, ""
	}
	l.backlog.Set(0) // Changes read up to the last change
	return false, ""
}

// wake waits until there is something to send or the link ends, and
// handles it.
func (w *writer) wake() (reason string) {
	ok := true
	select {
	case <-w.notify:
		// The next round reads the change, once every goroutine already
		// runnable has run: under load, the connections the same wake-up
		// of the poller made runnable store their records first, and one
		// write carries them all, as Redis writes to a replica once per
		// turn of its event loop. A change that comes alone goes out at
		// once: with nothing else runnable, Gosched returns at once. At
		// depth 1 this halved the writes per request of the classic herd
		// (docs/benchmarks.md, "Herd against Redis").
		runtime.Gosched()
	case <-w.markDue:
		ok = w.sendMark()
	case p := <-w.l.pongs:
		ok = w.sendPong(p)
	case <-w.heartbeat.C:
		ok = w.beat()
	case <-w.l.stop:
		return downError
	case <-w.done:
		return downShutdown
	}
	if !ok {
		return downTimeout
	}
	return ""
}

// sendMark sends the mark that waited markDelay for a record to carry it.
func (w *writer) sendMark() bool {
	w.markDue, w.out.markWaits = nil, false
	w.buf = appendSeq(w.buf[:0], frameMark, w.out.cursor)
	return w.flush()
}

// sendPong answers a timed ping the reader passed on.
func (w *writer) sendPong(p [2]int64) bool {
	w.buf = w.appendPong(w.buf[:0], p)
	return w.flush()
}

// beat keeps the link alive at a heartbeat: a timed ping every time to a
// neighbour that speaks them, so that the clock offset is measured under
// load too; otherwise a plain ping once the link has been idle for a
// heartbeat.
func (w *writer) beat() bool {
	switch {
	case w.l.clocks:
		w.buf = appendPing(w.buf[:0], w.cfg.Now().UnixNano())
	case time.Since(w.lastWrite) >= w.cfg.Heartbeat:
		w.buf = append(w.buf[:0], framePing, '\n')
	default:
		return true
	}
	return w.flush()
}

// appendPong appends the answer to the timed ping p (its t1 and t2).
func (w *writer) appendPong(buf []byte, p [2]int64) []byte {
	return appendPong(buf, p[0], p[1], w.cfg.Now().UnixNano())
}

// flush writes w.buf within PeerTimeout and notes when.
func (w *writer) flush() bool {
	if !w.l.write(w.buf) {
		return false
	}
	w.lastWrite = time.Now()
	return true
}

// outbox is what a link's writer has told its neighbour of the change
// log, and composes each write.
type outbox struct {
	from        store.Source // the neighbour's: changes it flooded are not sent back
	cursor      uint64       // the last change number the neighbour is told of by the writes so far, or by the mark waiting
	end         uint64       // changes up to end are reconciliation
	reconciling bool         // the D frame has not gone yet
	markWaits   bool         // skipped changes after the last frame sent: a mark waits for company
}

// fill appends to buf, which holds a pong or nothing, the frames for
// batch, the changes after o.cursor up to next, and returns it with the
// records of each kind it holds. A buf it returns non-empty tells the
// neighbour every change up to next, since writing it ends the wait of a
// mark: a mark follows records that leave changes after them skipped, and
// a pong alone while a mark waits. Skipped changes with nothing to write
// set o.markWaits; the writer sends the mark after markDelay unless
// another write goes first.
func (o *outbox) fill(buf []byte, batch []store.Change, next uint64) (_ []byte, flood, reconcile int) {
	last := o.cursor // the last change number the neighbour will have been told of
	for _, c := range batch {
		inRange := c.Seq <= o.end
		// A flooded record is not sent back where it came from: this
		// link's neighbour holds it, or a newer one. Reconciliation sends
		// everything after the watermark, since a neighbour that
		// restarted may have lost what it sent on an earlier link.
		if c.From == o.from && !inRange {
			continue
		}
		kind := byte(frameFlood)
		if inRange {
			kind = frameReconcile
			reconcile++
		} else {
			flood++
		}
		buf = appendRecord(buf, kind, c.Seq, c.Record)
		last = c.Seq
	}
	switch {
	case o.reconciling && next >= o.end:
		buf = appendSeq(buf, frameSynced, next)
		o.reconciling = false
	case last < next && len(buf) > 0, o.markWaits && last == o.cursor && len(buf) > 0:
		buf = appendSeq(buf, frameMark, next)
	case last < next:
		o.markWaits = true
	}
	o.cursor = next
	if len(buf) > 0 {
		o.markWaits = false
	}
	return buf, flood, reconcile
}

// write sends b within PeerTimeout.
func (l *link) write(b []byte) bool {
	l.nc.SetWriteDeadline(time.Now().Add(l.n.mgr.cfg.Timeout))
	_, err := l.nc.Write(b)
	return err == nil
}
