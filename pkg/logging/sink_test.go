package logging

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/herdkit/herd/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// slowWriter takes its time over each write, so that a sink's buffers
// fill while it writes.
type slowWriter struct {
	testutil.Buffer
	writes atomic.Int64
}

func (w *slowWriter) Write(p []byte) (int, error) {
	time.Sleep(time.Millisecond)
	w.writes.Add(1)
	return w.Buffer.Write(p)
}

func TestSinkKeepsEveryRecordInOrder(t *testing.T) {
	tests := []struct {
		name    string
		writers int
		records int
		size    int // bytes per record, newline included
	}{
		{"one writer, small records", 1, 20000, 40},
		{"many writers, small records", 16, 2000, 100},
		{"records larger than a buffer", 4, 20, sinkBufferSize + 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &slowWriter{}
			s := newSink(w, nil)
			var wg sync.WaitGroup
			for g := range tt.writers {
				wg.Go(func() {
					for i := range tt.records {
						head := fmt.Sprintf("%d %d ", g, i)
						rec := head + strings.Repeat("x", tt.size-len(head)-1) + "\n"
						if _, err := s.Write([]byte(rec)); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			next := make([]int, tt.writers)
			lines := strings.Split(strings.TrimSuffix(w.String(), "\n"), "\n")
			for _, line := range lines {
				var g, i int
				if _, err := fmt.Sscanf(line, "%d %d ", &g, &i); err != nil || len(line) != tt.size-1 {
					t.Fatalf("record %.40q... (%d bytes) is not one that was written", line, len(line))
				}
				if i != next[g] {
					t.Fatalf("writer %d: record %d after %d", g, i, next[g]-1)
				}
				next[g]++
			}
			if want := tt.writers * tt.records; len(lines) != want {
				t.Fatalf("%d records, want %d", len(lines), want)
			}
			if total := tt.writers * tt.records * tt.size; int(w.writes.Load()) > total/sinkBufferSize+tt.writers*tt.records/100+10 {
				t.Errorf("%d writes for %d bytes: the sink does not batch", w.writes.Load(), total)
			}
		})
	}
}

func TestSinkFlushesWithinTheInterval(t *testing.T) {
	w := &testutil.Buffer{}
	s := newSink(w, nil)
	defer s.Close()
	s.Write([]byte("one record\n"))
	testutil.Eventually(t, 10*flushInterval, func() error {
		if got := w.String(); got != "one record\n" {
			return fmt.Errorf("the writer holds %q", got)
		}
		return nil
	})
}

type closeRecorder struct {
	bytes.Buffer
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

func TestSinkCloseWritesEverythingThenRefuses(t *testing.T) {
	w := &closeRecorder{}
	s := newSink(w, w)
	s.Write([]byte("before close\n"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := w.String(); got != "before close\n" || !w.closed {
		t.Fatalf("after Close: %q, closed %v", got, w.closed)
	}
	if _, err := s.Write([]byte("after close\n")); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("write after Close: %v, want os.ErrClosed", err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestSinkCloseReportsAWriteError(t *testing.T) {
	s := newSink(failingWriter{}, nil)
	s.Write([]byte("lost\n"))
	if err := s.Close(); err == nil || err.Error() != "disk full" {
		t.Fatalf("Close: %v, want the write error", err)
	}
}

// stuckWriter blocks every write until release is closed.
type stuckWriter struct{ release chan struct{} }

func (w stuckWriter) Write(p []byte) (int, error) {
	<-w.release
	return len(p), nil
}

func TestSinkCountsTheTimeWritersWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := stuckWriter{release: make(chan struct{})}
		s := newSink(w, nil)
		l := &Log{sinks: []*sink{s}}
		big := make([]byte, sinkBufferSize)
		// The writer takes the first buffer and sticks; the next three fill
		// the others, so none is left for the fifth.
		for range sinkBuffers {
			s.Write(big)
		}
		if got := l.Blocked(); got != 0 {
			t.Fatalf("blocked %v with a buffer free", got)
		}
		done := make(chan struct{})
		go func() {
			s.Write(big)
			close(done)
		}()
		synctest.Wait() // the fifth write waits for a buffer
		// Less than flushInterval: the flusher, which would wait for the
		// lock the fifth write holds, stays asleep.
		stuck := flushInterval / 2
		time.Sleep(stuck)
		if got := l.Blocked(); got != stuck {
			t.Errorf("blocked %v while stuck for %v", got, stuck) // a stuck log shows
		}
		close(w.release)
		<-done
		if got := l.Blocked(); got != stuck {
			t.Errorf("blocked %v, want the %v the writer was stuck", got, stuck)
		}
		s.Close()
	})
}
