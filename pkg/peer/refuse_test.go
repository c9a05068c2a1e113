package peer

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/herdkit/herd/pkg/config"
	"github.com/herdkit/herd/pkg/store"
)

var pair = []config.Server{{Name: "A", Neighbours: []string{"B"}}, {Name: "B", Neighbours: []string{"A"}}}

func failures(n *node, reason string) float64 {
	return testutil.ToFloat64(n.m.PeerHandshakeFailures.WithLabelValues(reason))
}

func TestWrongSecretIsRefused(t *testing.T) {
	h := newHerd(t, pair, fastTimings)
	h.stop("B")
	h.nodes["B"].ln = nil
	var ln net.Listener
	waitFor(t, func() bool {
		var err error
		ln, err = net.Listen("tcp", h.nodes["B"].addr)
		return err == nil
	})
	h.start("B", ln, fastTimings, "another-secret-of-16+")
	a, b := h.nodes["A"], h.nodes["B"]
	waitFor(t, func() bool { return failures(a, reasonBadSecret) >= 2 && failures(b, reasonBadSecret) >= 2 })
	h.iamat("A", "k", "+1+1", "1")
	for _, n := range []*node{a, b} {
		peer := map[string]string{"A": "B", "B": "A"}[n.name]
		if n.mgr.Status()[0].Up || testutil.ToFloat64(n.m.PeerUp.WithLabelValues(peer)) != 0 {
			t.Errorf("%s has a link with a wrong secret", n.name)
		}
	}
	if b.mgr.Reconciled() {
		t.Error("B reconciled with A over a wrong secret")
	}
	if _, ok := b.st.Get("k"); ok {
		t.Error("a record crossed a link with a wrong secret")
	}
}

// rawPeer dials a node's peer port by hand.
func rawPeer(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	return nc, bufio.NewReader(nc)
}

func TestUnknownNameIsRefused(t *testing.T) {
	h := newHerd(t, pair, fastTimings)
	a := h.nodes["A"]
	nc, br := rawPeer(t, a.addr)
	fmt.Fprintf(nc, "HERD 1 HELLO Mallory 1 %s\n", newNonce())
	line, _ := br.ReadString('\n')
	if line != "ERR unknown_peer\n" {
		t.Errorf("got %q, want ERR unknown_peer", line)
	}
	if rest, _ := io.ReadAll(br); len(rest) != 0 {
		t.Errorf("more after the refusal: %q", rest)
	}
	waitFor(t, func() bool { return failures(a, reasonUnknownPeer) == 1 })
}

func TestWrongProofIsRefused(t *testing.T) {
	h := newHerd(t, pair, fastTimings)
	a := h.nodes["A"]
	nc, br := rawPeer(t, a.addr)
	fmt.Fprintf(nc, "HERD 1 HELLO B 1 %s\n", newNonce())
	line, _ := br.ReadString('\n')
	if !strings.HasPrefix(line, "HERD 1 HELLO A ") {
		t.Fatalf("got %q", line)
	}
	fmt.Fprintf(nc, "AUTH %064x\n", 0)
	if line, _ := br.ReadString('\n'); line != "ERR bad_secret\n" {
		t.Errorf("got %q, want ERR bad_secret", line)
	}
	waitFor(t, func() bool { return failures(a, reasonBadSecret) == 1 })
}

func TestGarbageIsRefused(t *testing.T) {
	h := newHerd(t, pair, fastTimings)
	h.ready()
	a := h.nodes["A"]
	for _, garbage := range [][]byte{
		[]byte("IAMAT kiwi +1+1 1\n"),
		[]byte("F 1 1 A 1 kiwi +1+1 1\n"),
		[]byte("HERD 2 HELLO B 1 00000000000000000000000000000000\n"),
		randomBytes(4096),
		[]byte(strings.Repeat("x", maxFrame+10)),
	} {
		nc, br := rawPeer(t, a.addr)
		nc.Write(garbage)
		io.ReadAll(br) // until the node closes it
	}
	waitFor(t, func() bool { return failures(a, reasonProtocol) == 5 })
	if a.st.Len() != 0 {
		t.Errorf("garbage stored %d records", a.st.Len())
	}
	if !a.mgr.Status()[0].Up {
		t.Error("garbage broke the real link")
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// TestStuckNeighbourBlocksNobody: a neighbour that authenticates and then
// never reads must not slow the store, and its link is dropped once a
// write has blocked for the peer time-out.
func TestStuckNeighbourBlocksNobody(t *testing.T) {
	timings := Config{Heartbeat: 50 * time.Millisecond, Timeout: 2 * time.Second, BackoffMax: time.Second}
	h := newHerd(t, pair, timings)
	h.standIn("B") // B's address is now free; play B by hand below
	a := h.nodes["A"]
	nc, err := net.Dial("tcp", a.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	br := bufio.NewReaderSize(nc, maxFrame)
	self := hello{name: "B", inc: 7, nonce: newNonce()}
	if _, err := dialHandshake(nc, br, self, "A", testSecret, nil, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	nc.Write(appendSync(nil, 0, 0))
	// Keep the link alive with pings, and never read.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := nc.Write([]byte("P\n")); err != nil {
					return
				}
			}
		}
	}()
	waitFor(t, func() bool { return a.mgr.Status()[0].Up })
	// Far more than the socket buffers hold, so the writer blocks.
	big := strings.Repeat("x", 2000)
	start := time.Now()
	for i := range 20_000 {
		a.st.Apply(store.Record{Text: fmt.Sprintf("%s-%d +1+1 1", big, i), Origin: "A", Recv: 1}, store.NoLink)
	}
	took := time.Since(start)
	if !a.mgr.Status()[0].Up {
		t.Fatalf("the link dropped before the stores finished (%v): they waited for it", took)
	}
	t.Logf("20000 records stored in %v while the neighbour was stuck", took)
	waitFor(t, func() bool {
		return testutil.ToFloat64(a.m.PeerDisconnects.WithLabelValues("B", downTimeout)) == 1
	})
	if got := testutil.ToFloat64(a.m.PeerBacklog.WithLabelValues("B")); got != 0 {
		t.Errorf("backlog gauge %v after the link dropped", got)
	}
}
