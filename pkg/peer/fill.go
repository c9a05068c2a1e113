package peer

import (
	"sync"
	"time"
)

// Filling an empty server. A server that starts with nothing (a new one,
// or one whose disk was replaced) would be sent everything by every
// neighbour: a copy of the herd's state per link. Instead it fills from
// one: the first neighbour whose link comes up reconciles whole, as
// always; the links to the others wait, alive (plain pings), until that
// reconciliation is done, and then tell those neighbours that they hold
// every change up to the head each gave in its sync frame. What a
// neighbour changed before its head reaches the filling server anyway:
// it reaches the source, whose link floods it on. A link that speaks no
// broadcast trees does not wait (its neighbour gives no head), nor does
// one to a neighbour that is filling too (its hello says so), which is not
// filled from either: the servers of a herd that starts empty all fill,
// and their waits for each other would never end. If the source's link
// goes down first, a waiting link becomes the source.
//
// Until the fill is done the node is not ready (pkg/node), and
// herd_peer_reconcile_remaining_changes says how much the source still has
// to send.

// filler is the manager's state of a fill.
type filler struct {
	mu      sync.Mutex
	active  bool
	source  *link         // the link it fills from, or nil
	changed chan struct{} // closed, and replaced, when the fill ends or loses its source
}

func newFiller(active bool) *filler {
	return &filler{active: active, changed: make(chan struct{})}
}

// filling reports whether the fill is not done.
func (f *filler) filling() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.active
}

// fromSource reports whether the fill is under way from a neighbour.
func (f *filler) fromSource() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.active && f.source != nil
}

// What a link does about a fill (filler.role).
const (
	fillDone   = iota // there is no fill, or it is done: sync
	fillSource        // the link is the fill's source: sync, and reconcile whole
	fillWait          // wait until the fill is done or loses its source
)

// role returns what l does about the fill and, when it waits, a channel
// closed when that may change. The first link to ask is the source.
func (f *filler) role(l *link) (int, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case !f.active:
		return fillDone, nil
	case f.source == nil || f.source == l:
		f.source = l
		return fillSource, nil
	}
	return fillWait, f.changed
}

// reconciled ends the fill when l, its source, finished reconciling, or
// when every link has (all reports so): a server whose neighbours all
// were filling too (a herd that starts empty) fills from none.
func (f *filler) reconciled(l *link, all bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.active && (f.source == l || all) {
		f.active, f.source = false, nil
		f.wake()
	}
}

// down lets another link be the source when l, the source, went down.
func (f *filler) down(l *link) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.active && f.source == l {
		f.source = nil
		f.wake()
	}
}

// wake wakes the links waiting. f.mu is held.
func (f *filler) wake() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// awaitFill keeps the link alive with plain pings while the fill is not
// done and the link is not its source, and reads the neighbour's sync
// frame into theirs meanwhile. It reports whether the link claims the
// neighbour's head: it waited for a fill it was not the source of, and
// the neighbour gave a head. It returns "" or why the link ended while it
// waited.
func (w *writer) awaitFill(theirs *frame) (claim bool, reason string) {
	if w.l.filling {
		return false, ""
	}
	fill := w.l.n.mgr.fill
	beat := time.NewTicker(w.cfg.Heartbeat)
	defer beat.Stop()
	waited := false
	for {
		role, changed := fill.role(w.l)
		switch {
		case role == fillSource:
			return false, ""
		case role == fillDone && (!waited || w.gotSync):
			return waited && theirs.hasHead, ""
		}
		waited = true // changed is nil once the fill is done: their sync frame is awaited
		select {
		case *theirs = <-w.l.sync:
			w.gotSync = true
		case <-changed:
		case <-beat.C:
			if !w.l.write(append(w.buf[:0], framePing, '\n')) {
				return false, downTimeout
			}
		case <-w.done:
			return false, downShutdown
		case <-w.l.stop:
			return false, downError
		}
	}
}
