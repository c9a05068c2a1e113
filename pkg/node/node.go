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
	wg      sync.WaitGroup
	errs    chan error
}

// Option changes how a node is built.
type Option func(*options)

type options struct {
	places places.Provider
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
	n := &Node{cfg: cfg, log: log, metrics: metrics.New(), store: store.New(0), errs: make(chan error, 4)}
	var (
		err         error
		incarnation uint64 // 0: a new one per process, without a journal
		known       map[string]store.Watermark
	)
	if cfg.DataDir != "" {
		var st journal.State
		n.journal, st, err = journal.Open(journal.Config{Dir: cfg.DataDir, FsyncInterval: cfg.FsyncInterval, SegmentSize: cfg.JournalSegmentSize}, log, n.metrics)
		if err != nil {
			return nil, fmt.Errorf("HERD_DATA_DIR: %w", err)
		}
		n.store, incarnation, known = st.Store, st.Incarnation, st.Watermarks
	}
	if o.places != nil {
		n.places = places.Wrap(o.places, cfg, n.metrics, log)
	} else if n.places, err = places.New(cfg, n.metrics, log); err != nil {
		return nil, err
	}
	n.metrics.GaugeFunc("herd_store_records", "Clients whose record this server holds.",
		func() float64 { return float64(n.store.Len()) })
	n.metrics.CounterFunc("herd_log_blocked_seconds_total",
		"Time the process's log could not take records because its destination had not taken the earlier ones; client lines wait meanwhile.",
		func() float64 { return logs.Blocked().Seconds() })
	n.server = server.New(server.Config{
		Name: cfg.Name, Addr: cfg.ClientAddr, MaxLine: cfg.MaxLine, MaxConns: cfg.MaxConns,
		MaxConnsPerIP: cfg.MaxConnsPerIP, MaxInflight: cfg.MaxInflight,
		IdleTimeout: cfg.IdleTimeout, WriteTimeout: cfg.WriteTimeout,
	}, n.store, n.places, n.metrics, log, logs.Lines)
	if len(cfg.Peers) > 0 {
		n.peers = peer.New(peer.Config{
			Name: cfg.Name, Incarnation: incarnation, Peers: cfg.Peers, Secret: string(cfg.PeerSecret),
			Heartbeat: cfg.PeerHeartbeat, Timeout: cfg.PeerTimeout, BackoffMax: cfg.PeerBackoffMax, Known: known,
		}, n.store, n.metrics, log)
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
		// The journal reads every change from here on, before any client
		// or neighbour can make one.
		var marks func() map[string]store.Watermark
		if n.peers != nil {
			marks = n.peers.Watermarks
		}
		n.journal.Run(n.store, marks)
	}
	if n.peers != nil {
		n.peers.Start()
		n.wg.Go(func() { n.fail(n.peers.Serve(n.peerLn)) })
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

// Ready reports whether the node should receive traffic: it is running
// and, when it has neighbours, it has reconciled with all of them or the
// grace period HERD_READY_GRACE has passed.
func (n *Node) Ready() bool {
	if n.stopped.Load() || n.started.IsZero() {
		return false
	}
	return n.peers == nil || n.peers.Reconciled() || time.Since(n.started) > n.cfg.ReadyGrace
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
		if !n.Ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}
