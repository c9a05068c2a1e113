// Package node wires one herd server together: the record store, the
// client server, the peer links, the places provider, and the HTTP
// listener for metrics and health. It is the one place where the parts
// meet; none of them knows about the others.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/herdkit/herd/pkg/config"
	"github.com/herdkit/herd/pkg/journal"
	"github.com/herdkit/herd/pkg/logging"
	"github.com/herdkit/herd/pkg/metrics"
	"github.com/herdkit/herd/pkg/peer"
	"github.com/herdkit/herd/pkg/places"
	"github.com/herdkit/herd/pkg/server"
	"github.com/herdkit/herd/pkg/store"
)

// Node is one running herd server.
type Node struct {
	cfg     config.Config
	log     *slog.Logger
	metrics *metrics.Metrics
	store   *store.Store
	places  places.Provider
	server  *server.Server
	peers   *peer.Manager    // nil without neighbours
	journal *journal.Journal // nil without HERD_DATA_DIR

	peerLn  net.Listener
	httpLn  net.Listener
	http    *http.Server
	started time.Time
	stopped atomic.Bool
	quit    chan struct{} // closed by Shutdown
	wg      sync.WaitGroup
	errs    chan error

	// loss is what the journal lost at start ("" when whole): the node is
	// not ready until every neighbour has sent everything again (healed).
	loss   string
	healed atomic.Bool
}

// Option changes how a node is built.
type Option func(*options)

type options struct {
	places      places.Provider
	segmentSize int64 // the journal's, for tests below HERD_JOURNAL_SEGMENT_SIZE's minimum; 0 for the variable
}

// WithPlaces makes the node use base for places instead of building a
// provider from its configuration; several nodes in one process share one
// offline data set this way. The node still adds its own cache and
// metrics.
func WithPlaces(base places.Provider) Option { return func(o *options) { o.places = base } }

// New builds a node from its configuration; Start runs it.
func New(cfg config.Config, logs *logging.Log, opts ...Option) (*Node, error) {
	log := logs.Logger
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	// The certificates are read first, so that a start they fail leaves
	// the data directory untouched.
	tls, err := peerTLS(cfg)
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: log, metrics: metrics.New(), store: store.New(), errs: make(chan error, 4), quit: make(chan struct{})}
	n.store.SetLimit(cfg.MaxRecords)
	var (
		incarnation uint64 // 0: a new one per process, without a journal
		known       map[string]store.Watermark
	)
	if cfg.DataDir != "" {
		var st journal.State
		jcfg := journalConfig(cfg)
		if o.segmentSize != 0 {
			jcfg.SegmentSize = o.segmentSize
		}
		n.journal, st, err = journal.Open(jcfg, log, n.metrics)
		if err != nil {
			return nil, fmt.Errorf("HERD_DATA_DIR: %w", err)
		}
		if st.Damaged && len(cfg.Peers) == 0 {
			// Nobody can send back what was lost; the directory is left
			// as it is for the operator.
			n.journal.Close()
			return nil, fmt.Errorf("HERD_DATA_DIR %s: the journal lost records (%s), and this node has no "+
				"neighbours to get them back from; see what is left with `herd journal check %s`, and keep what "+
				"is valid with `herd journal repair %s` (docs/hardening.md)", cfg.DataDir, st.Loss, cfg.DataDir, cfg.DataDir)
		}
		n.store, incarnation, known, n.loss = st.Store, st.Incarnation, st.Watermarks, st.Loss
	}
	base := o.places
	if base == nil {
		if base, err = newPlaces(cfg, n.metrics, log); err != nil {
			return nil, err
		}
	}
	n.places = places.Wrap(base, placesConfig(cfg), n.metrics, log)
	// Series that exist at zero from the start, for the dashboard and the
	// alerting rules; herd_ready is /readyz as a metric.
	n.metrics.Provider(n.places.Name())
	for _, p := range cfg.Peers {
		n.metrics.Neighbour(p.Name)
	}
	n.metrics.NodeState(n.Ready, n.store, logs.Blocked)
	scfg := serverConfig(cfg)
	if n.journal != nil {
		scfg.Journal = n.journal
	}
	n.server = server.New(scfg, n.store, n.places, n.metrics, log, logs.Lines)
	if len(cfg.Peers) > 0 {
		pc := peerConfig(cfg, incarnation, known, tls)
		// A node that starts with nothing (new, or its disk replaced) fills
		// from one neighbour; one whose journal lost records heals from
		// all of them instead (heal).
		pc.Fill = n.store.Len() == 0 && n.loss == ""
		n.peers = peer.New(pc, n.store, n.metrics, log)
	}
	return n, nil
}

// Start binds every listener and starts serving; it returns once the node
// accepts connections.
func (n *Node) Start() error {
	n.started = time.Now()
	if err := n.server.Listen(); err != nil {
		n.closeJournal()
		return fmt.Errorf("client listener (HERD_CLIENT_ADDR): %w", err)
	}
	var err error
	if n.httpLn, err = net.Listen("tcp", n.cfg.MetricsAddr); err != nil {
		n.server.Shutdown(context.Background())
		n.closeJournal()
		return fmt.Errorf("metrics listener (HERD_METRICS_ADDR): %w", err)
	}
	if n.peers != nil {
		if n.peerLn, err = net.Listen("tcp", n.cfg.PeerAddr); err != nil {
			n.server.Shutdown(context.Background())
			n.httpLn.Close()
			n.closeJournal()
			return fmt.Errorf("peer listener (HERD_PEER_ADDR): %w", err)
		}
	}
	if n.journal != nil {
		// Only now, with every listener bound, does the journal write: a
		// start that fails earlier leaves the data directory as it was.
		// It reads every change from here on, before any client or
		// neighbour can make one.
		var marks func() map[string]store.Watermark
		if n.peers != nil {
			marks = n.peers.Watermarks
		}
		if err := n.journal.Start(n.store, marks); err != nil {
			n.server.Shutdown(context.Background())
			n.httpLn.Close()
			if n.peerLn != nil {
				n.peerLn.Close()
			}
			n.closeJournal()
			return fmt.Errorf("HERD_DATA_DIR: %w", err)
		}
	}
	if n.peers != nil {
		n.peers.Start()
		n.wg.Go(func() { n.fail(n.peers.Serve(n.peerLn)) })
		if n.loss != "" {
			n.wg.Go(n.heal)
		}
	}
	n.http = &http.Server{Handler: n.handler(), ReadHeaderTimeout: 5 * time.Second}
	n.wg.Go(func() {
		if err := n.http.Serve(n.httpLn); !errors.Is(err, http.ErrServerClosed) {
			n.fail(err)
		}
	})
	n.wg.Go(func() { n.fail(n.server.Serve()) })
	attrs := []any{"client", n.ClientAddr().String(), "metrics", n.MetricsAddr().String(),
		"places", n.places.Name(), "neighbours", n.cfg.Peers.String()}
	if n.peers != nil {
		attrs = append(attrs, "peer", n.peerLn.Addr().String(), "incarnation", fmt.Sprintf("%x", n.peers.Incarnation()))
	}
	n.log.Info("herd node started", attrs...)
	return nil
}

// fail reports a listener that stopped unexpectedly.
func (n *Node) fail(err error) {
	if err != nil && !n.stopped.Load() {
		select {
		case n.errs <- err:
		default:
		}
	}
}

// Err returns a channel that receives an error if a listener fails.
func (n *Node) Err() <-chan error { return n.errs }

// Shutdown stops the node in order: not ready, stop accepting, finish the
// client replies in flight (bounded by ctx), close the peer links, and
// stop the HTTP listener last so that metrics can be scraped meanwhile.
func (n *Node) Shutdown(ctx context.Context) error {
	if n.stopped.Swap(true) {
		return nil
	}
	n.log.Info("herd node stopping")
	close(n.quit)
	if n.peerLn != nil {
		n.peerLn.Close()
	}
	err := n.server.Shutdown(ctx)
	if n.peers != nil {
		n.peers.Close()
	}
	if cerr := n.closeJournal(); cerr != nil && err == nil {
		err = fmt.Errorf("journal: %w", cerr)
	}
	hctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	n.http.Shutdown(hctx)
	n.wg.Wait()
	n.log.Info("herd node stopped")
	return err
}

// closeJournal writes the journal's last changes and its clean end.
func (n *Node) closeJournal() error {
	if n.journal == nil {
		return nil
	}
	return n.journal.Close()
}

// Ready reports whether the node should receive traffic: it is running,
// its journal (if any) writes, and, when it has neighbours, it has
// reconciled with all of them or the grace period HERD_READY_GRACE has
// passed. A node whose journal lost
// records has no grace period: it is ready once every neighbour has sent
// it everything.
func (n *Node) Ready() bool {
	ok, _ := n.readiness()
	return ok
}

// readiness is Ready with the reason when not.
func (n *Node) readiness() (bool, string) {
	var fault error
	if n.journal != nil {
		fault = n.journal.Fault()
	}
	switch {
	case n.stopped.Load() || n.started.IsZero():
		return false, "not running"
	case fault != nil:
		return false, fault.Error()
	case n.loss != "" && !n.healed.Load():
		return false, "the journal lost records at start (" + n.loss + "); waiting for every neighbour to send everything again"
	case n.peers != nil && n.peers.Filling():
		return false, "started empty: filling from a neighbour (herd_peer_reconcile_remaining_changes)"
	case n.peers == nil || n.peers.Reconciled() || time.Since(n.started) > n.cfg.ReadyGrace:
		return true, ""
	}
	return false, "reconciling with the neighbours"
}

// heal waits until every neighbour has reconciled with this node, which
// came back under a new incarnation with no watermarks after its journal
// lost records, so each sent everything it holds. Then the loss is made
// good, and the journal records it.
func (n *Node) heal() {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !n.peers.Reconciled() {
		select {
		case <-n.quit:
			return
		case <-tick.C:
		}
	}
	if err := n.journal.Healed(); err != nil {
		// Ready anyway: the records are here. The next start heals again.
		n.log.Error("journal: recording the end of healing failed", "err", err)
	}
	n.healed.Store(true)
	n.log.Info("healed: every neighbour has sent everything again", "records", n.store.Len())
}

// ClientAddr returns the client listener's address.
func (n *Node) ClientAddr() net.Addr { return n.server.Addr() }

// MetricsAddr returns the HTTP listener's address.
func (n *Node) MetricsAddr() net.Addr { return n.httpLn.Addr() }

// PeerAddr returns the peer listener's address, or nil without neighbours.
func (n *Node) PeerAddr() net.Addr {
	if n.peerLn == nil {
		return nil
	}
	return n.peerLn.Addr()
}

// Store returns the node's record store.
func (n *Node) Store() *store.Store { return n.store }

// Metrics returns the node's metrics.
func (n *Node) Metrics() *metrics.Metrics { return n.metrics }

// Peers returns the node's peer manager, or nil without neighbours.
func (n *Node) Peers() *peer.Manager { return n.peers }

func (n *Node) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.metrics.Registry, promhttp.HandlerOpts{Registry: n.metrics.Registry}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if ok, why := n.readiness(); !ok {
			http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	if n.cfg.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}
