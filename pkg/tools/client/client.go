package client

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/herdkit/herd/pkg/protocol"
)

// Defaults of the command line.
const (
	// DefaultAddr is the client port of Hill in the local herd.
	DefaultAddr = "127.0.0.1:12200"
	// DefaultTimeout bounds connecting plus the whole exchange of the
	// one-shot form, and the wait for the last replies of the interactive
	// form.
	DefaultTimeout = 10 * time.Second
)

// Exit statuses of Run.
const (
	// ExitOK means every reply was valid.
	ExitOK = 0
	// ExitInvalid means the server answered "? ..." to a command.
	ExitInvalid = 1
	// ExitError means a usage error, a connection error, or a reply that
	// was missing or cut short.
	ExitError = 2
)

const usage = `usage: herd client [-timeout D] [ADDR] [COMMAND...]

Send COMMAND (for example: IAMAT kiwi +34.068930-118.445127 now, or
WHATSAT kiwi 10 5) to the herd server at ADDR (default %s), print
the reply and exit 0 if it was valid, 1 if the server answered "? ...", 2 on
errors. The word "now" as the time of an IAMAT is replaced by the current
time. Without COMMAND, send the lines of standard input and print the
replies as they arrive.

Flags:
`

// Run runs `herd client` with args, the arguments after the subcommand, and
// returns the exit status.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("herd client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", DefaultTimeout, "time limit for connecting and for the reply (one-shot), or for the last replies after end of input (interactive)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), usage, DefaultAddr)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitError
	}
	addr := DefaultAddr
	words := fs.Args()
	if len(words) > 0 && isAddr(words[0]) {
		addr = words[0]
		// Flags may also follow ADDR.
		if err := fs.Parse(words[1:]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return ExitOK
			}
			return ExitError
		}
		words = fs.Args()
	}
	if *timeout <= 0 {
		fmt.Fprintln(stderr, "herd client: -timeout must be positive")
		return ExitError
	}
	if len(words) == 0 {
		return interactive(ctx, addr, *timeout, stdin, stdout, stderr)
	}
	return oneShot(ctx, addr, *timeout, words, stdout, stderr)
}

// isAddr reports whether s looks like host:port with a numeric port, and is
// not a command word.
func isAddr(s string) bool {
	if s == "IAMAT" || s == "WHATSAT" {
		return false
	}
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	n, err := strconv.ParseUint(port, 10, 16)
	return err == nil && n <= 65535
}

// substituteNow returns line with the time field of an IAMAT replaced by
// the current time when that field is the word "now", and ok; otherwise it
// returns line unchanged. A rewritten line has its fields joined by single
// spaces.
func substituteNow(line string, now time.Time) string {
	f := strings.FieldsFunc(line, isSpace)
	if len(f) != 4 || f[0] != "IAMAT" || f[3] != "now" {
		return line
	}
	f[3] = FormatTime(now)
	return strings.Join(f, " ")
}

// FormatTime formats t as POSIX seconds with nine decimals, the form of an
// IAMAT's time field: 1621464827.959498503.
func FormatTime(t time.Time) string {
	ns := t.UnixNano()
	return fmt.Sprintf("%d.%09d", ns/1e9, ns%1e9)
}

// isSpace is the protocol's field separator (space, tab, CR, VT, FF, LF).
func isSpace(r rune) bool { return r < 0x80 && protocol.IsSpace(byte(r)) }

// isBlank reports whether line gets no reply.
func isBlank(line string) bool {
	return strings.TrimFunc(line, isSpace) == ""
}

func dial(ctx context.Context, addr string, timeout time.Duration) (*net.TCPConn, error) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// isTerminal reports whether r is a terminal.
func isTerminal(r any) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
