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
}

// maxPending bounds a batch, and so the time the store's lock is held.
const maxPending = 512

func newInbound(l *link) *inbound {
	met := l.n.mgr.metrics
	in := &inbound{l: l, origins: map[string]string{}, hops: met.PropagationHops, last: l.watermark.Load()}
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
	in.l.watermark.Store(in.last)
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
	}
	return in.progress(f)
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
		in.l.n.reconciled(in.l, in.reconciled)
	default:
		return fmt.Errorf("unexpected frame %q", f.kind)
	}
	in.last = f.seq
	in.l.watermark.Store(f.seq)
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
