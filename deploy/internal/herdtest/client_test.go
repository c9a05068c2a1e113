package herdtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeServer answers IAMAT and WHATSAT as a herd server does, on
// 127.0.0.1, and stores what it is told.
type fakeServer struct {
	ln    net.Listener
	mu    sync.Mutex
	lines map[string]string
	// reply, if set, replaces the AT line of every IAMAT.
	reply string
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{ln: ln, lines: map[string]string{}}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *fakeServer) addr() string { return s.ln.Addr().String() }

func (s *fakeServer) serve(c net.Conn) {
	defer c.Close()
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 4 && f[0] == "IAMAT":
			at := fmt.Sprintf("AT Fake +0.000000001 %s %s %s", f[1], f[2], f[3])
			s.mu.Lock()
			if s.reply != "" {
				at = s.reply
			}
			s.lines[f[1]] = at
			s.mu.Unlock()
			fmt.Fprintf(c, "%s\n", at)
		case len(f) == 4 && f[0] == "WHATSAT":
			s.mu.Lock()
			at, ok := s.lines[f[1]]
			s.mu.Unlock()
			if !ok {
				fmt.Fprintf(c, "? %s\n", sc.Text())
				continue
			}
			fmt.Fprintf(c, "%s\n{\n  \"results\": []\n}\n\n", at)
		default:
			fmt.Fprintf(c, "? %s\n", sc.Text())
		}
	}
}

func TestCheckAT(t *testing.T) {
	for _, c := range []struct {
		name, reply string
		ok          bool
	}{
		{"acknowledged", "AT Hill +0.1 kiwi " + Pos + " 1.5\n", true},
		{"another client", "AT Hill +0.1 apple " + Pos + " 1.5\n", false},
		{"refused", "? IAMAT kiwi " + Pos + " 1.5\n", false},
		{"empty", "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			at, err := checkAT(c.reply, "kiwi")
			if (err == nil) != c.ok {
				t.Fatalf("checkAT(%q): %q, %v", c.reply, at, err)
			}
			if c.ok && at != strings.TrimSuffix(c.reply, "\n") {
				t.Errorf("checkAT(%q) = %q", c.reply, at)
			}
		})
	}
}

func TestIAMAT(t *testing.T) {
	s := newFakeServer(t)
	at, err := cl.IAMAT(s.addr(), "kiwi")
	if err != nil || !strings.HasPrefix(at, "AT Fake ") || !strings.Contains(at, " kiwi "+Pos+" ") {
		t.Fatalf("IAMAT: %q, %v", at, err)
	}
	s.mu.Lock()
	s.reply = "? refused"
	s.mu.Unlock()
	if at, err := cl.IAMAT(s.addr(), "apple"); err == nil {
		t.Errorf("IAMAT answered %q: no error", at)
	}
	s.ln.Close()
	if _, err := cl.IAMAT(s.addr(), "kiwi"); err == nil {
		t.Error("IAMAT to a closed port: no error")
	}
}

func TestMissing(t *testing.T) {
	s := newFakeServer(t)
	want := map[string]string{}
	for i := range 500 {
		id := fmt.Sprintf("client-%d", i)
		at, err := cl.IAMAT(s.addr(), id)
		if err != nil {
			t.Fatal(err)
		}
		want[id] = at
	}
	if ids, err := cl.Missing(s.addr(), want); err != nil || len(ids) != 0 {
		t.Fatalf("all stored: missing %v, %v", ids, err)
	}
	want["unknown"] = "AT Fake +0 unknown " + Pos + " 1"
	want["client-7"] = "AT Other +0 client-7 " + Pos + " 1"
	ids, err := cl.Missing(s.addr(), want)
	slices.Sort(ids)
	if err != nil || !slices.Equal(ids, []string{"client-7", "unknown"}) {
		t.Errorf("missing %v, %v; want client-7 (another line) and unknown", ids, err)
	}
}

func TestReadWhatsat(t *testing.T) {
	for _, c := range []struct {
		name, in, first string
		ok              bool
	}{
		{"record", "AT Hill +0 kiwi x 1\n{\n \"results\": []\n}\n\nnext", "AT Hill +0 kiwi x 1", true},
		{"unknown client", "? WHATSAT kiwi 10 0\nnext", "? WHATSAT kiwi 10 0", true},
		{"cut short", "AT Hill +0 kiwi x 1\n{\n", "", false},
		{"nothing", "", "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			first, err := readWhatsat(bufio.NewReader(strings.NewReader(c.in)))
			if (err == nil) != c.ok || first != c.first {
				t.Errorf("readWhatsat(%q) = %q, %v", c.in, first, err)
			}
		})
	}
}

func TestPeersUp(t *testing.T) {
	for _, c := range []struct {
		name, body string
		want       map[string]bool
		ok         bool
	}{
		{"links", "# HELP herd_peer_up x\nherd_peer_up{peer=\"Jaquez\"} 1\nherd_peer_up{peer=\"Smith\"} 0\nherd_peer_upx 1\n",
			map[string]bool{"Jaquez": true, "Smith": false}, true},
		{"none", "go_goroutines 7\n", map[string]bool{}, true},
		{"bad value", "herd_peer_up{peer=\"Smith\"} x\n", nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, c.body)
			}))
			defer ts.Close()
			up, err := cl.PeersUp(strings.TrimPrefix(ts.URL, "http://"))
			if (err == nil) != c.ok || fmt.Sprint(up) != fmt.Sprint(c.want) {
				t.Errorf("PeersUp = %v, %v; want %v", up, err, c.want)
			}
		})
	}
}

func TestReady(t *testing.T) {
	status := http.StatusServiceUnavailable
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	defer ts.Close()
	addr := strings.TrimPrefix(ts.URL, "http://")
	if err := cl.Ready(addr); err == nil {
		t.Error("503: ready")
	}
	status = http.StatusOK
	if err := cl.Ready(addr); err != nil {
		t.Errorf("200: %v", err)
	}
}

func TestAcks(t *testing.T) {
	a := NewAcks()
	a.Add("hill", "kiwi", "AT Hill 1")
	a.Add("hill", "apple", "AT Hill 2")
	a.Add("smith", "kiwi", "AT Smith 3")
	if a.Len() != 2 || a.Of("hill") != 2 || a.Of("smith") != 1 || a.Of("campbell") != 0 {
		t.Errorf("Len %d, Of hill %d smith %d campbell %d", a.Len(), a.Of("hill"), a.Of("smith"), a.Of("campbell"))
	}
	lines := a.Lines()
	if lines["kiwi"] != "AT Smith 3" {
		t.Errorf("kiwi: %q, want the last acknowledgement", lines["kiwi"])
	}
	lines["kiwi"] = "changed"
	if a.Lines()["kiwi"] != "AT Smith 3" {
		t.Error("Lines returned the record itself, not a copy")
	}
}

func TestLoad(t *testing.T) {
	up := newFakeServer(t)
	down := newFakeServer(t)
	down.ln.Close()
	l := cl.StartLoad("t", map[string]string{"up": up.addr(), "down": down.addr()})
	deadline := time.Now().Add(10 * time.Second)
	for l.Acks.Of("up") < 5 || l.Failures("down") < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("acknowledged by up %d, failures of down %d", l.Acks.Of("up"), l.Failures("down"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	l.Stop()
	if l.Acks.Of("down") != 0 || l.Failures("up") != 0 {
		t.Errorf("down acknowledged %d, up failed %d", l.Acks.Of("down"), l.Failures("up"))
	}
	// Everything recorded is on the server, under its own id.
	if ids, err := cl.Missing(up.addr(), l.Acks.Lines()); err != nil || len(ids) != 0 {
		t.Errorf("missing on the server: %v, %v", ids, err)
	}
	for id := range l.Acks.Lines() {
		if !strings.HasPrefix(id, "t-up-") {
			t.Errorf("client id %q", id)
		}
	}
}

// cl is the client of the tests: the system's resolver.
var cl = &Client{}

// TestClientResolver checks that a Client looks names up with its
// Resolver, and dials addresses as they are.
func TestClientResolver(t *testing.T) {
	s := newFakeServer(t)
	asked := make(chan string, 1)
	c := &Client{Resolver: &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		select {
		case asked <- addr:
		default:
		}
		return nil, errors.New("no DNS here")
	}}}
	_, port, _ := net.SplitHostPort(s.addr())
	if _, err := c.IAMAT(net.JoinHostPort("herd-0.herd-peer.test", port), "kiwi"); err == nil {
		t.Error("a name the resolver cannot look up: no error")
	}
	select {
	case <-asked:
	default:
		t.Error("the Resolver was not asked")
	}
	if _, err := c.IAMAT(s.addr(), "kiwi"); err != nil {
		t.Errorf("an address: %v", err)
	}
}
