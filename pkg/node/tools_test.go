package node

import (
	"context"
	"strings"
	"testing"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/tools/bench"
	"github.com/herdkit/herd/pkg/tools/client"
)

// TestClientAgainstNode runs the one-shot `herd client` against a real
// node: its output and exit status for a valid, an invalid and a WHATSAT
// command, and for a node that is not there.
func TestClientAgainstNode(t *testing.T) {
	n := startNode(t, nil)
	addr := n.ClientAddr().String()
	run := func(args ...string) (string, string, int) {
		var out, errOut strings.Builder
		code := client.Run(context.Background(), args, strings.NewReader(""), &out, &errOut)
		return out.String(), errOut.String(), code
	}
	out, _, code := run(addr, "IAMAT", "kiwi", "+34.068930-118.445127", "now")
	if code != client.ExitOK || !strings.HasPrefix(out, "AT Hill +") || !strings.Contains(out, " kiwi +34.068930-118.445127 ") {
		t.Errorf("IAMAT: exit %d, %q", code, out)
	}
	at := strings.TrimSuffix(out, "\n")
	out, _, code = run(addr, "WHATSAT", "kiwi", "10", "3")
	rs, err := testutil.ReadReplies(strings.NewReader(out), "WHATSAT kiwi 10 3")
	if code != client.ExitOK || err != nil || string(rs[0].Line) != at || string(rs[0].Raw) != out ||
		strings.Count(string(rs[0].JSON), `"place_id"`) != 3 {
		t.Errorf("WHATSAT: exit %d, %q, %v", code, out, err)
	}
	out, _, code = run(addr, "IAMAT", "Clark", "+12-118")
	if code != client.ExitInvalid || out != "? IAMAT Clark +12-118\n" {
		t.Errorf("invalid: exit %d, %q", code, out)
	}
	stopNode(t, n)
	if _, errOut, code := run(addr, "-timeout", "2s", "IAMAT", "kiwi", "+1+1", "now"); code != client.ExitError || errOut == "" {
		t.Errorf("no server: exit %d, stderr %q", code, errOut)
	}
}

// TestBenchAgreesWithMetrics runs `herd bench load` against a real node
// and compares what the tool counted with what the node counted.
func TestBenchAgreesWithMetrics(t *testing.T) {
	n := startNode(t, map[string]string{"HERD_LOG_LEVEL": "warn"})
	sum, err := bench.Load(context.Background(), bench.LoadConfig{
		Addrs: []string{n.ClientAddr().String()}, Conns: 4, Pipeline: 8, N: 20_000, Mix: 0.1,
		Clients: 500, Bound: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Errors.Total != 0 || sum.Received != sum.Sent || sum.Sent != 20_000 {
		t.Fatalf("bench sent %d, received %d, errors %+v", sum.Sent, sum.Received, sum.Errors)
	}
	// The node counts a request when its reply is ready, before the bench
	// reads it; once the bench is done, the counts must match exactly.
	f := scrape(t, n)
	iamat := f.Value("herd_client_requests_total", "command", "IAMAT", "outcome", "ok")
	whatsat := f.Value("herd_client_requests_total", "command", "WHATSAT", "outcome", "ok")
	if int64(iamat) != sum.IAMAT.Received || int64(whatsat) != sum.WHATSAT.Received {
		t.Errorf("node answered %v IAMAT and %v WHATSAT; bench counted %d and %d",
			iamat, whatsat, sum.IAMAT.Received, sum.WHATSAT.Received)
	}
	if got := f.Value("herd_client_connections_accepted_total"); got != 4 {
		t.Errorf("node accepted %v connections, bench opened 4", got)
	}
	t.Logf("bench: %d requests at %.0f/s; node: %v IAMAT, %v WHATSAT", sum.Received, sum.Rate, iamat, whatsat)
}
