package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// deadlineConn is a client connection that keeps its deadlines lazily,
// and knows when its reader should stop: when writing stopped, or when
// shutdown interrupted it.
//
// Deadlines are set lazily: setting one costs about as much as parsing a
// request, and a busy connection would set two a request. The read
// deadline is set when the connection opens (armIdle); when it passes,
// the reader closes the connection as idle only if nothing came for
// IdleTimeout (last says when data last came) and no reply is owed;
// otherwise it holds the start of a line the read had brought (hold) and
// sets the deadline again. The write deadline, writeBy, is set again only
// when a write starts less than half a WriteTimeout before it; when it
// passes during a write that began less than WriteTimeout ago, it moves to
// the write's start plus WriteTimeout and the write goes on. Both
// time-outs thus count as they would with a deadline set before every
// read and write. They use the monotonic clock, not the server's.
//
// stopWriting and interrupt wake the reader: each records why first
// (werr, interrupted), then sets the read deadline to now. The reader sets
// the idle deadline only when the connection opens and when one passed,
// and checks ended after setting it and before it blocks. So either the
// check sees why, or the wake-up's deadline comes after the setting, and
// ends the read; a wake-up is never undone by a setting that follows it
// unseen.
type deadlineConn struct {
	nc     net.Conn
	log    *slog.Logger
	cancel context.CancelFunc // stops the connection's lookups when writing stops

	// The read side, owned by the reader.
	idleTimeout time.Duration
	last        time.Duration // when a read last brought data, on the monotonic clock
	held        []byte        // the start of a line read before a deadline passed

	// The write side. The caller serializes write (the reply queue holds
	// its lock), which alone uses writeBy.
	writeTimeout time.Duration
	writeBy      time.Duration          // the write deadline, on the monotonic clock
	werr         atomic.Pointer[string] // why writing stopped; nothing is written after it

	interrupted atomic.Bool // set by shutdown
}

// init makes d the connection nc, opened now, with the time-outs idle and
// write; cancel stops its lookups, and log says why writing stopped.
func (d *deadlineConn) init(nc net.Conn, idle, write time.Duration, log *slog.Logger, cancel context.CancelFunc) {
	d.nc, d.log, d.cancel = nc, log, cancel
	d.idleTimeout, d.last, d.writeTimeout = idle, monotonic(), write
}

// Read reads from the connection and notes when it brought data.
func (d *deadlineConn) Read(p []byte) (int, error) {
	n, err := d.nc.Read(p)
	if n > 0 {
		d.last = monotonic()
	}
	return n, err
}

// armIdle sets the read deadline to IdleTimeout after the last read that
// brought data, or after now while a reply is owed (its client is not
// idle) or when that time is past.
func (d *deadlineConn) armIdle(owed bool) {
	at := d.last + d.idleTimeout
	if now := monotonic(); owed || at <= now {
		at = now + d.idleTimeout
	}
	d.nc.SetReadDeadline(epoch.Add(at))
}

// idle reports whether a connection whose read deadline passed is idle:
// nothing came for IdleTimeout and no reply is owed.
func (d *deadlineConn) idle(owed bool) bool {
	return !owed && monotonic()-d.last >= d.idleTimeout
}

// hold keeps line, the start of a line a read brought before the read
// deadline passed on a connection that is not idle, and sets the deadline
// again.
func (d *deadlineConn) hold(line []byte, owed bool) {
	d.held = append(d.held, line...)
	d.armIdle(owed)
}

// withHeld returns line after the start held before it, if any.
func (d *deadlineConn) withHeld(line []byte) []byte {
	if len(d.held) == 0 {
		return line
	}
	line = append(d.held, line...)
	d.held = d.held[:0]
	return line
}

// write sends b in one write, unless writing stopped; writing stops when
// the client has not taken b within WriteTimeout. Calls are serialized by
// the caller.
func (d *deadlineConn) write(b []byte) {
	if d.werr.Load() != nil || len(b) == 0 {
		return
	}
	timeout := d.writeTimeout
	start := monotonic()
	if d.writeBy-start < timeout/2 {
		d.setWriteBy(start + timeout)
	}
	for {
		n, err := d.nc.Write(b)
		if err == nil {
			return
		}
		if errors.Is(err, os.ErrDeadlineExceeded) && monotonic()-start < timeout {
			// The deadline was set by an earlier write: this one has
			// until its own start plus WriteTimeout.
			b = b[n:]
			d.setWriteBy(start + timeout)
			continue
		}
		reason := closeWriteError
		if errors.Is(err, os.ErrDeadlineExceeded) {
			reason = closeWriteTimeout
		}
		d.stopWriting(reason, slog.LevelInfo, "write failed", err)
		return
	}
}

// setWriteBy sets the write deadline, t on the monotonic clock.
func (d *deadlineConn) setWriteBy(t time.Duration) {
	d.writeBy = t
	d.nc.SetWriteDeadline(epoch.Add(t))
}

// stopWriting makes reason the connection's end: nothing is written after
// it, its lookups stop and the reader wakes to close. The first reason
// stands; it is logged at level with msg and err.
func (d *deadlineConn) stopWriting(reason string, level slog.Level, msg string, err error) {
	if !d.werr.CompareAndSwap(nil, &reason) {
		return
	}
	d.log.Log(context.Background(), level, msg, "err", err)
	d.cancel()                       // the client is gone or stuck: stop its lookups
	d.nc.SetReadDeadline(time.Now()) // and wake the reader to close
}

// interrupt makes the reader stop at its next read, for shutdown.
func (d *deadlineConn) interrupt() {
	d.interrupted.Store(true)
	d.nc.SetReadDeadline(time.Now())
}

// failed returns why writing stopped, or "".
func (d *deadlineConn) failed() string {
	if r := d.werr.Load(); r != nil {
		return *r
	}
	return ""
}

// ended returns why the reader should stop, or "": writing stopped, or
// shutdown interrupted it.
func (d *deadlineConn) ended() string {
	if r := d.failed(); r != "" {
		return r
	}
	if d.interrupted.Load() {
		return closeShutdown
	}
	return ""
}

// epoch is the origin of monotonic.
var epoch = time.Now()

// monotonic returns the time since epoch. It reads only the monotonic
// clock, which costs half of time.Now's two readings: the deadlines'
// bookkeeping uses it, once or twice a request.
func monotonic() time.Duration { return time.Since(epoch) }
