package peer

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/metrics"
	"github.com/herdkit/herd/pkg/secret"
	"github.com/herdkit/herd/pkg/store"
	"github.com/herdkit/herd/pkg/topology"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testSecret = "0123456789abcdef-test"

// fastTimings keep failure detection in tests to tens of milliseconds.
var fastTimings = Config{Heartbeat: 20 * time.Millisecond, Timeout: 200 * time.Millisecond, BackoffMax: 100 * time.Millisecond}

// herd is an in-process herd of real nodes on loopback sockets, wired
// through a fault-injecting network.
type herd struct {
	t     testing.TB
	net   *faultNet
	nodes map[string]*node
	order []string
	topo  map[string][]string
}

type node struct {
	name  string
	addr  string
	st    *store.Store
	m     *metrics.Metrics
	mgr   *Manager
	ln    net.Listener
	serve chan error
}

func newHerd(t testing.TB, servers []topology.Server, timings Config) *herd {
	t.Helper()
	return newHerdOn(t, newFaultNet(), servers, timings)
}

// newHerdOn is newHerd on a given network: one with a delay, say.
func newHerdOn(t testing.TB, fn *faultNet, servers []topology.Server, timings Config) *herd {
	t.Helper()
	h := &herd{t: t, net: fn, nodes: map[string]*node{}, topo: map[string][]string{}}
	for _, s := range servers {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		n := &node{name: s.Name, addr: ln.Addr().String(), ln: ln}
		h.nodes[s.Name] = n
		h.order = append(h.order, s.Name)
		h.topo[s.Name] = s.Neighbours
		h.net.names[n.addr] = s.Name
	}
	for _, name := range h.order {
		h.start(name, h.nodes[name].ln, timings, testSecret)
	}
	t.Cleanup(func() {
		for _, name := range h.order {
			h.stop(name)
		}
	})
	return h
}

// start runs a node with an empty store (a new incarnation) on ln.
func (h *herd) start(name string, ln net.Listener, timings Config, secret secret.String) {
	n := h.nodes[name]
	var peers []topology.Peer
	for _, nb := range h.topo[name] {
		peers = append(peers, topology.Peer{Name: nb, Addr: h.nodes[nb].addr})
	}
	cfg := timings
	cfg.Name, cfg.Neighbours, cfg.Secret = name, peers, secret
	cfg.Dial = h.net.dialer(name)
	n.st, n.m = store.New(), metrics.New()
	n.ln = h.net.listener(name, ln)
	n.mgr = New(cfg, n.st, n.m, testLogger(h.t, name))
	n.mgr.Start()
	n.serve = make(chan error, 1)
	go func() { n.serve <- n.mgr.Serve(n.ln) }()
}

// runNode runs a node outside any herd value, for tests that need what a
// herd cannot hold (two nodes of one name, or different secrets), on ln,
// with the given neighbours and logger (nil: to t.Log); it stops at the
// end of the test.
func runNode(t *testing.T, name string, ln net.Listener, peers []topology.Peer, secret secret.String, timings Config, log *slog.Logger) *node {
	t.Helper()
	if log == nil {
		log = testLogger(t, name)
	}
	cfg := timings
	cfg.Name, cfg.Neighbours, cfg.Secret = name, peers, secret
	n := &node{name: name, addr: ln.Addr().String(), ln: ln, st: store.New(), m: metrics.New(), serve: make(chan error, 1)}
	n.mgr = New(cfg, n.st, n.m, log)
	n.mgr.Start()
	go func() { n.serve <- n.mgr.Serve(ln) }()
	t.Cleanup(func() {
		ln.Close()
		n.mgr.Close()
		if err := <-n.serve; err != nil {
			t.Errorf("%s: Serve: %v", name, err)
		}
	})
	return n
}

// listen listens on a free loopback port.
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// stop stops a node as a crash would lose its memory; it is idempotent.
func (h *herd) stop(name string) {
	n := h.nodes[name]
	if n.mgr == nil {
		return
	}
	n.ln.Close()
	n.mgr.Close()
	if err := <-n.serve; err != nil {
		h.t.Errorf("%s: Serve: %v", name, err)
	}
	n.mgr = nil
}

// standIn stops node name once the herd is ready and waits until its
// neighbours hold no connection they accepted, so that a test can play it
// by hand: no connection of the real node is still being set up, to be
// adopted later and replace the test's own link. For a herd where name is
// the only node that dials its neighbours, as in pair.
func (h *herd) standIn(name string) {
	h.t.Helper()
	h.ready()
	h.stop(name)
	testutil.Eventually(h.t, 10*time.Second, func() error {
		for _, nb := range h.topo[name] {
			if n := h.net.accepted(nb); n > 0 {
				return fmt.Errorf("%s still holds %d connections it accepted", nb, n)
			}
		}
		return nil
	})
}

// restart starts a stopped node again, empty, on its old address.
func (h *herd) restart(name string) {
	h.t.Helper()
	h.restartWith(name, fastTimings)
}

// restartWith is restart with the given timings and options.
func (h *herd) restartWith(name string, timings Config) {
	h.t.Helper()
	n := h.nodes[name]
	var ln net.Listener
	testutil.Eventually(h.t, 10*time.Second, func() error {
		var err error
		ln, err = net.Listen("tcp", n.addr)
		return err
	})
	h.start(name, ln, timings, testSecret)
}

// iamat stores a record at a node as a client's IAMAT would.
func (h *herd) iamat(at, client, pos, t string) store.Record {
	r := store.Record{Text: client + " " + pos + " " + t, Origin: at, Recv: time.Now().UnixNano()}
	testutil.Apply(h.nodes[at].st, r, store.Local)
	return r
}

// has reports whether node name holds exactly r for its client.
func (h *herd) has(name string, r store.Record) bool {
	got, ok := h.nodes[name].st.Get(r.Client())
	return ok && got.Text() == r.Text && got.Origin == r.Origin && got.Recv == r.Recv
}

// waitAll waits until every named node holds r.
func (h *herd) waitAll(r store.Record, names ...string) {
	h.t.Helper()
	testutil.Eventually(h.t, 10*time.Second, func() error {
		for _, n := range names {
			if !h.has(n, r) {
				return fmt.Errorf("%s lacks %q", n, r.Text)
			}
		}
		return nil
	})
}

// ready waits until every running node has reconciled with all its
// neighbours.
func (h *herd) ready() {
	h.t.Helper()
	testutil.Eventually(h.t, 10*time.Second, func() error {
		for _, name := range h.order {
			if n := h.nodes[name]; n.mgr != nil && !n.mgr.Reconciled() {
				return fmt.Errorf("%s has not reconciled with all its neighbours", name)
			}
		}
		return nil
	})
}

// reachable reports whether o can be reached from s without crossing a
// server that is down.
func reachable(topo map[string][]string, down map[string]bool, s, o string) bool {
	seen := map[string]bool{s: true}
	queue := []string{s}
	for len(queue) > 0 {
		x := queue[0]
		queue = queue[1:]
		for _, y := range topo[x] {
			if !down[y] && !seen[y] {
				seen[y] = true
				queue = append(queue, y)
			}
		}
	}
	return seen[o]
}

// quiesce waits until every running node holds all changes of every
// running neighbour, as its watermarks show.
func (h *herd) quiesce() {
	h.t.Helper()
	testutil.Eventually(h.t, 10*time.Second, func() error {
		for _, name := range h.order {
			n := h.nodes[name]
			if n.mgr == nil {
				continue
			}
			w := n.mgr.Watermarks()
			for _, nb := range h.topo[name] {
				o := h.nodes[nb]
				if o.mgr == nil || h.net.isCut(name) || h.net.isCut(nb) {
					continue
				}
				if w[nb].Incarnation != o.mgr.Incarnation() || w[nb].Seq != o.st.Seq() {
					return fmt.Errorf("%s holds %s's changes up to %x/%d of %x/%d", name, nb,
						w[nb].Incarnation, w[nb].Seq, o.mgr.Incarnation(), o.st.Seq())
				}
			}
		}
		return nil
	})
}

func received(n *node, peer, kind string) float64 {
	return promtest.ToFloat64(n.m.PeerRecordsReceived.WithLabelValues(peer, kind))
}

// testLogger logs a node's records, at DEBUG, to t.Log.
func testLogger(t testing.TB, name string) *slog.Logger {
	return testutil.Logger(t, slog.LevelDebug).With("node", name)
}

// faultNet wraps dials and accepts so that a test can cut a node off:
// its connections are closed and new ones to or from it fail, until healed.
// With delay set before the nodes start, every write on a peer connection
// reaches the other end delay later: a one-way delay on every link, as
// this kernel has no netem.
type faultNet struct {
	mu    sync.Mutex
	names map[string]string // address -> node name
	cut   map[string]bool
	conns map[*trackedConn]struct{}
	// writes counts the writes each node made on its peer connections.
	writes map[string]*atomic.Int64
	delay  time.Duration
	// broadcast counts the writes that carried records or announcements,
	// announcing those that carried announcements only.
	broadcast, announcing atomic.Int64
}

type trackedConn struct {
	net.Conn
	ends    [2]string // the two node names
	fn      *faultNet
	delayed chan delayedWrite // with a delay: the writes on their way
	stop    chan struct{}
	once    sync.Once
}

// delayedWrite is a write that reaches the other end at due.
type delayedWrite struct {
	b   []byte
	due time.Time
}

func (c *trackedConn) Write(b []byte) (int, error) {
	c.fn.writesOf(c.ends[0]).Add(1)
	if records, announcements := carried(b); records || announcements {
		c.fn.broadcast.Add(1)
		if !records {
			c.fn.announcing.Add(1)
		}
	}
	if c.delayed == nil {
		return c.Conn.Write(b)
	}
	select {
	case c.delayed <- delayedWrite{b: bytes.Clone(b), due: time.Now().Add(c.fn.delay)}:
		return len(b), nil
	case <-c.stop:
		return 0, net.ErrClosed
	}
}

// carried reports whether a write holds records, and announcements,
// beside pings, marks and tree control.
func carried(b []byte) (records, announcements bool) {
	for line := range bytes.Lines(b) {
		switch line[0] {
		case frameFlood, frameReconcile, frameRepair:
			records = true
		case frameAnnounce:
			announcements = true
		}
	}
	return records, announcements
}

// deliver writes what was written delay later, in order.
func (c *trackedConn) deliver() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var w delayedWrite
		select {
		case w = <-c.delayed:
		case <-c.stop:
			return
		}
		timer.Reset(time.Until(w.due))
		select {
		case <-timer.C:
		case <-c.stop:
			return
		}
		if _, err := c.Conn.Write(w.b); err != nil {
			c.Conn.Close()
			return
		}
	}
}

func (c *trackedConn) Close() error {
	c.fn.mu.Lock()
	delete(c.fn.conns, c)
	c.fn.mu.Unlock()
	c.once.Do(func() { close(c.stop) })
	return c.Conn.Close()
}

func newFaultNet() *faultNet {
	return &faultNet{names: map[string]string{}, cut: map[string]bool{}, conns: map[*trackedConn]struct{}{}, writes: map[string]*atomic.Int64{}}
}

// accepted returns how many connections node name accepted and has not
// closed.
func (f *faultNet) accepted(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for c := range f.conns {
		if c.ends == [2]string{name, name} {
			n++
		}
	}
	return n
}

// writesOf returns the counter of the writes node name made.
func (f *faultNet) writesOf(name string) *atomic.Int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.writes[name]
	if w == nil {
		w = new(atomic.Int64)
		f.writes[name] = w
	}
	return w
}

func (f *faultNet) isCut(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cut[name]
}

func (f *faultNet) track(nc net.Conn, a, b string) (net.Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cut[a] || f.cut[b] {
		nc.Close()
		return nil, fmt.Errorf("faultnet: %s or %s is cut off", a, b)
	}
	c := &trackedConn{Conn: nc, ends: [2]string{a, b}, fn: f, stop: make(chan struct{})}
	if f.delay > 0 {
		c.delayed = make(chan delayedWrite, 4096)
		go c.deliver()
	}
	f.conns[c] = struct{}{}
	return c, nil
}

func (f *faultNet) dialer(from string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		f.mu.Lock()
		to := f.names[addr]
		f.mu.Unlock()
		return f.track(nc, from, to)
	}
}

type faultListener struct {
	net.Listener
	fn   *faultNet
	name string
}

func (l faultListener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		// The dialler's name is not known here; the dialler's own tracked
		// end is closed on a cut, which closes this one too.
		if c, err := l.fn.track(nc, l.name, l.name); err == nil {
			return c, nil
		}
	}
}

func (f *faultNet) listener(name string, ln net.Listener) net.Listener {
	return faultListener{Listener: ln, fn: f, name: name}
}

// cutOff isolates a node: every connection it is part of closes, and new
// ones fail until heal.
func (f *faultNet) cutOff(name string) {
	f.mu.Lock()
	f.cut[name] = true
	var victims []*trackedConn
	for c := range f.conns {
		if c.ends[0] == name || c.ends[1] == name {
			victims = append(victims, c)
		}
	}
	f.mu.Unlock()
	for _, c := range victims {
		c.Close()
	}
}

func (f *faultNet) heal(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.cut, name)
}
