package peer

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/topology"
)

func TestClaims(t *testing.T) {
	t0 := time.Unix(1000, 0)
	type step struct {
		at       time.Duration // after t0
		takeover [2]uint64     // from, to; zero for none
		linked   uint64        // an incarnation linked at this step
		episode  bool          // takeover's answer
		refused  map[uint64]bool
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"one takeover is a restart", []step{
			{takeover: [2]uint64{1, 2}, refused: map[uint64]bool{1: false, 2: false}},
		}},
		{"two within the window are two servers", []step{
			{takeover: [2]uint64{1, 2}},
			{at: time.Second, takeover: [2]uint64{2, 1}, episode: true, refused: map[uint64]bool{1: false, 2: true, 3: false}},
		}},
		{"two far apart are two restarts", []step{
			{takeover: [2]uint64{1, 2}},
			{at: duplicateWindow + time.Second, takeover: [2]uint64{2, 3}, refused: map[uint64]bool{1: false, 2: false, 3: false}},
		}},
		{"one episode at a time", []step{
			{takeover: [2]uint64{1, 2}},
			{at: time.Second, takeover: [2]uint64{2, 1}, episode: true},
			{at: 2 * time.Second, takeover: [2]uint64{1, 3}},
			{at: 3 * time.Second, takeover: [2]uint64{3, 1}, refused: map[uint64]bool{2: true}},
		}},
		{"refused while the one kept is linked", []step{
			{takeover: [2]uint64{1, 2}},
			{at: time.Second, takeover: [2]uint64{2, 1}, episode: true},
			{at: duplicateHold, linked: 1},
			{at: 2 * duplicateHold, refused: map[uint64]bool{2: true}},
		}},
		{"the episode ends once the one kept is gone", []step{
			{takeover: [2]uint64{1, 2}},
			{at: time.Second, takeover: [2]uint64{2, 1}, episode: true},
			{at: duplicateHold + 2*time.Second, refused: map[uint64]bool{2: false}},
			// and the next takeover starts afresh
			{at: duplicateHold + 3*time.Second, takeover: [2]uint64{2, 1}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c claims
			for i, s := range tc.steps {
				now := t0.Add(s.at)
				if s.takeover != [2]uint64{} {
					if got := c.takeover(s.takeover[0], s.takeover[1], now); got != s.episode {
						t.Fatalf("step %d: takeover %v = %v, want %v", i, s.takeover, got, s.episode)
					}
				}
				if s.linked != 0 {
					c.linked(s.linked, now)
				}
				for inc, want := range s.refused {
					if got := c.refused(inc, now); got != want {
						t.Errorf("step %d: refused(%d) = %v, want %v", i, inc, got, want)
					}
				}
			}
		})
	}
}

// TestDuplicateNameStopsFlapping starts two servers named Hill with a
// common neighbour, Jaquez. Jaquez logs the duplicate at ERROR naming it
// and both addresses, counts the episode, keeps the first Hill, refuses
// the second, and its link stops flapping.
func TestDuplicateNameStopsFlapping(t *testing.T) {
	lnJ, ln1, ln2 := listen(t), listen(t), listen(t)
	toJaquez := []topology.Peer{{Name: "Jaquez", Addr: lnJ.Addr().String()}}
	errors, secondErrors := &errorLog{}, &errorLog{}
	jaquez := runNode(t, "Jaquez", lnJ, []topology.Peer{{Name: "Hill", Addr: ln1.Addr().String()}}, testSecret, fastTimings,
		errors.logger(testLogger(t, "Jaquez")))
	hill := runNode(t, "Hill", ln1, toJaquez, testSecret, fastTimings, nil)
	testutil.Eventually(t, 10*time.Second, func() error {
		if !jaquez.mgr.Reconciled() || !hill.mgr.Reconciled() {
			return fmt.Errorf("Jaquez and Hill have not reconciled")
		}
		return nil
	})

	second := runNode(t, "Hill", ln2, toJaquez, testSecret, fastTimings, secondErrors.logger(testLogger(t, "Hill#2")))
	start := time.Now()
	dups := func() float64 { return promtest.ToFloat64(jaquez.m.PeerDuplicateNames.WithLabelValues("Hill")) }
	testutil.Eventually(t, 10*time.Second, testutil.ValueIs(jaquez.m.PeerDuplicateNames.WithLabelValues("Hill"), 1))
	t.Logf("duplicate detected after %v", time.Since(start).Round(time.Millisecond))
	rec, ok := errors.find("duplicate server name")
	if !ok || rec["peer"] != "Hill" || rec["kept_remote"] == "" || rec["refused_remote"] == "" ||
		rec["kept_remote"] == rec["refused_remote"] {
		t.Errorf("ERROR record %v, want one naming Hill and both remote addresses", rec)
	}

	// The link to the first Hill stays; the second is refused and told why.
	connects := func() float64 { return promtest.ToFloat64(jaquez.m.PeerConnects.WithLabelValues("Hill")) }
	testutil.Eventually(t, 10*time.Second, testutil.AtLeast(second.m.PeerHandshakeFailures.WithLabelValues(reasonDuplicateName), 2))
	before := connects()
	window := 100 * fastTimings.Heartbeat // flapping replaced the link several times a heartbeat
	deadline := time.Now().Add(window)
	for time.Now().Before(deadline) {
		if w := jaquez.mgr.Watermarks()["Hill"]; jaquez.mgr.Status()[0].Up && w.Incarnation != hill.mgr.Incarnation() {
			t.Fatalf("Jaquez linked to incarnation %x, not the first Hill's %x", w.Incarnation, hill.mgr.Incarnation())
		}
		time.Sleep(fastTimings.Heartbeat)
	}
	if got := connects() - before; got > 1 {
		t.Errorf("Jaquez's link to Hill came up %v times in %v after the duplicate was found", got, window)
	}
	if _, ok := secondErrors.find("the neighbour holds a link to another live server of this server's name"); !ok {
		t.Error("the second Hill logged no ERROR")
	}
	if n := dups(); n != 1 {
		t.Errorf("%v episodes counted, want 1", n)
	}
	if n := errors.count("duplicate server name"); n != 1 {
		t.Errorf("%d ERROR lines for one episode", n)
	}
}

// errorLog keeps the ERROR records a node logs; find and count match
// messages by prefix, with their attributes,
// and passes every record on to next.
type errorLog struct {
	mu   sync.Mutex
	recs []map[string]string
}

func (e *errorLog) find(msg string) (map[string]string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.recs {
		if strings.HasPrefix(r["msg"], msg) {
			return r, true
		}
	}
	return nil, false
}

func (e *errorLog) count(msg string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, r := range e.recs {
		if strings.HasPrefix(r["msg"], msg) {
			n++
		}
	}
	return n
}

// logger returns a logger that keeps its ERROR records in e and writes
// everything to next.
func (e *errorLog) logger(next *slog.Logger) *slog.Logger {
	return slog.New(captureHandler{log: e, next: next.Handler()})
}

type captureHandler struct {
	log   *errorLog
	attrs []slog.Attr
	next  slog.Handler
}

func (h captureHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h captureHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		rec := map[string]string{"msg": r.Message}
		for _, a := range h.attrs {
			rec[a.Key] = a.Value.String()
		}
		r.Attrs(func(a slog.Attr) bool {
			rec[a.Key] = a.Value.String()
			return true
		})
		h.log.mu.Lock()
		h.log.recs = append(h.log.recs, rec)
		h.log.mu.Unlock()
	}
	return h.next.Handle(ctx, r)
}

func (h captureHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return captureHandler{log: h.log, attrs: append(slices.Clip(h.attrs), attrs...), next: h.next.WithAttrs(attrs)}
}

func (h captureHandler) WithGroup(name string) slog.Handler {
	return captureHandler{log: h.log, attrs: h.attrs, next: h.next.WithGroup(name)}
}
