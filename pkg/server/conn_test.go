package server

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/rawio"
)

// TestReadFailed: what a read that ended in an error means: why the
// connection closes, with what was ready sent first, or, when a deadline
// passed on a connection that is not idle, reading on with the start of
// the line held.
func TestReadFailed(t *testing.T) {
	const maxLine = 20
	tooLong := strings.Repeat("x", maxLine+2)
	ts := newTestServer(t, Config{IdleTimeout: time.Hour, MaxLine: maxLine})
	stop := func(c *conn) { c.dc.stopWriting(closeWriteError, slog.LevelInfo, "stopped", errors.New("test")) }
	idle := func(c *conn) { c.dc.last = monotonic() - 2*time.Hour }
	tests := []struct {
		name   string
		setup  func(c *conn)
		line   string
		err    error
		reason string
		held   string
		writes []string
	}{
		{"a line too long", nil, tooLong, bufio.ErrBufferFull, closeLineTooLong, "", nil},
		{"the end", nil, "", io.EOF, closeEOF, "", nil},
		{"the end after a last line without its LF", nil, "IAMAT k +1+1 1", io.EOF, closeEOF, "",
			[]string{"AT Hill +1621464827.223371889 k +1+1 1\n"}},
		{"broken", nil, "", errors.New("connection reset by peer"), closeReadError, "", nil},
		{"writing stopped", stop, "", os.ErrDeadlineExceeded, closeWriteError, "", nil},
		{"shutdown", func(c *conn) { c.dc.interrupt() }, "IAMAT", os.ErrDeadlineExceeded, closeShutdown, "", nil},
		{"idle", idle, "", os.ErrDeadlineExceeded, closeIdle, "", nil},
		{"idle, with a reply ready: sent first",
			func(c *conn) { idle(c); c.invalid([]byte("HELLO"), 0, "test") }, "", os.ErrDeadlineExceeded, closeIdle, "",
			[]string{"? HELLO\n"}},
		{"data came since the deadline was set", nil, "IAMAT k", os.ErrDeadlineExceeded, "", "IAMAT k", nil},
		{"idle but a lookup owed", func(c *conn) { idle(c); c.replies.owe() }, "IAMAT k", os.ErrDeadlineExceeded,
			"", "IAMAT k", nil},
		{"not idle, the start of a line too long", nil, tooLong, os.ErrDeadlineExceeded, closeLineTooLong, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := newFakeConn()
			c := ts.newConn(fc)
			defer c.cancel()
			c.readAt = fixedNow
			if tt.setup != nil {
				tt.setup(c)
			}
			if got := c.readFailed([]byte(tt.line), tt.err); got != tt.reason {
				t.Errorf("reason %q, want %q", got, tt.reason)
			}
			if got := string(c.dc.held); got != tt.held {
				t.Errorf("held %q, want %q", got, tt.held)
			}
			if got := fc.writes(); !slices.Equal(got, tt.writes) {
				t.Errorf("writes %q, want %q", got, tt.writes)
			}
		})
	}
}

// TestWakeUpBeforeFirstRead: a wake-up that comes before the reader sets
// its first idle deadline, which undoes the wake-up's deadline of now, is
// seen: the reader stops at once rather than waiting for IdleTimeout.
func TestWakeUpBeforeFirstRead(t *testing.T) {
	tests := []struct {
		name   string
		wake   func(d *deadlineConn)
		reason string
	}{
		{"interrupted", func(d *deadlineConn) { d.interrupt() }, closeShutdown},
		{"writing stopped", func(d *deadlineConn) {
			d.stopWriting(closeNotDurable, slog.LevelInfo, "stopped", errors.New("test"))
		}, closeNotDurable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, Config{IdleTimeout: time.Hour})
			server, client := net.Pipe()
			defer client.Close()
			c := ts.newConn(server)
			if refused := ts.admit(c); refused != "" {
				t.Fatal(refused)
			}
			tt.wake(&c.dc)
			go c.serve()
			client.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, err := client.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("read %d bytes, %v; want the close", n, err)
			}
			testutil.Eventually(t, 5*time.Second, testutil.ValueIs(ts.m.ClientDisconnects.WithLabelValues(tt.reason), 1))
		})
	}
}

// TestClientConnectionsOverRawSockets: a client connection reads and
// writes its socket through rawio (docs/benchmarks.md, "Raw system
// calls").
func TestClientConnectionsOverRawSockets(t *testing.T) {
	ts := newTestServer(t, Config{})
	c := dial(t, ts.Addr())
	c.send(kiwi + "\n")
	c.expect(kiwiAT)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.conns) != 1 {
		t.Fatalf("%d connections open, want 1", len(ts.conns))
	}
	for sc := range ts.conns {
		if _, ok := sc.dc.nc.(*rawio.Conn); !ok {
			t.Errorf("the connection reads and writes through %T, not a rawio.Conn", sc.dc.nc)
		}
	}
}
