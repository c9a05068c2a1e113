package accept

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/herdkit/herd/internal/testutil"
)

// flaky is a listener whose Accept fails with EMFILE a given number of
// times, then serves the real listener's connections.
type flaky struct {
	net.Listener
	mu       sync.Mutex
	failures int
	calls    []time.Time
}

func (f *flaky) Accept() (net.Conn, error) {
	f.mu.Lock()
	f.calls = append(f.calls, time.Now())
	fail := f.failures > 0
	if fail {
		f.failures--
	}
	f.mu.Unlock()
	if fail {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	return f.Listener.Accept()
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func TestLoopReturnsWhenListenerCloses(t *testing.T) {
	ln := listen(t)
	conns := make(chan net.Conn, 1)
	returned := make(chan struct{})
	go func() {
		Loop(ln, nil, testutil.Logger(t, slog.LevelDebug), func(nc net.Conn) { conns <- nc })
		close(returned)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case nc := <-conns:
		nc.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the connection was not handed over")
	}
	ln.Close()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("Loop did not return after the listener closed")
	}
}

func TestLoopBacksOffFromErrors(t *testing.T) {
	f := &flaky{Listener: listen(t), failures: 4}
	conns := make(chan net.Conn, 1)
	go Loop(f, nil, testutil.Logger(t, slog.LevelDebug), func(nc net.Conn) { conns <- nc })
	c, err := net.Dial("tcp", f.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case nc := <-conns:
		nc.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("no connection after the errors passed")
	}
	f.mu.Lock()
	calls := f.calls
	f.mu.Unlock()
	// 5, 10, 20 and 40 ms between the five calls.
	for i, want := range []time.Duration{5, 10, 20, 40} {
		if gap := calls[i+1].Sub(calls[i]); gap < want*time.Millisecond {
			t.Errorf("retry %d came %v after the failure, want at least %v ms", i+1, gap, want)
		}
	}
	f.Close()
}

func TestLoopStopsWaitingOnDone(t *testing.T) {
	f := &flaky{Listener: listen(t), failures: 1 << 30}
	done := make(chan struct{})
	returned := make(chan struct{})
	go func() {
		Loop(f, done, testutil.Logger(t, slog.LevelDebug), func(nc net.Conn) { t.Error("no connection expected") })
		close(returned)
	}()
	// Let it fail long enough to be waiting close to a second.
	testutil.Eventually(t, 10*time.Second, func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.calls) < 9 {
			return errors.New("fewer than 9 accept calls")
		}
		return nil
	})
	start := time.Now()
	close(done)
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("Loop did not return when done closed")
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("Loop took %v to return: it slept out its back-off", d)
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
