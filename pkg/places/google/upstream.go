package google

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/herdkit/herd/pkg/metrics"
	"github.com/herdkit/herd/pkg/secret"

	"github.com/herdkit/herd/pkg/places"
)

// Config configures a Google provider.
type Config struct {
	// Key is the API key. It is sent to Google and nowhere else: every
	// message that leaves a provider has it scrubbed, and it keeps its
	// redacting type down to the request.
	Key secret.String
	// BaseURL replaces the scheme and host of Google's endpoint, optionally
	// with a path prefix; empty means Google's own.
	BaseURL string
	// Timeout bounds each lookup, the wait for a free slot included.
	// Required: positive.
	Timeout time.Duration
	// MaxConcurrent bounds the requests in flight to Google. Required: at
	// least 1.
	MaxConcurrent int
	// Client sends the requests; nil means NewHTTPClient(MaxConcurrent,
	// Timeout). Share one between providers to share its connections.
	Client *http.Client
	// Metrics receives PlacesInflight and PlacesLimitWaits. Required.
	Metrics *metrics.Metrics
}

// maxBody bounds the response body read: twenty results with every field
// are some tens of kilobytes.
const maxBody = 1 << 20

// redacted replaces the API key in messages.
const redacted = "[REDACTED]"

// NewHTTPClient returns an HTTP client tuned for one upstream host: it keeps
// as many idle connections as requests may be in flight, so a burst does
// not redial, bounds the dial, TLS handshake and wait for response headers
// (by timeout, a second more for headers), and follows no redirect (a redirect would carry the API key to another
// host).
func NewHTTPClient(maxConcurrent int, timeout time.Duration) *http.Client {
	maxConcurrent = max(maxConcurrent, 1)
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	dialer := &net.Dialer{Timeout: min(timeout, 5*time.Second), KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         dialer.DialContext,
			ForceAttemptHTTP2:   true,
			MaxIdleConns:        maxConcurrent,
			MaxIdleConnsPerHost: maxConcurrent,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: min(timeout, 5*time.Second),
			// A backstop for contexts without a deadline: the lookup's
			// own time-out, a context, fires first and says which it was.
			ResponseHeaderTimeout: timeout + time.Second,
			ExpectContinueTimeout: time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// upstream is what both Google providers share: the client, the limit on
// requests in flight, the time-out and the scrubbing of the key.
type upstream struct {
	name    string // the provider's name, in messages
	key     secret.String
	base    url.URL // without a trailing slash on its path
	timeout time.Duration
	client  *http.Client
	slots   chan struct{}
	m       *metrics.Metrics
	scrub   *strings.Replacer
}

func newUpstream(name, defaultBase string, c Config) (*upstream, error) {
	if c.Metrics == nil {
		return nil, errors.New("places/google: Config.Metrics is nil")
	}
	if c.Timeout <= 0 {
		return nil, fmt.Errorf("places/google: Config.Timeout %v is not positive", c.Timeout)
	}
	if c.MaxConcurrent < 1 {
		return nil, fmt.Errorf("places/google: Config.MaxConcurrent %d is below 1", c.MaxConcurrent)
	}
	raw := c.BaseURL
	if raw == "" {
		raw = defaultBase
	}
	base, err := url.Parse(raw)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" || base.RawQuery != "" || base.User != nil {
		return nil, fmt.Errorf("places: base URL %q is not an http or https URL without a query", raw)
	}
	base.Path = strings.TrimRight(base.Path, "/")
	base.RawPath, base.Fragment = "", ""
	client := c.Client
	if client == nil {
		client = NewHTTPClient(c.MaxConcurrent, c.Timeout)
	}
	return &upstream{
		name: name, key: c.Key, base: *base, timeout: c.Timeout, client: client,
		slots: make(chan struct{}, c.MaxConcurrent), m: c.Metrics, scrub: scrubber(string(c.Key)),
	}, nil
}

// scrubber returns a replacer that hides key, as is and in its escaped
// forms, since URLs in error messages carry it escaped.
func scrubber(key string) *strings.Replacer {
	if key == "" {
		return strings.NewReplacer()
	}
	var pairs []string
	seen := map[string]bool{}
	for _, k := range []string{url.QueryEscape(key), url.PathEscape(key), key} {
		if !seen[k] {
			seen[k] = true
			pairs = append(pairs, k, redacted)
		}
	}
	return strings.NewReplacer(pairs...)
}

// endpoint returns the URL of path under the base.
func (u *upstream) endpoint(path string, query url.Values) *url.URL {
	e := u.base
	e.Path += path
	e.RawQuery = query.Encode()
	return &e
}

// failure is an UNKNOWN_ERROR answer with msg, the key scrubbed from it.
func (u *upstream) failure(format string, args ...any) *places.Response {
	return places.Failure(places.StatusUnknownError, u.scrub.Replace(fmt.Sprintf("places: "+u.name+" "+format, args...)))
}

// status is a failure with Google's status and message, the key scrubbed.
func (u *upstream) status(status, msg string) *places.Response {
	return places.Failure(status, u.scrub.Replace(msg))
}

// do sends the request that build makes, within the time-out and a slot
// under the concurrency limit, and reads the answer. A failure to get one
// is returned as a Response.
func (u *upstream) do(parent context.Context, build func(context.Context) (*http.Request, error)) (body []byte, code int, fail *places.Response) {
	ctx, cancel := context.WithTimeout(parent, u.timeout)
	defer cancel()
	// why explains a failed request: the caller gave up, the time-out
	// passed, or err, without the URL (and key) that url.Error adds.
	why := func(err error) *places.Response {
		if parent.Err() != nil {
			return places.Failure(places.StatusUnknownError, "places: request cancelled")
		}
		if ctx.Err() != nil {
			return u.failure("did not answer within %v", u.timeout)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return u.failure("request failed: %v", err)
	}

	select {
	case u.slots <- struct{}{}:
	default:
		u.m.PlacesLimitWaits.Inc()
		select {
		case u.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, 0, why(ctx.Err())
		}
	}
	u.m.PlacesInflight.Inc()
	defer func() {
		u.m.PlacesInflight.Dec()
		<-u.slots
	}()

	req, err := build(ctx)
	if err != nil {
		return nil, 0, u.failure("building request: %v", err)
	}
	resp, err := u.client.Do(req)
	if err != nil {
		return nil, 0, why(err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, 0, why(err)
		}
		return nil, 0, u.failure("response cut short (HTTP %d): %v", resp.StatusCode, err)
	}
	if len(body) > maxBody {
		return nil, 0, u.failure("response larger than %d bytes", maxBody)
	}
	return body, resp.StatusCode, nil
}

// httpFailure is the answer to an HTTP status other than 200 that carries
// no error Google explained.
func (u *upstream) httpFailure(code int) *places.Response {
	return u.failure("answered HTTP %d %s", code, http.StatusText(code))
}

// formatDegrees writes a latitude or longitude for a request.
func formatDegrees(v float64) string {
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// radiusMeters turns a radius in km into whole meters, at least one, as
// Google's radius is in meters and a fraction of a meter means nothing.
func radiusMeters(km float64) float64 {
	return max(math.Round(km*1000), 1)
}
