package peer

import (
	"sync"
	"time"

	"github.com/herdkit/herd/pkg/protocol"
	"github.com/herdkit/herd/pkg/store"
)

// Broadcast trees, after Plumtree (Epidemic Broadcast Trees, Leitão,
// Pereira and Rodrigues, SRDS 2007), with a tree per origin server; see
// docs/topology.md, "Broadcast trees".
//
// Flooding sends every record over every link direction but the one it
// came in on, so most copies arrive where the record already is. Instead,
// a link's writer sends an origin's records eagerly (F frames, as when
// flooding) or lazily: only their identity (an I frame: change number,
// origin, receive time, client and time), batched. Every direction starts
// eager. The receiver decides:
//
//   - A flooded record it already held, from the same origin, is a copy
//     that came another way first: it asks the sender to send that
//     origin's records lazily (prune, X). What remains eager for an
//     origin is the tree its records reached every server by first.
//   - An announced record it does not hold is owed by the tree. If it is
//     still missing graftAfter later, the receiver asks the announcer for
//     it (graft, G), which answers with the record (R) or with none (N),
//     and sends that origin's records eagerly again: the tree is mended
//     where it broke.
//
// The watermark a receiver keeps of its neighbour's changes still means
// that it holds every one of them up to it, or a newer record: it does
// not pass an announced change it does not hold until the record comes,
// by any link or by a graft, so reconciliation after a link comes back
// stays exact. Reconciliation itself (C frames) is always sent whole.
//
// Only a neighbour that speaks these frames gets them: a server says so
// in its handshake nonce (treeTag), as it does for timed pings. To any
// other, a link floods as before.

// treeTag, before clockTag at the end of a nonce, says that its server
// speaks the frames of broadcast trees; fillingTag in its place says so
// too, and that the server is filling (fill.go). Their letters are not
// hex digits.
const (
	treeTag    = "tr"
	fillingTag = "tf"
)

// speaksTree reports whether a hello's nonce says its server speaks the
// frames of broadcast trees.
func speaksTree(nonce string) bool {
	if len(nonce) != nonceLen || !speaksClock(nonce) {
		return false
	}
	tag := nonce[nonceLen-4 : nonceLen-2]
	return tag == treeTag || tag == fillingTag
}

// isFilling reports whether a hello's nonce says its server is filling.
func isFilling(nonce string) bool {
	return speaksTree(nonce) && nonce[nonceLen-4:nonceLen-2] == fillingTag
}

// Timing of a tree, from the link's round trip rtt (clock.go; 0 until
// measured). On loopback or a LAN rtt is tens of microseconds, and a
// record goes out at once; across a WAN a writer batches what comes
// within a fraction of the trip the records take anyway.
const (
	// announceDelayMin is the least time announcements wait for a write
	// to travel with: at 81 servers of 8 links, every link writing its
	// announcements every 10 ms cost 65,000 writes a second.
	announceDelayMin = 50 * time.Millisecond
	// graftAfterMin is the least time an announced record may stay
	// missing before the receiver asks for it: the longest a tree's copy
	// is late on a loaded machine, where a hop waits for the receiver to
	// be scheduled, and the longest a record waits to be mended when a
	// tree breaks.
	graftAfterMin = 100 * time.Millisecond
	// pruneEvery bounds how often a receiver asks a neighbour again to
	// send an origin lazily while its copies keep coming.
	pruneEvery = 10 * time.Millisecond
	// maxTreeEvents bounds the events a reader queues for its writer;
	// a neighbour that asks for more is dropped (a herd server asks for
	// one graft per missing record, and those are few).
	maxTreeEvents = 1 << 16
)

// lingerFor is the least time between two writes of records on a link of
// round trip rtt: a third of it, on a link long enough that a write's
// wake-up of the receiver is the larger cost; none on loopback or a LAN.
// A record on a link idle that long goes at once; one that comes sooner
// waits for the rest of it, with the others that come meanwhile, unless
// it has crossed lingerHops links already. Across 25 servers with 100 ms
// each way and 100 writes a second, that gives 19 writes a record where
// none gave 26.5, for 60 ms more at the median delivery, 360 ms
// (TestTreesAcrossSlowLinks).
func lingerFor(rtt time.Duration) time.Duration {
	if rtt < lingerMinRTT {
		return 0
	}
	return rtt / 3
}

// lingerMinRTT is the shortest round trip on which records linger.
const lingerMinRTT = 10 * time.Millisecond

// announceDelayFor is how long announcements may wait for company on a
// link of round trip rtt, twenty round trips: they only mend the tree,
// and a write of announcements alone costs the receiver a wake-up. Under
// load they travel with records, and alone only on a quiet link.
func announceDelayFor(rtt time.Duration) time.Duration { return max(announceDelayMin, 20*rtt) }

// graftAfterFor is how long an announced record may stay missing on a
// link of round trip rtt before the receiver asks for it: long enough
// for the copy the tree owes to come a longer way.
func graftAfterFor(rtt time.Duration) time.Duration { return graftAfterMin + 2*rtt }

// Changes of a link's trees, the indexes of its herd_peer_tree_changes_total
// children.
const (
	pruneSent = iota
	pruneReceived
	graftSent
	graftReceived
	numTreeChanges
)

var treeChangeLabels = [numTreeChanges]string{"prune_sent", "prune_received", "graft_sent", "graft_received"}

// treeEvent is what a link's reader asks its writer to do about a tree.
type treeEvent struct {
	kind   byte   // framePrune: send X origin; frameGraft: send client's record, origin eagerly; 'x': origin lazily
	origin string // the origin whose tree it is about
	client string // frameGraft: whose record to send
}

// Kinds of treeEvent besides framePrune and frameGraft.
const (
	eventPruned = 'x' // the neighbour pruned us: send origin lazily
)

// announced is a change a neighbour announced that this server did not
// hold when the announcement came.
type announced struct {
	seq     uint64
	origin  string
	recv    int64
	client  string
	time    string
	at      time.Time // when it came
	grafted bool      // the writer asked for it
}

// tree is one link's state of the broadcast trees that its reader and
// writer share: the events the reader passes on, and the announced
// changes still missing, which hold back the watermark.
type tree struct {
	st   *store.Store
	now  func() time.Time // when an announcement came (tests set it)
	wake chan struct{}    // a value when events or missing changes wait for the writer

	mu      sync.Mutex
	events  []treeEvent
	missing []announced // by change number
}

func newTree(st *store.Store) *tree {
	return &tree{st: st, now: time.Now, wake: make(chan struct{}, 1)}
}

// queue passes an event to the writer, and reports false when too many
// wait: the neighbour is flooding us with grafts.
func (t *tree) queue(e treeEvent) bool {
	t.mu.Lock()
	n := len(t.events)
	if n < maxTreeEvents {
		t.events = append(t.events, e)
	}
	t.mu.Unlock()
	t.poke()
	return n < maxTreeEvents
}

func (t *tree) poke() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// take returns the events queued, and empties the queue into buf.
func (t *tree) take(buf []treeEvent) []treeEvent {
	t.mu.Lock()
	defer t.mu.Unlock()
	buf = append(buf[:0], t.events...)
	clear(t.events)
	t.events = t.events[:0]
	return buf
}

// announce takes an announcement: a change the store holds, or a newer
// one, costs nothing more; one it does not is missing until the record
// comes.
func (t *tree) announce(f frame) {
	if covered(t.st, f.client, f.time, f.origin, f.recv) {
		return
	}
	t.mu.Lock()
	t.missing = append(t.missing, announced{seq: f.seq, origin: string(f.origin), recv: f.recv,
		client: string(f.client), time: string(f.time), at: t.now()})
	t.mu.Unlock()
	t.poke()
}

// watermark returns how far the neighbour's changes are held, last being
// the last change number read: up to the first change still missing.
// It drops the missing changes that have come since.
func (t *tree) watermark(last uint64) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dropCovered()
	if len(t.missing) > 0 {
		return min(last, t.missing[0].seq-1)
	}
	return last
}

// dropCovered drops the missing changes the store now holds. t.mu is
// held.
func (t *tree) dropCovered() {
	kept := t.missing[:0]
	for _, a := range t.missing {
		if !covered(t.st, a.client, a.time, a.origin, a.recv) {
			kept = append(kept, a)
		}
	}
	clear(t.missing[len(kept):])
	t.missing = kept
}

// due returns, in buf, the missing changes to graft at now: those missing
// for after, not yet asked for; it marks them asked for. It also returns
// when the next one falls due, or the zero time when none waits.
func (t *tree) due(now time.Time, after time.Duration, buf []announced) ([]announced, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dropCovered()
	buf = buf[:0]
	var next time.Time
	for i := range t.missing {
		a := &t.missing[i]
		switch {
		case a.grafted:
		case !now.Before(a.at.Add(after)):
			a.grafted = true
			buf = append(buf, *a)
		case next.IsZero() || a.at.Add(after).Before(next):
			next = a.at.Add(after)
		}
	}
	return buf, next
}

// repaired drops the missing changes of client that a graft asked for,
// now answered: with a record (time), which the store took or judged
// older than what it holds, or with none (time "").
func (t *tree) repaired(client, time []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	kept := t.missing[:0]
	for _, a := range t.missing {
		answered := a.grafted && a.client == string(client) &&
			(len(time) == 0 || protocol.CompareTime(a.time, string(time)) <= 0)
		if !answered {
			kept = append(kept, a)
		}
	}
	clear(t.missing[len(kept):])
	t.missing = kept
}

// covered reports whether st holds the record of client announced with
// time, origin and recv, or a newer one. Records order by time, then
// origin (store.Newer); of one origin and time, the receive time tells
// them apart, as a server stores at most one record of a client per read.
// The same origin and receive time is the same record (most announcements
// are of a record the tree brought): the time need not be compared.
func covered[T ~string | ~[]byte](st *store.Store, client, time, origin T, recv int64) bool {
	held, ok := st.Get(string(client))
	if !ok {
		return false
	}
	if held.Recv == recv && held.Origin == string(origin) {
		return true
	}
	var buf [48]byte
	if c := protocol.CompareTime(held.AppendTime(buf[:0]), []byte(time)); c != 0 {
		return c > 0
	}
	if held.Origin != string(origin) {
		return held.Origin > string(origin)
	}
	return held.Recv == recv
}

// tended does what the link's reader asked of the writer about its trees,
// and asks the neighbour for the missing records that fell due, in one
// write: an origin the neighbour pruned goes lazily from now on; a prune
// asked for goes out; a graft is answered with the client's record, or
// none, and its origin goes eagerly again.
func (w *writer) tended() bool {
	t := w.l.tree
	w.events = t.take(w.events)
	w.buf = w.buf[:0]
	lazyChanged := false
	defer func() {
		if lazyChanged {
			w.lazyChanged()
		}
	}()
	for _, e := range w.events {
		switch e.kind {
		case eventPruned:
			// The store knows the origin: this link sent a record of it.
			// An origin it does not know stays eager, as a link that
			// floods sends it.
			if id, ok := w.st.OriginID(e.origin); ok {
				w.out.lazy.set(id, true)
				lazyChanged = true
			}
		case framePrune:
			w.buf = appendControl(w.buf, framePrune, e.origin)
			w.l.changes[pruneSent].Inc()
		case frameGraft:
			if id, ok := w.st.OriginID(e.origin); ok {
				w.out.lazy.set(id, false)
				lazyChanged = true
			}
			if r, ok := w.st.Get(e.client); ok {
				w.buf = appendRepair(w.buf, r)
				w.l.sent[kindReconcile].Inc()
			} else {
				w.buf = appendControl(w.buf, frameNone, e.client)
			}
		}
	}
	_, rtt, _ := w.l.n.clock.estimate()
	var next time.Time
	w.dueBuf, next = t.due(time.Now(), graftAfterFor(rtt), w.dueBuf)
	for _, a := range w.dueBuf {
		w.buf = appendControl(w.buf, frameGraft, a.origin, a.client)
		w.l.changes[graftSent].Inc()
		w.l.n.mgr.pruned.eager(w.l.n.id, a.origin)
	}
	if !next.IsZero() && w.graftDue == nil {
		w.graft.Reset(time.Until(next))
		w.graftDue = w.graft.C
	}
	if len(w.buf) == 0 {
		return true
	}
	return w.flush()
}

// pruned is what this server asked of its neighbours about each origin's
// tree: which neighbours send that origin's records lazily at its request.
// It keeps one eager way in for every origin: a copy that came a second
// way prunes that way only while another way is neither pruned nor down.
// Without that, two ways of equal length, whose copies win in turn, are
// pruned one after the other, and every record of the origin waits for a
// graft.
type pruned struct {
	mu   sync.Mutex
	lazy map[string][]bool      // by origin, by neighbour (its store.Source)
	last map[string][]time.Time // when each was last asked, likewise
}

// prune reports whether this server may ask neighbour from to send origin
// lazily at now, and if so notes that it did: not when from is the last
// way in for origin, nor again within pruneEvery while copies keep
// coming. up reports whether a neighbour's link is up and speaks trees.
func (p *pruned) prune(origin string, from store.Source, neighbours int, up func(store.Source) bool, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lazy == nil {
		p.lazy, p.last = map[string][]bool{}, map[string][]time.Time{}
	}
	lazy, last := p.lazy[origin], p.last[origin]
	if lazy == nil {
		lazy, last = make([]bool, neighbours+1), make([]time.Time, neighbours+1)
		p.lazy[origin], p.last[origin] = lazy, last
	}
	if now.Sub(last[from]) < pruneEvery {
		return false
	}
	for s := store.Source(1); int(s) <= neighbours; s++ {
		if s != from && !lazy[s] && up(s) {
			lazy[from], last[from] = true, now
			return true
		}
	}
	return false
}

// eager notes that neighbour from sends every origin eagerly (its link
// came up), or origin alone (it was grafted).
func (p *pruned) eager(from store.Source, origin string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for o, lazy := range p.lazy {
		if origin == "" || o == origin {
			lazy[from] = false
		}
	}
}
