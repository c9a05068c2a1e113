package main

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/protocol"
)

// peerNode is one `herd serve` of a test herd on ports from a freeBase:
// client base+i, peer base+10+i, metrics base+20+i.
type peerNode struct {
	p                           *proc
	client, peer, metrics, name string
}

func (n peerNode) metricsURL() string { return "http://" + n.metrics + "/metrics" }

// servePeer starts server i of a test herd, named name, with the given
// neighbours (name=address) and extra environment (variable, value, ...).
func servePeer(t *testing.T, base, i int, name, secret string, peers []string, extra ...string) peerNode {
	t.Helper()
	n := peerNode{
		name:    name,
		client:  fmt.Sprintf("127.0.0.1:%d", base+i),
		peer:    fmt.Sprintf("127.0.0.1:%d", base+10+i),
		metrics: fmt.Sprintf("127.0.0.1:%d", base+20+i),
	}
	env := map[string]string{
		"HERD_NAME": name, "HERD_CLIENT_ADDR": n.client, "HERD_PEER_ADDR": n.peer, "HERD_METRICS_ADDR": n.metrics,
		"HERD_PEERS": strings.Join(peers, ","), "HERD_PEER_SECRET": secret, "HERD_LOG_LEVEL": "warn",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	n.p = start(t, env, "serve")
	return n
}

// raiseFileLimit makes room for n more open files in this process. Having
// called Setrlimit, the herd processes started after inherit the limit.
func raiseFileLimit(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n+1024 {
		return
	}
	if lim.Max < n+1024 {
		t.Skipf("RLIMIT_NOFILE hard limit %d, need %d", lim.Max, n+1024)
	}
	lim.Cur = n + 1024
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
}

// TestPeerPortFlood opens 3,000 connections to a server's peer port in
// four waves, from 200 source addresses, and never sends a byte on them.
// The server's resident memory peaks under 200 MB and is back under
// 100 MB within 30 s; every connection is refused at once or closed at
// the handshake time-out, counted by reason; and its link to a real
// neighbour keeps flooding throughout, without a reconnect.
func TestPeerPortFlood(t *testing.T) {
	const waves, perWave, perAddr = 4, 750, 15
	raiseFileLimit(t, waves*perWave)
	base := testutil.FreePortBase(t, 25)
	const secret = "flood-test-secret-0123456789"
	// A handshake time-out of 1 s rather than 3 s, so that the waves are
	// quick; it changes how long a connection is held, not what it costs.
	timings := []string{"HERD_PEER_TIMEOUT", "1s", "HERD_PEER_HEARTBEAT", "200ms"}
	hill := servePeer(t, base, 0, "Hill", secret, []string{fmt.Sprintf("Jaquez=127.0.0.1:%d", base+11)}, timings...)
	jaquez := servePeer(t, base, 1, "Jaquez", secret, []string{fmt.Sprintf("Hill=127.0.0.1:%d", base+10)}, timings...)
	waitReady(t, hill.metrics)
	waitReady(t, jaquez.metrics)
	url := hill.metricsURL()
	rss := func() float64 { return testutil.Scrape(t, url).Value("process_resident_memory_bytes") }
	t.Logf("resident memory before: %.1f MB", rss()/(1<<20))
	// Two links may have come up when both dialled at once; what counts is
	// that none comes up again during the flood.
	linked := testutil.Scrape(t, url).Value("herd_peer_connects_total", "peer", "Jaquez")

	// A client of Jaquez sends IAMATs for new ids all along; Hill gets
	// them by flooding.
	flooded := []string{"herd_peer_records_received_total", "kind", "flood", "peer", "Jaquez"}
	client, err := net.Dial("tcp", jaquez.client)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var sender sync.WaitGroup
	defer func() {
		close(stop)
		client.Close()
		sender.Wait()
	}()
	sender.Go(func() {
		rr := protocol.NewReplyReader(client)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			client.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(client, "IAMAT flood-%d +34.068930-118.445127 1621464827.%09d\n", i, i)
			if r, err := rr.ReadReply(protocol.LineReply); !strings.HasPrefix(string(r.Line), "AT Jaquez ") {
				select {
				case <-stop: // closed under the read
				default:
					t.Errorf("Jaquez answered %q, %v", r.Raw, err)
				}
				return
			}
		}
	})
	stillFlooding := func(after float64) float64 {
		t.Helper()
		testutil.Eventually(t, 10*time.Second, metricAtLeast(t, url, after+1, flooded[0], flooded[1:]...))
		return testutil.Scrape(t, url).Value(flooded[0], flooded[1:]...)
	}
	seen := stillFlooding(0)

	var peak atomic.Int64
	sample := func() {
		if r := int64(rss()); r > peak.Load() {
			peak.Store(r)
		}
	}
	sampling := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			select {
			case <-sampling:
				return
			case <-time.After(20 * time.Millisecond):
				sample()
			}
		}
	})

	reasons := []string{"too_many_handshakes", "per_ip", "timeout"}
	ended := func() float64 {
		s := 0.0
		for _, r := range reasons {
			s += testutil.Scrape(t, url).Value("herd_peer_handshake_failures_total", "reason", r)
		}
		return s
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	start := time.Now()
	for wave := range waves {
		for i := range perWave {
			// 15 connections from each address, 50 addresses a wave.
			ip := byte(10 + wave*perWave/perAddr + i/perAddr)
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, ip)}, Timeout: 5 * time.Second}
			c, err := d.Dial("tcp", hill.peer)
			if err != nil {
				t.Fatalf("wave %d, connection %d: %v", wave, i, err)
			}
			conns = append(conns, c)
		}
		sample()
		t.Logf("wave %d: %d connections open from this side, resident memory %.1f MB", wave+1, len(conns), rss()/(1<<20))
		// Every connection is refused at once or times out, and the
		// neighbour's records still arrive.
		testutil.Eventually(t, 10*time.Second, func() error {
			sample()
			if n := ended(); n < float64(len(conns)) {
				return fmt.Errorf("%v of %d connections refused or timed out: %s", n, len(conns),
					testutil.Scrape(t, url).Text("herd_peer_handshake_failures_total"))
			}
			return nil
		})
		seen = stillFlooding(seen)
	}
	t.Logf("all %d connections ended %v after the first: %s", waves*perWave, time.Since(start).Round(time.Millisecond),
		testutil.Scrape(t, url).Text("herd_peer_handshake_failures_total"))
	for _, r := range reasons {
		if testutil.Scrape(t, url).Value("herd_peer_handshake_failures_total", "reason", r) == 0 {
			t.Errorf("no refusal for %s", r)
		}
	}
	close(sampling)
	sampler.Wait()

	// Back under 100 MB.
	deadline := time.Now().Add(30 * time.Second)
	after := rss()
	for after >= 100<<20 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		after = rss()
	}
	t.Logf("peak resident memory %.1f MB, after %.1f MB; %v records flooded from Jaquez meanwhile",
		float64(peak.Load())/(1<<20), after/(1<<20), seen)
	if peak.Load() >= 200<<20 {
		t.Errorf("peak resident memory %d bytes, over 200 MB", peak.Load())
	}
	if after >= 100<<20 {
		t.Errorf("resident memory %v bytes 30 s after the flood, over 100 MB", after)
	}
	if c := testutil.Scrape(t, url).Value("herd_peer_connects_total", "peer", "Jaquez") - linked; c != 0 {
		t.Errorf("the link to Jaquez came up %v more times during the flood, want none", c)
	}
}

// TestDuplicateNameProcesses runs two servers named Hill with a common
// neighbour, Jaquez, as processes with the default timings: Jaquez logs
// an ERROR naming Hill within 15 s, and its link to Hill comes up fewer
// than 6 times in the 20 s after the second Hill starts.
func TestDuplicateNameProcesses(t *testing.T) {
	base := testutil.FreePortBase(t, 25)
	const secret = "duplicate-test-secret-0123456789"
	toJaquez := []string{fmt.Sprintf("Jaquez=127.0.0.1:%d", base+11)}
	hill := servePeer(t, base, 0, "Hill", secret, toJaquez)
	jaquez := servePeer(t, base, 1, "Jaquez", secret, []string{fmt.Sprintf("Hill=127.0.0.1:%d", base+10)})
	waitReady(t, hill.metrics)
	waitReady(t, jaquez.metrics)

	url := jaquez.metricsURL()
	before := testutil.Scrape(t, url).Value("herd_peer_connects_total", "peer", "Hill") // the link to the first Hill
	servePeer(t, base, 2, "Hill", secret, toJaquez)
	start := time.Now()
	var found map[string]any
	for found == nil {
		if time.Since(start) > 15*time.Second {
			t.Fatal("no ERROR about the duplicate name within 15 s")
		}
		jaquez.p.mu.Lock()
		for _, rec := range jaquez.p.logs {
			if msg, _ := rec["msg"].(string); rec["level"] == "ERROR" && strings.HasPrefix(msg, "duplicate server name") {
				found = rec
			}
		}
		jaquez.p.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("ERROR after %v: %v", time.Since(start).Round(time.Millisecond), found)
	if found["peer"] != "Hill" || found["kept_remote"] == nil || found["refused_remote"] == nil {
		t.Errorf("the ERROR names %v, %v and %v; want Hill and both remote addresses",
			found["peer"], found["kept_remote"], found["refused_remote"])
	}
	time.Sleep(time.Until(start.Add(20 * time.Second)))
	connects := testutil.Scrape(t, url).Value("herd_peer_connects_total", "peer", "Hill") - before
	t.Logf("link to Hill came up %v times in 20 s; %s", connects, testutil.Scrape(t, url).Text("herd_peer_duplicate_names_total"))
	if connects >= 6 {
		t.Errorf("the link to Hill came up %v times in 20 s, want fewer than 6", connects)
	}
	if n := testutil.Scrape(t, url).Value("herd_peer_duplicate_names_total", "peer", "Hill"); n != 1 {
		t.Errorf("%v duplicate-name episodes counted, want 1", n)
	}
}
