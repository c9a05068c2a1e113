package server

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/herdkit/herd/internal/testutil"
)

// fakeConn is a net.Conn that keeps what is written to it and the
// deadlines set on it; its reads and its first writes end as the test
// scripts.
type fakeConn struct {
	mu             sync.Mutex
	written        []string      // each Write's bytes taken
	writeErrs      []fakeWrite   // how the first Writes end, in turn; then they take everything
	reads          []fakeRead    // what each Read returns, in turn; then io.EOF
	readDeadlines  []time.Time   // every read deadline set, in turn
	writeDeadlines []time.Time   // every write deadline set, in turn
	closed         chan struct{} // closed by Close
}

// fakeWrite is a Write that takes n bytes and fails with err.
type fakeWrite struct {
	n   int
	err error
}

// fakeRead is a Read that brings data and ends with err.
type fakeRead struct {
	data string
	err  error
}

func newFakeConn() *fakeConn { return &fakeConn{closed: make(chan struct{})} }

func (f *fakeConn) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reads) == 0 {
		return 0, io.EOF
	}
	r := f.reads[0]
	f.reads = f.reads[1:]
	return copy(p, r.data), r.err
}

func (f *fakeConn) Write(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.writeErrs) > 0 {
		w := f.writeErrs[0]
		f.writeErrs = f.writeErrs[1:]
		f.written = append(f.written, string(b[:w.n]))
		return w.n, w.err
	}
	f.written = append(f.written, string(b))
	return len(b), nil
}

func (f *fakeConn) writes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.written...)
}

func (f *fakeConn) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.closed:
	default:
		close(f.closed)
	}
	return nil
}

func (f *fakeConn) LocalAddr() net.Addr  { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (f *fakeConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2} }

func (f *fakeConn) SetDeadline(t time.Time) error {
	f.SetReadDeadline(t)
	return f.SetWriteDeadline(t)
}

func (f *fakeConn) SetReadDeadline(t time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.readDeadlines = append(f.readDeadlines, t)
	return nil
}

func (f *fakeConn) SetWriteDeadline(t time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writeDeadlines = append(f.writeDeadlines, t)
	return nil
}

// lastReadDeadline returns the read deadline set last.
func (f *fakeConn) lastReadDeadline(t *testing.T) time.Time {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.readDeadlines) == 0 {
		t.Fatal("no read deadline set")
	}
	return f.readDeadlines[len(f.readDeadlines)-1]
}

// newTestDeadlineConn returns a deadlineConn on a fakeConn with the given
// time-outs, and counts the cancellations of its lookups.
func newTestDeadlineConn(t *testing.T, idle, write time.Duration) (*deadlineConn, *fakeConn, *int) {
	fc := newFakeConn()
	cancels := new(int)
	d := &deadlineConn{}
	d.init(fc, idle, write, testutil.Logger(t, slog.LevelDebug), func() { *cancels++ })
	return d, fc, cancels
}

// near reports whether got is within a second of want: what a test sees
// of a deadline set from the clock.
func near(got, want time.Time) bool { return got.Sub(want).Abs() < time.Second }

// TestDeadlineConnWrite: the write deadline is set by a write that starts
// less than half a WriteTimeout before it, and moved to a write's own
// start plus WriteTimeout when it passes during the write, which goes on;
// a write that fails otherwise stops writing with its reason, and nothing
// is written after it.
func TestDeadlineConnWrite(t *testing.T) {
	deadline := os.ErrDeadlineExceeded
	tests := []struct {
		name      string
		timeout   time.Duration
		script    []fakeWrite
		writes    int      // of "hello"
		want      []string // the bytes each Write took
		deadlines int      // write deadlines set
		failed    string
	}{
		{"set by the first write only, within half the time-out", time.Hour, nil, 3,
			[]string{"hello", "hello", "hello"}, 1, ""},
		{"set by every write once half the time-out is past", time.Nanosecond, nil, 3,
			[]string{"hello", "hello", "hello"}, 3, ""},
		{"passed during a write that began less than the time-out ago: moved, the write goes on", time.Hour,
			[]fakeWrite{{2, deadline}}, 1, []string{"he", "llo"}, 2, ""},
		{"passed during a write that began the time-out ago: closed", time.Nanosecond,
			[]fakeWrite{{2, deadline}}, 2, []string{"he"}, 1, closeWriteTimeout},
		{"another error: closed", time.Hour,
			[]fakeWrite{{0, io.ErrClosedPipe}}, 2, []string{""}, 1, closeWriteError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, fc, cancels := newTestDeadlineConn(t, time.Hour, tt.timeout)
			fc.writeErrs = tt.script
			start := time.Now()
			for range tt.writes {
				d.write([]byte("hello"))
			}
			if got := fc.writes(); !slices.Equal(got, tt.want) {
				t.Errorf("writes %q, want %q", got, tt.want)
			}
			if n := len(fc.writeDeadlines); n != tt.deadlines {
				t.Errorf("%d write deadlines set, want %d", n, tt.deadlines)
			}
			if tt.timeout == time.Hour && !near(fc.writeDeadlines[len(fc.writeDeadlines)-1], start.Add(time.Hour)) {
				t.Errorf("write deadline %v, want the write's start plus WriteTimeout", fc.writeDeadlines)
			}
			if got := d.failed(); got != tt.failed {
				t.Errorf("failed %q, want %q", got, tt.failed)
			}
			if stopped := tt.failed != ""; stopped != (*cancels == 1) || stopped != (len(fc.readDeadlines) == 1) {
				t.Errorf("writing stopped: %v, but %d cancellations and %d read deadlines (the wake-up)",
					stopped, *cancels, len(fc.readDeadlines))
			}
		})
	}
}

// TestDeadlineConnEnded: the reader stops when writing stopped, with the
// first reason given, or when shutdown interrupted it; each wakes the
// reader with a read deadline of now.
func TestDeadlineConnEnded(t *testing.T) {
	tests := []struct {
		name      string
		stops     []string // reasons given to stopWriting, in turn
		interrupt bool
		failed    string
		ended     string
	}{
		{"neither", nil, false, "", ""},
		{"interrupted", nil, true, "", closeShutdown},
		{"writing stopped", []string{closeWriteError}, false, closeWriteError, closeWriteError},
		{"the first reason stands", []string{closeNotDurable, closeWriteTimeout}, false, closeNotDurable, closeNotDurable},
		{"writing stopped and interrupted", []string{closeWriteTimeout}, true, closeWriteTimeout, closeWriteTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, fc, cancels := newTestDeadlineConn(t, time.Hour, time.Hour)
			before := time.Now()
			for _, r := range tt.stops {
				d.stopWriting(r, slog.LevelInfo, "stopped", errors.New("test"))
			}
			if tt.interrupt {
				d.interrupt()
			}
			if got := d.failed(); got != tt.failed {
				t.Errorf("failed %q, want %q", got, tt.failed)
			}
			if got := d.ended(); got != tt.ended {
				t.Errorf("ended %q, want %q", got, tt.ended)
			}
			if want := min(len(tt.stops), 1); *cancels != want {
				t.Errorf("lookups cancelled %d times, want %d", *cancels, want)
			}
			if tt.ended != "" && !near(fc.lastReadDeadline(t), before) {
				t.Errorf("read deadline %v, want now to wake the reader", fc.lastReadDeadline(t))
			}
			d.write([]byte("x"))
			if got := fc.writes(); tt.failed != "" && len(got) > 0 {
				t.Errorf("wrote %q after writing stopped", got)
			}
		})
	}
}

// TestDeadlineConnIdle: a connection whose read deadline passed is idle
// only when nothing came for IdleTimeout and no reply is owed; the idle
// deadline is set IdleTimeout after the last data, or after now when that
// is past or a reply is owed.
func TestDeadlineConnIdle(t *testing.T) {
	const idle = time.Hour
	tests := []struct {
		name  string
		ago   time.Duration // since data last came
		owed  bool
		idle  bool
		after time.Duration // the deadline set, after now
	}{
		{"data a moment ago", time.Second, false, false, idle - time.Second},
		{"data half the time-out ago", idle / 2, false, false, idle / 2},
		{"nothing for the time-out", idle, false, true, idle},
		{"nothing for longer", 2 * idle, false, true, idle},
		{"nothing for the time-out, a reply owed", 2 * idle, true, false, idle},
		{"data half the time-out ago, a reply owed", idle / 2, true, false, idle},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, fc, _ := newTestDeadlineConn(t, idle, time.Hour)
			d.last = monotonic() - tt.ago
			if got := d.idle(tt.owed); got != tt.idle {
				t.Errorf("idle %v, want %v", got, tt.idle)
			}
			d.armIdle(tt.owed)
			if got, want := fc.lastReadDeadline(t), time.Now().Add(tt.after); !near(got, want) {
				t.Errorf("read deadline in %v, want in %v", time.Until(got), tt.after)
			}
		})
	}
}

// TestDeadlineConnRead: a read that brings data notes when; one that
// brings none does not.
func TestDeadlineConnRead(t *testing.T) {
	tests := []struct {
		name  string
		read  fakeRead
		noted bool
	}{
		{"data", fakeRead{"IAMAT", nil}, true},
		{"data and an error", fakeRead{"IAMAT", os.ErrDeadlineExceeded}, true},
		{"nothing, the deadline passed", fakeRead{"", os.ErrDeadlineExceeded}, false},
		{"nothing, the end", fakeRead{"", io.EOF}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, fc, _ := newTestDeadlineConn(t, time.Hour, time.Hour)
			fc.reads = []fakeRead{tt.read}
			d.last = -time.Hour
			buf := make([]byte, 16)
			n, err := d.Read(buf)
			if string(buf[:n]) != tt.read.data || err != tt.read.err {
				t.Errorf("read %q, %v", buf[:n], err)
			}
			if noted := d.last != -time.Hour; noted != tt.noted {
				t.Errorf("noted %v, want %v", noted, tt.noted)
			}
		})
	}
}

// TestDeadlineConnHold: the start of a line read before a deadline passed
// is held and comes before the next read's bytes, once; holding it sets
// the read deadline again.
func TestDeadlineConnHold(t *testing.T) {
	tests := []struct {
		name  string
		held  []string // held in turn
		reads []string // what the next reads bring
		want  []string // the lines withHeld returns
	}{
		{"nothing held", nil, []string{"IAMAT a +1+1 1\n"}, []string{"IAMAT a +1+1 1\n"}},
		{"a line's start", []string{"IAMAT a"}, []string{" +1+1 1\n", "IAMAT b\n"},
			[]string{"IAMAT a +1+1 1\n", "IAMAT b\n"}},
		{"across two deadlines", []string{"IAM", "AT a"}, []string{" +1+1 1\n"}, []string{"IAMAT a +1+1 1\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, fc, _ := newTestDeadlineConn(t, time.Hour, time.Hour)
			for _, h := range tt.held {
				d.hold([]byte(h), false)
			}
			if n := len(fc.readDeadlines); n != len(tt.held) {
				t.Errorf("%d read deadlines set, want one a hold", n)
			}
			for i, r := range tt.reads {
				if got := string(d.withHeld([]byte(r))); got != tt.want[i] {
					t.Errorf("line %d: %q, want %q", i, got, tt.want[i])
				}
			}
		})
	}
}
