package test

import (
	"context"
	"encoding/json"
	"fmt"
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
	"testing"
	"time"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/config"
	"github.com/herdkit/herd/pkg/protocol"
	"github.com/herdkit/herd/pkg/topology"
)

// TestPrometheusScrapesHerd runs the classic herd in this process and the
// real prometheus binary scraping it, and checks through Prometheus's
// query API what the dashboard relies on: propagation delay quantiles,
// every link up at both ends, the node label, equal store sizes, and that
// every dashboard query evaluates.
func TestPrometheusScrapesHerd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a Prometheus server for several seconds of scrapes; run without -short")
	}
	prometheus := prometheusTool(t, "prometheus")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	herd, ports := startLocalHerd(t)
	hill := newPromClient(t, herd[0].ClientAddr().String())
	prom := startPrometheus(ctx, t, prometheus, ports)

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
	for _, s := range topology.Classic {
		for _, nb := range s.Neighbours {
			wantLinks[s.Name+"→"+nb] = true
		}
	}
	// Each link is counted at both of its ends: 6 links, 12 series.
	for end := range wantLinks {
		from, to, _ := strings.Cut(end, "→")
		if !wantLinks[to+"→"+from] {
			t.Fatalf("topology.Classic lists the link %s one way only", end)
		}
	}

	var delayOK, linksOK bool
	var delayWhy, linksWhy, last string
	poll(ctx, t, func() bool {
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
	poll(ctx, t, func() bool {
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
		last = fmt.Sprintf("herd_store_records by node: %v; want %d at each of %d nodes", held, clients, len(topology.Classic))
		if len(held) != len(topology.Classic) {
			return false
		}
		for _, s := range topology.Classic {
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
	if empty > 0 {
		t.Errorf("%d of %d dashboard queries return no series: a panel is empty until its first event", empty, len(exprs))
	}

	// Every alerting rule is loaded from alerts.yml beside the host
	// configuration, evaluates without error, and none fires or is
	// pending for a healthy herd.
	want := alertNames(t)
	var rulesWhy string
	poll(ctx, t, func() bool {
		rules, err := prom.rules(ctx)
		if err != nil {
			rulesWhy = err.Error()
			return false
		}
		var bad []string
		for _, name := range want {
			r, ok := rules[name]
			switch {
			case !ok:
				bad = append(bad, name+": not loaded")
			case r.Health != "ok":
				bad = append(bad, fmt.Sprintf("%s: health %q %s", name, r.Health, r.LastError))
			case r.State != "inactive":
				bad = append(bad, fmt.Sprintf("%s: %s for a healthy herd", name, r.State))
			}
		}
		if len(rules) != len(want) {
			bad = append(bad, fmt.Sprintf("%d rules loaded, alerts.yml has %d", len(rules), len(want)))
		}
		rulesWhy = strings.Join(bad, "; ")
		return len(bad) == 0
	}, func() string { return rulesWhy })
	t.Logf("%d dashboard queries evaluated with data; %d alerting rules loaded, evaluated and inactive", len(exprs), len(want))
}

// promRule is one alerting rule as /api/v1/rules reports it.
type promRule struct {
	Name      string `json:"name"`
	Health    string `json:"health"`
	State     string `json:"state"`
	LastError string `json:"lastError"`
}

// rules returns the alerting rules Prometheus has loaded, by name, once
// each has been evaluated (health "unknown" until then).
func (p *promServer) rules(ctx context.Context) (map[string]promRule, error) {
	var data struct {
		Groups []struct {
			Rules []promRule `json:"rules"`
		} `json:"groups"`
	}
	if err := p.api(ctx, "/api/v1/rules?type=alert", &data); err != nil {
		return nil, err
	}
	rules := map[string]promRule{}
	for _, g := range data.Groups {
		for _, r := range g.Rules {
			rules[r.Name] = r
		}
	}
	return rules, nil
}

// api asks Prometheus's HTTP API for path and decodes the data of a
// successful answer into data.
func (p *promServer) api(ctx context.Context, path string, data any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fmt.Errorf("%s: %s: %w", path, resp.Status, err)
	}
	if body.Status != "success" {
		return fmt.Errorf("%s: %s: %s", path, resp.Status, body.Error)
	}
	if err := json.Unmarshal(body.Data, data); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
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

// startPrometheus runs prometheus with docker/prometheus/host.yml, the
// configuration for a Prometheus on the host, and its alerting rules,
// changed only where a test must: the metrics ports (9200 to 9204 become
// ports.Metrics to ports.Metrics+4) and the intervals (1s instead of 5s).
// It waits until Prometheus is ready.
func startPrometheus(ctx context.Context, t *testing.T, bin string, ports config.Ports) *promServer {
	t.Helper()
	dir := t.TempDir()
	host, err := os.ReadFile(hostConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	pairs := []string{"_interval: 5s", "_interval: 1s", "scrape_timeout: 4s", "scrape_timeout: 1s"}
	for i := range topology.Classic {
		pairs = append(pairs, fmt.Sprintf(`"127.0.0.1:%d"`, config.ClassicMetricsPort+i), fmt.Sprintf(`"127.0.0.1:%d"`, ports.Metrics+i))
	}
	cfg := strings.NewReplacer(pairs...).Replace(string(host))
	if cfg == string(host) {
		t.Fatalf("%s: no classic metrics port or interval to replace", hostConfigFile)
	}
	cfgFile := filepath.Join(dir, "host.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	rules, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, filepath.Base(alertsFile)), rules, 0o644); err != nil {
		t.Fatal(err)
	}

	// The listen port is chosen the same way as the herd's peer ports,
	// and for the same reason a lost race means another try.
	for attempt := 1; ; attempt++ {
		addr := testutil.FreeLoopbackAddrs(t, 1)[0]
		p := &promServer{base: "http://" + addr, client: &http.Client{Timeout: 5 * time.Second}}
		out := &testutil.Buffer{}
		cmd := exec.Command(bin,
			"--config.file="+cfgFile,
			"--storage.tsdb.path="+filepath.Join(dir, fmt.Sprintf("data-%d", attempt)),
			"--web.listen-address="+addr,
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
		poll(ctx, t, func() bool {
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
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.api(ctx, "/api/v1/query?query="+url.QueryEscape(q), &data); err != nil {
		return nil, err
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("query %s: result type %s; want vector", q, data.ResultType)
	}
	var v promVector
	if err := json.Unmarshal(data.Result, &v); err != nil {
		return nil, fmt.Errorf("query %s: %w", q, err)
	}
	return v, nil
}
