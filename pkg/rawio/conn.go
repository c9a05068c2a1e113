package rawio

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// Conn is a *net.TCPConn whose Read and Write are raw system calls; the
// rest (deadlines, Close, CloseWrite, addresses) is the TCPConn's own.
// A Read and a Write allocate nothing: each direction keeps its call's
// state and the function RawConn calls.
type Conn struct {
	*net.TCPConn
	rc syscall.RawConn
	rd call // the Read under way
	wr call // the Write under way
}

// call is the state of a Read or a Write under way, which the function
// RawConn calls (do) reads and writes. mu serializes the calls of one
// direction, as net.Conn's own lock does.
type call struct {
	mu    sync.Mutex
	p     []byte
	n     int
	errno syscall.Errno
	do    func(fd uintptr) bool
}

// Wrap returns nc as a *Conn when it is a *net.TCPConn, and nc itself
// otherwise: a test's pipe, or a connection with faults of its own.
func Wrap(nc net.Conn) net.Conn {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nc
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nc
	}
	c := &Conn{TCPConn: tc, rc: rc}
	c.rd.do, c.wr.do = c.rd.read, c.wr.write
	return c
}

// Read reads into p as net.Conn's Read does: one read that brings data,
// after waiting in the netpoller while none is there, until the read
// deadline; io.EOF once the other end has closed its side.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rd.mu.Lock()
	c.rd.p, c.rd.n, c.rd.errno = p, 0, 0
	err := c.rc.Read(c.rd.do)
	n, errno := c.rd.n, c.rd.errno
	c.rd.p = nil
	c.rd.mu.Unlock()
	switch {
	case err != nil:
		return 0, c.opError("read", err)
	case errno != 0:
		return 0, c.opError("read", os.NewSyscallError("read", errno))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// read is what RawConn calls for a Read: one read, again after EINTR, or
// false to wait in the netpoller on EAGAIN.
func (r *call) read(fd uintptr) bool {
	for {
		r.n, r.errno = read(fd, r.p)
		switch r.errno {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		return true
	}
}

// Write writes all of p as net.Conn's Write does, waiting in the
// netpoller while the socket's buffer is full, until the write deadline,
// and returns how much it wrote.
func (c *Conn) Write(p []byte) (int, error) {
	c.wr.mu.Lock()
	c.wr.p, c.wr.n, c.wr.errno = p, 0, 0
	err := c.rc.Write(c.wr.do)
	n, errno := c.wr.n, c.wr.errno
	c.wr.p = nil
	c.wr.mu.Unlock()
	switch {
	case err != nil:
		return n, c.opError("write", err)
	case errno != 0:
		return n, c.opError("write", os.NewSyscallError("write", errno))
	}
	return n, nil
}

// write is what RawConn calls for a Write: writes until all of p is
// written or one fails, or false to wait in the netpoller on EAGAIN.
func (w *call) write(fd uintptr) bool {
	for w.n < len(w.p) {
		k, e := write(fd, w.p[w.n:])
		switch e {
		case 0:
			w.n += k
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			w.errno = e
			return true
		}
	}
	return true
}

// opError wraps err as package net wraps its own, so that callers see the
// same messages, and errors.Is the same causes (os.ErrDeadlineExceeded,
// net.ErrClosed, syscall.ECONNRESET).
func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
