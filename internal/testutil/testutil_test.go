package testutil

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fatalT records a Fatalf and ends its goroutine, as testing.T does.
type fatalT struct {
	testing.TB
	failure string
}

func (f *fatalT) Helper() {}

func (f *fatalT) Fatalf(format string, args ...any) {
	f.failure = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls Eventually with a fatalT and returns its failure, "" if none.
func run(within time.Duration, cond func() error) string {
	f := &fatalT{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Eventually(f, within, cond)
	}()
	<-done
	return f.failure
}

func TestEventually(t *testing.T) {
	tests := []struct {
		name    string
		holdsAt int // the call at which cond first holds; 0 for never
		within  time.Duration
		failure string
	}{
		{"at once", 1, time.Second, ""},
		{"after a few calls", 5, 5 * time.Second, ""},
		{"never", 0, 20 * time.Millisecond, "not within 20ms: 3 is not 0 yet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			got := run(tt.within, func() error {
				calls++
				if calls == tt.holdsAt {
					return nil
				}
				return errors.New("3 is not 0 yet")
			})
			if got != tt.failure {
				t.Errorf("failure %q, want %q", got, tt.failure)
			}
			if tt.holdsAt > 0 && calls != tt.holdsAt {
				t.Errorf("%d calls, want %d", calls, tt.holdsAt)
			}
		})
	}
}

// TestLogWriterAfterTheTest: a goroutine that logs after its test has
// ended does not make the test binary panic, and its record is kept.
func TestLogWriterAfterTheTest(t *testing.T) {
	var w *LogWriter
	t.Run("inner", func(t *testing.T) {
		w = NewLogWriter(t)
		w.Logger(slog.LevelInfo).Info("during", "n", 1)
	})
	w.Logger(slog.LevelInfo).Info("after")
	if s := w.String(); !strings.Contains(s, "msg=during n=1") || !strings.Contains(s, "msg=after") {
		t.Errorf("kept %q", s)
	}
	Logger(t, slog.LevelWarn).Info("not shown: below the level")
}

func TestBufferConcurrent(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("x"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if n := len(b.String()); n != 800 {
		t.Errorf("%d bytes, want 800", n)
	}
}

// registry holds a labelled counter, a gauge and a histogram.
func registry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "t_requests_total", Help: "Requests by reason (a, b)."}, []string{"peer", "reason"})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "t_up", Help: "Up."})
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "t_seconds", Help: "Durations."})
	r.MustRegister(c, g, h)
	c.WithLabelValues("A", "a").Add(2)
	c.WithLabelValues("A", "b").Add(3)
	c.WithLabelValues("B", "a").Add(5)
	g.Set(1)
	h.Observe(0.1)
	h.Observe(0.2)
	return r
}

func TestMetrics(t *testing.T) {
	srv := httptest.NewServer(promhttp.HandlerFor(registry(), promhttp.HandlerOpts{}))
	defer srv.Close()
	for name, m := range map[string]Metrics{
		"gathered": Gather(t, registry()),
		"scraped":  Scrape(t, srv.URL),
	} {
		t.Run(name, func(t *testing.T) {
			for _, c := range []struct {
				name   string
				labels []string
				want   float64
			}{
				{"t_requests_total", []string{"peer", "A", "reason", "b"}, 3},
				{"t_requests_total", []string{"reason", "a", "peer", "B"}, 5},
				{"t_requests_total", []string{"peer", "C"}, 0},
				{"t_up", nil, 1},
				{"t_seconds", nil, 2},
				{"t_absent", nil, 0},
			} {
				if got := m.Value(c.name, c.labels...); got != c.want {
					t.Errorf("Value(%s, %v) = %v, want %v", c.name, c.labels, got, c.want)
				}
			}
			if sum, n := m.Sum("t_requests_total", "reason", "a"); sum != 7 || n != 2 {
				t.Errorf("Sum = %v over %d, want 7 over 2", sum, n)
			}
			if h := m.Help("t_requests_total"); h != "Requests by reason (a, b)." {
				t.Errorf("Help = %q", h)
			}
			if s := m.Text("t_re"); !strings.Contains(s, `t_requests_total{peer="B",reason="a"} 5`) || strings.Contains(s, "t_up") {
				t.Errorf("Text:\n%s", s)
			}
		})
	}
	if _, err := Fetch(srv.URL + "/nothing\x7f"); err == nil {
		t.Error("Fetch of a bad URL: no error")
	}
}

func TestFreeLoopbackAddrs(t *testing.T) {
	addrs := FreeLoopbackAddrs(t, 3)
	seen := map[string]bool{}
	for _, a := range addrs {
		if seen[a] || !strings.HasPrefix(a, "127.0.0.1:") {
			t.Errorf("addresses %v", addrs)
		}
		seen[a] = true
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("%s is not free: %v", a, err)
		}
		ln.Close()
	}
}

func TestFreePortBase(t *testing.T) {
	base := FreePortBase(t, 25)
	if base < portLow || base+25 > portHigh {
		t.Fatalf("base %d outside [%d, %d)", base, portLow, portHigh)
	}
	if !free(base, 25) {
		t.Errorf("ports from %d are not free", base)
	}
}

func TestTmpfs(t *testing.T) {
	dir := Tmpfs(t, "64k")
	ResizeTmpfs(t, dir, "128k")
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if got := st.Blocks * uint64(st.Bsize); got != 128<<10 {
		t.Errorf("tmpfs of %d bytes, want 128 KiB", got)
	}
}

func TestValueConditions(t *testing.T) {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "c_total", Help: "C."})
	c.Add(2)
	for _, tt := range []struct {
		name string
		cond func() error
		ok   bool
	}{
		{"is 2", ValueIs(c, 2), true},
		{"is 3", ValueIs(c, 3), false},
		{"at least 1", AtLeast(c, 1), true},
		{"at least 2", AtLeast(c, 2), true},
		{"at least 3", AtLeast(c, 3), false},
	} {
		if err := tt.cond(); (err == nil) != tt.ok {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}
