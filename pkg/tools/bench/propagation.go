package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/herdkit/herd/pkg/protocol"
)

// Defaults of a propagation run.
const (
	// DefaultHerd lists the client ports of the local herd, Hill to
	// Singleton.
	DefaultHerd = "127.0.0.1:12200,127.0.0.1:12201,127.0.0.1:12202,127.0.0.1:12203,127.0.0.1:12204"
	// DefaultSamples is the number of samples.
	DefaultSamples = 200
	// DefaultInterval is the pause between samples.
	DefaultInterval = 10 * time.Millisecond
	// DefaultLoadConns is the number of connections of the background
	// load.
	DefaultLoadConns = 10
)

// Where a sample's delays count from (PropagationConfig.Since).
const (
	// SinceReceipt counts from the origin's receipt of the IAMAT: the
	// client time the bench sent plus the time difference in the origin's
	// AT reply. It needs the servers to read the bench's clock (the same
	// machine, containers included); a run where a receipt falls outside
	// its IAMAT's round trip fails rather than report delays off by the
	// clocks' offset.
	SinceReceipt = "receipt"
	// SinceSend counts from the IAMAT's sending, so delays also hold its
	// trip to the origin; it works across machines.
	SinceSend = "send"
)

// PropagationConfig describes a propagation run. A zero field takes the
// default named in its comment.
type PropagationConfig struct {
	// Addrs are the client ports of the herd's servers. Default
	// DefaultHerd.
	Addrs []string
	// From is the index in Addrs of the server that receives the IAMATs.
	From int
	// N is the number of samples. Default DefaultSamples.
	N int
	// Interval is the pause between the end of a sample and the start of
	// the next; zero for none.
	Interval time.Duration
	// Radius is the radius of the WHATSAT queries, in km, as text. Default
	// DefaultRadius.
	Radius string
	// Timeout bounds a dial, a reply, and the time every server has to
	// learn a sample's client id. Default DefaultTimeout.
	Timeout time.Duration
	// Prefix starts every client id. Default: random for each run.
	Prefix string
	// LoadRate, when positive, runs an open-loop IAMAT load of that many
	// requests per second against the herd while sampling, with client
	// ids of its own; with ProtocolRESP, against the origin alone.
	LoadRate float64
	// LoadConns is the number of connections of that load. Default
	// DefaultLoadConns.
	LoadConns int
	// Since is where delays count from: SinceReceipt or SinceSend.
	// Default SinceReceipt, or SinceSend with ProtocolRESP, whose replies
	// carry no receive time.
	Since string
	// Protocol is the wire protocol: ProtocolHerd or ProtocolRESP (a
	// GEOADD at the origin, GEOPOS polls at the others). Default
	// ProtocolHerd.
	Protocol string
	// Progress, if not nil, gets a progress line every second.
	Progress io.Writer
}

// PropagationErrors counts what went wrong in a propagation run. Total is
// the sum of the others.
type PropagationErrors struct {
	Total       int64 `json:"total"`
	Rejected    int64 `json:"rejected"`    // IAMATs the origin did not answer with an AT line
	Missed      int64 `json:"missed"`      // (server, sample) pairs where the server did not learn the id in time
	Connections int64 `json:"connections"` // connections that failed
}

// ServerPropagation is what one server showed of the samples.
type ServerPropagation struct {
	Addr   string `json:"addr"`
	Known  int64  `json:"known"`  // samples whose id the server learned in time
	Missed int64  `json:"missed"` // samples it did not
	Polls  int64  `json:"polls"`  // WHATSAT queries sent to it
	// Latency is the time from the origin's receipt of the IAMAT (or its
	// sending, with SinceSend) to receiving the first WHATSAT reply that
	// knew the id.
	Latency Latency `json:"latency"`
	// Poll is the round trip of every WHATSAT sent to the server: the
	// resolution of Latency, which can be late by up to one poll.
	Poll Latency `json:"poll"`
}

// PropagationReport is the JSON summary of `herd bench propagation
// -json`; its field names are stable.
type PropagationReport struct {
	Mode     string              `json:"mode"`     // "propagation"
	Origin   string              `json:"origin"`   // the server that received the IAMATs
	Since    string              `json:"since"`    // where delays count from: "receipt" or "send"
	Samples  int                 `json:"samples"`  // samples taken
	Complete int                 `json:"complete"` // samples that every server learned in time
	Errors   PropagationErrors   `json:"errors"`
	IAMAT    Latency             `json:"iamat"`   // the IAMAT's round trip to the origin
	Servers  []ServerPropagation `json:"servers"` // every server but the origin, in the order given
	// Herd is the delay until the last server knew the id, over the
	// complete samples.
	Herd Latency `json:"herd"`
	// Load is the background load's summary, with LoadRate.
	Load *LoadSummary `json:"load,omitempty"`
}

// sample is one client id to look for.
type sample struct {
	id     string
	t0     time.Time     // when the IAMAT was sent to the origin
	start  time.Time     // where its delays count from: t0, or the origin's receipt
	cancel chan struct{} // closed when the origin refused the IAMAT
}

// found is a poller's answer for one sample.
type found struct {
	server int
	delay  time.Duration
	ok     bool
}

// poller asks one server about each sample, on one connection, one query
// at a time, with no pause, until the server knows the id.
type poller struct {
	addr    string
	conn    net.Conn
	d       dialect
	lr      replySource
	timeout time.Duration
	hist    *hdrhistogram.Histogram
	rtt     *hdrhistogram.Histogram // every poll's round trip
	stats   ServerPropagation
	err     error // the connection failed; later samples are missed at once
	buf     []byte
}

func (p *poller) poll(s sample) (time.Duration, bool) {
	if p.err != nil {
		return 0, false
	}
	p.buf = p.d.appendRead(p.buf[:0], []byte(s.id))
	deadline := s.t0.Add(p.timeout)
	for {
		select {
		case <-s.cancel:
			return 0, false
		default:
		}
		p.stats.Polls++
		sent := time.Now()
		if err := p.conn.SetWriteDeadline(sent.Add(p.timeout)); err != nil {
			p.err = err
			return 0, false
		}
		if _, err := p.conn.Write(p.buf); err != nil {
			p.err = err
			return 0, false
		}
		r, _, err := readOneReply(p.lr, kindWHATSAT)
		now := time.Now()
		if err != nil {
			p.err = err
			return 0, false
		}
		record(p.rtt, int64(now.Sub(sent)))
		if r == protocol.ReplyAT {
			return now.Sub(s.start), true
		}
		if now.After(deadline) {
			return 0, false
		}
	}
}

// readOneReply reads one complete reply to a request of kind k. It also
// returns its first line, an IAMAT's only line, valid until the next read.
func readOneReply(rr replySource, k kind) (protocol.ReplyKind, []byte, error) {
	for {
		if r, line, ok := rr.next(k); ok {
			if r == protocol.ReplyMalformed {
				return r, nil, errMalformed
			}
			return r, line, nil
		}
		if err := rr.fill(time.Now()); err != nil {
			return protocol.ReplyMalformed, nil, readError(err)
		}
	}
}

// atDiff reads the time difference of an AT line (protocol.ParseAT):
// the server's receive time minus the client time.
func atDiff(line []byte) (time.Duration, bool) {
	at, ok := protocol.ParseAT(line)
	if !ok {
		return 0, false
	}
	sec, nsec, _ := protocol.ParseDiff(at.Diff)
	if sec > math.MaxInt64/int64(time.Second)-1 || sec < math.MinInt64/int64(time.Second)+1 {
		return 0, false
	}
	return time.Duration(sec)*time.Second + time.Duration(nsec), true
}

func (c PropagationConfig) withDefaults() PropagationConfig {
	if len(c.Addrs) == 0 {
		c.Addrs = strings.Split(DefaultHerd, ",")
	}
	if c.N == 0 {
		c.N = DefaultSamples
	}
	if c.Radius == "" {
		c.Radius = DefaultRadius
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Prefix == "" {
		c.Prefix = randomPrefix()
	}
	if c.LoadConns == 0 {
		c.LoadConns = DefaultLoadConns
	}
	if c.Protocol == "" {
		c.Protocol = ProtocolHerd
	}
	if c.Since == "" {
		c.Since = SinceReceipt
		if c.Protocol == ProtocolRESP {
			c.Since = SinceSend
		}
	}
	return c
}

// Validate reports the first field out of its range.
func (c PropagationConfig) Validate() error {
	switch {
	case len(c.Addrs) < 2:
		return fmt.Errorf("%d servers: want at least 2", len(c.Addrs))
	case c.From < 0 || c.From >= len(c.Addrs):
		return fmt.Errorf("from %d: want 0 to %d", c.From, len(c.Addrs)-1)
	case c.N < 1:
		return fmt.Errorf("samples %d: want at least 1", c.N)
	case c.Interval < 0:
		return fmt.Errorf("interval %v: want 0 or more", c.Interval)
	case c.Timeout <= 0:
		return fmt.Errorf("time-out %v: want more than 0", c.Timeout)
	case c.LoadRate < 0:
		return fmt.Errorf("load rate %g: want 0 or more", c.LoadRate)
	case c.Protocol == ProtocolRESP && c.Since == SinceReceipt:
		return fmt.Errorf("since %s: RESP replies carry no receive time; use %s", c.Since, SinceSend)
	case c.LoadConns < 1:
		return fmt.Errorf("load connections %d: want at least 1", c.LoadConns)
	case c.Since != SinceReceipt && c.Since != SinceSend:
		return fmt.Errorf("since %q: want %s or %s", c.Since, SinceReceipt, SinceSend)
	}
	if protocol.Parse([]byte("WHATSAT k "+c.Radius+" 0")).Kind != protocol.WHATSAT {
		return fmt.Errorf("radius %q: want above 0 and at most %d km", c.Radius, protocol.MaxRadiusKm)
	}
	return nil
}

// Propagation measures how long a record takes to reach every server of
// the herd: per sample it sends an IAMAT for a fresh client id to the
// origin and, once the origin has answered, polls every other server with
// WHATSAT id radius 0 until each knows the id. Delays count from the
// origin's receipt of the IAMAT, or from its sending (cfg.Since); polls
// before the answer could only miss, and would load the servers while
// they flood. Cancelling ctx ends it after the current sample.
func Propagation(ctx context.Context, cfg PropagationConfig) (*PropagationReport, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	origin, pollers, err := dialHerd(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		origin.Close()
		for _, p := range pollers {
			p.conn.Close()
		}
	}()

	// The background load, if any, runs while the samples are taken.
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	loaded := backgroundLoad(loadCtx, cfg)

	r := &sampler{cfg: &cfg, d: pollers[0].d, origin: origin, lr: pollers[0].d.newReader(origin, cfg.Timeout), pollers: pollers,
		iamat: newHistogram(), herd: newHistogram(), results: make(chan found, len(pollers))}
	for i, p := range pollers {
		in := make(chan sample)
		r.inputs = append(r.inputs, in)
		go func() {
			for s := range in {
				delay, ok := p.poll(s)
				r.results <- found{server: i, delay: delay, ok: ok}
			}
		}()
	}
	defer func() {
		for _, in := range r.inputs {
			close(in)
		}
	}()
	stopProgress := startProgress(cfg.Progress, func(elapsed time.Duration) string {
		return fmt.Sprintf("%4.0fs  samples %d/%d", elapsed.Seconds(), r.taken.Load(), cfg.N)
	})
	rep := &PropagationReport{Mode: "propagation", Origin: cfg.Addrs[cfg.From], Since: cfg.Since}
	err = r.run(ctx, rep)
	stopProgress()
	stopLoad()
	if loaded != nil {
		l := <-loaded
		if err == nil && l.err != nil {
			err = fmt.Errorf("background load: %w", l.err)
		}
		rep.Load = l.s
	}
	if err != nil {
		return nil, err
	}
	rep.summarize(r)
	return rep, nil
}

// dialHerd connects to the origin and to every other server, each with a
// poller; on an error it closes what it had opened.
func dialHerd(ctx context.Context, cfg PropagationConfig) (net.Conn, []*poller, error) {
	wire, err := newDialect(cfg.Protocol, cfg.Radius, 0)
	if err != nil {
		return nil, nil, err
	}
	d := net.Dialer{Timeout: cfg.Timeout}
	origin, err := d.DialContext(ctx, "tcp", cfg.Addrs[cfg.From])
	if err != nil {
		return nil, nil, err
	}
	var pollers []*poller
	for i, a := range cfg.Addrs {
		if i == cfg.From {
			continue
		}
		c, err := d.DialContext(ctx, "tcp", a)
		if err != nil {
			origin.Close()
			for _, p := range pollers {
				p.conn.Close()
			}
			return nil, nil, err
		}
		pollers = append(pollers, &poller{
			addr: a, conn: c, d: wire, lr: wire.newReader(c, cfg.Timeout),
			timeout: cfg.Timeout, hist: newHistogram(), rtt: newHistogram(), stats: ServerPropagation{Addr: a},
		})
	}
	return origin, pollers, nil
}

// loadResult is the outcome of a propagation run's background load.
type loadResult struct {
	s   *LoadSummary
	err error
}

// backgroundLoad starts the open-loop IAMAT load of cfg.LoadRate until
// ctx is done, and returns the channel its result comes on; nil without
// a load.
func backgroundLoad(ctx context.Context, cfg PropagationConfig) chan loadResult {
	if cfg.LoadRate <= 0 {
		return nil
	}
	loaded := make(chan loadResult, 1)
	addrs := cfg.Addrs
	if cfg.Protocol == ProtocolRESP {
		addrs = addrs[cfg.From : cfg.From+1] // Redis's replicas take no writes
	}
	go func() {
		s, err := Load(ctx, LoadConfig{
			Addrs: addrs, Conns: cfg.LoadConns, Rate: cfg.LoadRate,
			Prefix: cfg.Prefix + "-load", Timeout: cfg.Timeout, Protocol: cfg.Protocol,
		})
		loaded <- loadResult{s, err}
	}()
	return loaded
}

// summarize adds the latencies and the error counts of the finished run
// of r.
func (rep *PropagationReport) summarize(r *sampler) {
	rep.IAMAT = latencyOf(r.iamat)
	rep.Herd = latencyOf(r.herd)
	for _, p := range r.pollers {
		p.stats.Latency = latencyOf(p.hist)
		p.stats.Poll = latencyOf(p.rtt)
		rep.Servers = append(rep.Servers, p.stats)
		rep.Errors.Missed += p.stats.Missed
		if p.err != nil {
			rep.Errors.Connections++
		}
	}
	e := &rep.Errors
	e.Total = e.Rejected + e.Missed + e.Connections
}

// sampler takes the samples of a propagation run.
type sampler struct {
	cfg     *PropagationConfig
	d       dialect
	origin  net.Conn
	lr      replySource // the origin's replies
	pollers []*poller
	inputs  []chan sample // one per poller
	results chan found
	iamat   *hdrhistogram.Histogram
	herd    *hdrhistogram.Histogram
	taken   atomic.Int64 // for the progress line
}

func (r *sampler) run(ctx context.Context, rep *PropagationReport) error {
	buf := make([]byte, 0, 128)
	// Every sample is at one position, so that a server that caches
	// places answers all polls but its first from the cache: a poll's
	// places work is in the delay it measures.
	var t []byte
	wait := time.NewTimer(time.Hour)
	defer wait.Stop()
	for i := 0; i < r.cfg.N && ctx.Err() == nil; i++ {
		if i > 0 && r.cfg.Interval > 0 {
			wait.Reset(r.cfg.Interval)
			select {
			case <-wait.C:
			case <-ctx.Done():
				return nil
			}
		}
		s := sample{id: r.cfg.Prefix + "-p" + strconv.Itoa(i), cancel: make(chan struct{})}
		s.t0 = time.Now()
		ns := s.t0.UnixNano()
		t = fmt.Appendf(t[:0], "%d.%09d", ns/1e9, ns%1e9)
		buf = r.d.appendWrite(buf[:0], []byte(s.id), 0, t)
		if err := r.origin.SetWriteDeadline(s.t0.Add(r.cfg.Timeout)); err != nil {
			return err
		}
		if _, err := r.origin.Write(buf); err != nil {
			return fmt.Errorf("origin %s: %w", rep.Origin, err)
		}
		res, at, err := readOneReply(r.lr, kindIAMAT)
		now := time.Now()
		s.start = s.t0
		if err == nil && res == protocol.ReplyAT && r.cfg.Since == SinceReceipt {
			if s.start, err = receipt(s.t0, now, at); err != nil {
				return fmt.Errorf("origin %s, sample %d: %w", rep.Origin, i, err)
			}
		}
		if err != nil || res != protocol.ReplyAT {
			close(s.cancel)
		}
		for _, in := range r.inputs {
			in <- s
		}
		var worst time.Duration
		complete := err == nil && res == protocol.ReplyAT
		for range r.pollers {
			f := <-r.results
			p := r.pollers[f.server]
			switch {
			case f.ok:
				p.stats.Known++
				record(p.hist, int64(f.delay))
				worst = max(worst, f.delay)
			case err == nil && res == protocol.ReplyAT:
				p.stats.Missed++
				complete = false
			}
		}
		if err != nil {
			return fmt.Errorf("origin %s: %w", rep.Origin, err)
		}
		if res == protocol.ReplyAT {
			record(r.iamat, int64(now.Sub(s.t0)))
		} else {
			rep.Errors.Rejected++
		}
		if complete {
			rep.Complete++
			record(r.herd, int64(worst))
		}
		rep.Samples++
		r.taken.Add(1)
	}
	return nil
}

// receipt returns when the origin received an IAMAT sent at t0 and
// answered with the AT line at by now: t0 plus the time from the client
// time in the IAMAT (t0's wall clock) to the receive time by the origin's
// clock, which must fall between t0 and now for the two clocks to be one.
func receipt(t0, now time.Time, at []byte) (time.Time, error) {
	d, ok := atDiff(at)
	if !ok {
		return t0, fmt.Errorf("no time difference in the AT reply %q", at)
	}
	// The wall clock, which the origin read, decides: the monotonic reading
	// of a time.Time is taken apart from its wall reading, and the two can
	// be microseconds apart on a busy machine.
	rtt := time.Duration(now.UnixNano() - t0.UnixNano())
	if d < 0 || d > rtt {
		return t0, fmt.Errorf("the AT reply puts the receipt %v after the IAMAT's sending, outside its %v round trip: "+
			"the origin's clock is not this machine's; use -since send", d, rtt)
	}
	return t0.Add(d), nil
}

// print writes the human summary of a propagation run.
func (rep *PropagationReport) print(w io.Writer) {
	since := "the origin's receipt of each IAMAT"
	if rep.Since == SinceSend {
		since = "the sending of each IAMAT"
	}
	fmt.Fprintf(w, "propagation from %s to %d servers: %d samples, %d complete; delays from %s\n",
		rep.Origin, len(rep.Servers), rep.Samples, rep.Complete, since)
	printLatency(w, "IAMAT", rep.IAMAT)
	for _, s := range rep.Servers {
		fmt.Fprintf(w, "  %s: known %d, missed %d, %d polls\n", s.Addr, s.Known, s.Missed, s.Polls)
		printLatency(w, "", s.Latency)
		printLatency(w, "poll", s.Poll)
	}
	printLatency(w, "whole herd", rep.Herd)
	e := rep.Errors
	fmt.Fprintf(w, "  %-10s %d (rejected %d, missed %d, connections %d)\n", "errors", e.Total, e.Rejected, e.Missed, e.Connections)
	if rep.Load != nil {
		rep.Load.print(w, "background load")
	}
}
