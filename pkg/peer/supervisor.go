package peer

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/herdkit/herd/pkg/backoff"
	"github.com/herdkit/herd/pkg/logging"
)

// backoffBase is the wait after the first failed try to link a neighbour;
// it doubles with each further failure up to Config.BackoffMax.
const backoffBase = 50 * time.Millisecond

// dialLogEvery is how often the same dial error is logged while it
// repeats; a new error is logged at once.
const dialLogEvery = 30 * time.Second

// supervisor keeps one link to a neighbour up: it dials while there is no
// link, with jittered exponential back-off, adopts the link that either
// end's dial made, and redials when the link ends. It is a state machine in
// the manner of memberlist's state.go: run waits for the next event and
// hands it to its method (offered, dialled, dialFailed, linkEnded,
// retryDue, shutdown), which alone changes the state. Everything in it is
// owned by run's goroutine, except what dialOnce reads, which is set once
// by newSupervisor.
type supervisor struct {
	n   *neighbour
	ctx context.Context // the manager's: done at shutdown

	cur     *link     // the link adopted, nil while there is none
	upSince time.Time // when cur was adopted
	dialing bool      // a dialOnce is under way; its outcome comes on dialled or failed

	dialled chan *link // a dial's link, from dialOnce
	failed  chan error // a dial's error, from dialOnce

	// wait counts the tries since the last lasting link that gave no
	// lasting link: failed dials, and links that ended within BackoffMax.
	wait  backoff.Backoff
	timer *time.Timer
	retry <-chan time.Time // timer's channel while a redial waits, else nil

	dialLog logging.Throttle // failed dials worth a WARN or an ERROR
}

func newSupervisor(ctx context.Context, n *neighbour) *supervisor {
	s := &supervisor{
		n: n, ctx: ctx,
		dialled: make(chan *link), failed: make(chan error),
		wait:    backoff.Backoff{Base: backoffBase, Max: n.mgr.cfg.BackoffMax, Jitter: true},
		timer:   time.NewTimer(time.Hour),
		dialLog: logging.Throttle{Every: dialLogEvery},
	}
	s.timer.Stop()
	return s
}

// run dials at once, then handles events until ctx is done.
func (s *supervisor) run() {
	defer s.timer.Stop()
	s.dial()
	for {
		select {
		case <-s.ctx.Done():
			s.shutdown()
			return
		case o := <-s.n.offers:
			o.refusal <- s.offered(o.l)
		case l := <-s.dialled:
			s.dialSucceeded(l)
		case err := <-s.failed:
			s.dialFailed(err)
		case <-s.curDone():
			s.linkEnded()
		case <-s.retry:
			s.retryDue()
		}
	}
}

// curDone returns the current link's done channel, nil (never ready) while
// there is no link.
func (s *supervisor) curDone() <-chan struct{} {
	if s.cur == nil {
		return nil
	}
	return s.cur.done
}

// offered answers a link the accept side authenticated: "" if it is
// adopted, else why not. The accept side runs it.
func (s *supervisor) offered(l *link) (refusal string) {
	return s.adopt(l)
}

// dialSucceeded adopts and runs the link a dial made. A link refused (the
// incarnation is refused, or the link up is preferred) is closed and, if
// there is still no link, redialled after the wait a failure would get,
// without counting one: the dial itself worked.
func (s *supervisor) dialSucceeded(l *link) {
	s.dialing = false
	if s.adopt(l) == "" {
		go l.run()
		return
	}
	l.close(downReplaced)
	s.retryIn(s.wait.Wait(s.wait.Failures()))
}

// dialFailed counts a failed dial, logs it and, while there is no link,
// redials after the back-off. The duplicate race (both ends dialled at
// once and the other end kept the link it dialled, which reaches us as an
// offer) is not a failure: it waits the base back-off.
func (s *supervisor) dialFailed(err error) {
	s.dialing = false
	if reasonOf(err) == reasonDuplicate {
		s.n.log.Debug("neighbour kept the link it dialled")
		if s.cur == nil {
			s.retryIn(s.wait.Wait(0))
		}
		return
	}
	d := s.wait.Next()
	s.logDialFailure(err)
	if s.cur == nil {
		s.retryIn(d)
	}
}

// logDialFailure logs a failed dial: at DEBUG while a link is up (the
// neighbour's own dial won the race, no news) and for a duplicate-name
// refusal the neighbour told us of (its episode is logged once already);
// otherwise at ERROR for a duplicate name, at WARN for anything else,
// throttled to the first of each error and one every dialLogEvery.
func (s *supervisor) logDialFailure(err error) {
	log := s.n.log
	duplicateName := reasonOf(err) == reasonDuplicateName
	switch {
	case s.cur != nil:
		log.Debug("dialling neighbour failed while linked", "err", err)
	case duplicateName && !told(err):
		log.Debug("dialling neighbour refused", "err", err)
	case duplicateName:
		s.dialLog.Log(log, slog.LevelError, err.Error(), "the neighbour holds a link to another live server of this server's name",
			"err", err, "attempt", s.wait.Failures())
	default:
		s.dialLog.Log(log, slog.LevelWarn, err.Error(), "dialling neighbour failed", "err", err, "attempt", s.wait.Failures())
	}
}

// linkEnded handles the current link going down by itself. A link that
// was up longer than BackoffMax was working: the back-off starts again and
// the redial waits only the base back-off. One that was not counts as a
// failed try, so that a link that drops as soon as it is up is redialled
// ever more slowly. While a dial is under way, its outcome decides.
func (s *supervisor) linkEnded() {
	upFor := time.Since(s.upSince)
	s.n.ended(s.cur, s.upSince)
	s.cur = nil
	lasted := upFor > s.n.mgr.cfg.BackoffMax
	if lasted {
		s.wait.Reset()
	}
	switch {
	case s.dialing:
	case lasted:
		s.retryIn(s.wait.Wait(0))
	default:
		s.retryIn(s.wait.Next())
	}
}

// retryDue dials when the back-off has passed, unless a link came up or a
// dial started meanwhile.
func (s *supervisor) retryDue() {
	s.retry = nil
	if s.cur == nil && !s.dialing {
		s.dial()
	}
}

// shutdown closes the current link and waits for it.
func (s *supervisor) shutdown() { s.stopLink(downShutdown) }

// adopt makes l the current link, or returns why not: its incarnation is
// refused (duplicate.go), or the current link is preferred (prefer).
func (s *supervisor) adopt(l *link) (refusal string) {
	n, met := s.n, s.n.mgr.metrics
	if reason := n.refusal(l.remoteInc); reason != "" {
		met.PeerHandshakeFailures.WithLabelValues(reason).Inc()
		return reason
	}
	if !n.prefer(s.cur, l) {
		met.PeerHandshakeFailures.WithLabelValues(reasonDuplicate).Inc()
		return reasonDuplicate
	}
	if cur := s.cur; cur != nil && cur.remoteInc != l.remoteInc && cur.live() && n.takeover(cur, l) {
		// l came from the claimant kept; cur, the newer one, goes below.
		n.log.Error("duplicate server name: two live servers claim this neighbour's name; refusing the newer",
			"kept_remote", l.nc.RemoteAddr().String(), "kept_incarnation", fmt.Sprintf("%x", l.remoteInc),
			"refused_remote", cur.nc.RemoteAddr().String(), "refused_incarnation", fmt.Sprintf("%x", cur.remoteInc))
		met.PeerDuplicateNames.WithLabelValues(n.name).Inc()
	}
	s.stopLink(downReplaced)
	s.cur, s.upSince = l, time.Now()
	if known := n.watermark(); known.Incarnation == l.remoteInc {
		l.watermark.Store(known.Seq)
	}
	n.mgr.pruned.eager(n.id, "") // a new link sends every origin eagerly
	n.current.Store(l)
	met.PeerConnects.WithLabelValues(n.name).Inc()
	n.log.Info("peer link up", "dialled", l.dialled, "remote", l.nc.RemoteAddr().String())
	return ""
}

// stopLink closes the current link, if any, for reason, and waits for it
// to end.
func (s *supervisor) stopLink(reason string) {
	if s.cur == nil {
		return
	}
	s.cur.close(reason)
	<-s.cur.done
	s.n.ended(s.cur, s.upSince)
	s.cur = nil
}

// dial starts a dial in its own goroutine; a redial waiting is dropped.
func (s *supervisor) dial() {
	s.dialing = true
	s.timer.Stop()
	s.retry = nil
	go s.dialOnce()
}

// dialOnce dials the neighbour and hands the outcome to run; at shutdown it
// closes a link that run will not take.
func (s *supervisor) dialOnce() {
	l, err := s.n.dial(s.ctx)
	if err != nil {
		select {
		case s.failed <- err:
		case <-s.ctx.Done():
		}
		return
	}
	select {
	case s.dialled <- l:
	case <-s.ctx.Done():
		l.close(downShutdown)
	}
}

// retryIn arms the redial for d from now, replacing one that waits.
func (s *supervisor) retryIn(d time.Duration) {
	s.timer.Reset(d)
	s.retry = s.timer.C
}
