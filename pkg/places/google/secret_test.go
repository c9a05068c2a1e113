package google

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/metrics"
	"github.com/herdkit/herd/pkg/places/placestest"

	"github.com/herdkit/herd/pkg/places"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestKeyNeverLeaks runs every failure path of both Google providers and
// looks for the key, plain or escaped, in the answer, its error_message,
// the log and every metric.
func TestKeyNeverLeaks(t *testing.T) {
	f := newFakeGoogle(t)
	forms := []string{testKey, url.QueryEscape(testKey), url.PathEscape(testKey)}
	echo := "The provided API key " + testKey + " (" + url.QueryEscape(testKey) + ") is invalid."
	legacyEcho := fmt.Sprintf(`{"error_message":%q,"html_attributions":[],"results":[],"status":"REQUEST_DENIED"}`, echo)
	newEcho := fmt.Sprintf(`{"error":{"code":400,"message":%q,"status":"INVALID_ARGUMENT"}}`, echo)

	closedAddr := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return "http://" + l.Addr().String()
	}()
	// A transport whose errors quote the whole request, URL and headers.
	quoting := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return nil, fmt.Errorf("proxy refused %s with headers %v", r.URL, r.Header)
	})}

	type scenario struct {
		name    string
		handler http.HandlerFunc
		change  func(*Config)
		ctx     func() (context.Context, context.CancelFunc)
		status  string
	}
	common := []scenario{
		{name: "HTTP 500", handler: reply(500, "oops"), status: places.StatusUnknownError},
		{name: "redirect", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://elsewhere.invalid/?"+r.URL.RawQuery, http.StatusFound)
		}, status: places.StatusUnknownError},
		{name: "truncated", handler: truncate(`{"results":[`), status: places.StatusUnknownError},
		{name: "not JSON", handler: reply(200, "<html>"), status: places.StatusUnknownError},
		{name: "too large", handler: reply(200, strings.Repeat(" ", maxBody+1)), status: places.StatusUnknownError},
		{name: "time-out", handler: f.block(nil, ""), change: func(c *Config) { c.Timeout = 20 * time.Millisecond },
			status: places.StatusUnknownError},
		{name: "cancelled", handler: f.block(nil, ""), ctx: func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(bg, 20*time.Millisecond)
		}, status: places.StatusUnknownError},
		{name: "connection refused", change: func(c *Config) { c.BaseURL = closedAddr }, status: places.StatusUnknownError},
		{name: "transport error quoting the request", change: func(c *Config) { c.Client = quoting },
			status: places.StatusUnknownError},
	}
	perProvider := map[string][]scenario{
		"google": {
			{name: "REQUEST_DENIED echoing the key", handler: reply(200, legacyEcho), status: places.StatusRequestDenied},
			{name: "OVER_QUERY_LIMIT", handler: reply(200, testdata(t, "legacy-over-query-limit.json")), status: places.StatusOverQueryLimit},
			{name: "INVALID_REQUEST", handler: reply(200, testdata(t, "legacy-invalid-request.json")), status: places.StatusInvalidRequest},
			{name: "UNKNOWN_ERROR", handler: reply(200, testdata(t, "legacy-unknown-error.json")), status: places.StatusUnknownError},
		},
		"google-new": {
			{name: "INVALID_ARGUMENT echoing the key", handler: reply(400, newEcho), status: places.StatusInvalidRequest},
			{name: "PERMISSION_DENIED", handler: reply(403, testdata(t, "new-permission-denied.json")), status: places.StatusRequestDenied},
			{name: "UNAUTHENTICATED", handler: reply(401, testdata(t, "new-unauthenticated.json")), status: places.StatusRequestDenied},
			{name: "RESOURCE_EXHAUSTED", handler: reply(429, testdata(t, "new-resource-exhausted.json")), status: places.StatusOverQueryLimit},
			{name: "INTERNAL", handler: reply(500, testdata(t, "new-internal.json")), status: places.StatusUnknownError},
			{name: "wrong field type", handler: reply(200, `{"places":{}}`), status: places.StatusUnknownError},
		},
	}
	for _, name := range []string{"google", "google-new"} {
		for i, sc := range append(common, perProvider[name]...) {
			ours := i < len(common) // a failure of ours, which always says why
			t.Run(name+"/"+sc.name, func(t *testing.T) {
				m := metrics.New()
				logs := testutil.NewLogWriter(t)
				c := f.config(m)
				if sc.change != nil {
					sc.change(&c)
				}
				p := places.Instrument(bothProviders(t, c)[name], m, logs.Logger(slog.LevelDebug))
				f.set(sc.handler)
				ctx, cancel := context.WithCancel(bg)
				if sc.ctx != nil {
					ctx, cancel = sc.ctx()
				}
				defer cancel()
				r := p.Nearby(ctx, placestest.UCLA)
				if r.Status != sc.status || r.Cacheable() {
					t.Fatalf("status %s, want %s", r.Status, sc.status)
				}
				if r.ErrorMessage == "" && ours {
					t.Error("no error_message")
				}
				mfs, err := m.Registry.Gather()
				if err != nil {
					t.Fatal(err)
				}
				for what, text := range map[string]string{
					"answer":        string(r.AppendJSON(nil, 20)),
					"error_message": r.ErrorMessage,
					"log":           logs.String(),
					"metrics":       fmt.Sprint(mfs),
				} {
					for _, k := range forms {
						if strings.Contains(text, k) {
							t.Errorf("the key is in the %s: %s", what, text)
						}
					}
				}
				if !strings.Contains(logs.String(), "component=places") {
					t.Errorf("no places log line: %s", logs.String())
				}
			})
		}
	}
}

func TestScrubber(t *testing.T) {
	s := scrubber(testKey)
	in := "a " + testKey + " b " + url.QueryEscape(testKey) + " c " + url.PathEscape(testKey)
	if got, want := s.Replace(in), "a [REDACTED] b [REDACTED] c [REDACTED]"; got != want {
		t.Errorf("scrubbed to %q, want %q", got, want)
	}
	if got := scrubber("").Replace("nothing to hide"); got != "nothing to hide" {
		t.Errorf("empty key scrubbed to %q", got)
	}
}
