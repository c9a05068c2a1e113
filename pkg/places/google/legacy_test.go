package google

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/metrics"
	"github.com/herdkit/herd/pkg/places/placestest"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/herdkit/herd/pkg/places"
)

func TestGoogleRequest(t *testing.T) {
	f := newFakeGoogle(t)
	f.set(reply(http.StatusOK, testdata(t, "legacy-zero-results.json")))
	tests := []struct {
		name     string
		base     string
		q        places.Query
		path     string
		location string
		radius   string
	}{
		{"UCLA", f.srv.URL, placestest.UCLA, "/maps/api/place/nearbysearch/json", "34.06893,-118.445127", "10000"},
		{"path prefix", f.srv.URL + "/proxy/google/", places.Query{Lat: -33.8, Lng: 151.25, RadiusKm: 50},
			"/proxy/google/maps/api/place/nearbysearch/json", "-33.8,151.25", "50000"},
		{"fraction of a km", f.srv.URL, places.Query{Lat: 0, Lng: -180, RadiusKm: 2.5}, "/maps/api/place/nearbysearch/json", "0,-180", "2500"},
		{"under a meter", f.srv.URL, places.Query{Lat: 90, Lng: 0, RadiusKm: 0.0001}, "/maps/api/place/nearbysearch/json", "90,0", "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.config(metrics.New())
			c.BaseURL = tt.base
			g, err := NewLegacy(c)
			if err != nil {
				t.Fatal(err)
			}
			if r := g.Nearby(bg, tt.q); r.Status != places.StatusZeroResults {
				t.Fatalf("status %s %q", r.Status, r.ErrorMessage)
			}
			req := f.last(t)
			if req.method != http.MethodGet || req.path != tt.path {
				t.Errorf("%s %s, want GET %s", req.method, req.path, tt.path)
			}
			want := map[string]string{"location": tt.location, "radius": tt.radius, "key": testKey}
			for k, v := range want {
				if got := req.query[k]; len(got) != 1 || got[0] != v {
					t.Errorf("%s=%q, want %q", k, got, v)
				}
			}
			if len(req.query) != len(want) {
				t.Errorf("query %v", req.query)
			}
		})
	}
}

func TestGoogleAnswers(t *testing.T) {
	f := newFakeGoogle(t)
	g, err := NewLegacy(f.config(metrics.New()))
	if err != nil {
		t.Fatal(err)
	}
	huge := `{"html_attributions":[],"results":[],"status":"OK","pad":"` + strings.Repeat("x", maxBody) + `"}`
	tests := []struct {
		name     string
		handler  http.HandlerFunc
		status   string
		n        int
		message  string // a substring of error_message
		verbatim string // when set, the answer renders as this body does
	}{
		{name: "OK", handler: reply(200, testdata(t, "legacy-ok.json")), status: places.StatusOK, n: 3,
			verbatim: testdata(t, "legacy-ok.json")},
		{name: "ZERO_RESULTS", handler: reply(200, testdata(t, "legacy-zero-results.json")), status: places.StatusZeroResults,
			verbatim: testdata(t, "legacy-zero-results.json")},
		{name: "REQUEST_DENIED", handler: reply(200, testdata(t, "legacy-request-denied.json")),
			status: places.StatusRequestDenied, message: "The provided API key is invalid.", verbatim: testdata(t, "legacy-request-denied.json")},
		{name: "OVER_QUERY_LIMIT", handler: reply(200, testdata(t, "legacy-over-query-limit.json")),
			status: places.StatusOverQueryLimit, message: "daily request quota", verbatim: testdata(t, "legacy-over-query-limit.json")},
		{name: "INVALID_REQUEST", handler: reply(200, testdata(t, "legacy-invalid-request.json")),
			status: places.StatusInvalidRequest, message: "Invalid 'location' parameter."},
		{name: "UNKNOWN_ERROR", handler: reply(200, testdata(t, "legacy-unknown-error.json")), status: places.StatusUnknownError,
			verbatim: testdata(t, "legacy-unknown-error.json")},
		{name: "error status with results", handler: reply(200, `{"html_attributions":[],"results":[{"name":"x"}],"status":"REQUEST_DENIED","error_message":"no"}`),
			status: places.StatusRequestDenied, message: "no"},
		{name: "HTTP 500", handler: reply(500, "<html>Server Error</html>"), status: places.StatusUnknownError,
			message: "places: google answered HTTP 500 Internal Server Error"},
		{name: "HTTP 403 with a JSON body", handler: reply(403, testdata(t, "legacy-request-denied.json")), status: places.StatusUnknownError,
			message: "HTTP 403 Forbidden"},
		{name: "redirect is not followed", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://elsewhere.invalid/steal", http.StatusFound)
		}, status: places.StatusUnknownError, message: "HTTP 302 Found"},
		{name: "connection cut mid-body", handler: truncate(testdata(t, "legacy-ok.json")), status: places.StatusUnknownError,
			message: "places: google response cut short (HTTP 200): unexpected EOF"},
		{name: "body cut mid-JSON", handler: reply(200, testdata(t, "legacy-ok.json")[:500]), status: places.StatusUnknownError,
			message: "places: google sent a bad response"},
		{name: "not JSON", handler: reply(200, "<html>captive portal</html>"), status: places.StatusUnknownError,
			message: "places: google sent a bad response: response is not a JSON object"},
		{name: "no status", handler: reply(200, `{"results":[]}`), status: places.StatusUnknownError, message: "no status"},
		{name: "too large", handler: reply(200, huge), status: places.StatusUnknownError, message: "larger than 1048576 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.set(tt.handler)
			r := g.Nearby(bg, placestest.UCLA)
			placestest.CheckAnswer(t, r, tt.status, tt.n, tt.message)
			if tt.verbatim != "" {
				want, err := places.Parse([]byte(tt.verbatim))
				if err != nil {
					t.Fatal(err)
				}
				if got, want := r.AppendJSON(nil, 20), want.AppendJSON(nil, 20); string(got) != string(want) {
					t.Errorf("answer\n%s\nwant Google's own\n%s", got, want)
				}
			}
		})
	}
}

// TestUpstreamTimeout proves the per-request time-out, for both
// providers: the lookup fails after it and the request is cancelled.
func TestUpstreamTimeout(t *testing.T) {
	f := newFakeGoogle(t)
	c := f.config(metrics.New())
	c.Timeout = 50 * time.Millisecond
	for name, p := range bothProviders(t, c) {
		t.Run(name, func(t *testing.T) {
			f.set(f.block(nil, ""))
			start := time.Now()
			r := p.Nearby(bg, placestest.UCLA)
			placestest.CheckAnswer(t, r, places.StatusUnknownError, 0, "places: "+name+" did not answer within 50ms")
			if d := time.Since(start); d < 50*time.Millisecond || d > 5*time.Second {
				t.Errorf("gave up after %v", d)
			}
			waitCancelled(t, <-f.handled)
		})
	}
}

// waitCancelled waits for the server to see that the client gave up on r.
func waitCancelled(t *testing.T, r *http.Request) {
	t.Helper()
	select {
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream request was not cancelled")
	}
}

// TestUpstreamCancel proves that the request is cancelled with the
// caller's context.
func TestUpstreamCancel(t *testing.T) {
	f := newFakeGoogle(t)
	for name, p := range bothProviders(t, f.config(metrics.New())) {
		t.Run(name, func(t *testing.T) {
			f.set(f.block(nil, ""))
			ctx, cancel := context.WithCancel(bg)
			done := make(chan *places.Response)
			go func() { done <- p.Nearby(ctx, placestest.UCLA) }()
			req := <-f.handled
			cancel()
			placestest.CheckAnswer(t, <-done, places.StatusUnknownError, 0, "places: request cancelled")
			waitCancelled(t, req)
		})
	}
}

// TestUpstreamLimit proves that no more than MaxConcurrent requests are in
// flight, and that the waits are counted.
func TestUpstreamLimit(t *testing.T) {
	f := newFakeGoogle(t)
	for name := range bothProviders(t, f.config(metrics.New())) {
		t.Run(name, func(t *testing.T) {
			m := metrics.New()
			c := f.config(m)
			c.MaxConcurrent = 3
			p := bothProviders(t, c)[name]
			f.maxCur.Store(0)
			release := make(chan struct{})
			body := testdata(t, "legacy-zero-results.json")
			if name == "google-new" {
				body = "{}"
			}
			f.set(f.block(release, body))
			var wg sync.WaitGroup
			results := make(chan *places.Response, 10)
			for range 10 {
				wg.Go(func() { results <- p.Nearby(bg, placestest.UCLA) })
			}
			testutil.Eventually(t, 10*time.Second, func() error {
				if n, w := f.cur.Load(), promtest.ToFloat64(m.PlacesLimitWaits); n != 3 || w != 7 {
					return fmt.Errorf("%d requests in flight and %v waiting, want 3 and 7", n, w)
				}
				return nil
			})
			if got := promtest.ToFloat64(m.PlacesInflight); got != 3 {
				t.Errorf("PlacesInflight %v, want 3", got)
			}
			// A caller that gives up while waiting for a slot does not
			// reach the server.
			calls := f.calls.Load()
			ctx, cancel := context.WithTimeout(bg, time.Millisecond)
			defer cancel()
			placestest.CheckAnswer(t, p.Nearby(ctx, placestest.UCLA), places.StatusUnknownError, 0, "request cancelled")
			close(release)
			wg.Wait()
			close(results)
			for r := range results {
				placestest.CheckAnswer(t, r, places.StatusZeroResults, 0, "")
			}
			if got := f.maxCur.Load(); got != 3 {
				t.Errorf("%d requests in flight at once, want 3", got)
			}
			if got := f.calls.Load() - calls; got != 7 {
				t.Errorf("%d requests after the first 3, want 7", got)
			}
			if got := promtest.ToFloat64(m.PlacesInflight); got != 0 {
				t.Errorf("PlacesInflight %v after all returned", got)
			}
			for len(f.handled) > 0 {
				<-f.handled
			}
		})
	}
}

// TestUpstreamReusesConnections checks that sequential requests share one
// connection.
func TestUpstreamReusesConnections(t *testing.T) {
	f := newFakeGoogle(t)
	f.set(reply(200, testdata(t, "legacy-ok.json")))
	c := f.config(metrics.New())
	c.Client = NewHTTPClient(c.MaxConcurrent, c.Timeout)
	for _, p := range bothProviders(t, c) {
		for range 5 {
			p.Nearby(bg, placestest.UCLA)
		}
	}
	if got := f.conns.Load(); got != 1 {
		t.Errorf("%d connections for 10 requests, want 1", got)
	}
}

func TestNewGoogleRejects(t *testing.T) {
	m := metrics.New()
	ok := Config{Key: testKey, Timeout: time.Second, MaxConcurrent: 1, Metrics: m}
	tests := []struct {
		name   string
		change func(*Config)
	}{
		{"no metrics", func(c *Config) { c.Metrics = nil }},
		{"zero time-out", func(c *Config) { c.Timeout = 0 }},
		{"no concurrency", func(c *Config) { c.MaxConcurrent = 0 }},
		{"not a URL", func(c *Config) { c.BaseURL = "::" }},
		{"not http", func(c *Config) { c.BaseURL = "ftp://example.com" }},
		{"no host", func(c *Config) { c.BaseURL = "http:///path" }},
		{"a query", func(c *Config) { c.BaseURL = "http://example.com/?a=b" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.change(&c)
			if _, err := NewLegacy(c); err == nil {
				t.Error("NewLegacy accepted it")
			}
			if _, err := NewPlacesNew(c); err == nil {
				t.Error("NewPlacesNew accepted it")
			}
		})
	}
	for name, p := range bothProviders(t, ok) {
		if p.Name() != name {
			t.Errorf("Name %q, want %q", p.Name(), name)
		}
	}
}
