package places

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitFor polls cond until it holds, failing the test after a deadline.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// logSink collects log output, and shows it with t.Log while the test
// runs.
type logSink struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	t    testing.TB
	done bool
}

func newLogSink(t testing.TB) *logSink {
	s := &logSink{t: t}
	t.Cleanup(func() {
		s.mu.Lock()
		s.done = true
		s.mu.Unlock()
	})
	return s
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Write(p)
	if !s.done {
		s.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func (s *logSink) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(s, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testLogger sends logs to t.Log.
func testLogger(t testing.TB) *slog.Logger { return newLogSink(t).logger() }

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// embeddedTable returns the embedded tables, loaded once for all tests.
func embeddedTable(t testing.TB) *table {
	t.Helper()
	o := NewOffline(discard)
	select {
	case <-o.Ready():
	case <-time.After(time.Minute):
		t.Fatal("offline data did not load within a minute")
	}
	if o.data.err != nil {
		t.Fatal(o.data.err)
	}
	return o.data.tab
}

// resultNames returns the names of a rendered response's results.
func resultNames(t testing.TB, r *Response) []string {
	t.Helper()
	var v struct {
		Results []struct {
			Name string `json:"name"`
		} `json:"results"`
	}
	decodeJSON(t, r.AppendJSON(nil, MaxResults), &v)
	var out []string
	for _, x := range v.Results {
		out = append(out, x.Name)
	}
	return out
}

func decodeJSON(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
}

var bg = context.Background()
