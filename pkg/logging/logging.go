// Package logging builds a node's log: structured records with log/slog,
// JSON or text, to standard error and optionally a file, buffered and
// flushed every 100 ms; and the protocol log of every client line and
// reply, which has a fast path of its own (see Lines).
package logging

import (
	"io"
	"log/slog"
	"os"
	"sync"
	"time"
)

// flushInterval bounds how long a log line waits in memory. The protocol
// log writes a line per request; buffering turns thousands of small writes
// a second into a few large ones.
const flushInterval = 100 * time.Millisecond

// Log is a node's log: structured records through its slog.Logger, and
// the protocol log through Lines.
type Log struct {
	*slog.Logger
	Lines Lines
	sinks []*sink
}

// Blocked returns how long, in all, records could not be buffered because
// the log's destination had not yet taken the earlier ones. Every client
// line waits meanwhile: the log drops nothing, so a destination slower
// than the requests slows the server to its pace.
func (l *Log) Blocked() time.Duration {
	var d time.Duration
	for _, s := range l.sinks {
		d += s.blockedFor()
	}
	return d
}

// Config configures a log. The zero value is a log at info, in JSON, to
// standard error only. The wiring (pkg/node) fills it from the HERD_LOG_
// variables, whose defaults package config gives.
type Config struct {
	// Level is the lowest level written. The protocol log is at info: a
	// level above info turns it off.
	Level slog.Level
	// Format is "json" (or "", the same) or "text".
	Format string
	// File, when set, receives the log as well as standard error, rotated
	// by size: at most FileMaxBytes × (FileKeep + 1) on disk.
	File string
	// FileMaxBytes is the size past which File is renamed File.1 (older
	// ones moving to .2, .3 ...) and a new one started. At least 1 when
	// File is set.
	FileMaxBytes int64
	// FileKeep is how many renamed files are kept besides the one being
	// written; older ones are deleted. At least 1 when File is set.
	FileKeep int
}

// Open returns the log cfg describes: records to stderr and, when
// cfg.File is set, to that file as well. The returned close function
// flushes and closes it.
func Open(cfg Config, stderr io.Writer) (*Log, func() error, error) {
	opts := &slog.HandlerOptions{Level: cfg.Level}
	sinks := []*sink{newSink(stderr, nil)}
	if cfg.File != "" {
		f, err := openRotating(cfg.File, cfg.FileMaxBytes, cfg.FileKeep)
		if err != nil {
			return nil, nil, err
		}
		sinks = append(sinks, newSink(f, f))
	}
	handlers := make([]slog.Handler, len(sinks))
	writers := make([]io.Writer, len(sinks))
	for i, s := range sinks {
		writers[i] = s
		if cfg.Format == "text" {
			handlers[i] = slog.NewTextHandler(s, opts)
		} else {
			handlers[i] = slog.NewJSONHandler(s, opts)
		}
	}
	var h slog.Handler = handlers[0]
	if len(handlers) > 1 {
		h = slog.NewMultiHandler(handlers...)
	}
	l := &Log{Logger: slog.New(h), sinks: sinks}
	switch {
	case cfg.Level > slog.LevelInfo:
		l.Lines = off{}
	case cfg.Format == "text":
		l.Lines = SlogLines(l.Logger)
	default:
		l.Lines = &jsonLines{sinks: writers}
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
	return l, closeAll, nil
}

// With returns a log whose records, protocol log included, all carry the
// attribute key=value, as `herd local` tags each node's records.
func (l *Log) With(key, value string) *Log {
	w := &Log{Logger: l.Logger.With(key, value), sinks: l.sinks}
	switch lines := l.Lines.(type) {
	case *jsonLines:
		prefix := append([]byte(nil), lines.prefix...)
		prefix = append(prefix, ',', '"')
		prefix = appendEscaped(prefix, key)
		prefix = append(prefix, '"', ':', '"')
		prefix = appendEscaped(prefix, value)
		prefix = append(prefix, '"')
		w.Lines = &jsonLines{sinks: lines.sinks, prefix: prefix}
	case slogLines:
		w.Lines = slogLines{lines.log.With(key, value)}
	default:
		w.Lines = l.Lines
	}
	return w
}

// FromSlog returns a log that writes everything, the protocol log
// included, to l: for tests.
func FromSlog(l *slog.Logger) *Log { return &Log{Logger: l, Lines: SlogLines(l)} }

var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func getBuffer() *[]byte { return buffers.Get().(*[]byte) }

func putBuffer(b *[]byte) {
	if cap(*b) <= 64<<10 { // a huge WHATSAT reply's buffer is not kept
		buffers.Put(b)
	}
}

// Buffers of a sink: records are copied into one while the others are
// written, so a caller waits on the file or pipe only when the writer is
// a whole sinkBuffers behind.
const (
	sinkBufferSize = 64 << 10
	sinkBuffers    = 4
)

// sink buffers log output for one writer. Write holds the lock only to
// copy the record into the current buffer; a goroutine writes full
// buffers in order, and the current one every flushInterval.
type sink struct {
	mu     sync.Mutex
	cur    []byte
	closed bool
	free   chan []byte // empty buffers
	full   chan []byte // buffers to write, oldest first; never blocks, as it holds them all
	w      io.Writer
	err    error // the first write error, read after done
	closer io.Closer
	stop   chan struct{}
	done   chan struct{} // the writer goroutine has written everything

	// The time Write waited for a free buffer: the waits that ended, and
	// the start of the one under way, if any. Not under mu, which a
	// waiting Write holds.
	blockMu      sync.Mutex
	blocked      time.Duration
	blockedSince time.Time
}

func newSink(w io.Writer, closer io.Closer) *sink {
	s := &sink{
		cur: make([]byte, 0, sinkBufferSize), w: w, closer: closer,
		free: make(chan []byte, sinkBuffers), full: make(chan []byte, sinkBuffers),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	for range sinkBuffers - 1 {
		s.free <- make([]byte, 0, sinkBufferSize)
	}
	go s.writeLoop()
	go s.flushLoop()
	return s
}

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, os.ErrClosed
	}
	if len(s.cur) > 0 && len(s.cur)+len(p) > cap(s.cur) {
		s.full <- s.cur
		select {
		case s.cur = <-s.free:
		default: // every other buffer is being written: wait
			s.blockMu.Lock()
			s.blockedSince = time.Now()
			s.blockMu.Unlock()
			s.cur = <-s.free
			s.blockMu.Lock()
			s.blocked += time.Since(s.blockedSince)
			s.blockedSince = time.Time{}
			s.blockMu.Unlock()
		}
	}
	s.cur = append(s.cur, p...)
	return len(p), nil
}

// blockedFor returns how long Write has waited for a free buffer, the
// wait under way included.
func (s *sink) blockedFor() time.Duration {
	s.blockMu.Lock()
	defer s.blockMu.Unlock()
	d := s.blocked
	if !s.blockedSince.IsZero() {
		d += time.Since(s.blockedSince)
	}
	return d
}

// writeLoop writes the full buffers in order and returns them, emptied.
func (s *sink) writeLoop() {
	defer close(s.done)
	for b := range s.full {
		if _, err := s.w.Write(b); err != nil && s.err == nil {
			s.err = err
		}
		if cap(b) > sinkBufferSize { // grown by a huge record: not kept
			b = make([]byte, 0, sinkBufferSize)
		}
		s.free <- b[:0]
	}
}

// flushLoop hands the current buffer to the writer every flushInterval,
// unless every other buffer is still being written.
func (s *sink) flushLoop() {
	t := time.NewTicker(flushInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.mu.Lock()
			if !s.closed && len(s.cur) > 0 {
				select {
				case b := <-s.free:
					s.full <- s.cur
					s.cur = b
				default:
				}
			}
			s.mu.Unlock()
		case <-s.stop:
			return
		}
	}
}

// Close writes what is buffered and closes the file, if any. Records
// written after it are dropped.
func (s *sink) Close() error {
	close(s.stop)
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		if len(s.cur) > 0 {
			s.full <- s.cur
		}
		s.cur = nil
		close(s.full)
	}
	s.mu.Unlock()
	<-s.done
	err := s.err
	if s.closer != nil {
		if cerr := s.closer.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
