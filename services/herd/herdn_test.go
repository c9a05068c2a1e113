package main

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herdkit/herd/internal/testcert"
	"github.com/herdkit/herd/internal/testutil"
)

// derivedHerd is a herd of `herd serve` processes herd-0 to herd-(n-1)
// that find their neighbours from HERD_SERVERS and HERD_PEER_TEMPLATE.
type derivedHerd struct {
	procs   []*proc
	client  []string // client addresses, from each one's log
	metrics []string
}

// startDerived starts n servers, each given HERD_SERVERS=n and a peer
// template on 127.0.0.1 in which {i} is the last digit of the port, and
// the variables extra returns for it; it waits until all are ready.
func startDerived(t *testing.T, n int, extra func(i int) map[string]string) *derivedHerd {
	t.Helper()
	// Ten ports from a multiple of ten: the 25 from base are free.
	tens := (testutil.FreePortBase(t, 25) + 9) / 10
	template := "127.0.0.1:" + strconv.Itoa(tens) + "{i}"
	h := &derivedHerd{}
	for i := range n {
		env := map[string]string{
			"HERD_NAME": "herd-" + strconv.Itoa(i), "HERD_SERVERS": strconv.Itoa(n), "HERD_PEER_TEMPLATE": template,
			"HERD_PEER_ADDR":   fmt.Sprintf("127.0.0.1:%d%d", tens, i),
			"HERD_CLIENT_ADDR": "127.0.0.1:0", "HERD_METRICS_ADDR": "127.0.0.1:0", "HERD_PLACES": "offline",
			"HERD_PEER_SECRET": "herd-of-n-secret-0123456789", "HERD_PEER_HEARTBEAT": "100ms",
			"HERD_PEER_TIMEOUT": "2s", "HERD_PEER_BACKOFF_MAX": "300ms", "HERD_READY_GRACE": "20s",
		}
		for k, v := range extra(i) {
			env[k] = v
		}
		h.procs = append(h.procs, start(t, env, "serve"))
	}
	for _, p := range h.procs {
		started := p.logged("herd node started")
		h.client = append(h.client, started["client"].(string))
		h.metrics = append(h.metrics, started["metrics"].(string))
	}
	return h
}

// ready waits until the servers not in down are ready: reconciled with
// every neighbour (the grace is longer than the test).
func (h *derivedHerd) ready(t *testing.T, down ...int) {
	t.Helper()
	for i, addr := range h.metrics {
		if !contains(down, i) {
			waitReady(t, addr)
		}
	}
}

// readable waits until every server not in down answers a WHATSAT about
// id with the AT line of the IAMAT sent to server from.
func (h *derivedHerd) readable(t *testing.T, id string, from int, down ...int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for i, addr := range h.client {
		if contains(down, i) {
			continue
		}
		for {
			line := whatsatAT(t, addr, id)
			if strings.HasPrefix(line, "AT herd-"+strconv.Itoa(from)+" ") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("herd-%d answers %q about %s, sent to herd-%d", i, line, id, from)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func contains(s []int, x int) bool {
	for _, y := range s {
		if x == y {
			return true
		}
	}
	return false
}

// iamat sends an IAMAT for id to server i and checks its AT reply.
func (h *derivedHerd) iamat(t *testing.T, i int, id string) {
	t.Helper()
	reply := exchange(t, h.client[i], fmt.Sprintf("IAMAT %s +34.068930-118.445127 %d.5\n", id, time.Now().Unix()))
	if !strings.HasPrefix(reply, "AT herd-"+strconv.Itoa(i)+" ") {
		t.Fatalf("herd-%d answered %q", i, reply)
	}
}

// TestNineDerivedServers is the acceptance of a herd of any size: nine
// `herd serve` processes given only HERD_SERVERS=9, their names and a
// template find their neighbours; an IAMAT to any one is readable on all
// nine, and still on the other seven after two are killed, and an IAMAT
// to any of those seven reaches the other six.
func TestNineDerivedServers(t *testing.T) {
	const n = 9
	h := startDerived(t, n, func(int) map[string]string { return nil })
	h.ready(t)
	for i := range n {
		h.iamat(t, i, fmt.Sprintf("before-%d", i))
	}
	for i := range n {
		h.readable(t, fmt.Sprintf("before-%d", i), i)
	}
	// Two neighbours (the topology tests cover every pair): herd-0's
	// links to herd-1 and herd-8 both go, and herd-1's to the others.
	down := []int{1, 8}
	for _, i := range down {
		h.procs[i].cmd.Process.Signal(syscall.SIGKILL)
		h.procs[i].wait()
	}
	for i := range n {
		if !contains(down, i) {
			h.readable(t, fmt.Sprintf("before-%d", i), i, down...)
			h.iamat(t, i, fmt.Sprintf("after-%d", i))
		}
	}
	for i := range n {
		if !contains(down, i) {
			h.readable(t, fmt.Sprintf("after-%d", i), i, down...)
		}
	}
}

// TestDerivedHerdOverTLS: with the three TLS variables, three derived
// servers link and flood over mutual TLS; a server without them (plain
// TCP) is refused by its TLS neighbours, which count it as tls, and gets
// nothing.
func TestDerivedHerdOverTLS(t *testing.T) {
	ca, err := testcert.NewCA("herd CA")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	const plain = 2
	h := startDerived(t, 3, func(i int) map[string]string {
		// The TLS servers never reconcile with the plain one: ready after
		// the grace; readable below waits for the record itself.
		env := map[string]string{"HERD_READY_GRACE": "500ms"}
		if i != plain {
			files, err := ca.WriteFiles(dir, "herd-"+strconv.Itoa(i))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range files.Env() {
				env[k] = v
			}
		}
		return env
	})
	h.ready(t, plain)
	h.iamat(t, 0, "over-tls")
	h.readable(t, "over-tls", 0, plain)
	for i := range plain {
		testutil.Eventually(t, 10*time.Second, func() error {
			if v := testutil.Scrape(t, "http://"+h.metrics[i]+"/metrics").Value("herd_peer_handshake_failures_total", "reason", "tls"); v < 1 {
				return fmt.Errorf("%s: %v tls refusals", h.metrics[i], v)
			}
			return nil
		})
	}
	if line := whatsatAT(t, h.client[plain], "over-tls"); line != "?" && strings.HasPrefix(line, "AT ") {
		t.Errorf("the plain server got the record: %q", line)
	}
}
