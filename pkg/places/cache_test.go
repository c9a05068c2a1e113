package places

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/metrics"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeProvider counts its calls and, when gated, holds each until the
// gate opens or its context is done (unless stubborn, when it ignores
// the context).
type fakeProvider struct {
	calls     atomic.Int32
	cancelled atomic.Int32
	gate      chan struct{}
	stubborn  bool
	started   chan context.Context
	answer    func(q Query) *Response
}

func (f *fakeProvider) Name() string { return "fake" }

func (f *fakeProvider) Nearby(ctx context.Context, q Query) *Response {
	f.calls.Add(1)
	if f.started != nil {
		f.started <- ctx
	}
	if f.gate != nil {
		if f.stubborn {
			<-f.gate
		} else {
			select {
			case <-f.gate:
			case <-ctx.Done():
				f.cancelled.Add(1)
				return Failure(StatusUnknownError, "places: request cancelled")
			}
		}
	}
	if f.answer != nil {
		return f.answer(q)
	}
	return okAnswer(q)
}

// okAnswer is an OK answer with three results naming the query.
func okAnswer(q Query) *Response {
	var results []string
	for i := range 3 {
		results = append(results, fmt.Sprintf(`{"name":"%s %g #%d"}`, q.Pos, q.RadiusKm, i))
	}
	r, err := Parse([]byte(`{"html_attributions":[],"results":[` + strings.Join(results, ",") + `],"status":"OK"}`))
	if err != nil {
		panic(err)
	}
	return r
}

// clock is a test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newTestCache(p Provider, ttl time.Duration, size int) (*Cache, *metrics.Metrics, *clock) {
	m := metrics.New()
	c := NewCache(p, ttl, size, m)
	clk := &clock{now: time.Date(2021, 5, 19, 22, 53, 47, 0, time.UTC)}
	c.now = clk.Now
	return c, m, clk
}

func q(pos string, km float64) Query { return Query{Pos: pos, RadiusKm: km} }

// cacheCounts is hits, misses, shared and entries.
func cacheCounts(m *metrics.Metrics) [4]float64 {
	return [4]float64{promtest.ToFloat64(m.PlacesCacheHits), promtest.ToFloat64(m.PlacesCacheMisses),
		promtest.ToFloat64(m.PlacesCacheShared), promtest.ToFloat64(m.PlacesCacheEntries)}
}

func TestCacheHits(t *testing.T) {
	p := &fakeProvider{}
	c, m, _ := newTestCache(p, time.Minute, 100)
	steps := []struct {
		q     Query
		calls int32
		hit   bool
	}{
		{q("+34-118", 10), 1, false},
		{q("+34-118", 10), 1, true},
		{q("+34-118", 10.0), 1, true},
		{q("+34-118", 5), 2, false},    // another radius
		{q("+34.0-118", 10), 3, false}, // another position text
		{q("+34-118", 5), 3, true},
		{q("+34.0-118", 10), 3, true},
	}
	for i, s := range steps {
		r := c.Nearby(bg, s.q)
		if want := okAnswer(s.q); string(r.AppendJSON(nil, 20)) != string(want.AppendJSON(nil, 20)) {
			t.Errorf("step %d: wrong answer %s", i, r.AppendJSON(nil, 20))
		}
		if got := p.calls.Load(); got != s.calls {
			t.Errorf("step %d: %d provider calls, want %d", i, got, s.calls)
		}
	}
	if got, want := cacheCounts(m), [4]float64{4, 3, 0, 3}; got != want {
		t.Errorf("hits, misses, shared, entries %v, want %v", got, want)
	}
	// One answer serves every bound.
	r := c.Nearby(bg, q("+34-118", 10))
	for bound := range 4 {
		var v struct{ Results []any }
		decodeJSON(t, r.AppendJSON(nil, bound), &v)
		if len(v.Results) != bound {
			t.Errorf("bound %d: %d results", bound, len(v.Results))
		}
	}
	if c.Name() != "fake" {
		t.Errorf("Name %q", c.Name())
	}
}

// TestCachePeek: Peek answers what Nearby would from the cache, counting
// a hit, and otherwise calls nothing and counts nothing.
func TestCachePeek(t *testing.T) {
	p := &fakeProvider{gate: make(chan struct{})}
	c, m, clk := newTestCache(p, time.Minute, 100)
	var _ Peeker = c
	peek := func(step string, want *Response) {
		t.Helper()
		r, ok := c.Peek(ucla)
		if r != want || ok != (want != nil) {
			t.Errorf("%s: Peek = %v, %v; want %v", step, r, ok, want)
		}
	}
	peek("empty", nil)
	// A call in flight is not at hand.
	answered := make(chan *Response)
	go func() { answered <- c.Nearby(bg, ucla) }()
	testutil.Eventually(t, 10*time.Second, func() error {
		if n := p.calls.Load(); n != 1 {
			return fmt.Errorf("%d provider calls, want 1", n)
		}
		return nil
	})
	peek("call in flight", nil)
	close(p.gate)
	r := <-answered
	peek("answered", r)
	if got, want := cacheCounts(m), [4]float64{1, 1, 0, 1}; got != want {
		t.Errorf("hits, misses, shared, entries %v, want %v", got, want)
	}
	clk.advance(time.Minute)
	peek("expired", nil)
	if got, want := cacheCounts(m), [4]float64{1, 1, 0, 0}; got != want {
		t.Errorf("after expiry: hits, misses, shared, entries %v, want %v", got, want)
	}
	if got := p.calls.Load(); got != 1 {
		t.Errorf("%d provider calls, want 1", got)
	}
}

// TestCacheShared sends 50 identical queries at once: one provider call.
func TestCacheShared(t *testing.T) {
	p := &fakeProvider{gate: make(chan struct{})}
	c, m, _ := newTestCache(p, time.Minute, 100)
	const n = 50
	answers := make(chan *Response, n)
	for range n {
		go func() { answers <- c.Nearby(bg, ucla) }()
	}
	testutil.Eventually(t, 10*time.Second, testutil.ValueIs(m.PlacesCacheShared, n-1))
	close(p.gate)
	first := <-answers
	for range n - 1 {
		if r := <-answers; r != first {
			t.Fatal("lookups got different answers")
		}
	}
	if first.Status != StatusOK {
		t.Errorf("status %s", first.Status)
	}
	if got := p.calls.Load(); got != 1 {
		t.Errorf("%d provider calls for %d identical queries, want 1", got, n)
	}
	c.Nearby(bg, ucla)
	if got, want := cacheCounts(m), [4]float64{1, n, n - 1, 1}; got != want {
		t.Errorf("hits, misses, shared, entries %v, want %v", got, want)
	}
}

func TestCacheTTL(t *testing.T) {
	p := &fakeProvider{}
	c, m, clk := newTestCache(p, time.Minute, 100)
	steps := []struct {
		advance time.Duration
		calls   int32
	}{
		{0, 1},
		{time.Minute - time.Nanosecond, 1}, // still fresh
		{time.Nanosecond, 2},               // expired at exactly the TTL
		{30 * time.Second, 2},              // the new answer is fresh
		{30 * time.Second, 3},
	}
	for i, s := range steps {
		clk.advance(s.advance)
		c.Nearby(bg, ucla)
		if got := p.calls.Load(); got != s.calls {
			t.Errorf("step %d: %d provider calls, want %d", i, got, s.calls)
		}
	}
	if got := promtest.ToFloat64(m.PlacesCacheEntries); got != 1 {
		t.Errorf("%v entries, want 1", got)
	}
	// Expired entries at the back are dropped when an answer is stored.
	c.Nearby(bg, q("a", 1))
	clk.advance(2 * time.Minute)
	c.Nearby(bg, q("b", 1))
	if got := c.Len(); got != 1 {
		t.Errorf("%d entries after the others expired, want 1", got)
	}
}

func TestCacheSizeBound(t *testing.T) {
	p := &fakeProvider{}
	c, m, _ := newTestCache(p, time.Hour, 3)
	steps := []struct {
		pos   string
		calls int32
	}{
		{"a", 1}, {"b", 2}, {"c", 3},
		{"a", 3}, // a is now the most recently used
		{"d", 4}, // evicts b, the least recently used
		{"a", 4}, {"c", 4}, {"d", 4},
		{"b", 5}, // evicts a
		{"a", 6},
	}
	for i, s := range steps {
		c.Nearby(bg, q(s.pos, 1))
		if got := p.calls.Load(); got != s.calls {
			t.Errorf("step %d (%s): %d provider calls, want %d", i, s.pos, got, s.calls)
		}
		if got := c.Len(); got > 3 {
			t.Errorf("step %d: %d entries", i, got)
		}
	}
	if got := promtest.ToFloat64(m.PlacesCacheEntries); got != 3 {
		t.Errorf("%v entries, want 3", got)
	}
}

func TestCacheKeepsOnlyAnswers(t *testing.T) {
	tests := []struct {
		status string
		kept   bool
	}{
		{StatusOK, true}, {StatusZeroResults, true},
		{StatusOverQueryLimit, false}, {StatusRequestDenied, false},
		{StatusInvalidRequest, false}, {StatusUnknownError, false},
	}
	for _, tt := range tests {
		t.Run(tt.status, func(t *testing.T) {
			p := &fakeProvider{answer: func(Query) *Response { return Failure(tt.status, "") }}
			c, _, _ := newTestCache(p, time.Hour, 10)
			c.Nearby(bg, ucla)
			if r := c.Nearby(bg, ucla); r.Status != tt.status {
				t.Errorf("status %s", r.Status)
			}
			if got, want := p.calls.Load() == 1, tt.kept; got != want {
				t.Errorf("kept %v, want %v", got, want)
			}
		})
	}
}

// TestCacheCancellation checks the reference counting of a shared call:
// it survives the caller that started it, is cancelled when the last
// waiter goes, and every waiter returns when its own context is done.
func TestCacheCancellation(t *testing.T) {
	t.Run("first caller leaves", func(t *testing.T) {
		p := &fakeProvider{gate: make(chan struct{}), started: make(chan context.Context, 1)}
		c, m, _ := newTestCache(p, time.Hour, 10)
		ctx1, cancel1 := context.WithCancel(bg)
		first := make(chan *Response)
		go func() { first <- c.Nearby(ctx1, ucla) }()
		upstream := <-p.started
		second := make(chan *Response)
		go func() { second <- c.Nearby(bg, ucla) }()
		testutil.Eventually(t, 10*time.Second, testutil.ValueIs(m.PlacesCacheShared, 1))
		cancel1()
		checkAnswer(t, <-first, StatusUnknownError, 0, "request cancelled")
		if upstream.Err() != nil {
			t.Fatal("the shared call was cancelled while a waiter remained")
		}
		close(p.gate)
		checkAnswer(t, <-second, StatusOK, 3, "")
		if r := c.Nearby(bg, ucla); r.Status != StatusOK || p.calls.Load() != 1 {
			t.Errorf("status %s after %d calls; the answer was not cached", r.Status, p.calls.Load())
		}
	})
	t.Run("every caller leaves", func(t *testing.T) {
		p := &fakeProvider{gate: make(chan struct{}), started: make(chan context.Context, 2)}
		c, m, _ := newTestCache(p, time.Hour, 10)
		var cancels []context.CancelFunc
		answers := make(chan *Response)
		for range 3 {
			ctx, cancel := context.WithCancel(bg)
			cancels = append(cancels, cancel)
			go func() { answers <- c.Nearby(ctx, ucla) }()
		}
		upstream := <-p.started
		testutil.Eventually(t, 10*time.Second, testutil.ValueIs(m.PlacesCacheShared, 2))
		for i, cancel := range cancels {
			cancel()
			checkAnswer(t, <-answers, StatusUnknownError, 0, "request cancelled")
			if last := i == len(cancels)-1; (upstream.Err() != nil) != last {
				t.Fatalf("after %d of 3 left, shared call cancelled: %v", i+1, upstream.Err())
			}
		}
		testutil.Eventually(t, 10*time.Second, func() error {
			if n := p.cancelled.Load(); n != 1 {
				return fmt.Errorf("the provider saw %d cancellations, want 1", n)
			}
			return nil
		})
		// A new lookup starts afresh instead of joining the cancelled call.
		close(p.gate)
		checkAnswer(t, c.Nearby(bg, ucla), StatusOK, 3, "")
		if got := p.calls.Load(); got != 2 {
			t.Errorf("%d provider calls, want 2", got)
		}
	})
	t.Run("provider ignores its context", func(t *testing.T) {
		p := &fakeProvider{gate: make(chan struct{}), stubborn: true, started: make(chan context.Context, 1)}
		c, _, _ := newTestCache(p, time.Hour, 10)
		ctx, cancel := context.WithCancel(bg)
		answer := make(chan *Response)
		go func() { answer <- c.Nearby(ctx, ucla) }()
		<-p.started
		cancel()
		checkAnswer(t, <-answer, StatusUnknownError, 0, "request cancelled")
		close(p.gate)
	})
	t.Run("context values reach the provider", func(t *testing.T) {
		type key struct{}
		p := &fakeProvider{started: make(chan context.Context, 1)}
		c, _, _ := newTestCache(p, time.Hour, 10)
		c.Nearby(context.WithValue(bg, key{}, "v"), ucla)
		if got := (<-p.started).Value(key{}); got != "v" {
			t.Errorf("value %v", got)
		}
	})
}

// loadingProvider is a provider with a Ready channel, as the offline one
// has while its data loads.
type loadingProvider struct {
	fakeProvider
	ready chan struct{}
}

func (l *loadingProvider) Ready() <-chan struct{} { return l.ready }

func TestReadyThroughWrappers(t *testing.T) {
	loading := &loadingProvider{ready: make(chan struct{})}
	m := metrics.New()
	wrapped := NewCache(Instrument(loading, m, discard), time.Minute, 10, m)
	select {
	case <-Ready(wrapped):
		t.Fatal("ready while loading")
	default:
	}
	close(loading.ready)
	select {
	case <-Ready(wrapped):
	default:
		t.Fatal("not ready after loading")
	}
	select {
	case <-Ready(&fakeProvider{}):
	default:
		t.Fatal("a provider without Ready is not ready")
	}
}
