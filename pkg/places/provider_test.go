package places

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herdkit/herd/pkg/config"
	"github.com/herdkit/herd/pkg/metrics"
	"github.com/prometheus/client_golang/prometheus/testutil"
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
			logs := newLogSink(t)
			p := Instrument(&fakeProvider{answer: func(Query) *Response { return tt.answer }}, m, logs.logger())
			ctx, cancel := context.WithCancel(bg)
			if tt.cancelled {
				cancel()
			}
			defer cancel()
			if r := p.Nearby(ctx, ucla); r != tt.answer {
				t.Error("the answer was changed")
			}
			if got := testutil.ToFloat64(m.PlacesRequests.WithLabelValues("fake", tt.label)); got != 1 {
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

func TestNew(t *testing.T) {
	f := newFakeGoogle(t)
	base := config.Config{
		PlacesTimeout: 5 * time.Second, PlacesMaxConcurrent: 8,
		PlacesCacheTTL: time.Minute, PlacesCacheSize: 100,
	}
	tests := []struct {
		name     string
		places   string
		key      string
		ttl      time.Duration
		provider string
		body     string
	}{
		{"auto without a key", config.PlacesAuto, "", time.Minute, "offline", ""},
		{"auto with a key", config.PlacesAuto, testKey, time.Minute, "google", testdata(t, "legacy-ok.json")},
		{"offline despite a key", config.PlacesOffline, testKey, time.Minute, "offline", ""},
		{"google", config.PlacesGoogle, testKey, time.Minute, "google", testdata(t, "legacy-ok.json")},
		{"google-new", config.PlacesGoogleNew, testKey, time.Minute, "google-new", testdata(t, "new-ok.json")},
		{"no cache", config.PlacesGoogle, testKey, 0, "google", testdata(t, "legacy-ok.json")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			cfg.Places, cfg.GoogleAPIKey, cfg.GoogleBaseURL, cfg.PlacesCacheTTL = tt.places, config.Secret(tt.key), f.srv.URL, tt.ttl
			m := metrics.New()
			f.set(reply(http.StatusOK, tt.body))
			p, err := New(cfg, m, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			if p.Name() != tt.provider {
				t.Errorf("Name %q, want %q", p.Name(), tt.provider)
			}
			if _, cached := p.(*Cache); cached != (tt.ttl > 0) {
				t.Errorf("cached %v with TTL %v", cached, tt.ttl)
			}
			ctx, cancel := context.WithTimeout(bg, time.Minute)
			defer cancel()
			select {
			case <-Ready(p):
			case <-ctx.Done():
				t.Fatal("not ready")
			}
			calls := f.calls.Load()
			for range 2 {
				if r := p.Nearby(ctx, ucla); r.Status != StatusOK {
					t.Fatalf("status %s %q", r.Status, r.ErrorMessage)
				}
			}
			wantCalls := 2
			if tt.ttl > 0 {
				wantCalls = 1
			}
			if got := testutil.ToFloat64(m.PlacesRequests.WithLabelValues(tt.provider, StatusOK)); got != float64(wantCalls) {
				t.Errorf("PlacesRequests{%s,OK} = %v, want %d", tt.provider, got, wantCalls)
			}
			if tt.provider != "offline" {
				if got := int(f.calls.Load() - calls); got != wantCalls {
					t.Errorf("%d upstream requests, want %d", got, wantCalls)
				}
				if got := f.last(t); got.query.Get("key") != tt.key && got.header.Get("X-Goog-Api-Key") != tt.key {
					t.Error("the key was not sent")
				}
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	base := config.Config{PlacesTimeout: time.Second, PlacesMaxConcurrent: 1, PlacesCacheTTL: time.Minute, PlacesCacheSize: 1}
	tests := []struct {
		name   string
		change func(*config.Config)
		want   string
	}{
		{"google without a key", func(c *config.Config) { c.Places = config.PlacesGoogle }, "HERD_GOOGLE_API_KEY"},
		{"google-new without a key", func(c *config.Config) { c.Places = config.PlacesGoogleNew }, "HERD_GOOGLE_API_KEY"},
		{"unknown provider", func(c *config.Config) { c.Places = "bing" }, "HERD_PLACES"},
		{"bad base URL", func(c *config.Config) {
			c.Places, c.GoogleAPIKey, c.GoogleBaseURL = config.PlacesGoogle, testKey, "gopher://x"
		}, "HERD_GOOGLE_BASE_URL"},
		{"no time-out", func(c *config.Config) {
			c.Places, c.GoogleAPIKey, c.PlacesTimeout = config.PlacesGoogle, testKey, 0
		}, "HERD_PLACES_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			tt.change(&cfg)
			_, err := New(cfg, metrics.New(), testLogger(t))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one naming %s", err, tt.want)
			}
			if strings.Contains(err.Error(), testKey) {
				t.Errorf("the key is in the error: %v", err)
			}
		})
	}
}
