package peer

import (
	"bufio"
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herdkit/herd/pkg/rawio"
	"github.com/herdkit/herd/pkg/store"
)

// neighbour is one configured neighbour: what this server knows of it
// (the watermark of the last link, the incarnations claiming its name,
// its clock), shared by its links and its supervisor (supervisor.go), which
// keeps one link to it up. It decides which link to keep when both ends
// dial at once, and carries the watermark from one link to the next.
type neighbour struct {
	mgr  *Manager
	id   store.Source
	name string
	addr string
	log  *slog.Logger

	offers chan offer

	mu     sync.Mutex
	known  store.Watermark // of the last link that ended
	claims claims          // incarnations claiming the name; see duplicate.go

	clock clockFilter // the neighbour's clock offset, from timed pings

	everReconciled atomic.Bool // a link has finished reconciling at least once
	current        atomic.Pointer[link]
}

// offer asks the supervisor to adopt a link that finished its handshake.
type offer struct {
	l *link
	// refusal receives the supervisor's answer: the reason the link is
	// refused, or "" if it is adopted.
	refusal chan string
}

// prefer decides whether link l should replace cur (possibly nil). Both
// ends apply the same rule, so they keep the same link when both dial at
// once: a link to a new incarnation of the neighbour wins (the old one is
// dead); a second link dialled by the same end wins (that end gave up the
// first); otherwise the link dialled by the server with the smaller name
// wins, unless the current one has been silent for two heartbeats.
func (n *neighbour) prefer(cur, l *link) bool {
	switch {
	case cur == nil, cur.remoteInc != l.remoteInc, cur.dialled == l.dialled:
		return true
	case !cur.live():
		return true
	}
	return l.dialled == (n.mgr.cfg.Name < n.name)
}

// ended records that a link went down, and what it had received. The
// disconnect is counted last, so that whoever sees it counted sees the
// link's gauges and watermark as they are after it.
func (n *neighbour) ended(l *link, upSince time.Time) {
	n.log.Info("peer link down", "reason", l.reason, "up_for", time.Since(upSince).Round(time.Millisecond).String())
	n.current.CompareAndSwap(l, nil)
	n.mgr.fill.down(l)
	n.mgr.metrics.PeerUp.WithLabelValues(n.name).Set(0)
	n.mgr.metrics.PeerBacklog.WithLabelValues(n.name).Set(0)
	n.mu.Lock()
	n.known = store.Watermark{Incarnation: l.remoteInc, Seq: l.watermark.Load()}
	n.claims.linked(l.remoteInc, time.Now())
	n.mu.Unlock()
	n.mgr.metrics.PeerDisconnects.WithLabelValues(n.name, l.reason).Inc()
}

func (n *neighbour) watermark() store.Watermark {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.known
}

// sampleClock takes a timed ping's answer, read at t4, and exports the
// neighbour's estimated clock offset.
func (n *neighbour) sampleClock(stamps [3]int64, t4 int64) {
	if offset, _, ok := n.clock.add(stamps[0], stamps[1], stamps[2], t4); ok {
		n.mgr.metrics.PeerClockOffset.WithLabelValues(n.name).Set(offset.Seconds())
	}
}

// reconciled is called by a link's reader when the neighbour has sent all
// it had when the link came up.
func (n *neighbour) reconciled(l *link, applied int) {
	n.everReconciled.Store(true)
	n.mgr.metrics.PeerUp.WithLabelValues(n.name).Set(1)
	n.log.Info("peer link reconciled", "records_applied", applied, "watermark", l.watermark.Load())
}

// dial connects and authenticates.
func (n *neighbour) dial(ctx context.Context) (*link, error) {
	cfg := n.mgr.cfg
	dctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	nc, err := cfg.Dial(dctx, "tcp", n.addr)
	if err != nil {
		return nil, err
	}
	nc, err = n.mgr.secureDial(dctx, rawio.Wrap(nc))
	if err == nil {
		br := bufio.NewReaderSize(nc, handshakeBuffer)
		var other hello
		other, err = dialHandshake(nc, br, n.mgr.hello(), n.name, cfg.Secret, n.refusal, time.Now().Add(cfg.Timeout))
		if err == nil {
			return newLink(n, nc, grow(br, nc), other, true), nil
		}
	}
	nc.Close()
	if reason := reasonOf(err); reason != reasonDuplicate { // the other end counts duplicates
		n.mgr.metrics.PeerHandshakeFailures.WithLabelValues(reason).Inc()
	}
	return nil, err
}

// refusal returns why a link to incarnation inc of the neighbour is
// refused, or "" if it may link; see duplicate.go.
func (n *neighbour) refusal(inc uint64) string {
	now := time.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	if cur := n.current.Load(); cur != nil {
		n.claims.linked(cur.remoteInc, now)
	}
	if n.claims.refused(inc, now) {
		return reasonDuplicateName
	}
	return ""
}

// takeover records that l, of another incarnation, replaces the live link
// cur, and reports whether that starts a duplicate-name episode.
func (n *neighbour) takeover(cur, l *link) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.claims.takeover(cur.remoteInc, l.remoteInc, time.Now())
}

// offer hands an accepted link to the supervisor and returns why it was
// refused, or "" if it was adopted.
func (n *neighbour) offer(ctx context.Context, l *link) (refusal string) {
	o := offer{l: l, refusal: make(chan string, 1)}
	select {
	case n.offers <- o:
		return <-o.refusal
	case <-ctx.Done():
		return refusalShutdown
	}
}
