package peer

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/herdkit/herd/pkg/metrics"
	"github.com/herdkit/herd/pkg/store"
)

// Indexes of per-kind metric children: records flooded, and records sent
// to reconcile.
const (
	kindFlood = iota
	kindReconcile
)

// inbound applies one link's frames to the store and counts them.
type inbound struct {
	l          *link
	origins    map[string]string // interned origin names
	received   [2]prometheus.Counter
	applied    [2]prometheus.Counter
	dropped    [2]prometheus.Counter
	delay      [2]prometheus.Observer
	hops       prometheus.Observer
	reconciled int // records applied from reconcile frames on this link
	synced     bool
}

func newInbound(l *link) *inbound {
	m := l.n.m.metrics
	in := &inbound{l: l, origins: map[string]string{}, hops: m.PropagationHops}
	for i, src := range [2]string{metrics.SourceFlood, metrics.SourceReconcile} {
		in.received[i] = m.PeerRecordsReceived.WithLabelValues(l.n.name, src)
		in.applied[i] = m.StoreUpdates.WithLabelValues(src)
		in.dropped[i] = m.StoreUpdatesDropped.WithLabelValues(src)
		in.delay[i] = m.PropagationDelay.WithLabelValues(src)
	}
	return in
}

// handle applies one frame after the sync frame.
func (in *inbound) handle(f frame) error {
	l := in.l
	wm := l.watermark.Load()
	switch f.kind {
	case frameFlood, frameReconcile:
		if f.seq <= wm {
			return fmt.Errorf("change number %d after %d", f.seq, wm)
		}
		k := kindFlood
		if f.kind == frameReconcile {
			k = kindReconcile
		}
		in.received[k].Inc()
		rec := store.Record{Text: string(f.text), Origin: in.origin(f.origin), Recv: f.recv, Hops: f.hops}
		if _, ok := l.n.m.store.Apply(rec, l.n.id); ok {
			in.applied[k].Inc()
			in.delay[k].Observe(time.Duration(time.Now().UnixNano() - f.recv).Seconds())
			in.hops.Observe(float64(f.hops))
			if k == kindReconcile {
				in.reconciled++
			}
		} else {
			in.dropped[k].Inc()
		}
	case frameMark:
		if f.seq < wm {
			return fmt.Errorf("mark %d after %d", f.seq, wm)
		}
	case frameSynced:
		if f.seq < wm || in.synced {
			return fmt.Errorf("synced %d after %d", f.seq, wm)
		}
		in.synced = true
		l.n.reconciled(l, in.reconciled)
	case framePing:
		return nil
	default:
		return fmt.Errorf("unexpected frame %q", f.kind)
	}
	l.watermark.Store(f.seq)
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
