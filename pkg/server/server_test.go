package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/logging"
	"github.com/herdkit/herd/pkg/metrics"
	"github.com/herdkit/herd/pkg/places"
	"github.com/herdkit/herd/pkg/protocol"
	"github.com/herdkit/herd/pkg/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fixedNow is the server's clock in tests: 0.263873386 s after the spec's
// example client time.
var fixedNow = time.Unix(1621464828, 223371889)

const kiwi = "IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503"
const kiwiAT = "AT Hill +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503"

// fakePlaces answers every query with one result per query field, or
// blocks until release is closed when gate is set.
type fakePlaces struct {
	mu      sync.Mutex
	queries []places.Query
	gate    chan struct{}
	started chan struct{}
	resp    *places.Response // when set, the answer to every query
	// held answers Peek, for queries at the position heldPos.
	held    *places.Response
	heldPos string
}

func (f *fakePlaces) Name() string { return "fake" }

func (f *fakePlaces) Peek(q places.Query) (*places.Response, bool) {
	if f.held == nil || q.Pos != f.heldPos {
		return nil, false
	}
	return f.held, true
}

func (f *fakePlaces) Nearby(ctx context.Context, q places.Query) *places.Response {
	f.mu.Lock()
	f.queries = append(f.queries, q)
	f.mu.Unlock()
	if f.started != nil {
		f.started <- struct{}{}
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return places.Failure(places.StatusUnknownError, "cancelled")
		}
	}
	if f.resp != nil {
		return f.resp
	}
	r, err := places.Parse([]byte(`{"html_attributions":[],"results":[{"name":"A"},{"name":"B"},{"name":"C"}],"status":"OK"}`))
	if err != nil {
		panic(err)
	}
	return r
}

type testServer struct {
	*Server
	st     *store.Store
	places *fakePlaces
	m      *metrics.Metrics
}

func newTestServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	return newTestServerLog(t, cfg, slog.LevelDebug)
}

// newTestServerLog is newTestServer with a log level; the protocol log is
// at info, too much for tests that send megabytes.
func newTestServerLog(t *testing.T, cfg Config, level slog.Level) *testServer {
	t.Helper()
	return newTestServerLines(t, cfg, level, nil)
}

// newTestServerLines is newTestServerLog with the protocol log going to
// lines, or to the test's log when lines is nil.
func newTestServerLines(t *testing.T, cfg Config, level slog.Level, lines LineLogger) *testServer {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "Hill"
	}
	cfg.Addr = "127.0.0.1:0"
	if cfg.MaxLine == 0 {
		cfg.MaxLine = 4096
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = 100
	}
	if cfg.MaxConnsPerIP == 0 {
		cfg.MaxConnsPerIP = 100
	}
	if cfg.MaxInflight == 0 {
		cfg.MaxInflight = 8
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = time.Minute
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 5 * time.Second
	}
	ts := &testServer{st: store.New(), places: &fakePlaces{}, m: metrics.New()}
	log := testutil.Logger(t, level)
	if lines == nil {
		lines = logging.SlogLines(log)
	}
	ts.Server = New(cfg, ts.st, ts.places, ts.m, log, lines)
	ts.Server.now = func() time.Time { return fixedNow }
	if err := ts.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ts.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ts.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ts
}

// client is a transcript-style test client.
type client struct {
	t  *testing.T
	nc *net.TCPConn
	rr *protocol.ReplyReader
}

func dial(t *testing.T, addr net.Addr) *client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc.(*net.TCPConn), rr: protocol.NewReplyReader(nc)}
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := c.nc.Write([]byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// reply reads the next reply, of the given form.
func (c *client) reply(form protocol.ReplyForm) protocol.Reply {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	r, err := c.rr.ReadReply(form)
	if err != nil {
		c.t.Fatalf("reading a reply: %v (got %q)", err, r.Raw)
	}
	return r
}

// expect reads a one-line reply (an IAMAT's, or "? " to anything) and
// compares its line, without the LF.
func (c *client) expect(want string) {
	c.t.Helper()
	if got := string(c.reply(protocol.LineReply).Line); got != want {
		c.t.Fatalf("got  %q\nwant %q", got, want)
	}
}

// expectWhatsat reads a WHATSAT reply: the AT line, JSON, and a blank
// line; it checks the AT line and the number of results, and returns the
// JSON.
func (c *client) expectWhatsat(at string, results int) string {
	c.t.Helper()
	r := c.reply(protocol.PlacesReply)
	if r.Kind != protocol.ReplyAT || string(r.Line) != at {
		c.t.Fatalf("got  %q\nwant %q and places", r.Raw, at)
	}
	got := string(r.JSON)
	if n := strings.Count(got, `"name"`); n != results {
		c.t.Fatalf("%d results in %s, want %d", n, got, results)
	}
	return got
}

// expectClosed reads to EOF and checks that nothing more came.
func (c *client) expectClosed() {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	rest, err := io.ReadAll(c.rr)
	if err != nil && !isReset(err) {
		c.t.Fatalf("waiting for close: %v", err)
	}
	if len(rest) > 0 {
		c.t.Fatalf("unexpected data before close: %q", rest)
	}
}

func isReset(err error) bool { return err != nil && strings.Contains(err.Error(), "reset") }

// TestGraderExchange sends one line, half-closes and reads once: the whole
// reply must come in that read, and the server must close.
func TestGraderExchange(t *testing.T) {
	ts := newTestServer(t, Config{})
	c := dial(t, ts.Addr())
	c.send(kiwi + "\n")
	c.nc.CloseWrite()
	buf := make([]byte, 4096)
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.nc.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(buf[:n]); got != kiwiAT+"\n" {
		t.Fatalf("one read got %q", got)
	}
	c.expectClosed()
}

func TestLastLineWithoutNewline(t *testing.T) {
	ts := newTestServer(t, Config{})
	c := dial(t, ts.Addr())
	c.send(kiwi)
	c.nc.CloseWrite()
	c.expect(kiwiAT)
	c.expectClosed()
}

func TestTranscripts(t *testing.T) {
	tests := []struct {
		name string
		send string
		want []string
	}{
		{"iamat", kiwi + "\n", []string{kiwiAT}},
		{"crlf", kiwi + "\r\n", []string{kiwiAT}},
		{"whitespace runs", "  IAMAT\t kiwi.cs.ucla.edu \v+34.068930-118.445127\f 1621464827.959498503 \r\n", []string{kiwiAT}},
		{"stale iamat still answered", kiwi + "\nIAMAT kiwi.cs.ucla.edu +1+1 1\n",
			[]string{kiwiAT, "AT Hill +1621464827.223371889 kiwi.cs.ucla.edu +1+1 1"}},
		{"negative difference", "IAMAT k +1+1 1621464830.723371889\n", []string{"AT Hill -2.500000000 k +1+1 1621464830.723371889"}},
		{"blank lines get nothing", "\n \t\r\n" + kiwi + "\n", []string{kiwiAT}},
		{"invalid echoed", "IAMAT Clark +12-118\n", []string{"? IAMAT Clark +12-118"}},
		{"invalid keeps inner whitespace", "  FOO \t bar \r\n", []string{"?   FOO \t bar "}},
		{"invalid keeps a lone CR", "FOO\rbar\n", []string{"? FOO\rbar"}},
		{"AT from a client is refused", kiwiAT + "\n", []string{"? " + kiwiAT}},
		{"unknown whatsat client", "WHATSAT nobody 10 5\n", []string{"? WHATSAT nobody 10 5"}},
		{"bad whatsat radius", kiwi + "\nWHATSAT kiwi.cs.ucla.edu 51 5\n", []string{kiwiAT, "? WHATSAT kiwi.cs.ucla.edu 51 5"}},
		{"pipelined in order", kiwi + "\nBAD\nIAMAT k2 +1-1 1621464828.223371889\nWHATSAT\n",
			[]string{kiwiAT, "? BAD", "AT Hill +0.000000000 k2 +1-1 1621464828.223371889", "? WHATSAT"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, Config{})
			c := dial(t, ts.Addr())
			c.send(tt.send)
			for _, w := range tt.want {
				c.expect(w)
			}
			c.nc.CloseWrite()
			c.expectClosed()
		})
	}
}

func TestWhatsat(t *testing.T) {
	ts := newTestServer(t, Config{})
	c := dial(t, ts.Addr())
	c.send(kiwi + "\nWHATSAT kiwi.cs.ucla.edu 10 2\nWHATSAT kiwi.cs.ucla.edu 10 0\n" + kiwi + "\n")
	c.expect(kiwiAT)
	js := c.expectWhatsat(kiwiAT, 2)
	if !strings.Contains(js, `"status" : "OK"`) || strings.Contains(js, "\n\n") {
		t.Errorf("JSON: %s", js)
	}
	c.expectWhatsat(kiwiAT, 0)
	c.expect(kiwiAT)
	q := ts.places.queries[0]
	if q.Pos != "+34.068930-118.445127" || q.Lat != 34.06893 || q.Lng != -118.445127 || q.RadiusKm != 10 {
		t.Errorf("query %+v", q)
	}
}

// TestWhatsatShowsOriginAT: WHATSAT answers with the AT line of the server
// that first received the IAMAT, not its own.
func TestWhatsatShowsOriginAT(t *testing.T) {
	ts := newTestServer(t, Config{})
	testutil.Apply(ts.st, store.Record{Text: "k +1+1 100", Origin: "Smith", Recv: 100_500_000_000}, 1)
	c := dial(t, ts.Addr())
	c.send("WHATSAT k 1 1\n")
	c.expectWhatsat("AT Smith +0.500000000 k +1+1 100", 1)
}

func TestLineLimit(t *testing.T) {
	ts := newTestServer(t, Config{MaxLine: 100})
	c := dial(t, ts.Addr())
	exact := "IAMAT " + strings.Repeat("k", 100-len("IAMAT  +1+1 1")) + " +1+1 1"
	c.send(exact + "\r\n")
	c.expect("AT Hill +1621464827.223371889 " + exact[len("IAMAT "):])
	c.send(kiwi + "\n" + strings.Repeat("x", 101) + "\n")
	c.expect(kiwiAT)
	c.expectClosed() // the long line is not echoed
	testutil.Eventually(t, 5*time.Second, testutil.ValueIs(ts.m.ClientDisconnects.WithLabelValues(closeLineTooLong), 1))
}

func TestLineLimitWithoutNewline(t *testing.T) {
	ts := newTestServer(t, Config{MaxLine: 100})
	c := dial(t, ts.Addr())
	c.send(strings.Repeat("x", 10_000))
	c.expectClosed()
}

func TestIdleTimeout(t *testing.T) {
	ts := newTestServer(t, Config{IdleTimeout: 50 * time.Millisecond})
	c := dial(t, ts.Addr())
	c.send(kiwi + "\n")
	c.expect(kiwiAT)
	c.expectClosed()
	testutil.Eventually(t, 5*time.Second, testutil.ValueIs(ts.m.ClientDisconnects.WithLabelValues(closeIdle), 1))
}

// TestIdleTimeoutWaitsForLookup: a client waiting for a slow WHATSAT is
// not idle.
func TestIdleTimeoutWaitsForLookup(t *testing.T) {
	ts := newTestServer(t, Config{IdleTimeout: 20 * time.Millisecond})
	ts.places.gate = make(chan struct{})
	ts.places.started = make(chan struct{}, 1)
	c := dial(t, ts.Addr())
	c.send(kiwi + "\nWHATSAT kiwi.cs.ucla.edu 1 1\n")
	c.expect(kiwiAT)
	<-ts.places.started
	// Nothing to poll for: the point is that the connection survives
	// several idle periods while the lookup is held.
	<-time.After(10 * 20 * time.Millisecond)
	close(ts.places.gate)
	c.expectWhatsat(kiwiAT, 1)
}

// TestBusyConnectionIsNotIdle: the idle deadline is set once, not per
// read, and passes while a client is talking; the connection stays open,
// and closes as idle only a whole IdleTimeout after its last line. The
// client talks every twentieth of the time-out and the time-out is 2 s:
// at 300 ms, a loaded -race CI run held the client goroutine up for
// 750 ms between two lines, and the server was right to close.
func TestBusyConnectionIsNotIdle(t *testing.T) {
	t.Parallel()
	const idle = 2 * time.Second
	ts := newTestServer(t, Config{IdleTimeout: idle})
	c := dial(t, ts.Addr())
	for start := time.Now(); time.Since(start) < 3*idle; {
		c.send(kiwi + "\n")
		c.expect(kiwiAT)
		<-time.After(idle / 20) // pacing: a client with something to say every 100 ms
	}
	last := time.Now()
	c.send(kiwi + "\n")
	c.expect(kiwiAT)
	c.expectClosed()
	if waited := time.Since(last); waited < idle {
		t.Errorf("closed %v after the last line, before the idle time-out of %v", waited, idle)
	}
	// Counted just after the close the client saw.
	testutil.Eventually(t, 5*time.Second, testutil.ValueIs(ts.m.ClientDisconnects.WithLabelValues(closeIdle), 1))
}

// TestLineAcrossIdleDeadline: a line whose start came before the idle
// deadline passed and whose end came after is read whole. The deadline is
// set when the connection opens; half a line comes at half the time-out,
// the rest after the deadline has passed, and before the time-out has
// passed since the half. Each of the two comes a quarter of the time-out
// from the deadline it must miss: 500 ms. At a time-out of 1 s (250 ms),
// a -race run beside every other package once closed the connection as
// idle before the line ended.
func TestLineAcrossIdleDeadline(t *testing.T) {
	t.Parallel()
	const idle = 2 * time.Second
	ts := newTestServer(t, Config{IdleTimeout: idle})
	c := dial(t, ts.Addr())
	opened := time.Now()
	<-time.After(idle / 2)
	c.send(kiwi[:30])
	<-time.After(time.Until(opened.Add(idle + idle/4)))
	c.send(kiwi[30:] + "\n")
	c.expect(kiwiAT)
	if n := promtest.ToFloat64(ts.m.ClientDisconnects.WithLabelValues(closeIdle)); n != 0 {
		t.Errorf("%v idle disconnects, want 0", n)
	}
}

func TestMaxConns(t *testing.T) {
	ts := newTestServer(t, Config{MaxConns: 2})
	a, b := dial(t, ts.Addr()), dial(t, ts.Addr())
	a.send(kiwi + "\n")
	a.expect(kiwiAT)
	b.send(kiwi + "\n")
	b.expect(kiwiAT)
	c := dial(t, ts.Addr())
	c.expectClosed()
	if got := promtest.ToFloat64(ts.m.ClientRefused.WithLabelValues("max_conns")); got != 1 {
		t.Errorf("refused = %v", got)
	}
	a.send(kiwi + "\n")
	a.expect(kiwiAT)
}

func TestMaxConnsPerIP(t *testing.T) {
	ts := newTestServer(t, Config{MaxConnsPerIP: 2})
	a, b := dial(t, ts.Addr()), dial(t, ts.Addr())
	a.send(kiwi + "\n")
	a.expect(kiwiAT)
	b.send(kiwi + "\n")
	b.expect(kiwiAT)
	dial(t, ts.Addr()).expectClosed()
	// Another source address still gets in.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	nc, err := d.Dial("tcp", ts.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	other := &client{t: t, nc: nc.(*net.TCPConn), rr: protocol.NewReplyReader(nc)}
	other.send(kiwi + "\n")
	other.expect(kiwiAT)
	if got := promtest.ToFloat64(ts.m.ClientRefused.WithLabelValues(refusePerIP)); got != 1 {
		t.Errorf("per_ip refusals = %v", got)
	}
}

// TestInflightLimit: behind a slow WHATSAT, the server reads no further
// than MaxInflight requests owed a reply.
func TestInflightLimit(t *testing.T) {
	ts := newTestServer(t, Config{MaxInflight: 3})
	ts.places.gate = make(chan struct{})
	ts.places.started = make(chan struct{}, 1)
	c := dial(t, ts.Addr())
	c.send(kiwi + "\n")
	c.expect(kiwiAT)
	c.send("WHATSAT kiwi.cs.ucla.edu 1 1\nIAMAT a +1+1 1\nIAMAT b +1+1 1\nIAMAT c +1+1 1\nIAMAT d +1+1 1\n")
	<-ts.places.started
	waitStored(t, ts.st, "b")
	if _, ok := ts.st.Get("c"); ok {
		t.Fatal("the server read past the in-flight limit")
	}
	close(ts.places.gate)
	c.expectWhatsat(kiwiAT, 1)
	for _, id := range []string{"a", "b", "c", "d"} {
		c.expect("AT Hill +1621464827.223371889 " + id + " +1+1 1")
	}
}

// TestWriteTimeout: a client that never reads is disconnected once a
// write blocks for WriteTimeout, and others are served meanwhile.
func TestWriteTimeout(t *testing.T) {
	ts := newTestServerLog(t, Config{WriteTimeout: 200 * time.Millisecond}, slog.LevelWarn)
	// A reply far larger than socket buffers hold.
	huge, err := places.Parse([]byte(`{"results":[{"name":"` + strings.Repeat("x", 8<<20) + `"}],"status":"OK"}`))
	if err != nil {
		t.Fatal(err)
	}
	ts.places.resp = huge
	stuck := dial(t, ts.Addr())
	stuck.nc.SetReadBuffer(4096) // no autotuning up to tcp_rmem's maximum
	stuck.send(kiwi + "\nWHATSAT kiwi.cs.ucla.edu 1 1\n")
	other := dial(t, ts.Addr())
	testutil.Eventually(t, 5*time.Second, func() error {
		other.send(kiwi + "\n")
		other.expect(kiwiAT)
		if n := promtest.ToFloat64(ts.m.ClientDisconnects.WithLabelValues(closeWriteTimeout)); n != 1 {
			return fmt.Errorf("%v write_timeout disconnects, want 1", n)
		}
		return nil
	})
}

// TestWriteTimeoutCountsFromTheWrite: the write deadline is set again
// only every half WriteTimeout, so it can pass during a write that began
// less than WriteTimeout ago; that write goes on until its own time-out.
// The first reply sets the deadline at WriteTimeout; a huge reply begins
// 0.4 of it later, and its client reads it only after the first deadline,
// before the huge reply's own.
func TestWriteTimeoutCountsFromTheWrite(t *testing.T) {
	t.Parallel()
	const timeout = 2 * time.Second
	ts := newTestServerLog(t, Config{WriteTimeout: timeout}, slog.LevelWarn)
	huge, err := places.Parse([]byte(`{"results":[{"name":"` + strings.Repeat("x", 8<<20) + `"}],"status":"OK"}`))
	if err != nil {
		t.Fatal(err)
	}
	ts.places.resp = huge
	c := dial(t, ts.Addr())
	// No autotuning up to tcp_rmem's maximum: the reply fills this and the
	// server's send buffer (4 MiB at most), and the write waits. A buffer
	// far above the loopback's 64 KiB segments lets it go on at once.
	c.nc.SetReadBuffer(1 << 20)
	c.send(kiwi + "\n")
	c.expect(kiwiAT)
	first := time.Now()
	<-time.After(time.Until(first.Add(timeout * 2 / 5)))
	c.send("WHATSAT kiwi.cs.ucla.edu 1 1\n")
	<-time.After(time.Until(first.Add(timeout * 6 / 5)))
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	// Read as bytes: the reply reader would scan the 8 MB again at each read.
	var got []byte
	buf := make([]byte, 1<<20)
	for !bytes.HasSuffix(got, []byte("}\n\n")) {
		n, err := c.nc.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("read %d bytes of the reply: %v", len(got), err)
		}
	}
	if !bytes.HasPrefix(got, []byte(kiwiAT+"\n")) || len(got) < 8<<20 {
		t.Fatalf("read %d bytes, starting %q", len(got), got[:min(len(got), 100)])
	}
	if n := promtest.ToFloat64(ts.m.ClientDisconnects.WithLabelValues(closeWriteTimeout)); n != 0 {
		t.Errorf("%v write_timeout disconnects, want 0", n)
	}
}

// TestSlowPlacesDelaysNobodyElse holds a WHATSAT's lookup and shows that
// other clients, and the IAMATs behind it on its own connection, are
// stored and answered meanwhile.
func TestSlowPlacesDelaysNobodyElse(t *testing.T) {
	ts := newTestServer(t, Config{})
	ts.places.gate = make(chan struct{})
	ts.places.started = make(chan struct{}, 10)
	slow := dial(t, ts.Addr())
	slow.send(kiwi + "\nWHATSAT kiwi.cs.ucla.edu 10 1\nIAMAT behind +1+1 1621464828.223371889\n")
	slow.expect(kiwiAT)
	<-ts.places.started

	// The IAMAT queued behind the pending WHATSAT is already stored.
	waitStored(t, ts.st, "behind")

	other := dial(t, ts.Addr())
	other.send("IAMAT other +2+2 1621464828.223371889\n")
	other.expect("AT Hill +0.000000000 other +2+2 1621464828.223371889")

	close(ts.places.gate)
	slow.expectWhatsat(kiwiAT, 1)
	slow.expect("AT Hill +0.000000000 behind +1+1 1621464828.223371889")
}

// TestHeldPlacesAnsweredInOrder: a WHATSAT whose places are at hand is
// answered without a lookup, and still after a slow lookup before it.
func TestHeldPlacesAnsweredInOrder(t *testing.T) {
	ts := newTestServer(t, Config{})
	held, err := places.Parse([]byte(`{"html_attributions":[],"results":[{"name":"held"}],"status":"OK"}`))
	if err != nil {
		t.Fatal(err)
	}
	ts.places.held, ts.places.heldPos = held, "+1+1"
	c := dial(t, ts.Addr())
	c.send("IAMAT near +1+1 1621464828.223371889\nWHATSAT near 10 5\n")
	c.expect("AT Hill +0.000000000 near +1+1 1621464828.223371889")
	if js := c.expectWhatsat("AT Hill +0.000000000 near +1+1 1621464828.223371889", 1); !strings.Contains(js, `"held"`) {
		t.Errorf("JSON: %s", js)
	}
	if n := len(ts.places.queries); n != 0 {
		t.Fatalf("%d lookups for places at hand", n)
	}

	ts.places.gate = make(chan struct{})
	ts.places.started = make(chan struct{}, 10)
	c.send(kiwi + "\nWHATSAT kiwi.cs.ucla.edu 10 3\nWHATSAT near 10 1\nIAMAT after +2+2 1621464828.223371889\n")
	c.expect(kiwiAT)
	<-ts.places.started
	close(ts.places.gate)
	c.expectWhatsat(kiwiAT, 3)
	c.expectWhatsat("AT Hill +0.000000000 near +1+1 1621464828.223371889", 1)
	c.expect("AT Hill +0.000000000 after +2+2 1621464828.223371889")
	if got := promtest.ToFloat64(ts.m.ClientRequests.WithLabelValues("WHATSAT", "ok")); got != 3 {
		t.Errorf("%v WHATSATs counted", got)
	}
}

// TestPipelinedLookupsRunTogether: several WHATSATs on one connection are
// looked up concurrently, and answered in order.
func TestPipelinedLookupsRunTogether(t *testing.T) {
	ts := newTestServer(t, Config{MaxInflight: 4})
	ts.places.gate = make(chan struct{})
	ts.places.started = make(chan struct{}, 10)
	c := dial(t, ts.Addr())
	c.send(kiwi + "\n")
	c.expect(kiwiAT)
	c.send("WHATSAT kiwi.cs.ucla.edu 1 1\nWHATSAT kiwi.cs.ucla.edu 2 2\nWHATSAT kiwi.cs.ucla.edu 3 3\n")
	for range 3 {
		<-ts.places.started // all three started before any finished
	}
	close(ts.places.gate)
	c.expectWhatsat(kiwiAT, 1)
	c.expectWhatsat(kiwiAT, 2)
	c.expectWhatsat(kiwiAT, 3)
}

// TestShutdownFinishesRepliesInFlight starts a slow WHATSAT, shuts the
// server down, and still gets the reply before the close.
func TestShutdownFinishesRepliesInFlight(t *testing.T) {
	ts := newTestServer(t, Config{})
	ts.places.gate = make(chan struct{})
	ts.places.started = make(chan struct{}, 1)
	c := dial(t, ts.Addr())
	c.send(kiwi + "\nWHATSAT kiwi.cs.ucla.edu 10 1\n")
	c.expect(kiwiAT)
	<-ts.places.started
	shut := make(chan error, 1)
	go func() { shut <- ts.Shutdown(context.Background()) }()
	// New connections are refused once shutdown has begun.
	testutil.Eventually(t, 5*time.Second, func() error {
		nc, err := net.Dial("tcp", ts.Addr().String())
		if err != nil {
			return nil
		}
		nc.Close()
		return errors.New("the listener still accepts")
	})
	close(ts.places.gate)
	c.expectWhatsat(kiwiAT, 1)
	c.expectClosed()
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
}

// TestShutdownGivesUp: when the shutdown context ends, lookups are
// cancelled and connections closed.
func TestShutdownGivesUp(t *testing.T) {
	ts := newTestServer(t, Config{})
	ts.places.gate = make(chan struct{}) // never released
	ts.places.started = make(chan struct{}, 1)
	c := dial(t, ts.Addr())
	c.send(kiwi + "\nWHATSAT kiwi.cs.ucla.edu 10 1\n")
	c.expect(kiwiAT)
	<-ts.places.started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := ts.Shutdown(ctx); err == nil {
		t.Fatal("Shutdown returned nil with a lookup held")
	}
}

// failingListener is a listener whose Accept fails, as it does when the
// process is out of file descriptors, until it is closed.
type failingListener struct {
	accepts atomic.Int64
	closed  chan struct{}
}

func (l *failingListener) Accept() (net.Conn, error) {
	select {
	case <-l.closed:
		return nil, net.ErrClosed
	default:
		l.accepts.Add(1)
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errors.New("too many open files"))}
	}
}

func (l *failingListener) Close() error   { close(l.closed); return nil }
func (l *failingListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// TestShutdownEndsAcceptBackoff: Serve backs off from accept errors, and
// Shutdown ends its wait at once rather than after it.
func TestShutdownEndsAcceptBackoff(t *testing.T) {
	log := testutil.Logger(t, slog.LevelError)
	s := New(Config{Name: "Hill", MaxConns: 1, MaxConnsPerIP: 1, MaxInflight: 1, IdleTimeout: time.Minute, WriteTimeout: time.Minute},
		store.New(), &fakePlaces{}, metrics.New(), log, logging.SlogLines(log))
	ln := &failingListener{closed: make(chan struct{})}
	s.ln = ln
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	// The waits double from 5 ms: after the ninth failure, a second.
	testutil.Eventually(t, 5*time.Second, testutil.Holds("nine accept failures", func() bool { return ln.accepts.Load() >= 9 }))
	start := time.Now()
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("Serve returned %v after Shutdown, waiting out its back-off", took)
	}
}

func TestMetricsCountRequests(t *testing.T) {
	ts := newTestServer(t, Config{})
	c := dial(t, ts.Addr())
	c.send(kiwi + "\n" + kiwi + "\nIAMAT x\nWHATSAT kiwi.cs.ucla.edu 10 1\nHELLO\n")
	c.expect(kiwiAT)
	c.expect(kiwiAT)
	c.expect("? IAMAT x")
	c.expectWhatsat(kiwiAT, 1)
	c.expect("? HELLO")
	for _, tt := range []struct {
		command, outcome string
		want             float64
	}{{"IAMAT", "ok", 2}, {"IAMAT", "invalid", 1}, {"WHATSAT", "ok", 1}, {"other", "invalid", 1}} {
		if got := promtest.ToFloat64(ts.m.ClientRequests.WithLabelValues(tt.command, tt.outcome)); got != tt.want {
			t.Errorf("requests{%s,%s} = %v, want %v", tt.command, tt.outcome, got, tt.want)
		}
	}
	if got := promtest.ToFloat64(ts.m.StoreUpdates.WithLabelValues("client")); got != 1 {
		t.Errorf("updates = %v", got)
	}
	if got := promtest.ToFloat64(ts.m.StoreUpdatesDropped.WithLabelValues("client")); got != 1 {
		t.Errorf("dropped = %v", got)
	}
}

// waitStored waits until the store holds a record of client.
func waitStored(t *testing.T, st *store.Store, client string) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, func() error {
		if _, ok := st.Get(client); !ok {
			return fmt.Errorf("no record of %s stored", client)
		}
		return nil
	})
}

// TestReplyFollowsTheStore: IAMATs pipelined in one write are stored
// together, and none is answered before it is stored.
func TestReplyFollowsTheStore(t *testing.T) {
	ts := newTestServer(t, Config{})
	c := dial(t, ts.Addr())
	const n = 500
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "IAMAT c%d +34.068930-118.445127 1621464827.959498503\n", i)
	}
	c.send(b.String())
	for i := range n {
		if r := c.reply(protocol.LineReply); r.Kind != protocol.ReplyAT {
			t.Fatalf("reply %d: %q", i, r.Raw)
		}
		if _, ok := ts.st.Get(fmt.Sprintf("c%d", i)); !ok {
			t.Fatalf("c%d answered before it was stored", i)
		}
	}
	if got := promtest.ToFloat64(ts.m.StoreUpdates.WithLabelValues("client")); got != n {
		t.Errorf("updates = %v, want %d", got, n)
	}
}

// TestPartialLineHoldsNoReply: the complete lines before a line still
// being sent are answered without waiting for its end.
func TestPartialLineHoldsNoReply(t *testing.T) {
	ts := newTestServer(t, Config{})
	c := dial(t, ts.Addr())
	c.send(kiwi + "\nIAMAT kiwi.cs.ucla.edu +34.0689")
	c.expect(kiwiAT)
	c.send("30-118.445127 1621464827.959498503\n")
	c.expect(kiwiAT)
}

// countingConn counts the writes made to a connection.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// TestLongReadIsAnsweredInParts: with a large HERD_MAX_LINE one read can
// bring thousands of lines; the reader stores and answers them maxBatch
// IAMATs at a time rather than holding them all and the store's lock for
// the lot. net.Pipe hands the whole input to one read.
func TestLongReadIsAnsweredInParts(t *testing.T) {
	ts := newTestServerLog(t, Config{MaxLine: 1 << 20}, slog.LevelWarn)
	server, client := net.Pipe()
	defer client.Close()
	counted := &countingConn{Conn: server}
	c := ts.newConn(counted)
	if refused := ts.admit(c); refused != "" {
		t.Fatal(refused)
	}
	go c.serve()
	const n = 4 * maxBatch
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "IAMAT c%d +1+1 1\n", i)
	}
	go client.Write([]byte(b.String()))
	rr := protocol.NewReplyReader(client)
	for i := range n {
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		if r, err := rr.ReadReply(protocol.LineReply); err != nil || !bytes.HasPrefix(r.Line, []byte("AT Hill ")) {
			t.Fatalf("reply %d: %q %v", i, r.Raw, err)
		}
	}
	if w := counted.writes.Load(); w < n/maxBatch {
		t.Errorf("%d IAMATs of one read answered in %d writes, want at least %d", n, w, n/maxBatch)
	}
}

// reasons records the reason of every line of the protocol log that has
// one.
type reasons struct {
	mu  sync.Mutex
	got []string
}

func (r *reasons) Line(_ time.Time, _ uint64, _ string, in, _ []byte, key, value string) {
	if key == "reason" {
		r.mu.Lock()
		r.got = append(r.got, string(in)+": "+value)
		r.mu.Unlock()
	}
}

func (r *reasons) IAMATs(time.Time, uint64, string, []byte) {} // answered IAMATs have no reason

// TestTimeTooFarAhead: an IAMAT whose time is further ahead of the
// server's clock than MaxClockAhead is invalid, logged with its reason,
// and does not pin its client: a normal update is then stored.
func TestTimeTooFarAhead(t *testing.T) {
	lines := &reasons{}
	srv := newTestServerLines(t, Config{MaxConns: 10, MaxConnsPerIP: 10, MaxClockAhead: 24 * time.Hour}, slog.LevelInfo, lines)
	st, m := srv.st, srv.m

	// fixedNow is 1621464828.223371889; a day later is 1621551228.
	const (
		far       = "IAMAT x +34.068930-118.445127 9999999999.999999999"
		dayAndSec = "IAMAT y +1+1 1621551229"
		day       = "IAMAT y +1+1 1621551228.999999999"
	)
	c := dial(t, srv.Addr())
	c.send(far + "\n")
	c.expect("? " + far)
	c.send("IAMAT x +34.068930-118.445127 1621464827.959498503\n")
	c.expect("AT Hill +0.263873386 x +34.068930-118.445127 1621464827.959498503")
	if r, ok := st.Get("x"); !ok || r.Time() != "1621464827.959498503" {
		t.Fatalf("x holds %+v, %v after a normal update", r, ok)
	}
	c.send(dayAndSec + "\n" + day + "\n")
	c.expect("? " + dayAndSec)
	c.expect("AT Hill -86400.776628110 y +1+1 1621551228.999999999")
	if _, ok := st.Get("y"); !ok {
		t.Error("y, a day ahead to the second, was not stored")
	}
	if got := promtest.ToFloat64(m.ClientRequests.WithLabelValues("IAMAT", "invalid")); got != 2 {
		t.Errorf("IAMAT invalid = %v, want 2", got)
	}
	lines.mu.Lock()
	defer lines.mu.Unlock()
	if want := []string{far + ": " + reasonAhead, dayAndSec + ": " + reasonAhead}; fmt.Sprint(lines.got) != fmt.Sprint(want) {
		t.Errorf("protocol log reasons %q, want %q", lines.got, want)
	}
}
