package peer

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/herdkit/herd/pkg/metrics"
	"github.com/herdkit/herd/pkg/store"
)

// Kinds of records a link carries, the indexes of its per-kind metric
// children: records flooded, and records sent to reconcile.
const (
	kindFlood = iota
	kindReconcile
	kinds // how many kinds there are
)

// kindSource is each kind's source label.
var kindSource = [kinds]string{kindFlood: metrics.SourceFlood, kindReconcile: metrics.SourceReconcile}

// inbound applies one link's frames to the store and counts them.
type inbound struct {
	l          *link
	origins    map[string]string // interned origin names
	received   [kinds]prometheus.Counter
	applied    [kinds]prometheus.Counter
	dropped    [kinds]prometheus.Counter
	delay      [kinds]prometheus.Observer
	hops       prometheus.Observer
	reconciled int // records applied from reconcile frames on this link
	synced     bool

	// Records read but not yet applied: the reader applies what one read
	// brought in one batch (see flush), all of one kind.
	pending []store.Record
	kind    int // kindFlood or kindReconcile, of every pending record
	stored  []bool
	last    uint64 // the change number of the last frame read

	// Broadcast trees (tree.go), when the neighbour speaks them.
	tree              *tree
	announcedReceived prometheus.Counter

	head      uint64 // the neighbour's last change number when the link came up, if it said
	remaining prometheus.Gauge
	scratch   []byte
}

// maxPending bounds a batch, and so the time the store's lock is held.
const maxPending = 512

func newInbound(l *link) *inbound {
	met := l.n.mgr.metrics
	in := &inbound{l: l, origins: map[string]string{}, hops: met.PropagationHops, last: l.watermark.Load(),
		tree: l.tree, announcedReceived: met.PeerAnnouncedReceived.WithLabelValues(l.n.name),
		remaining: met.PeerReconcileRemaining.WithLabelValues(l.n.name)}
	for k, src := range kindSource {
		in.received[k] = met.PeerRecordsReceived.WithLabelValues(l.n.name, src)
		in.applied[k] = met.StoreUpdates.WithLabelValues(src)
		in.dropped[k] = met.StoreUpdatesDropped.WithLabelValues(src)
		in.delay[k] = met.PropagationDelay.WithLabelValues(src)
	}
	return in
}

// flush applies the pending records in one batch, counts them, and
// advances the watermark over them.
func (in *inbound) flush() {
	if len(in.pending) == 0 {
		if in.last != in.l.watermark.Load() {
			in.advance() // announcements read since
		}
		return
	}
	in.stored = in.l.n.mgr.store.ApplyAll(in.pending, in.l.n.id, in.stored[:0])
	now := time.Now().UnixNano()
	k := in.kind
	// A record this neighbour received from its client carries a receive
	// time of the neighbour's clock: its delay is corrected by the
	// neighbour's estimated offset. One from further away is not (its
	// origin's clock is not measured here); see docs/peer-protocol.md.
	offset, _, known := in.l.n.clock.estimate()
	for i, r := range in.pending {
		if !in.stored[i] {
			in.dropped[k].Inc()
			if k == kindFlood {
				in.copyCame(r, now)
			}
			continue
		}
		in.applied[k].Inc()
		delay := time.Duration(now - r.Recv)
		if known && r.Hops == 1 && r.Origin == in.l.n.name {
			delay += offset
		}
		// A delay below zero is the clocks' error (the estimate's, up
		// to half its round trip, or an origin's offset not measured
		// here), not a record that came before it was sent: it counts
		// as zero, so that it does not pull the sum below the truth.
		in.delay[k].Observe(max(delay, 0).Seconds())
		in.hops.Observe(float64(r.Hops))
		if k == kindReconcile {
			in.reconciled++
		}
	}
	clear(in.pending) // the records' strings are not kept alive
	in.pending = in.pending[:0]
	in.advance()
}

// started takes the neighbour's sync frame, once this end's own has gone
// with what it claims to hold of the neighbour's changes.
func (in *inbound) started(f frame) {
	in.last = max(in.last, in.l.watermark.Load())
	if f.hasHead {
		in.head = f.head
		in.remaining.Set(float64(in.head - min(in.head, in.last)))
	}
}

// advance sets the link's watermark after what was read: the last change
// number, or, on a link with trees, short of the first announced change
// still missing.
func (in *inbound) advance() {
	w := in.last
	if in.tree != nil {
		w = in.tree.watermark(in.last)
	}
	in.l.watermark.Store(w)
	if !in.synced && in.head > 0 {
		in.remaining.Set(float64(in.head - min(in.head, w)))
	}
}

// copyCame takes a flooded record that was not newer than the one held
// at now. If the one held is the same record, this is a copy of it that
// came a second way, and one of the two ways is pruned for that origin
// (tree.go): this one, unless it crossed fewer links than the first, or
// as many and its neighbour ranks first (the lower number), so that the
// trees take the fewest hops and, among ways as short, the same
// neighbours for every origin, whose links then carry larger batches. An
// older record says nothing of the tree: it may have come the tree's way
// after its successor came another.
func (in *inbound) copyCame(r store.Record, now int64) {
	if in.tree == nil {
		return
	}
	mgr := in.l.n.mgr
	held, heldFrom, ok := mgr.store.GetFrom(r.Client())
	if !ok || held.Origin != r.Origin || held.Recv != r.Recv || string(held.AppendText(in.scratch[:0])) != r.Text {
		return
	}
	way := in.l.n.id
	if heldFrom != store.Local && heldFrom != way &&
		(r.Hops < held.Hops || r.Hops == held.Hops && way < heldFrom) {
		way = heldFrom
	}
	mgr.prune(r.Origin, way, time.Unix(0, now))
}

// handle takes one frame after the sync frame. Records wait in the batch
// until flush; any other frame flushes it first, so that a mark or the
// end of reconciliation counts every record before it.
func (in *inbound) handle(f frame) error {
	switch f.kind {
	case frameFlood, frameReconcile:
		if f.seq <= in.last {
			return fmt.Errorf("change number %d after %d", f.seq, in.last)
		}
		k := kindFlood
		if f.kind == frameReconcile {
			k = kindReconcile
		}
		in.received[k].Inc()
		if k != in.kind {
			in.flush() // empty from a herd server: its D frame, which flushes, ends reconciliation
			in.kind = k
		}
		in.pending = append(in.pending, store.Record{Text: string(f.text), Origin: in.origin(f.origin), Recv: f.recv, Hops: f.hops})
		in.last = f.seq
		if len(in.pending) == maxPending {
			in.flush()
		}
		return nil
	case framePing:
		if f.timed {
			select {
			case in.l.pongs <- [2]int64{f.stamps[0], in.l.n.mgr.cfg.Now().UnixNano()}:
			default: // the last one is not answered yet: this one is dropped
			}
		}
		return nil
	case framePong:
		in.l.n.sampleClock(f.stamps, in.l.n.mgr.cfg.Now().UnixNano())
		return nil
	case frameAnnounce, framePrune, frameGraft, frameRepair, frameNone:
		if in.tree == nil {
			return fmt.Errorf("tree frame %q from a neighbour that did not say it speaks them", f.kind)
		}
		return in.tended(f)
	}
	return in.progress(f)
}

// tended takes a frame of the broadcast trees.
func (in *inbound) tended(f frame) error {
	switch f.kind {
	case frameAnnounce:
		if f.seq <= in.last {
			return fmt.Errorf("change number %d after %d", f.seq, in.last)
		}
		in.announcedReceived.Inc()
		in.tree.announce(f)
		in.last = f.seq
		return nil // the watermark moves at the next flush
	case framePrune:
		in.l.changes[pruneReceived].Inc()
		in.tree.queue(treeEvent{kind: eventPruned, origin: in.origin(f.origin)})
	case frameGraft:
		in.l.changes[graftReceived].Inc()
		if !in.tree.queue(treeEvent{kind: frameGraft, origin: in.origin(f.origin), client: string(f.client)}) {
			return fmt.Errorf("more than %d grafts waiting", maxTreeEvents)
		}
	case frameRepair:
		in.flush()
		in.received[kindReconcile].Inc()
		r := store.Record{Text: string(f.text), Origin: in.origin(f.origin), Recv: f.recv, Hops: f.hops}
		in.stored = in.l.n.mgr.store.ApplyAll([]store.Record{r}, in.l.n.id, in.stored[:0])
		if in.stored[0] {
			in.applied[kindReconcile].Inc()
		} else {
			in.dropped[kindReconcile].Inc()
		}
		in.tree.repaired([]byte(r.Client()), []byte(r.Time()))
	case frameNone:
		in.tree.repaired(f.client, nil)
	}
	in.advance()
	return nil
}

// progress takes a frame that tells how far the neighbour's changes have
// come (a mark, or the end of reconciliation), after the records before
// it are applied.
func (in *inbound) progress(f frame) error {
	in.flush()
	switch f.kind {
	case frameMark:
		if f.seq < in.last {
			return fmt.Errorf("mark %d after %d", f.seq, in.last)
		}
	case frameSynced:
		if f.seq < in.last || in.synced {
			return fmt.Errorf("synced %d after %d", f.seq, in.last)
		}
		in.synced = true
		in.remaining.Set(0)
		in.l.n.reconciled(in.l, in.reconciled)
		in.l.n.mgr.fill.reconciled(in.l, in.l.n.mgr.Reconciled())
	default:
		return fmt.Errorf("unexpected frame %q", f.kind)
	}
	in.last = f.seq
	in.advance()
	return nil
}

// origin returns the interned name of an origin server.
func (in *inbound) origin(b []byte) string {
	if s, ok := in.origins[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(in.origins) < 1024 {
		in.origins[s] = s
	}
	return s
}
