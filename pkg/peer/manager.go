package peer

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/herdkit/herd/pkg/accept"
	"github.com/herdkit/herd/pkg/logging"
	"github.com/herdkit/herd/pkg/metrics"
	"github.com/herdkit/herd/pkg/rawio"
	"github.com/herdkit/herd/pkg/secret"
	"github.com/herdkit/herd/pkg/store"
	"github.com/herdkit/herd/pkg/topology"
)

// maxFrame bounds a peer frame: a record of the longest client line the
// protocol allows a server to accept, with room to spare for its header.
const maxFrame = 1<<20 + 256

// Config holds the peer settings. The wiring (pkg/node) fills it from the
// HERD_PEER variables, which package config documents and validates.
type Config struct {
	Name        string
	Incarnation uint64 // this process's incarnation; 0 draws a random one
	// Neighbours are the servers this one links to, each by its name and
	// peer address.
	Neighbours []topology.Peer
	// Secret proves both ends of every link; it keeps its redacting type
	// down to the HMAC (proof).
	Secret     secret.String
	Heartbeat  time.Duration // an idle link sends a ping this often
	Timeout    time.Duration // silence or a blocked write for this long drops a link
	BackoffMax time.Duration // cap of the redial backoff
	// MaxHandshakes bounds the inbound connections in their handshake at
	// once; one more is refused at once. 0 means DefaultMaxHandshakes.
	MaxHandshakes int
	// MaxHandshakesPerIP bounds them per source address. 0 means
	// DefaultMaxHandshakesPerIP.
	MaxHandshakesPerIP int
	// TLS, when set, makes every link mutual TLS 1.3 (tls.go).
	TLS *TLS
	// Known are the watermarks held from an earlier run, by neighbour name.
	Known map[string]store.Watermark
	// Now is the clock of the timed pings' stamps; nil means time.Now.
	// Tests skew it to play a server on another machine.
	Now func() time.Time
	// Dial connects to a neighbour; nil means a net.Dialer. Tests replace
	// it to inject faults.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	// Fill makes a server that starts empty fill from one neighbour
	// rather than be sent everything by every one (fill.go).
	Fill bool

	// floodOnly makes the server say it speaks no broadcast trees, as one
	// from before them: tests run such a server beside current ones.
	floodOnly bool
}

// Manager runs the links to every neighbour and the peer listener.
type Manager struct {
	cfg     Config
	store   *store.Store
	metrics *metrics.Metrics
	log     *slog.Logger

	ctx        context.Context
	cancel     context.CancelFunc
	neighbours []*neighbour
	byName     map[string]*neighbour
	wg         sync.WaitGroup
	gate       *gate

	// refusals logs inbound connections refused, before or in their
	// handshake, at most one line a second whatever the reason, so that a
	// flood of connections cannot flood the log too (a key per reason
	// would let a flood that alternates reasons through); the metric
	// counts every one.
	refusals logging.Throttle
	pruned   pruned  // the broadcast trees' ways in that this server pruned
	fill     *filler // an empty server's fill from one neighbour

	serverTLS, clientTLS *tls.Config // from cfg.TLS, nil without

	// mu and closed guard the start of goroutines that Close waits for: Serve
	// may accept a connection while Close is waiting, and a WaitGroup
	// must not grow from zero during Wait.
	mu     sync.Mutex
	closed bool
}

// New returns a manager for cfg.Neighbours; call Start, and Serve with the peer
// listener.
func New(cfg Config, st *store.Store, met *metrics.Metrics, log *slog.Logger) *Manager {
	if cfg.Incarnation == 0 {
		cfg.Incarnation = store.NewIncarnation()
	}
	if cfg.MaxHandshakes <= 0 {
		cfg.MaxHandshakes = DefaultMaxHandshakes
	}
	if cfg.MaxHandshakesPerIP <= 0 {
		cfg.MaxHandshakesPerIP = DefaultMaxHandshakesPerIP
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Dial == nil {
		cfg.Dial = (&net.Dialer{KeepAlive: 15 * time.Second}).DialContext
	}
	ctx, cancel := context.WithCancel(context.Background())
	mg := &Manager{
		cfg: cfg, store: st, metrics: met, log: log.With("component", "peer"),
		ctx: ctx, cancel: cancel, byName: map[string]*neighbour{},
		gate:     newGate(cfg.MaxHandshakes, cfg.MaxHandshakesPerIP),
		refusals: logging.Throttle{Every: time.Second}, fill: newFiller(cfg.Fill),
	}
	if cfg.TLS != nil {
		mg.serverTLS, mg.clientTLS = cfg.TLS.serverConfig(), cfg.TLS.clientConfig()
	}
	for i, p := range cfg.Neighbours {
		n := &neighbour{
			mgr: mg, id: store.Source(i + 1), name: p.Name, addr: p.Addr,
			log:    mg.log.With("peer", p.Name),
			offers: make(chan offer),
			known:  cfg.Known[p.Name],
		}
		met.PeerUp.WithLabelValues(p.Name).Set(0)
		mg.neighbours = append(mg.neighbours, n)
		mg.byName[p.Name] = n
	}
	return mg
}

// Incarnation returns this process's incarnation id.
func (mg *Manager) Incarnation() uint64 { return mg.cfg.Incarnation }

func (mg *Manager) hello() hello {
	nonce := newNonce()
	switch {
	case mg.cfg.floodOnly:
		nonce = nonce[:nonceLen-4] + "00" + clockTag
	case mg.fill.filling():
		nonce = nonce[:nonceLen-4] + fillingTag + clockTag
	}
	return hello{name: mg.cfg.Name, inc: mg.cfg.Incarnation, nonce: nonce}
}

// Start starts a supervisor per neighbour.
func (mg *Manager) Start() {
	for _, n := range mg.neighbours {
		mg.wg.Go(newSupervisor(mg.ctx, n).run)
	}
}

// Serve accepts neighbours' links on ln until ln is closed, and returns
// nil. A connection accepted after Close is closed at once.
func (mg *Manager) Serve(ln net.Listener) error {
	accept.Loop(ln, mg.ctx.Done(), mg.log, mg.admit)
	return nil
}

// admit starts the handshake of a connection accepted, in a goroutine
// Close waits for, or refuses it at once when too many are in their
// handshake (limits.go) or the manager is closed.
func (mg *Manager) admit(nc net.Conn) {
	// The handshake time-out runs from here, so a connection that never
	// sends a byte is gone after it too.
	deadline := time.Now().Add(mg.cfg.Timeout)
	src := sourceOf(nc.RemoteAddr())
	if reason := mg.gate.enter(src); reason != "" {
		mg.refuseAtOnce(nc, reason)
		return
	}
	mg.mu.Lock()
	defer mg.mu.Unlock()
	if mg.closed {
		mg.gate.leave(src)
		nc.Close()
		return
	}
	mg.wg.Go(func() { mg.accept(nc, src, deadline) })
}

// refuseAtOnce tells a connection over the handshake bounds why, and
// closes it. It runs in the accept loop: on a new connection a short
// write does not block, and a goroutine per refusal would be the cost the
// bounds are there to avoid.
func (mg *Manager) refuseAtOnce(nc net.Conn, reason string) {
	nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	nc.Write([]byte("ERR " + reason + "\n"))
	nc.Close()
	mg.metrics.PeerHandshakeFailures.WithLabelValues(reason).Inc()
	mg.refusals.Log(mg.log, slog.LevelWarn, "", "peer connection refused: too many handshakes in progress", "remote", nc.RemoteAddr().String(),
		"reason", reason, "max", mg.cfg.MaxHandshakes, "max_per_ip", mg.cfg.MaxHandshakesPerIP)
}

// accept authenticates an inbound connection by deadline and hands it to
// its neighbour's supervisor. Until the dialler has proved the secret it
// costs a small read buffer; see limits.go.
func (mg *Manager) accept(nc net.Conn, src netip.Addr, deadline time.Time) {
	secretFor := func(name string) (secret.String, bool) {
		_, ok := mg.byName[name]
		return mg.cfg.Secret, ok
	}
	nc.SetDeadline(deadline)
	nc, err := mg.secureAccept(rawio.Wrap(nc))
	var other hello
	var br *bufio.Reader
	if err == nil {
		br = bufio.NewReaderSize(nc, handshakeBuffer)
		other, err = acceptHandshake(nc, br, mg.hello(), secretFor, deadline)
	}
	mg.gate.leave(src)
	if err != nil {
		nc.Close()
		reason := reasonOf(err)
		mg.metrics.PeerHandshakeFailures.WithLabelValues(reason).Inc()
		mg.refusals.Log(mg.log, slog.LevelWarn, "", "peer link refused", "remote", nc.RemoteAddr().String(), "claimed_name", other.name,
			"reason", reason, "err", err)
		return
	}
	n := mg.byName[other.name]
	l := newLink(n, nc, grow(br, nc), other, false)
	if refusal := n.offer(mg.ctx, l); refusal != "" {
		finishAccept(nc, refusal)
		nc.Close()
		// Counted; a duplicate name was logged once for its episode.
		n.log.Debug("peer link refused", "remote", nc.RemoteAddr().String(), "reason", refusal,
			"incarnation", fmt.Sprintf("%x", other.inc))
		return
	}
	if err := finishAccept(nc, ""); err != nil {
		l.close(downError)
	}
	l.run()
}

// Close stops every link and supervisor and waits for them. The caller
// closes the listener given to Serve.
func (mg *Manager) Close() {
	mg.mu.Lock()
	mg.closed = true
	mg.mu.Unlock()
	mg.cancel()
	for _, n := range mg.neighbours {
		if l := n.current.Load(); l != nil {
			l.close(downShutdown)
		}
	}
	mg.wg.Wait()
}

// Filling reports whether this server, started empty, is filling from a
// neighbour (fill.go): it holds less than the herd. Before a neighbour's
// link comes up it is not: with every neighbour down, a server serves
// what it has.
func (mg *Manager) Filling() bool { return mg.fill.fromSource() }

// Reconciled reports whether every neighbour's link has finished a
// reconciliation at least once since start.
func (mg *Manager) Reconciled() bool {
	for _, n := range mg.neighbours {
		if !n.everReconciled.Load() {
			return false
		}
	}
	return true
}

// LinkStatus describes the link to one neighbour.
type LinkStatus struct {
	Name string
	Up   bool
}

// Status returns the state of every neighbour's link, in configuration
// order.
func (mg *Manager) Status() []LinkStatus {
	s := make([]LinkStatus, len(mg.neighbours))
	for i, n := range mg.neighbours {
		s[i] = LinkStatus{Name: n.name, Up: n.current.Load() != nil}
	}
	return s
}

// Watermarks returns, by neighbour, what this server holds of each one's
// changes: the current link's if it is up, else the last link's.
func (mg *Manager) Watermarks() map[string]store.Watermark {
	w := make(map[string]store.Watermark, len(mg.neighbours))
	for _, n := range mg.neighbours {
		if l := n.current.Load(); l != nil {
			w[n.name] = store.Watermark{Incarnation: l.remoteInc, Seq: l.watermark.Load()}
		} else {
			w[n.name] = n.watermark()
		}
	}
	return w
}

// treeUp reports whether neighbour s has a link up that speaks broadcast
// trees.
func (mg *Manager) treeUp(s store.Source) bool {
	return mg.treeLink(s) != nil
}

// treeLink returns neighbour s's link if it is up and speaks broadcast
// trees, or nil.
func (mg *Manager) treeLink(s store.Source) *link {
	if int(s) < 1 || int(s) > len(mg.neighbours) {
		return nil
	}
	if l := mg.neighbours[s-1].current.Load(); l != nil && l.tree != nil {
		return l
	}
	return nil
}

// prune asks neighbour way, at now, to send origin's records lazily,
// unless it is the last way in for origin, or was asked within
// pruneEvery.
func (mg *Manager) prune(origin string, way store.Source, now time.Time) {
	l := mg.treeLink(way)
	if l == nil || !mg.pruned.prune(origin, way, len(mg.neighbours), mg.treeUp, now) {
		return
	}
	l.tree.queue(treeEvent{kind: framePrune, origin: origin})
}
