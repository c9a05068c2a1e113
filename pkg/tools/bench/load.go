package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herdkit/herd/pkg/protocol"
)

// Defaults of a load run.
const (
	// DefaultAddr is the client port of Hill in the local herd.
	DefaultAddr = "127.0.0.1:12200"
	// DefaultConns is the number of connections.
	DefaultConns = 50
	// DefaultDuration is the measured time of a run on the command line.
	DefaultDuration = 10 * time.Second
	// DefaultPipeline is the closed loop's requests outstanding per
	// connection.
	DefaultPipeline = 1
	// MaxPipeline bounds the pipeline depth. A deeper pipeline is written
	// in one write while the server's replies wait to be read, and could
	// fill both sockets' buffers.
	MaxPipeline = 4096
	// DefaultClients is the number of distinct client ids.
	DefaultClients = 10000
	// DefaultRadius is the radius of a WHATSAT, in km.
	DefaultRadius = "10"
	// DefaultBound is the bound of a WHATSAT on the command line.
	DefaultBound = 5
	// DefaultTimeout bounds a dial, and the wait for a reply owed.
	DefaultTimeout = 10 * time.Second
	// cancelGrace is how long replies owed are awaited after the context
	// is cancelled, before the connections are closed.
	cancelGrace = time.Second
)

// LoadConfig describes a load run. A zero field takes the default named
// in its comment.
type LoadConfig struct {
	// Addrs are the servers; connections are spread over them in turn.
	// Default DefaultAddr.
	Addrs []string
	// Conns is the number of connections. Default DefaultConns.
	Conns int
	// Duration is the measured time, after the warm-up. With Duration and
	// N both zero the run lasts until the context is cancelled.
	Duration time.Duration
	// N is the number of measured requests over all connections; zero
	// for no limit. Warm-up requests come on top of it.
	N int64
	// Pipeline is the closed loop's depth: each connection keeps this
	// many requests outstanding. Default DefaultPipeline. Ignored when
	// Rate is set.
	Pipeline int
	// Rate, when positive, makes the run an open loop: requests are sent
	// on a constant-rate schedule, Rate per second over all connections,
	// and latency is measured from the time the schedule meant a request
	// to leave, so a slow server cannot hide latency by slowing the
	// sender (the coordinated-omission correction).
	Rate float64
	// Mix is the fraction of requests that are WHATSAT, 0 to 1. A WHATSAT
	// asks about a client id its connection has sent in an IAMAT.
	Mix float64
	// Radius is a WHATSAT's radius in km, as text. Default DefaultRadius.
	Radius string
	// Bound is a WHATSAT's bound on results, 0 to 20.
	Bound int
	// Clients is the number of distinct client ids. Default
	// DefaultClients.
	Clients int
	// Prefix starts every client id. Default: random for each run.
	Prefix string
	// Warmup is a time at the start whose requests are left out of the
	// results.
	Warmup time.Duration
	// Timeout bounds a dial, and how long a connection waits for a reply
	// it is owed before it gives up. Default DefaultTimeout.
	Timeout time.Duration
	// Protocol is the wire protocol: ProtocolHerd or ProtocolRESP.
	// Default ProtocolHerd.
	Protocol string
	// Progress, if not nil, gets a progress line every second.
	Progress io.Writer
}

func (c LoadConfig) withDefaults() LoadConfig {
	if c.Protocol == "" {
		c.Protocol = ProtocolHerd
	}
	if len(c.Addrs) == 0 {
		c.Addrs = []string{DefaultAddr}
	}
	if c.Conns == 0 {
		c.Conns = DefaultConns
	}
	if c.Pipeline == 0 || c.Rate > 0 {
		c.Pipeline = DefaultPipeline
	}
	if c.Radius == "" {
		c.Radius = DefaultRadius
	}
	if c.Clients == 0 {
		c.Clients = DefaultClients
	}
	if c.Prefix == "" {
		c.Prefix = randomPrefix()
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// Validate reports the first field out of its range.
func (c LoadConfig) Validate() error {
	switch {
	case c.Conns < 1:
		return fmt.Errorf("connections %d: want at least 1", c.Conns)
	case c.Duration < 0:
		return fmt.Errorf("duration %v: want 0 or more", c.Duration)
	case c.N < 0:
		return fmt.Errorf("requests %d: want 0 or more", c.N)
	case c.Pipeline < 1 || c.Pipeline > MaxPipeline:
		return fmt.Errorf("pipeline %d: want 1 to %d", c.Pipeline, MaxPipeline)
	case c.Rate < 0:
		return fmt.Errorf("rate %g: want 0 (closed loop) or more", c.Rate)
	case !(c.Mix >= 0 && c.Mix <= 1):
		return fmt.Errorf("mix %g: want 0 to 1", c.Mix)
	case c.Clients < 1:
		return fmt.Errorf("clients %d: want at least 1", c.Clients)
	case c.Warmup < 0:
		return fmt.Errorf("warm-up %v: want 0 or more", c.Warmup)
	case c.Timeout <= 0:
		return fmt.Errorf("time-out %v: want more than 0", c.Timeout)
	case strings.ContainsFunc(c.Prefix, func(r rune) bool { return r < '!' || r > '~' }):
		return fmt.Errorf("prefix %q: want printable ASCII without spaces", c.Prefix)
	}
	for _, a := range c.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("address %q: %v", a, err)
		}
	}
	if _, err := newDialect(c.Protocol, c.Radius, c.Bound); err != nil {
		return err
	}
	w := protocol.Parse([]byte("WHATSAT k " + c.Radius + " " + strconv.Itoa(c.Bound)))
	if w.Kind != protocol.WHATSAT && c.Protocol == ProtocolHerd {
		return fmt.Errorf("radius %q and bound %d: %s (radius above 0 and at most %d km, bound 0 to %d)",
			c.Radius, c.Bound, w.Reason, protocol.MaxRadiusKm, protocol.MaxBound)
	}
	return nil
}

// Phases of a run: requests sent (or, in the open loop, scheduled) during
// the warm-up are counted apart and not measured.
const (
	warmup   = 0
	measured = 1
)

// plan is what the connections of a run share; it does not change once
// they start, but for the stop flags.
type plan struct {
	cfg      *LoadConfig
	d        dialect
	base     time.Time // time zero of the run
	warmupNs int64     // end of the warm-up, since base
	endNs    int64     // end of sending, since base; 0 for none
	nsPerReq float64   // open loop: time between two requests of the schedule

	stop    atomic.Bool // no more requests: the context is done
	stopCh  chan struct{}
	stopNs  atomic.Int64 // when stop was set, since base
	aborted atomic.Bool  // the connections were closed on purpose
}

func (p *plan) phaseOf(ns int64) int {
	if ns < p.warmupNs {
		return warmup
	}
	return measured
}

// Load runs a load as cfg describes and returns its summary. Cancelling
// ctx ends the run early: sending stops, the replies owed get a second to
// arrive, and the summary covers what was done.
func Load(ctx context.Context, cfg LoadConfig) (*LoadSummary, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	conns, dialErrs := dialAll(ctx, &cfg)
	if dialErrs == len(conns) {
		return nil, fmt.Errorf("no connection to %s", strings.Join(cfg.Addrs, ","))
	}
	d, _ := newDialect(cfg.Protocol, cfg.Radius, cfg.Bound) // Validate checked it
	p := &plan{cfg: &cfg, d: d, stopCh: make(chan struct{})}
	if cfg.Rate > 0 {
		p.nsPerReq = 1e9 / cfg.Rate
	}
	p.base = time.Now()
	p.warmupNs = int64(cfg.Warmup)
	if cfg.Duration > 0 {
		p.endNs = int64(cfg.Warmup + cfg.Duration)
	}
	workers := make([]*worker, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		if c == nil {
			continue
		}
		w := newWorker(p, i, c)
		workers[i] = w
		wg.Go(func() {
			defer c.Close()
			if cfg.Rate > 0 {
				w.openLoop()
			} else {
				w.closedLoop()
			}
		})
	}

	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
			return
		}
		p.stopAll()
		t := time.NewTimer(cancelGrace)
		defer t.Stop()
		select {
		case <-t.C:
			p.aborted.Store(true)
			for _, c := range conns {
				if c != nil {
					c.Close()
				}
			}
		case <-done:
		}
	}()
	var prevRecv int64
	stopProgress := startProgress(cfg.Progress, func(elapsed time.Duration) string {
		var sent, recv, errs int64
		for _, w := range workers {
			if w != nil {
				sent += w.liveSent.Load()
				recv += w.liveRecv.Load()
				errs += w.liveErr.Load()
			}
		}
		rate := recv - prevRecv // the line comes every second
		prevRecv = recv
		return fmt.Sprintf("%4.0fs  sent %d  received %d  errors %d  %d/s",
			elapsed.Seconds(), sent, recv, errs, rate)
	})
	wg.Wait()
	close(done)
	stopProgress()
	return summarize(p, workers, dialErrs), nil
}

func (p *plan) stopAll() {
	p.stopNs.Store(int64(time.Since(p.base))) // before stop, which summarize reads first
	if p.stop.CompareAndSwap(false, true) {
		close(p.stopCh)
	}
}

// dialAll dials cfg.Conns connections, spread over the addresses, at the
// same time. A connection that failed is nil.
func dialAll(ctx context.Context, cfg *LoadConfig) ([]*net.TCPConn, int) {
	conns := make([]*net.TCPConn, cfg.Conns)
	var failed atomic.Int64
	var wg sync.WaitGroup
	d := net.Dialer{Timeout: cfg.Timeout}
	for i := range conns {
		wg.Go(func() {
			c, err := d.DialContext(ctx, "tcp", cfg.Addrs[i%len(cfg.Addrs)])
			if err != nil {
				failed.Add(1)
				return
			}
			conns[i] = c.(*net.TCPConn)
		})
	}
	wg.Wait()
	return conns, int(failed.Load())
}

// summarize merges the connections' results.
func summarize(p *plan, workers []*worker, dialErrs int) *LoadSummary {
	cfg := p.cfg
	s := &LoadSummary{
		Target:      strings.Join(cfg.Addrs, ","),
		Connections: cfg.Conns,
		Mix:         cfg.Mix,
	}
	if cfg.Rate > 0 {
		s.TargetRate = cfg.Rate
	} else {
		s.Pipeline = cfg.Pipeline
	}
	h, lag := newHistogram(), newHistogram()
	var last int64
	s.Errors.Connections = int64(dialErrs)
	for _, w := range workers {
		if w == nil {
			continue
		}
		for ph := range 2 {
			for k, c := range []*Counts{&s.IAMAT, &s.WHATSAT} {
				got := Counts{Sent: w.sent[ph][k], Received: w.recv[ph][k], Invalid: w.invalid[ph][k]}
				if ph == measured {
					c.add(got)
				} else {
					s.Warmup.add(got)
				}
				s.Errors.Invalid += got.Invalid
				s.Errors.Unanswered += got.Sent - got.Received
			}
		}
		s.Errors.Malformed += w.malformed
		if w.err != nil && !errors.Is(w.err, errAborted) {
			s.Errors.Connections++
		}
		h.Merge(w.hist)
		if w.lag != nil {
			lag.Merge(w.lag)
		}
		last = max(last, w.lastReplyNs)
	}
	s.Errors.sum()
	s.Sent = s.IAMAT.Sent + s.WHATSAT.Sent
	s.Received = s.IAMAT.Received + s.WHATSAT.Received
	s.TotalSent = s.Sent + s.Warmup.Sent
	s.TotalReceived = s.Received + s.Warmup.Received
	// The window lasts at least as long as sending did: an open loop's
	// last reply can come before the end of its schedule.
	end := p.endNs
	if p.stop.Load() && (end == 0 || p.stopNs.Load() < end) {
		end = p.stopNs.Load()
	}
	last = max(last, end)
	if last > p.warmupNs {
		s.Seconds = float64(last-p.warmupNs) / 1e9
		s.Rate = float64(s.Received) / s.Seconds
	}
	s.Latency = latencyOf(h)
	if cfg.Rate > 0 {
		l := latencyOf(lag)
		s.SendLag = &l
	}
	return s
}
