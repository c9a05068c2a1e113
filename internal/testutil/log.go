package testutil

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// LogWriter sends each write to t.Log while the test runs and keeps a
// copy to read with String. What is written after the test has ended (a
// goroutine logging during its shutdown) is kept but not sent: t.Log
// panics then.
type LogWriter struct {
	t    testing.TB
	mu   sync.Mutex
	buf  bytes.Buffer
	done bool
}

// NewLogWriter returns a LogWriter for t.
func NewLogWriter(t testing.TB) *LogWriter {
	w := &LogWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.done = true
	})
	return w
}

// Write logs p, less its final newline, with t.Log.
func (w *LogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

// String returns everything written so far.
func (w *LogWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// Logger returns a text logger at level that writes to w.
func (w *LogWriter) Logger(level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// Logger returns a text logger at level whose records go to t.Log.
func Logger(t testing.TB, level slog.Level) *slog.Logger {
	return NewLogWriter(t).Logger(level)
}

// Buffer is a bytes.Buffer that several goroutines may write and read.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what has been written.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
