// Package test holds the repository-wide checks, apart from any one
// package's tests (as CoreDNS keeps its test/): the README against the
// code and against a real run, every link in README.md and docs/, the
// Grafana dashboard, the Prometheus configurations and alert rules with
// promtool and a real Prometheus, and the series that exist from a
// node's start. It has no code of its own, only tests, and runs under
// `go test ./...` like every other package.
package test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herdkit/herd/pkg/config"
	"github.com/herdkit/herd/pkg/logging"
	"github.com/herdkit/herd/pkg/node"
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
	n, err := node.New(cfg, logging.FromSlog(testLogger(t)))
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
// `herd local` does (node.LocalConfigs), on three runs of five free
// loopback ports instead of 12200, 12300 and 9200. Another process may
// take a port between the check and the bind; the herd is then started
// again on new ports.
func startLocalHerd(t *testing.T) ([]member, node.Ports) {
	t.Helper()
	log := testLogger(t)
	var lastErr error
	for range 5 {
		base, err := freeRun(15)
		if err != nil {
			t.Fatal(err)
		}
		ports := node.Ports{Client: base, Peer: base + 5, Metrics: base + 10}
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
	return nil, node.Ports{}
}

func tryLocalHerd(log *slog.Logger, ports node.Ports) ([]member, error) {
	cfgs, err := node.LocalConfigs(map[string]string{"HERD_PEER_BACKOFF_MAX": "250ms"}, ports, 0)
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

// freeRun returns the first of k consecutive loopback ports that were all
// free a moment ago. It looks below Linux's ephemeral range (32768 and
// up by default), where no outgoing connection takes a port, so that on a
// busy machine a run of free ports is easy to find.
func freeRun(k int) (int, error) {
	for range 100 {
		base := 20000 + rand.IntN(12000-k)
		free := true
		for p := base; p < base+k && free; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				free = false
				continue
			}
			l.Close()
		}
		if free {
			return base, nil
		}
	}
	return 0, errors.New("no run of free loopback ports")
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// scrapeText returns a node's /metrics in the text exposition format.
func scrapeText(t *testing.T, addr net.Addr) string {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// scrapeFamilies returns the metric family names of a node's /metrics,
// from its "# TYPE" lines.
func scrapeFamilies(t *testing.T, addr net.Addr) map[string]bool {
	t.Helper()
	families := map[string]bool{}
	for _, line := range strings.Split(scrapeText(t, addr), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			families[f[2]] = true
		}
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

// poll calls cond every 200ms until it returns true, and fails the test
// with why() when ctx is done first.
func poll(ctx context.Context, t *testing.T, cond func() bool, why func() string) {
	t.Helper()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("%v: %s", context.Cause(ctx), why())
		case <-tick.C:
		}
	}
}

// testLogger sends the nodes' warnings and errors to the test log, and
// drops what they log after the test has finished.
func testLogger(t testing.TB) *slog.Logger {
	w := &logWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.done = true
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type logWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

// output collects a subprocess's output.
type output struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *output) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *output) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
