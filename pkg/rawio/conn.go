package rawio

import (
	"io"
	"net"
	"os"
	"syscall"
)

// Conn is a *net.TCPConn whose Read and Write are raw system calls; the
// rest (deadlines, Close, CloseWrite, addresses) is the TCPConn's own.
type Conn struct {
	*net.TCPConn
	rc syscall.RawConn
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
	return &Conn{TCPConn: tc, rc: rc}
}

// Read reads into p as net.Conn's Read does: one read that brings data,
// after waiting in the netpoller while none is there, until the read
// deadline; io.EOF once the other end has closed its side.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var errno syscall.Errno
	err := c.rc.Read(func(fd uintptr) bool {
		for {
			n, errno = read(fd, p)
			switch errno {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false // wait in the netpoller, then read again
			}
			return true
		}
	})
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

// Write writes all of p as net.Conn's Write does, waiting in the
// netpoller while the socket's buffer is full, until the write deadline,
// and returns how much it wrote.
func (c *Conn) Write(p []byte) (int, error) {
	n := 0
	var errno syscall.Errno
	err := c.rc.Write(func(fd uintptr) bool {
		for n < len(p) {
			k, e := write(fd, p[n:])
			switch e {
			case 0:
				n += k
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false // wait in the netpoller, then write the rest
			default:
				errno = e
				return true
			}
		}
		return true
	})
	switch {
	case err != nil:
		return n, c.opError("write", err)
	case errno != 0:
		return n, c.opError("write", os.NewSyscallError("write", errno))
	}
	return n, nil
}

// opError wraps err as package net wraps its own, so that callers see the
// same messages, and errors.Is the same causes (os.ErrDeadlineExceeded,
// net.ErrClosed, syscall.ECONNRESET).
func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
