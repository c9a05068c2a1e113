package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/herdkit/herd/pkg/protocol"
)

// oneShot sends words as one line, half-closes, and prints the reply.
func oneShot(ctx context.Context, addr string, timeout time.Duration, words []string, stdout, stderr io.Writer) int {
	line := substituteNow(strings.Join(words, " "), time.Now())
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := dial(ctx, addr, timeout)
	if err != nil {
		fmt.Fprintf(stderr, "herd client: %v\n", err)
		return ExitError
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		fmt.Fprintf(stderr, "herd client: %v\n", err)
		return ExitError
	}
	// Interrupting the context interrupts the exchange.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()

	// One write: the protocol answers a half-closed connection's last line
	// all the same, but a whole line is what a careful client sends.
	if _, err := conn.Write([]byte(line + "\n")); err != nil {
		fmt.Fprintf(stderr, "herd client: %v\n", err)
		return ExitError
	}
	if err := conn.CloseWrite(); err != nil {
		fmt.Fprintf(stderr, "herd client: %v\n", err)
		return ExitError
	}
	reply, err := protocol.NewReplyReader(conn).ReadReply(protocol.FormOf(line))
	if _, werr := stdout.Write(reply.Raw); werr != nil {
		fmt.Fprintf(stderr, "herd client: %v\n", werr)
		return ExitError
	}
	switch {
	case errors.Is(err, io.EOF):
		if isBlank(line) {
			fmt.Fprintln(stderr, "herd client: no reply: a blank line is not a command")
		} else {
			fmt.Fprintf(stderr, "herd client: %s closed the connection without a reply\n", addr)
		}
		return ExitError
	case err != nil:
		var ne net.Error
		switch {
		case errors.Is(ctx.Err(), context.Canceled):
			err = ctx.Err()
		case errors.As(err, &ne) && ne.Timeout():
			err = fmt.Errorf("no complete reply within %v", timeout)
		}
		fmt.Fprintf(stderr, "herd client: %v\n", err)
		return ExitError
	}
	switch reply.Kind {
	case protocol.ReplyAT:
		return ExitOK
	case protocol.ReplyInvalid:
		return ExitInvalid
	}
	fmt.Fprintf(stderr, "herd client: unexpected reply from %s\n", addr)
	return ExitError
}
