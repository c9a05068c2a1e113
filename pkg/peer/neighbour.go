package peer

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herdkit/herd/pkg/store"
)

// neighbour supervises the link to one configured neighbour: it dials with
// jittered exponential backoff while there is no link, decides which link
// to keep when both ends dial at once, and carries the watermark from one
// link to the next. Everything but the atomics is owned by its goroutine.
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

// Backoff between dials: from backoffBase doubling up to cfg.BackoffMax,
// each wait drawn uniformly from its upper half ("equal jitter").
const backoffBase = 50 * time.Millisecond

func (n *neighbour) backoff(attempt int) time.Duration {
	d := n.mgr.cfg.BackoffMax
	if attempt < 30 {
		d = min(d, backoffBase<<attempt)
	}
	return d/2 + rand.N(d/2+1)
}

// run supervises until ctx is done.
func (n *neighbour) run(ctx context.Context) {
	var (
		cur      *link
		curDone  <-chan struct{}
		dialed   = make(chan *link)
		failed   = make(chan error)
		dialing  bool
		attempt  int
		retry    <-chan time.Time
		lastLog  time.Time
		lastErr  string
		upSince  time.Time
		stopLink = func(reason string) {
			if cur != nil {
				cur.close(reason)
				<-cur.done
				n.ended(cur, upSince)
				cur, curDone = nil, nil
			}
		}
	)
	dial := func() {
		dialing, retry = true, nil
		go func() {
			l, err := n.dial(ctx)
			if err != nil {
				select {
				case failed <- err:
				case <-ctx.Done():
				}
				return
			}
			select {
			case dialed <- l:
			case <-ctx.Done():
				l.close(downShutdown)
			}
		}()
	}
	// adopt makes l the current link, or returns why not.
	adopt := func(l *link) (refusal string) {
		if reason := n.refusal(l.remoteInc); reason != "" {
			n.mgr.metrics.PeerHandshakeFailures.WithLabelValues(reason).Inc()
			return reason
		}
		if !n.prefer(cur, l) {
			n.mgr.metrics.PeerHandshakeFailures.WithLabelValues(reasonDuplicate).Inc()
			return reasonDuplicate
		}
		if cur != nil && cur.remoteInc != l.remoteInc && cur.live() && n.takeover(cur, l) {
			// l came from the claimant kept; cur, the newer one, goes below.
			n.log.Error("duplicate server name: two live servers claim this neighbour's name; refusing the newer",
				"kept_remote", l.nc.RemoteAddr().String(), "kept_incarnation", fmt.Sprintf("%x", l.remoteInc),
				"refused_remote", cur.nc.RemoteAddr().String(), "refused_incarnation", fmt.Sprintf("%x", cur.remoteInc))
			n.mgr.metrics.PeerDuplicateNames.WithLabelValues(n.name).Inc()
		}
		stopLink(downReplaced)
		cur, curDone, upSince = l, l.done, time.Now()
		if known := n.watermark(); known.Incarnation == l.remoteInc {
			l.watermark.Store(known.Seq)
		}
		n.current.Store(l)
		n.mgr.metrics.PeerConnects.WithLabelValues(n.name).Inc()
		n.log.Info("peer link up", "dialled", l.dialled, "remote", l.nc.RemoteAddr().String())
		return ""
	}
	dial()
	for {
		select {
		case <-ctx.Done():
			stopLink(downShutdown)
			return
		case o := <-n.offers:
			o.refusal <- adopt(o.l)
		case l := <-dialed:
			dialing = false
			if adopt(l) == "" {
				go l.run()
			} else {
				l.close(downReplaced)
				retry = time.After(n.backoff(attempt))
			}
		case err := <-failed:
			dialing = false
			if reasonOf(err) == reasonDuplicate {
				// Both ends dialled at once and the other end kept its own
				// link, which reaches us as an offer: not a failure.
				n.log.Debug("neighbour kept the link it dialled")
				if cur == nil {
					retry = time.After(n.backoff(0))
				}
				continue
			}
			attempt++
			// Rate-limited: the first failure, a new error, or every 30 s.
			// While a link is up (the neighbour's own dial won the race),
			// a failed dial is no news.
			duplicateName := reasonOf(err) == reasonDuplicateName
			if cur != nil {
				n.log.Debug("dialling neighbour failed while linked", "err", err)
			} else if duplicateName && !told(err) {
				// Its address answered with the claimant refused here: the
				// episode is logged once already.
				n.log.Debug("dialling neighbour refused", "err", err)
			} else if msg := err.Error(); msg != lastErr || time.Since(lastLog) > 30*time.Second {
				if duplicateName {
					n.log.Error("the neighbour holds a link to another live server of this server's name", "err", err, "attempt", attempt)
				} else {
					n.log.Warn("dialling neighbour failed", "err", err, "attempt", attempt)
				}
				lastErr, lastLog = msg, time.Now()
			}
			if cur == nil {
				retry = time.After(n.backoff(attempt))
			}
		case <-curDone:
			n.ended(cur, upSince)
			cur, curDone = nil, nil
			if time.Since(upSince) > n.mgr.cfg.BackoffMax {
				attempt = 0 // it was a working link: redial at once
			}
			if !dialing {
				retry = time.After(n.backoff(attempt))
				attempt++
			}
		case <-retry:
			if cur == nil && !dialing {
				dial()
			}
		}
	}
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
	nc, err = n.mgr.secureDial(dctx, nc)
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
