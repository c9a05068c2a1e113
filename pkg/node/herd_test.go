package node

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herdkit/herd/pkg/config"
	"github.com/herdkit/herd/pkg/logging"
	"github.com/herdkit/herd/pkg/topology"
)

// herdTestSecret is the peer secret of the test herd.
const herdTestSecret = "node-test-herd-peer-secret"

// startHerd starts the classic herd on loopback. Peers must be
// configured with each other's addresses, so the peer ports are chosen
// up front: five listeners on port 0 held open together, then closed.
// Another process may take one of them before its node binds it; the
// whole herd is then started again on new ports. vars are more
// variables, in pairs: name, value.
func startHerd(t testing.TB, vars ...string) []*Node {
	t.Helper()
	log := testLogger(t)
	var lastErr error
	for range 5 {
		nodes, err := tryHerd(log, vars)
		if err == nil {
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				for _, n := range nodes {
					if err := n.Shutdown(ctx); err != nil {
						t.Errorf("%s: shutdown: %v", n.cfg.Name, err)
					}
				}
			})
			return nodes
		}
		lastErr = err
		t.Logf("starting the herd: %v; again on new ports", err)
	}
	t.Fatalf("starting the herd: %v", lastErr)
	return nil
}

func tryHerd(log *slog.Logger, vars []string) ([]*Node, error) {
	peerAddrs, err := freeLoopbackAddrs(len(topology.Classic))
	if err != nil {
		return nil, err
	}
	index := map[string]int{}
	for i, s := range topology.Classic {
		index[s.Name] = i
	}
	var nodes []*Node
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, n := range nodes {
			n.Shutdown(ctx)
		}
	}
	for i, s := range topology.Classic {
		var peers []string
		for _, nb := range s.Neighbours {
			peers = append(peers, nb+"="+peerAddrs[index[nb]])
		}
		all := map[string]string{
			"HERD_NAME":         s.Name,
			"HERD_CLIENT_ADDR":  "127.0.0.1:0",
			"HERD_METRICS_ADDR": "127.0.0.1:0",
			"HERD_PEER_ADDR":    peerAddrs[i],
			"HERD_PEERS":        strings.Join(peers, ","),
			"HERD_PEER_SECRET":  herdTestSecret,
			"HERD_PLACES":       config.PlacesOffline,
			// Re-dial quickly if a neighbour was not listening yet.
			"HERD_PEER_BACKOFF_MAX": "250ms",
		}
		for k := 0; k+1 < len(vars); k += 2 {
			all[vars[k]] = vars[k+1]
		}
		cfg, err := config.FromMap(all)
		if err != nil {
			stop()
			return nil, fmt.Errorf("%s: %w", s.Name, err)
		}
		n, err := New(cfg, logging.FromSlog(log.With("node", s.Name)))
		if err == nil {
			err = n.Start()
		}
		if err != nil {
			stop()
			return nil, fmt.Errorf("%s: %w", s.Name, err)
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// freeLoopbackAddrs returns k distinct 127.0.0.1 addresses that were free
// a moment ago.
func freeLoopbackAddrs(k int) ([]string, error) {
	var addrs []string
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range k {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}

// testLogger sends the nodes' warnings and errors to the test log, and
// drops what they log after the test has finished.
func testLogger(t testing.TB) *slog.Logger {
	w := &testLogWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.done = true
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testLogWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}
