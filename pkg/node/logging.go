package node

import (
	"bufio"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/herdkit/herd/pkg/config"
)

// logFlushInterval bounds how long a log line waits in memory. The protocol
// log writes a line per request; buffering turns thousands of small writes
// a second into a few large ones.
const logFlushInterval = 100 * time.Millisecond

// NewLogger returns the node's logger: JSON or text records to standard
// error and, when HERD_LOG_FILE is set, to that file as well. The returned
// close function flushes and closes it.
func NewLogger(cfg config.Config, stderr io.Writer) (*slog.Logger, func() error, error) {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	newHandler := func(w io.Writer) slog.Handler {
		if cfg.LogFormat == "text" {
			return slog.NewTextHandler(w, opts)
		}
		return slog.NewJSONHandler(w, opts)
	}
	sinks := []*sink{newSink(stderr, nil)}
	if cfg.LogFile != "" {
		f, err := os.OpenFile(cfg.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, nil, err
		}
		sinks = append(sinks, newSink(f, f))
	}
	handlers := make([]slog.Handler, len(sinks))
	for i, s := range sinks {
		handlers[i] = newHandler(s)
	}
	var h slog.Handler = handlers[0]
	if len(handlers) > 1 {
		h = slog.NewMultiHandler(handlers...)
	}
	closeAll := func() error {
		var first error
		for _, s := range sinks {
			if err := s.Close(); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	return slog.New(h), closeAll, nil
}

// sink buffers log output and flushes it every logFlushInterval.
type sink struct {
	mu     sync.Mutex
	w      *bufio.Writer
	closer io.Closer
	stop   chan struct{}
	done   chan struct{}
}

func newSink(w io.Writer, closer io.Closer) *sink {
	s := &sink{w: bufio.NewWriterSize(w, 64<<10), closer: closer, stop: make(chan struct{}), done: make(chan struct{})}
	go s.flushLoop()
	return s
}

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *sink) flushLoop() {
	defer close(s.done)
	t := time.NewTicker(logFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.mu.Lock()
			s.w.Flush()
			s.mu.Unlock()
		case <-s.stop:
			return
		}
	}
}

// Close flushes what is buffered and closes the file, if any.
func (s *sink) Close() error {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.w.Flush()
	if s.closer != nil {
		if cerr := s.closer.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
