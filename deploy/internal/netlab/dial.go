//go:build linux

package netlab

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// DialIn connects to addr over TCP from the network namespace at ns (a
// path such as /proc/<pid>/ns/net, a container's), as a process there
// would, within timeout. The connection stays in that namespace; this
// process does not move.
//
// The socket is made on a thread of its own that enters ns and returns
// to this process's namespace after the dial. A thread that cannot
// return is never used again: its goroutine ends still locked to it, and
// Go then ends the thread.
func DialIn(ns, addr string, timeout time.Duration) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		conn, err, back := dialIn(ns, addr, timeout)
		if back {
			runtime.UnlockOSThread()
		}
		done <- result{conn, err}
	}()
	r := <-done
	return r.conn, r.err
}

// dialIn is DialIn on a locked thread; back reports whether the thread
// is in this process's network namespace again.
func dialIn(ns, addr string, timeout time.Duration) (conn net.Conn, err error, back bool) {
	self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		return nil, err, true
	}
	defer self.Close()
	target, err := os.Open(ns)
	if err != nil {
		return nil, err, true
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("entering the network namespace %s: %w", ns, err), true
	}
	conn, err = net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		err = fmt.Errorf("from the network namespace %s: %w", ns, err)
	}
	if rerr := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); rerr != nil {
		return conn, err, false
	}
	return conn, err, true
}
