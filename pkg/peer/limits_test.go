package peer

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/metrics"
	"github.com/herdkit/herd/pkg/store"
	"github.com/herdkit/herd/pkg/topology"
)

func TestGate(t *testing.T) {
	a, b, c := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")
	type step struct {
		leave bool
		src   netip.Addr
		want  string // enter's answer
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"under both bounds", []step{{src: a}, {src: b}, {src: a}}},
		{"per address", []step{{src: a}, {src: a}, {src: a, want: reasonPerIP}, {src: b}}},
		{"overall", []step{{src: a}, {src: b}, {src: c}, {src: c}, {src: b, want: reasonTooMany}}},
		{"overall before per address", []step{{src: a}, {src: a}, {src: b}, {src: b}, {src: a, want: reasonTooMany}}},
		{"a leave frees a place", []step{{src: a}, {src: a}, {src: a, want: reasonPerIP}, {leave: true, src: a}, {src: a}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate(4, 2)
			for i, s := range tc.steps {
				if s.leave {
					g.leave(s.src)
					continue
				}
				if got := g.enter(s.src); got != s.want {
					t.Fatalf("step %d: enter(%v) = %q, want %q", i, s.src, got, s.want)
				}
			}
		})
	}
	g := newGate(4, 2)
	g.enter(a)
	g.leave(a)
	if g.inProgress() != 0 || len(g.byIP) != 0 {
		t.Errorf("after leave: %d in progress, %d addresses kept", g.inProgress(), len(g.byIP))
	}
}

func TestGrowKeepsWhatTheHandshakeReadAhead(t *testing.T) {
	small := bufio.NewReaderSize(strings.NewReader("OK\nS 0 0\nP\n"), handshakeBuffer)
	if line, _ := readLine(small); line != "OK" {
		t.Fatalf("got %q", line)
	}
	rest, err := io.ReadAll(grow(small, strings.NewReader("F more\n")))
	if err != nil || string(rest) != "S 0 0\nP\nF more\n" {
		t.Errorf("got %q, %v", rest, err)
	}
}

// listenPeer runs a manager with one neighbour, B, that never answers,
// on a loopback listener with the given bounds, and returns its address
// and metrics.
func listenPeer(t *testing.T, cfg Config) (string, *Manager, *metrics.Metrics) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Name, cfg.Secret = "A", testSecret
	cfg.Neighbours = []topology.Peer{{Name: "B", Addr: "127.0.0.1:1"}}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat, cfg.BackoffMax = time.Second, time.Second
	}
	m := metrics.New()
	mg := New(cfg, store.New(), m, testLogger(t, "A"))
	serve := make(chan error, 1)
	go func() { serve <- mg.Serve(ln) }()
	t.Cleanup(func() {
		ln.Close()
		mg.Close()
		<-serve
	})
	return ln.Addr().String(), mg, m
}

// dialFrom connects to addr from the loopback address 127.0.0.ip.
func dialFrom(t *testing.T, ip byte, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, ip)}, Timeout: 5 * time.Second}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// TestHandshakeBounds holds idle connections in their handshake up to the
// bounds, and checks that the next one from the same address, then the
// next from anywhere, is told why and closed at once, and counted; and
// that the connections held are closed the handshake time-out after their
// accept, which frees their places.
func TestHandshakeBounds(t *testing.T) {
	const timeout = 2 * time.Second
	addr, mg, m := listenPeer(t, Config{Timeout: timeout, MaxHandshakes: 4, MaxHandshakesPerIP: 2})
	start := time.Now()
	var held []net.Conn
	hold := func(ip byte) {
		held = append(held, dialFrom(t, ip, addr))
		testutil.Eventually(t, 10*time.Second, func() error {
			if n := mg.gate.inProgress(); n != len(held) {
				return fmt.Errorf("%d handshakes in progress, want %d", n, len(held))
			}
			return nil
		})
	}
	refused := func(ip byte, want string) {
		t.Helper()
		nc := dialFrom(t, ip, addr)
		nc.SetDeadline(time.Now().Add(time.Second)) // well before the time-out
		got, err := io.ReadAll(nc)
		if string(got) != "ERR "+want+"\n" || err != nil {
			t.Errorf("got %q, %v; want ERR %s and a close", got, err, want)
		}
		testutil.Eventually(t, 10*time.Second, testutil.ValueIs(m.PeerHandshakeFailures.WithLabelValues(want), 1))
	}
	hold(1)
	hold(1)
	hold(2)
	refused(1, reasonPerIP) // a third from 127.0.0.1
	hold(2)
	refused(3, reasonTooMany) // a fifth in all
	// The connections held say nothing, and are closed the time-out after
	// their accept.
	for _, nc := range held {
		nc.SetDeadline(time.Now().Add(2 * timeout))
		if got, err := io.ReadAll(nc); len(got) != 0 || err != nil {
			t.Errorf("a connection held got %q, %v", got, err)
		}
	}
	// Not before the time-out; and not much after, or ReadAll would have
	// failed at its deadline.
	if took := time.Since(start); took < timeout {
		t.Errorf("the connections held were closed after %v, before the time-out %v", took, timeout)
	}
	testutil.Eventually(t, 10*time.Second, testutil.ValueIs(m.PeerHandshakeFailures.WithLabelValues(reasonTimeout), 4))
	testutil.Eventually(t, 10*time.Second, func() error {
		if n := mg.gate.inProgress(); n != 0 {
			return fmt.Errorf("%d handshakes in progress", n)
		}
		return nil
	})
	// Their places are free again.
	nc := dialFrom(t, 1, addr)
	fmt.Fprintf(nc, "HERD 1 HELLO Mallory 1 %s\n", newNonce())
	if line, _ := bufio.NewReader(nc).ReadString('\n'); line != "ERR unknown_peer\n" {
		t.Errorf("after the time-outs got %q, want ERR unknown_peer", line)
	}
}

// TestHandshakeMemory holds the most handshakes allowed and checks what
// each costs: a small read buffer, not the 1 MiB of a frame. The bound
// counts both ends of each connection, since both are in this process.
func TestHandshakeMemory(t *testing.T) {
	addr, mg, _ := listenPeer(t, Config{Timeout: 30 * time.Second})
	inUse := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc + ms.StackInuse
	}
	before := inUse()
	for i := range DefaultMaxHandshakes {
		// Each waits for AUTH after the acceptor's hello, so the acceptor
		// holds all it holds during a handshake.
		nc := dialFrom(t, byte(10+i/DefaultMaxHandshakesPerIP), addr)
		fmt.Fprintf(nc, "HERD 1 HELLO B 1 %s\n", newNonce())
		if line, err := bufio.NewReaderSize(nc, 256).ReadString('\n'); !strings.HasPrefix(line, "HERD 1 HELLO A ") {
			t.Fatalf("got %q, %v", line, err)
		}
	}
	if got := mg.gate.inProgress(); got != DefaultMaxHandshakes {
		t.Fatalf("%d handshakes in progress, want %d", got, DefaultMaxHandshakes)
	}
	per := (int64(inUse()) - int64(before)) / DefaultMaxHandshakes
	t.Logf("%d handshakes in progress: %d bytes each (heap and stacks, both ends)", DefaultMaxHandshakes, per)
	if per > 32<<10 {
		t.Errorf("%d bytes per handshake in progress, want under 32 KiB", per)
	}
}
