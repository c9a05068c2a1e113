// Package test holds the repository-wide checks, apart from any one
// package's tests (as CoreDNS keeps its test/): the reference in docs/
// (every variable, metric and alert) against the code, the README's
// example against a real run and its test commands against CI, every
// link in README.md and docs/, no two paths that differ only in case,
// the Grafana dashboard, the Prometheus configurations and alert rules
// with promtool and a real Prometheus, the series that exist from a
// node's start, and the Dockerfile's stages. It has no code of its own,
// only tests, and runs under `go test ./...` like every other package.
package test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/config"
	"github.com/herdkit/herd/pkg/logging"
	"github.com/herdkit/herd/pkg/node"
	"github.com/herdkit/herd/pkg/topology"
)

// root is the repository root, relative to this package's directory,
// where go test runs the test binary.
const root = ".."

// member is one running node of a test herd, with its name.
type member struct {
	name string
	*node.Node
}

// startNode starts one node without neighbours on loopback ports,
// configured by vars on top of a name and ephemeral addresses.
func startNode(t *testing.T, vars map[string]string) member {
	t.Helper()
	all := map[string]string{
		"HERD_NAME": "Hill", "HERD_CLIENT_ADDR": "127.0.0.1:0", "HERD_PEER_ADDR": "127.0.0.1:0",
		"HERD_METRICS_ADDR": "127.0.0.1:0", "HERD_PLACES": config.PlacesOffline,
	}
	for k, v := range vars {
		all[k] = v
	}
	cfg, err := config.FromMap(all)
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(cfg, logging.FromSlog(testutil.Logger(t, slog.LevelWarn)))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(t, n) })
	return member{cfg.Name, n}
}

func stop(t testing.TB, n *node.Node) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// startLocalHerd starts the classic herd in this process exactly as
// `herd local` does (config.LocalHerd), on three runs of five free
// loopback ports instead of 12200, 12300 and 9200. Another process may
// take a port between the check and the bind; the herd is then started
// again on new ports.
func startLocalHerd(t *testing.T) ([]member, config.Ports) {
	t.Helper()
	log := testutil.Logger(t, slog.LevelWarn)
	var lastErr error
	for range 5 {
		base := testutil.FreePortBase(t, 15)
		ports := config.Ports{Client: base, Peer: base + 5, Metrics: base + 10}
		herd, err := tryLocalHerd(log, ports)
		if err == nil {
			t.Cleanup(func() {
				for _, m := range herd {
					stop(t, m.Node)
				}
			})
			return herd, ports
		}
		lastErr = err
		t.Logf("starting the herd: %v; again on new ports", err)
	}
	t.Fatalf("starting the herd: %v", lastErr)
	return nil, config.Ports{}
}

func tryLocalHerd(log *slog.Logger, ports config.Ports) ([]member, error) {
	cfgs, err := config.LocalHerd(map[string]string{"HERD_PEER_BACKOFF_MAX": "250ms"}, ports, topology.Classic)
	if err != nil {
		return nil, err
	}
	var herd []member
	for _, cfg := range cfgs {
		n, err := node.New(cfg, logging.FromSlog(log.With("node", cfg.Name)))
		if err == nil {
			if err = n.Start(); err != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				n.Shutdown(ctx)
				cancel()
			}
		}
		if err != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			for _, m := range herd {
				m.Shutdown(ctx)
			}
			cancel()
			return nil, fmt.Errorf("%s: %w", cfg.Name, err)
		}
		herd = append(herd, member{cfg.Name, n})
	}
	return herd, nil
}

// scrapeFamilies returns the metric family names of a node's /metrics.
func scrapeFamilies(t *testing.T, addr net.Addr) map[string]bool {
	t.Helper()
	families := map[string]bool{}
	for name := range testutil.Scrape(t, "http://"+addr.String()+"/metrics") {
		families[name] = true
	}
	if len(families) == 0 {
		t.Fatal("GET /metrics: no metric families")
	}
	return families
}

// prometheusTool returns the path of a binary of Debian's prometheus
// package. Without it the test is skipped, unless CI is set: CI installs
// the package, so a missing binary there is a broken pipeline.
func prometheusTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not on PATH and CI is set: install Debian's prometheus package (apt-get install prometheus)", name)
	}
	t.Skipf("%s is not on PATH; install Debian's prometheus package (apt-get install prometheus) to run this test", name)
	return ""
}

// poll waits until cond holds, and fails the test with why() when ctx
// is done first.
func poll(ctx context.Context, t *testing.T, cond func() bool, why func() string) {
	t.Helper()
	deadline, _ := ctx.Deadline()
	testutil.Eventually(t, time.Until(deadline), func() error {
		if cond() {
			return nil
		}
		return errors.New(why())
	})
}
