package places

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/metrics"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
)

// durationCount returns the number of PlacesDuration samples for provider.
func durationCount(t *testing.T, m *metrics.Metrics, provider string) uint64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "herd_places_request_duration_seconds" {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "provider" && l.GetValue() == provider {
					return s.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

func TestInstrument(t *testing.T) {
	tests := []struct {
		name      string
		answer    *Response
		cancelled bool
		label     string
		level     string // of the log line; "" for none
	}{
		{"OK", okAnswer(ucla), false, "OK", ""},
		{"ZERO_RESULTS", Failure(StatusZeroResults, ""), false, "ZERO_RESULTS", ""},
		{"OVER_QUERY_LIMIT", Failure(StatusOverQueryLimit, "quota"), false, "OVER_QUERY_LIMIT", "WARN"},
		{"UNKNOWN_ERROR", Failure(StatusUnknownError, "places: google did not answer within 5s"), false, "UNKNOWN_ERROR", "WARN"},
		{"caller gave up", Failure(StatusUnknownError, "places: request cancelled"), true, "UNKNOWN_ERROR", "DEBUG"},
		{"unknown status", Failure("SOMETHING_NEW", "?"), false, "OTHER", "WARN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := metrics.New()
			logs := testutil.NewLogWriter(t)
			p := Instrument(&fakeProvider{answer: func(Query) *Response { return tt.answer }}, m, logs.Logger(slog.LevelDebug))
			ctx, cancel := context.WithCancel(bg)
			if tt.cancelled {
				cancel()
			}
			defer cancel()
			if r := p.Nearby(ctx, ucla); r != tt.answer {
				t.Error("the answer was changed")
			}
			if got := promtest.ToFloat64(m.PlacesRequests.WithLabelValues("fake", tt.label)); got != 1 {
				t.Errorf("PlacesRequests{fake,%s} = %v", tt.label, got)
			}
			if got := durationCount(t, m, "fake"); got != 1 {
				t.Errorf("%d duration samples", got)
			}
			log := logs.String()
			if tt.level == "" {
				if log != "" {
					t.Errorf("logged %s", log)
				}
				return
			}
			for _, want := range []string{"level=" + tt.level, "component=places", "provider=fake", "status=" + tt.answer.Status} {
				if !strings.Contains(log, want) {
					t.Errorf("log %q lacks %q", log, want)
				}
			}
			if !strings.Contains(log, tt.answer.ErrorMessage) {
				t.Errorf("log %q lacks the message", log)
			}
		})
	}
}

// TestWrap: a wrapped provider is counted and, unless the TTL is 0,
// cached, so that the second identical query does not reach it.
func TestWrap(t *testing.T) {
	for _, tt := range []struct {
		name  string
		cfg   Config
		calls int32
	}{
		{"cached", Config{CacheTTL: time.Minute, CacheSize: 10}, 1},
		{"no cache", Config{CacheTTL: 0, CacheSize: 10}, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeProvider{}
			m := metrics.New()
			p := Wrap(f, tt.cfg, m, discard)
			if _, cached := p.(*Cache); cached != (tt.cfg.CacheTTL > 0) {
				t.Errorf("cached %v with TTL %v", cached, tt.cfg.CacheTTL)
			}
			for range 2 {
				if r := p.Nearby(bg, ucla); r.Status != StatusOK {
					t.Fatalf("status %s", r.Status)
				}
			}
			if got := f.calls.Load(); got != tt.calls {
				t.Errorf("%d provider calls, want %d", got, tt.calls)
			}
			if got := promtest.ToFloat64(m.PlacesRequests.WithLabelValues("fake", StatusOK)); got != float64(tt.calls) {
				t.Errorf("PlacesRequests{fake,OK} = %v, want %d", got, tt.calls)
			}
		})
	}
}
