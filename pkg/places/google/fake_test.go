package google

import (
	"go.uber.org/goleak"

	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herdkit/herd/pkg/metrics"
	"github.com/herdkit/herd/pkg/places/placestest"

	"github.com/herdkit/herd/pkg/places"
)

// testKey is an API key with characters that URL escaping changes, so
// that tests catch it escaped as well as plain.
const testKey = "AIzaSy-test/key+with=odd&chars_0123456789"

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeGoogle imitates both Google endpoints. Each request is recorded and
// answered by the handler the test sets.
type fakeGoogle struct {
	srv     *httptest.Server
	stop    chan struct{} // closed when the test ends, to free blocked handlers
	conns   atomic.Int32  // connections opened
	calls   atomic.Int32  // requests received
	cur     atomic.Int32  // requests being handled
	maxCur  atomic.Int32
	handled chan *http.Request // blocked handlers announce themselves here

	mu       sync.Mutex
	handler  http.HandlerFunc
	requests []recorded
}

// recorded is what the server saw of a request.
type recorded struct {
	method, path string
	query        url.Values
	header       http.Header
	body         string
}

func newFakeGoogle(t *testing.T) *fakeGoogle {
	f := &fakeGoogle{stop: make(chan struct{}), handled: make(chan *http.Request, 100)}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.conns.Add(1)
		}
	}
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	t.Cleanup(func() { close(f.stop) }) // runs first: frees handlers so Close returns
	return f
}

func (f *fakeGoogle) serve(w http.ResponseWriter, r *http.Request) {
	n := f.cur.Add(1)
	defer f.cur.Add(-1)
	for m := f.maxCur.Load(); n > m && !f.maxCur.CompareAndSwap(m, n); m = f.maxCur.Load() {
	}
	f.calls.Add(1)
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, recorded{r.Method, r.URL.Path, r.URL.Query(), r.Header.Clone(), string(body)})
	h := f.handler
	f.mu.Unlock()
	if h == nil {
		http.Error(w, "no handler", http.StatusTeapot)
		return
	}
	h(w, r)
}

// set makes h answer the requests from now on.
func (f *fakeGoogle) set(h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handler = h
}

func (f *fakeGoogle) last(t *testing.T) recorded {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) == 0 {
		t.Fatal("no request reached the server")
	}
	return f.requests[len(f.requests)-1]
}

// reply answers with code and body as JSON.
func reply(code int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(code)
		io.WriteString(w, body)
	}
}

// block holds the request until the client gives up on it (announcing it
// on f.handled first), the release channel is closed, or the test ends;
// then it answers with body.
func (f *fakeGoogle) block(release <-chan struct{}, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.handled <- r
		select {
		case <-r.Context().Done():
			return
		case <-f.stop:
			return
		case <-release:
		}
		reply(http.StatusOK, body)(w, r)
	}
}

// truncate promises len(body)+100 bytes, sends body, and hangs up.
func truncate(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body)+100, body)
		buf.Flush()
	}
}

var bg = context.Background()

// testdata reads a recorded Google body of testdata.
func testdata(t testing.TB, name string) string { return placestest.Google(t, "..", name) }

// googleConfig is a config for the fake server.
func (f *fakeGoogle) config(m *metrics.Metrics) Config {
	return Config{Key: testKey, BaseURL: f.srv.URL, Timeout: 5 * time.Second, MaxConcurrent: 4, Metrics: m}
}

// bothProviders builds the legacy and the new provider from c.
func bothProviders(t *testing.T, c Config) map[string]places.Provider {
	t.Helper()
	g, err := NewLegacy(c)
	if err != nil {
		t.Fatal(err)
	}
	n, err := NewPlacesNew(c)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]places.Provider{"google": g, "google-new": n}
}
