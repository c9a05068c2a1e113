package main

import (
	"crypto/rand"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/protocol"
	"github.com/herdkit/herd/pkg/topology"
)

// herdProcs runs the classic herd as five `herd serve` processes, each
// with a data directory, on free loopback ports.
type herdProcs struct {
	t      *testing.T
	base   int
	dirs   []string
	procs  []*proc
	fsync  time.Duration
	secret string
	env    map[string]string // more variables for every node
}

func newHerdProcs(t *testing.T, fsync time.Duration) *herdProcs {
	h := &herdProcs{t: t, base: testutil.FreePortBase(t, 25), fsync: fsync, secret: "kill-test-secret-0123456789"}
	for range topology.Classic {
		h.dirs = append(h.dirs, t.TempDir())
	}
	h.procs = make([]*proc, len(topology.Classic))
	return h
}

func (h *herdProcs) clientAddr(i int) string  { return fmt.Sprintf("127.0.0.1:%d", h.base+i) }
func (h *herdProcs) metricsAddr(i int) string { return fmt.Sprintf("127.0.0.1:%d", h.base+20+i) }

// start starts every node and waits until all are ready.
func (h *herdProcs) start() {
	for i := range topology.Classic {
		h.startNode(i)
	}
	for i := range topology.Classic {
		waitReady(h.t, h.metricsAddr(i))
	}
}

// startNode starts node i without waiting for it.
func (h *herdProcs) startNode(i int) {
	index := map[string]int{}
	for i, s := range topology.Classic {
		index[s.Name] = i
	}
	s := topology.Classic[i]
	var peers []string
	for _, nb := range s.Neighbours {
		peers = append(peers, fmt.Sprintf("%s=127.0.0.1:%d", nb, h.base+10+index[nb]))
	}
	env := map[string]string{
		"HERD_NAME": s.Name, "HERD_CLIENT_ADDR": h.clientAddr(i), "HERD_METRICS_ADDR": h.metricsAddr(i),
		"HERD_PEER_ADDR": fmt.Sprintf("127.0.0.1:%d", h.base+10+i), "HERD_PEERS": strings.Join(peers, ","),
		"HERD_PEER_SECRET": h.secret, "HERD_DATA_DIR": h.dirs[i], "HERD_FSYNC_INTERVAL": h.fsync.String(),
		"HERD_LOG_LEVEL": "warn", "HERD_PEER_TIMEOUT": "1s", "HERD_PEER_HEARTBEAT": "200ms", "HERD_PEER_BACKOFF_MAX": "500ms",
	}
	maps.Copy(env, h.env)
	h.procs[i] = start(h.t, env, "serve")
}

func waitReady(t *testing.T, metricsAddr string) {
	t.Helper()
	testutil.Eventually(t, 20*time.Second, func() error {
		resp, err := http.Get("http://" + metricsAddr + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s/readyz: %s", metricsAddr, resp.Status)
		}
		return nil
	})
}

// ack is one IAMAT a server acknowledged.
type ack struct {
	id, at string
	when   time.Time
}

// TestKillAllLosesNothingAcknowledged sends IAMATs to all five servers of
// a herd with data directories, kills every server with SIGKILL while the
// clients are sending, starts them again, and finds at every server each
// record acknowledged with an AT reply before the kill, however close to
// it: a reply leaves only once its record is written.
func TestKillAllLosesNothingAcknowledged(t *testing.T) {
	const fsync = 50 * time.Millisecond
	h := newHerdProcs(t, fsync)
	h.start()

	var mu sync.Mutex
	var acks []ack
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range topology.Classic {
		wg.Go(func() {
			nc, err := net.Dial("tcp", h.clientAddr(i))
			if err != nil {
				t.Error(err)
				return
			}
			defer nc.Close()
			rr := protocol.NewReplyReader(nc)
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				// Batches of ten pipelined IAMATs for new clients.
				var b strings.Builder
				ids := make([]string, 10)
				for k := range ids {
					ids[k] = fmt.Sprintf("s%d-%d-%d", i, n, k)
					fmt.Fprintf(&b, "IAMAT %s +34.068930-118.445127 1621464827.%09d\n", ids[k], n)
				}
				if _, err := io.WriteString(nc, b.String()); err != nil {
					return // killed
				}
				for _, id := range ids {
					r, err := rr.ReadReply(protocol.LineReply)
					if err != nil {
						return // killed
					}
					if r.Kind != protocol.ReplyAT {
						t.Errorf("got %q", r.Raw)
						return
					}
					mu.Lock()
					acks = append(acks, ack{id: id, at: string(r.Line), when: time.Now()})
					mu.Unlock()
				}
			}
		})
	}
	// Let the clients send for a while, then kill every server at once.
	waitCount := func(n int) {
		deadline := time.Now().Add(20 * time.Second)
		for {
			mu.Lock()
			got := len(acks)
			mu.Unlock()
			if got >= n || time.Now().After(deadline) {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitCount(5000)
	killed := time.Now()
	for _, p := range h.procs {
		p.cmd.Process.Signal(syscall.SIGKILL)
	}
	for _, p := range h.procs {
		p.wait()
	}
	close(stop)
	wg.Wait()

	h.start()
	must := acks
	late := 0
	for _, a := range acks {
		if !a.when.Before(killed.Add(-fsync)) {
			late++
		}
	}
	t.Logf("%d records acknowledged, %d of them less than %v before the kill", len(acks), late, fsync)
	if len(must) < 1000 {
		t.Fatalf("only %d records to check", len(must))
	}
	for i := range topology.Classic {
		missing := h.missing(i, must)
		if len(missing) > 0 {
			t.Errorf("%s lost %d acknowledged records, e.g. %v", topology.Classic[i].Name, len(missing), missing[0])
		}
	}
}

// missing returns the acknowledged records that server i does not hold
// exactly, waiting a little for the herd to reconcile.
func (h *herdProcs) missing(i int, acks []ack) []ack {
	deadline := time.Now().Add(20 * time.Second)
	for {
		nc, err := net.Dial("tcp", h.clientAddr(i))
		if err != nil {
			h.t.Fatal(err)
		}
		var b strings.Builder
		for _, a := range acks {
			fmt.Fprintf(&b, "WHATSAT %s 1 0\n", a.id)
		}
		go func() {
			io.WriteString(nc, b.String())
			nc.(*net.TCPConn).CloseWrite()
		}()
		rr := protocol.NewReplyReader(nc)
		var miss []ack
		for _, a := range acks {
			r, err := rr.ReadReply(protocol.PlacesReply)
			if err != nil {
				h.t.Fatal(err)
			}
			if string(r.Line) != a.at {
				miss = append(miss, a)
			}
		}
		nc.Close()
		if len(miss) == 0 || time.Now().After(deadline) {
			return miss
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestHostileClients opens more connections than the limits allow, sends
// a line of several megabytes and random bytes, and holds a connection
// that never reads while the server writes to it. Meanwhile a well-behaved
// client is answered throughout, the server's memory stays under 100 MB,
// and every refusal is counted.
func TestHostileClients(t *testing.T) {
	p, addr := serve(t, serveEnv(
		"HERD_MAX_CONNS", "100", "HERD_MAX_CONNS_PER_IP", "60", "HERD_WRITE_TIMEOUT", "1s"))
	metricsURL := "http://" + p.logged("herd node started")["metrics"].(string) + "/metrics"
	from := func(ip byte) *net.Dialer {
		return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, ip)}, Timeout: 5 * time.Second}
	}

	// A well-behaved client, answered throughout.
	probe, err := from(9).Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	probeReader := protocol.NewReplyReader(probe)
	var slowest time.Duration
	ask := func() {
		t.Helper()
		start := time.Now()
		probe.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(probe, "%s\n", kiwi)
		r, err := probeReader.ReadReply(protocol.LineReply)
		if err != nil || !strings.HasPrefix(string(r.Line), "AT Hill ") {
			t.Fatalf("the well-behaved client got %q, %v", r.Raw, err)
		}
		slowest = max(slowest, time.Since(start))
	}
	ask()

	var peakRSS atomic.Int64
	sample := func() {
		if rss := testutil.Scrape(t, metricsURL).Value("process_resident_memory_bytes"); int64(rss) > peakRSS.Load() {
			peakRSS.Store(int64(rss))
		}
	}

	// Connection flood: 70 from one address (60 allowed), then 60 from
	// another until the total of 100 is reached.
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for _, ip := range []byte{1, 2} {
		for range 70 {
			c, err := from(ip).Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
	}
	ask()
	sample()
	testutil.Eventually(t, 10*time.Second, metricAtLeast(t, metricsURL, 10, "herd_client_connections_refused_total", "reason", "per_ip"))
	// 140 dials: 10 over the limit from the first address, and with the
	// well-behaved client 100 open, so 31 over the limit from the second.
	testutil.Eventually(t, 10*time.Second, metricAtLeast(t, metricsURL, 31, "herd_client_connections_refused_total", "reason", "max_conns"))
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	testutil.Eventually(t, 10*time.Second, func() error { // the well-behaved client
		if n := testutil.Scrape(t, metricsURL).Value("herd_client_connections"); n > 1 {
			return fmt.Errorf("%v client connections, want at most 1", n)
		}
		return nil
	})

	// A line of 8 MB, and 1 MB of random bytes, each on a connection of
	// its own.
	huge, err := from(3).Dial("tcp", addr)
	if err == nil {
		go func() {
			io.WriteString(huge, strings.Repeat("x", 8<<20))
			huge.Close()
		}()
	}
	random := make([]byte, 1<<20)
	rand.Read(random)
	rnd, err := from(4).Dial("tcp", addr)
	if err == nil {
		go func() {
			rnd.Write(random)
			io.Copy(io.Discard, rnd)
			rnd.Close()
		}()
	}
	ask()
	sample()

	// A client that never reads while the server writes WHATSAT replies.
	stuck, err := from(5).Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	stuck.(*net.TCPConn).SetReadBuffer(4096)
	go func() {
		fmt.Fprintf(stuck, "%s\n", kiwi)
		req := []byte(strings.Repeat("WHATSAT kiwi.cs.ucla.edu 50 20\n", 100))
		for {
			if _, err := stuck.Write(req); err != nil {
				return
			}
		}
	}()
	defer stuck.Close()

	testutil.Eventually(t, 30*time.Second, func() error {
		ask()
		sample()
		m := testutil.Scrape(t, metricsURL)
		if m.Value("herd_client_disconnects_total", "reason", "write_timeout") < 1 ||
			m.Value("herd_client_disconnects_total", "reason", "line_too_long") < 1 {
			return fmt.Errorf("disconnects not all counted: %s", m.Text("herd_client_"))
		}
		return nil
	})
	m := testutil.Scrape(t, metricsURL)
	perIP := m.Value("herd_client_connections_refused_total", "reason", "per_ip")
	maxConns := m.Value("herd_client_connections_refused_total", "reason", "max_conns")
	t.Logf("refused: %v per_ip, %v max_conns; slowest answer to the well-behaved client %v; peak RSS %.1f MB",
		perIP, maxConns, slowest, float64(peakRSS.Load())/(1<<20))
	if perIP != 10 || maxConns != 31 {
		t.Errorf("refusals: %v per_ip (want 10), %v max_conns (want 31)", perIP, maxConns)
	}
	if peakRSS.Load() > 100<<20 {
		t.Errorf("peak RSS %d bytes, over the 100 MB bound", peakRSS.Load())
	}
}

// metricAtLeast returns a condition for testutil.Eventually: the sample
// of name with the given labels, scraped from url, is at least want.
func metricAtLeast(t *testing.T, url string, want float64, name string, labels ...string) func() error {
	return func() error {
		if got := testutil.Scrape(t, url).Value(name, labels...); got < want {
			return fmt.Errorf("%s%v = %v, want at least %v", name, labels, got, want)
		}
		return nil
	}
}
