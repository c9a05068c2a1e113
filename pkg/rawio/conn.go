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
// state and the functions RawConn calls.
type Conn struct {
	*net.TCPConn
	rd call // the Read under way
	wr call // the Write under way
}

// call is one direction of a Conn, or a File's writes: the state of the
// call under way, which do (read or write) reads and writes, and via,
// RawConn's Read or Write, which runs do as the netpoller allows. mu
// serializes the calls, as net.Conn's own lock does.
type call struct {
	mu    sync.Mutex
	p     []byte
	n     int
	errno syscall.Errno
	do    func(fd uintptr) bool
	via   func(func(fd uintptr) bool) error
}

// run makes the call on p and returns how much it moved, the system
// call's error, and RawConn's (a deadline, a close).
func (k *call) run(p []byte) (int, syscall.Errno, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.p, k.n, k.errno = p, 0, 0
	err := k.via(k.do)
	k.p = nil
	return k.n, k.errno, err
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
	c := &Conn{TCPConn: tc}
	c.rd.do, c.rd.via = c.rd.read, rc.Read
	c.wr.do, c.wr.via = c.wr.write, rc.Write
	return c
}

// Read reads into p as net.Conn's Read does: one read that brings data,
// after waiting in the netpoller while none is there, until the read
// deadline; io.EOF once the other end has closed its side.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, errno, err := c.rd.run(p)
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
func (k *call) read(fd uintptr) bool {
	for {
		k.n, k.errno = read(fd, k.p)
		switch k.errno {
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
	n, errno, err := c.wr.run(p)
	switch {
	case err != nil:
		return n, c.opError("write", err)
	case errno != 0:
		return n, c.opError("write", os.NewSyscallError("write", errno))
	}
	return n, nil
}

// write is what RawConn calls for a Write, of a socket or a file: writes
// until all of p is written or one fails, or false to wait in the
// netpoller on EAGAIN (a socket's buffer is full; a regular file never
// says so).
func (k *call) write(fd uintptr) bool {
	for k.n < len(k.p) {
		n, e := write(fd, k.p[k.n:])
		switch {
		case e == syscall.EINTR:
		case e == syscall.EAGAIN:
			return false
		case e != 0:
			k.errno = e
			return true
		case n == 0:
			k.errno = syscall.EIO // no progress and no error: fail rather than loop
			return true
		default:
			k.n += n
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
