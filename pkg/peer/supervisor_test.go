package peer

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/metrics"
	"github.com/herdkit/herd/pkg/store"
	"github.com/herdkit/herd/pkg/topology"
)

// TestSupervisorEvents drives a neighbour's supervisor by hand, one event
// method at a time, and checks its back-off count, whether a redial waits
// or a dial is out, and what it logged at WARN and ERROR.
func TestSupervisorEvents(t *testing.T) {
	refused := errors.New("dial tcp 192.0.2.1:1: connect: connection refused")
	timedOut := errors.New("dial tcp 192.0.2.1:1: i/o timeout")
	lasting := 2 * fastTimings.BackoffMax
	tests := []struct {
		name     string
		steps    []step
		failures int  // the back-off's count after
		retry    bool // a redial waits
		dialing  bool // a dial is out
		linked   bool // a link is current
		warns    int  // lines logged at WARN
		errors   int  // and at ERROR
	}{
		{name: "failed dials count, each waiting longer, the same error logged once",
			steps:    []step{dialFails(refused), dialFails(refused), dialFails(refused)},
			failures: 3, retry: true, warns: 1},
		{name: "a new error is logged at once",
			steps:    []step{dialFails(refused), dialFails(timedOut), dialFails(refused)},
			failures: 3, retry: true, warns: 3},
		{name: "a link that lasted starts the back-off again",
			steps:    []step{dialFails(refused), dialFails(refused), linkUp, linkEnds(lasting)},
			failures: 0, retry: true, warns: 1},
		{name: "a link that dropped at once counts as a failure",
			steps:    []step{dialFails(refused), dialFails(refused), linkUp, linkEnds(0)},
			failures: 3, retry: true, warns: 1},
		{name: "the duplicate race is not a failure",
			steps:    []step{dialFails(refused), dialFails(refusedBy("B", reasonDuplicate))},
			failures: 1, retry: true, warns: 1},
		{name: "a failed dial while linked is counted, at DEBUG, and not retried",
			steps:    []step{linkUp, dialFails(refused)},
			failures: 1, linked: true},
		{name: "a link that ends while a dial is out waits for its outcome",
			steps:   []step{linkUp, dialStarts, linkEnds(0)},
			dialing: true},
		{name: "a duplicate name the neighbour holds is an ERROR",
			steps:    []step{dialFails(refusedBy("B", reasonDuplicateName)), dialFails(refusedBy("B", reasonDuplicateName))},
			failures: 2, retry: true, errors: 1},
		{name: "a duplicate name refused here is at DEBUG: its episode was logged",
			steps:    []step{dialFails(refuse(reasonDuplicateName, "incarnation 2 refused"))},
			failures: 1, retry: true},
		{name: "the retry dials while nothing is linked",
			steps:    []step{dialFails(refused), retryDue},
			failures: 1, dialing: true, warns: 1},
		{name: "the retry does nothing once linked",
			steps:  []step{dialFails(refused), linkUp, retryDue},
			linked: true, failures: 1, warns: 1},
		{name: "shutdown closes the link",
			steps: []step{linkUp, shutdown}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := testutil.NewLogWriter(t)
			mg := testManager(t, logs.Logger(slog.LevelDebug))
			s := newSupervisor(mg.ctx, mg.neighbours[0])
			defer s.timer.Stop()
			for _, do := range tt.steps {
				do(t, s)
			}
			if got := s.wait.Failures(); got != tt.failures {
				t.Errorf("%d failures counted, want %d", got, tt.failures)
			}
			if got := s.retry != nil; got != tt.retry {
				t.Errorf("a redial waits: %v, want %v", got, tt.retry)
			}
			if s.dialing != tt.dialing {
				t.Errorf("dialing %v, want %v", s.dialing, tt.dialing)
			}
			if got := s.cur != nil && s.n.current.Load() == s.cur; got != tt.linked {
				t.Errorf("linked %v, want %v", got, tt.linked)
			}
			if got := strings.Count(logs.String(), "level=WARN"); got != tt.warns {
				t.Errorf("%d lines at WARN, want %d", got, tt.warns)
			}
			if got := strings.Count(logs.String(), "level=ERROR"); got != tt.errors {
				t.Errorf("%d lines at ERROR, want %d", got, tt.errors)
			}
		})
	}
}

// TestSupervisorLinkEndedRedialsSoon: after a link that lasted, the redial
// waits the base back-off, however many failures came before it.
func TestSupervisorLinkEndedRedialsSoon(t *testing.T) {
	mg := testManager(t, testLogger(t, "A"))
	mg.cfg.BackoffMax = time.Hour // a failure's wait would fail the test
	s := newSupervisor(mg.ctx, mg.neighbours[0])
	defer s.timer.Stop()
	for range 20 {
		s.wait.Next()
	}
	linkUp(t, s)
	linkEnds(time.Hour+time.Second)(t, s)
	select {
	case <-s.retry:
	case <-time.After(10 * time.Second):
		t.Fatal("no redial within 10 s of a link that lasted")
	}
}

// A step is one event handed to a supervisor under test.
type step func(t *testing.T, s *supervisor)

// dialFails hands the supervisor a dial that failed with err.
func dialFails(err error) step {
	return func(t *testing.T, s *supervisor) {
		s.dialing = true
		s.dialFailed(err)
	}
}

// dialStarts notes a dial under way, without starting one.
func dialStarts(t *testing.T, s *supervisor) { s.dialing = true }

// linkUp offers the supervisor a link from the accept side, which it must
// adopt.
func linkUp(t *testing.T, s *supervisor) {
	if refusal := s.offered(testLink(t, s.n, 2)); refusal != "" {
		t.Fatalf("link refused: %s", refusal)
	}
}

// linkEnds ends the current link as if it had been up for upFor.
func linkEnds(upFor time.Duration) step {
	return func(t *testing.T, s *supervisor) {
		s.upSince = time.Now().Add(-upFor)
		s.cur.close(downEOF)
		<-s.cur.done
		s.linkEnded()
	}
}

func retryDue(t *testing.T, s *supervisor) { s.retryDue() }

func shutdown(t *testing.T, s *supervisor) {
	s.shutdown()
	if got := promtest.ToFloat64(s.n.mgr.metrics.PeerDisconnects.WithLabelValues("B", downShutdown)); got != 1 {
		t.Errorf("%v disconnects for shutdown counted, want 1", got)
	}
}

// testManager returns a manager of server A with the one neighbour B, not
// started, whose dials fail at once: a test drives its parts by hand.
func testManager(t *testing.T, log *slog.Logger) *Manager {
	cfg := fastTimings
	cfg.Name, cfg.Secret = "A", testSecret
	cfg.Neighbours = []topology.Peer{{Name: "B", Addr: "192.0.2.1:1"}}
	cfg.Dial = func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("this test dials nothing")
	}
	mg := New(cfg, store.New(), metrics.New(), log)
	t.Cleanup(mg.Close)
	return mg
}

// testLink returns a link to incarnation inc of n on a fakeConn, not
// running: it is done as soon as it is closed, and closed at the end of
// the test.
func testLink(t *testing.T, n *neighbour, inc uint64) *link {
	l := newLink(n, &fakeConn{}, nil, hello{name: n.name, inc: inc, nonce: newNonce()}, false)
	go func() {
		<-l.stop
		close(l.done)
	}()
	t.Cleanup(func() { l.close(downShutdown) })
	return l
}

// fakeConn is a connection that keeps what is written to it, or fails
// every write; what a link does not call panics.
type fakeConn struct {
	net.Conn
	fail bool

	mu      sync.Mutex
	written []byte
}

func (c *fakeConn) Write(b []byte) (int, error) {
	if c.fail {
		return 0, errors.New("fakeConn: write failed")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.written = append(c.written, b...)
	return len(b), nil
}

// take returns what was written since the last take.
func (c *fakeConn) take() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := string(c.written)
	c.written = c.written[:0]
	return s
}

func (c *fakeConn) SetWriteDeadline(time.Time) error { return nil }
func (c *fakeConn) Close() error                     { return nil }
func (c *fakeConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1} }
