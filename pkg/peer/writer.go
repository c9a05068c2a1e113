package peer

import (
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"github.com/herdkit/herd/pkg/store"
)

// yieldAfter is how recently a link must have written for its writer to
// yield before a round: a sign of load, under which waiting for the other
// runnable goroutines gathers a batch.
const yieldAfter = 500 * time.Microsecond

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
// wake-up that sends (sendWaiting, sendPong, beat, and a tree's: tended).
// It is on the path of every record forwarded: a round reuses its batch
// and buffer and allocates nothing (TestWriterRoundAllocatesNothing).
type writer struct {
	l      *link
	cfg    *Config
	st     *store.Store
	sub    *store.Subscription
	notify <-chan struct{} // sub.C: a change was stored
	done   <-chan struct{} // the manager's: closed at shutdown
	// lazy is out.lazy as the store's goroutines read it (urgent): a copy
	// published when it changes.
	lazy atomic.Pointer[originSet]

	out   outbox
	batch []store.Change // the round's changes
	buf   []byte         // the write being composed

	heartbeat *time.Ticker     // nil until start
	wait      *time.Timer      // the delay of what waits for company (outbox)
	waitDue   <-chan time.Time // wait.C while something waits, else nil
	waitAt    time.Time        // when wait fires
	lastWrite time.Time

	// The link's broadcast trees (tree.go); treeWake is nil on a link
	// that floods.
	treeWake <-chan struct{}
	graft    *time.Timer      // when the next missing record falls due
	graftDue <-chan time.Time // graft.C while one will, else nil
	events   []treeEvent
	dueBuf   []announced

	gotSync bool // the neighbour's sync frame was read while a fill was awaited
}

// newWriter returns l's writer, subscribed to the store's changes.
func newWriter(l *link) *writer {
	mgr := l.n.mgr
	w := &writer{l: l, cfg: &mgr.cfg, st: mgr.store, done: mgr.ctx.Done(),
		wait: time.NewTimer(time.Hour), graft: time.NewTimer(time.Hour)}
	w.sub = mgr.store.SubscribeUrgent(w.urgent)
	w.notify = w.sub.C
	w.wait.Stop()
	w.graft.Stop()
	if l.tree != nil {
		w.treeWake = l.tree.wake
	}
	return w
}

// close stops the writer's timers and its subscription.
func (w *writer) close() {
	w.st.Unsubscribe(w.notify)
	if w.heartbeat != nil {
		w.heartbeat.Stop()
	}
	w.wait.Stop()
	w.graft.Stop()
}

// sync sends this end's sync frame, which says what it holds of the
// neighbour's changes (have), waits for the neighbour's, and sets where
// the stream starts: after the neighbour's watermark of our changes if it
// knows this incarnation of ours, from the beginning otherwise. While
// this server fills from another neighbour (fill.go), it first waits for
// that, and then claims the neighbour's head and sends none of what it
// filled.
func (w *writer) sync(have uint64) (reason string) {
	l := w.l
	defer close(l.synced)
	var theirs frame
	claim := false
	if l.tree != nil {
		if claim, reason = w.awaitFill(&theirs); reason != "" {
			return reason
		}
	}
	if claim {
		have = max(have, theirs.head)
		l.watermark.Store(have)
	}
	// Changes up to end are reconciliation, after it flooding. It is taken
	// before our sync frame goes out: the neighbour streams nothing before
	// it gets that frame, so no record of this link is in the range, and
	// the records this link brings are not sent back to it. The
	// subscription is older, so no change after end goes unnoticed.
	end := w.st.Seq()
	if l.tree != nil {
		w.buf = appendSyncHead(w.buf[:0], l.remoteInc, have, end)
	} else {
		w.buf = appendSync(w.buf[:0], l.remoteInc, have)
	}
	if !l.write(w.buf) {
		return downError
	}
	if !w.gotSync {
		select {
		case theirs = <-l.sync:
		case <-w.done:
			return downShutdown
		case <-l.stop:
			return downError
		}
	}
	w.out = outbox{from: l.n.id, cursor: theirs.seq, end: end, reconciling: true}
	if theirs.inc != w.cfg.Incarnation || w.out.cursor > w.st.Seq() {
		w.out.cursor = 0
	}
	if claim {
		w.out.cursor = end // what this server holds it filled from another neighbour, which this one holds
	}
	return ""
}

// start starts the heartbeat, once the stream begins.
func (w *writer) start() {
	w.heartbeat = time.NewTicker(w.cfg.Heartbeat)
	w.lastWrite = time.Now()
	w.timing()
}

// timing sets how long frames wait for company from the link's round
// trip, as the timed pings last measured it.
func (w *writer) timing() {
	_, rtt, _ := w.l.n.clock.estimate()
	w.out.linger, w.out.delay = lingerFor(rtt), announceDelayFor(rtt)
}

// urgent reports whether a change of a record of origin, from from, is
// one to send whole at once: not one from this link's neighbour, nor of an
// origin it announces. Other changes wait for the writer's timer while it
// holds (store.Subscription). The store calls it under its lock.
func (w *writer) urgent(origin uint16, from store.Source) bool {
	if from == w.l.n.id {
		return false
	}
	lazy := w.lazy.Load()
	return lazy == nil || !lazy.has(origin)
}

// lazyChanged publishes out.lazy for urgent, after it changed.
func (w *writer) lazyChanged() {
	m := slices.Clone(w.out.lazy)
	w.lazy.Store(&m)
}

// round writes the next batch of changes, after a pong that waits, and
// reports whether more changes wait to be read. Skipped changes with
// nothing to write start a mark's wait (markDelay); any write ends it.
// While only frames that may wait do, only urgent changes wake the writer.
func (w *writer) round() (more bool, reason string) {
	l := w.l
	w.sub.Listen() // before the changes are read: none stored after goes unnoticed
	var next uint64
	w.batch, next = w.st.Changes(w.out.cursor, batchSize, w.batch[:0])
	w.buf = w.buf[:0]
	select {
	case p := <-l.pongs:
		// First in the write, so that records do not delay it.
		w.buf = w.appendPong(w.buf, p)
	default:
	}
	var n counts
	now := time.Now()
	w.buf, n = w.out.fill(w.buf, w.batch, next, now)
	if w.out.markWaits {
		// What waits goes when the first of it must: records that join
		// announcements waiting bring the time forward.
		if at := w.out.waitUntil(); w.waitDue == nil || at.Before(w.waitAt) {
			w.wait.Reset(at.Sub(now))
			w.waitDue, w.waitAt = w.wait.C, at
		}
		w.sub.Hold()
	}
	if len(w.buf) > 0 {
		if !w.flush() {
			return false, downTimeout
		}
	}
	if n != (counts{}) {
		l.sent[kindFlood].Add(float64(n.flood))
		l.sent[kindReconcile].Add(float64(n.reconcile))
		l.announced.Add(float64(n.announced))
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
		// Under load, the next round reads the change once every
		// goroutine already runnable has run: the connections the same
		// wake-up of the poller made runnable store their records first,
		// and one write carries them all, as Redis writes to a replica
		// once per turn of its event loop. At depth 1 this halved the
		// writes per request of the classic herd (docs/benchmarks.md,
		// "Herd against Redis"). A change that comes to a link idle for
		// yieldAfter goes out at once, ahead of what else is runnable (the
		// reply to the client that sent it, say).
		if time.Since(w.lastWrite) < yieldAfter {
			runtime.Gosched()
		}
	case <-w.waitDue:
		ok = w.sendWaiting()
	case <-w.treeWake:
		ok = w.tended()
	case <-w.graftDue:
		w.graftDue = nil
		ok = w.tended()
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

// sendWaiting sends what waited for company in vain, with the mark that
// tells the neighbour every change read.
func (w *writer) sendWaiting() bool {
	w.buf = w.out.flushWaiting(w.buf[:0], time.Now())
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
	w.timing()
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

// flush writes w.buf within PeerTimeout and notes when. What waited for
// company has joined it, or still waits.
func (w *writer) flush() bool {
	if !w.l.write(w.buf) {
		return false
	}
	w.l.writes.Inc()
	w.lastWrite = time.Now()
	if !w.out.markWaits && w.waitDue != nil {
		w.wait.Stop()
		w.waitDue = nil
	}
	return true
}

// write sends b within PeerTimeout.
func (l *link) write(b []byte) bool {
	l.nc.SetWriteDeadline(time.Now().Add(l.n.mgr.cfg.Timeout))
	_, err := l.nc.Write(b)
	return err == nil
}
