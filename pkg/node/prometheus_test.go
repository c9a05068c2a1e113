package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herdkit/herd/pkg/config"
	"github.com/herdkit/herd/pkg/logging"
	"github.com/herdkit/herd/pkg/protocol"
)

// promTestSecret is the peer secret of the test herd.
const promTestSecret = "prometheus-test-peer-secret"

// TestPrometheusScrapesHerd runs the classic herd in this process and the
// real prometheus binary scraping it, and checks through Prometheus's
// query API what the dashboard relies on: propagation delay quantiles,
// every link up at both ends, the node label, equal store sizes, and that
// every dashboard query evaluates.
func TestPrometheusScrapesHerd(t *testing.T) {
	prometheus := prometheusTool(t, "prometheus")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	nodes := startPromHerd(t)
	hill := newPromClient(t, nodes[0].ClientAddr().String())

	targets := map[string]string{}
	for _, n := range nodes {
		targets[n.cfg.Name] = n.MetricsAddr().String()
	}
	prom := startPrometheus(ctx, t, prometheus, targets)

	// Some records to flood before Prometheus's first scrapes, then a few
	// more on every poll so that rates over the last 30s are not zero.
	const clients = 8
	sent := 0
	send := func() {
		hill.iamat(fmt.Sprintf("prom-test-%d.example", sent%clients))
		sent++
	}
	for range clients {
		send()
	}

	wantLinks := map[string]bool{}
	for _, s := range config.Classic {
		for _, nb := range s.Neighbours {
			wantLinks[s.Name+"→"+nb] = true
		}
	}
	// Each link is counted at both of its ends: 6 links, 12 series.
	for end := range wantLinks {
		from, to, _ := strings.Cut(end, "→")
		if !wantLinks[to+"→"+from] {
			t.Fatalf("config.Classic lists the link %s one way only", end)
		}
	}

	var delayOK, linksOK bool
	var delayWhy, linksWhy, last string
	promPoll(ctx, t, func() bool {
		send()
		if !delayOK {
			res, err := prom.query(ctx, `histogram_quantile(0.5, sum by (le) (rate(herd_propagation_delay_seconds_bucket[30s])))`)
			switch v, verr := res.single(); {
			case err != nil:
				delayWhy = err.Error()
			case verr != nil:
				delayWhy = "propagation delay p50: " + verr.Error()
			case math.IsNaN(v) || math.IsInf(v, 0):
				delayWhy = fmt.Sprintf("propagation delay p50 is %v", v)
			default:
				t.Logf("propagation delay p50 over 30s: %gs", v)
				delayOK, delayWhy = true, ""
			}
		}
		if !linksOK {
			res, err := prom.query(ctx, `herd_peer_up{job="herd"}`)
			if err != nil {
				linksWhy = err.Error()
				return false
			}
			up := map[string]bool{}
			for _, s := range res {
				if v, err := s.float(); err == nil && v == 1 {
					up[s.Metric["node"]+"→"+s.Metric["peer"]] = true
				}
			}
			if len(res) == len(wantLinks) && maps.Equal(up, wantLinks) {
				linksOK, linksWhy = true, ""
			} else {
				linksWhy = fmt.Sprintf("herd_peer_up: %d series, up at %v; want 1 at each of %d link ends", len(res), slices.Sorted(maps.Keys(up)), len(wantLinks))
			}
		}
		return delayOK && linksOK
	}, func() string { return strings.TrimSpace(delayWhy + "\n" + linksWhy) })

	// With no new IAMATs, every node ends up holding every client, and the
	// dashboard's store disagreement (max - min) drops to 0.
	promPoll(ctx, t, func() bool {
		res, err := prom.query(ctx, `herd_store_records{job="herd"}`)
		if err != nil {
			last = err.Error()
			return false
		}
		held := map[string]float64{}
		for _, s := range res {
			v, err := s.float()
			if err != nil {
				last = err.Error()
				return false
			}
			held[s.Metric["node"]] = v
		}
		last = fmt.Sprintf("herd_store_records by node: %v; want %d at each of %d nodes", held, clients, len(config.Classic))
		if len(held) != len(config.Classic) {
			return false
		}
		for _, s := range config.Classic {
			if held[s.Name] != clients {
				return false
			}
		}
		return true
	}, func() string { return last })

	// Every query of the dashboard must evaluate; most have data by now.
	empty := 0
	exprs := dashboardExprs(t)
	for _, expr := range exprs {
		q := strings.NewReplacer("$__rate_interval", "30s", "$node", ".*").Replace(expr)
		res, err := prom.query(ctx, q)
		if err != nil {
			t.Errorf("dashboard query %s: %v", q, err)
			continue
		}
		if len(res) == 0 {
			empty++
		}
	}
	t.Logf("%d dashboard queries evaluated, %d of them empty (nothing refused, no places lookups, ...)", len(exprs), empty)
}

// startPromHerd starts the classic herd on loopback. Peers must be
// configured with each other's addresses, so the peer ports are chosen
// up front: five listeners on port 0 held open together, then closed.
// Another process may take one of them before its node binds it; the
// whole herd is then started again on new ports. vars are more
// variables, in pairs: name, value.
func startPromHerd(t testing.TB, vars ...string) []*Node {
	t.Helper()
	log := promTestLogger(t)
	var lastErr error
	for range 5 {
		nodes, err := tryPromHerd(log, vars)
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

func tryPromHerd(log *slog.Logger, vars []string) ([]*Node, error) {
	peerAddrs, err := freeLoopbackAddrs(len(config.Classic))
	if err != nil {
		return nil, err
	}
	index := map[string]int{}
	for i, s := range config.Classic {
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
	for i, s := range config.Classic {
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
			"HERD_PEER_SECRET":  promTestSecret,
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

// promClient speaks the client protocol to one node on one connection.
type promClient struct {
	t    *testing.T
	conn net.Conn
	rr   *protocol.ReplyReader
}

func newPromClient(t *testing.T, addr string) *promClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &promClient{t: t, conn: conn, rr: protocol.NewReplyReader(conn)}
}

// iamat reports id at a fixed position with the current time and checks
// the AT reply.
func (c *promClient) iamat(id string) {
	c.t.Helper()
	now := time.Now().UnixNano()
	line := fmt.Sprintf("IAMAT %s +34.068930-118.445127 %d.%09d\n", id, now/1e9, now%1e9)
	c.conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.conn.Write([]byte(line)); err != nil {
		c.t.Fatalf("send %q: %v", line, err)
	}
	reply, err := c.rr.ReadReply(protocol.LineReply)
	if err != nil {
		c.t.Fatalf("reply to %q: %v", line, err)
	}
	if at, ok := protocol.ParseAT(reply.Line); !ok || string(at.Client) != id {
		c.t.Fatalf("reply to %q: %q; want an AT line for %s", line, reply.Raw, id)
	}
}

// promServer is a running prometheus process.
type promServer struct {
	base   string
	client *http.Client
}

// startPrometheus runs prometheus scraping targets (metrics address by
// node name) every second, and waits until it is ready.
func startPrometheus(ctx context.Context, t *testing.T, bin string, targets map[string]string) *promServer {
	t.Helper()
	dir := t.TempDir()
	var cfg strings.Builder
	cfg.WriteString("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n")
	cfg.WriteString("scrape_configs:\n  - job_name: herd\n    static_configs:\n")
	for _, name := range slices.Sorted(maps.Keys(targets)) {
		fmt.Fprintf(&cfg, "      - targets: [%q]\n        labels: {node: %q}\n", targets[name], name)
	}
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	// The listen port is chosen the same way as the herd's peer ports,
	// and for the same reason a lost race means another try.
	for attempt := 1; ; attempt++ {
		addrs, err := freeLoopbackAddrs(1)
		if err != nil {
			t.Fatal(err)
		}
		p := &promServer{base: "http://" + addrs[0], client: &http.Client{Timeout: 5 * time.Second}}
		out := &promOutput{}
		cmd := exec.Command(bin,
			"--config.file="+cfgFile,
			"--storage.tsdb.path="+filepath.Join(dir, fmt.Sprintf("data-%d", attempt)),
			"--web.listen-address="+addrs[0],
			"--log.level=warn",
		)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() {
			cmd.Wait()
			close(exited)
		}()
		stop := func() {
			cmd.Process.Kill()
			<-exited
		}

		ready := false
		promPoll(ctx, t, func() bool {
			select {
			case <-exited:
				return true
			default:
			}
			resp, err := p.client.Get(p.base + "/-/ready")
			if err != nil {
				return false
			}
			resp.Body.Close()
			ready = resp.StatusCode == http.StatusOK
			return ready
		}, func() string { return "prometheus is not ready:\n" + out.String() })
		if ready {
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					t.Logf("prometheus output:\n%s", out.String())
				}
			})
			return p
		}
		stop()
		if attempt == 3 {
			t.Fatalf("prometheus exited: %s\n%s", cmd.ProcessState, out.String())
		}
		t.Logf("prometheus exited (%s); again on a new port:\n%s", cmd.ProcessState, out.String())
	}
}

// promSample is one series of an instant vector from the query API.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"` // [unix time, "value"]
}

func (s promSample) float() (float64, error) {
	str, ok := s.Value[1].(string)
	if !ok {
		return 0, fmt.Errorf("sample value %v is not a string", s.Value[1])
	}
	return strconv.ParseFloat(str, 64)
}

type promVector []promSample

// single returns the value of a vector of exactly one series.
func (v promVector) single() (float64, error) {
	if len(v) != 1 {
		return 0, fmt.Errorf("%d series; want 1", len(v))
	}
	return v[0].float()
}

// query evaluates an instant query and returns its vector.
func (p *promServer) query(ctx context.Context, q string) (promVector, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/api/v1/query?query="+url.QueryEscape(q), nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("query %s: %s: %w", q, resp.Status, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %s: %s: %s", q, resp.Status, body.Error)
	}
	if body.Data.ResultType != "vector" {
		return nil, fmt.Errorf("query %s: result type %s; want vector", q, body.Data.ResultType)
	}
	var v promVector
	if err := json.Unmarshal(body.Data.Result, &v); err != nil {
		return nil, fmt.Errorf("query %s: %w", q, err)
	}
	return v, nil
}

// promPoll calls cond every 200ms until it returns true, and fails the
// test with why() when ctx is done first.
func promPoll(ctx context.Context, t *testing.T, cond func() bool, why func() string) {
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

// promTestLogger sends the nodes' warnings and errors to the test log, and
// drops what they log after the test has finished.
func promTestLogger(t testing.TB) *slog.Logger {
	w := &promLogWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.done = true
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type promLogWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *promLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

// promOutput collects a subprocess's output.
type promOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *promOutput) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *promOutput) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
