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
func DialIn(ns, addr string, timeout time.Duration) (net.Conn, error) {
	var conn net.Conn
	err := inNamespace(ns, func() error {
		var err error
		conn, err = net.DialTimeout("tcp", addr, timeout)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("from the network namespace %s: %w", ns, err)
	}
	return conn, nil
}

// inNamespace runs f on a thread of its own that enters the network
// namespace at ns, and returns to this process's namespace after f: the
// sockets f makes are in ns. A thread that cannot return is never used
// again: its goroutine ends still locked to it, and Go then ends the
// thread.
func inNamespace(ns string, f func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		back, err := enter(ns, f)
		if back {
			runtime.UnlockOSThread()
		}
		done <- err
	}()
	return <-done
}

// enter is inNamespace on a locked thread; back reports whether the
// thread is in this process's network namespace again.
func enter(ns string, f func() error) (back bool, err error) {
	self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		return true, err
	}
	defer self.Close()
	target, err := os.Open(ns)
	if err != nil {
		return true, err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return true, fmt.Errorf("entering the network namespace %s: %w", ns, err)
	}
	err = f()
	return unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil, err
}
