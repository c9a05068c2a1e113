// Package accept is the accept loop that every listener of a herd shares:
// the client server's, the peer manager's and the benchmark floor's. It
// returns at once on shutdown and backs off from accept errors, as STYLE's
// connection rules ask.
package accept

import (
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/herdkit/herd/pkg/backoff"
)

// Loop accepts connections on ln and hands each to handle, in the loop's
// goroutine: handle starts the connection's own goroutine, or refuses it
// at once. Loop returns once ln is closed or done is closed. Any other
// accept error (out of file descriptors and the like) is logged at WARN
// when log is not nil, and waited out, 5 ms doubling to 1 s as net/http
// does; the wait ends at once when done is closed, and the first accepted
// connection resets it.
func Loop(ln net.Listener, done <-chan struct{}, log *slog.Logger, handle func(net.Conn)) {
	wait := backoff.Backoff{Base: 5 * time.Millisecond, Max: time.Second}
	var timer *time.Timer
	for {
		nc, err := ln.Accept()
		if err == nil {
			wait.Reset()
			handle(nc)
			continue
		}
		if errors.Is(err, net.ErrClosed) || isDone(done) {
			return
		}
		d := wait.Next()
		if log != nil {
			log.Warn("accept failed", "err", err, "retry_in", d)
		}
		if timer == nil {
			timer = time.NewTimer(d)
			defer timer.Stop()
		} else {
			timer.Reset(d)
		}
		select {
		case <-timer.C:
		case <-done:
			return
		}
	}
}

func isDone(done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
		return false
	}
}
