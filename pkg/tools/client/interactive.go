package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/herdkit/herd/pkg/protocol"
)

const prompt = "herd> "

// session is one interactive connection: a sender copies standard input to
// the connection while a receiver prints the replies as they arrive.
type session struct {
	conn   *net.TCPConn
	stdout io.Writer
	stderr io.Writer
	prompt bool // standard input is a terminal

	mu       sync.Mutex
	forms    []protocol.ReplyForm // for every command awaiting its reply, oldest first: the form of its reply
	sent     int                  // commands sent (lines that get a reply)
	answered int
	invalid  bool // some reply was "? ..."
	strange  bool // some reply was not of the protocol
	progress chan struct{}
}

// interactive runs the interactive form against addr.
func interactive(ctx context.Context, addr string, timeout time.Duration, stdin io.Reader, stdout, stderr io.Writer) int {
	conn, err := dial(ctx, addr, timeout)
	if err != nil {
		fmt.Fprintf(stderr, "herd client: %v\n", err)
		return ExitError
	}
	defer conn.Close()
	s := &session{
		conn:     conn,
		stdout:   stdout,
		stderr:   stderr,
		prompt:   isTerminal(stdin),
		progress: make(chan struct{}, 1),
	}
	recvDone := make(chan error, 1)
	go func() { recvDone <- s.receive() }()
	sendDone := make(chan error, 1)
	go func() { sendDone <- s.send(stdin) }()
	// The sender may stay blocked on a terminal's input after Run returns;
	// that is harmless in a process about to exit, and it never writes to
	// stdout.

	status := ExitOK
	var recvErr error
	recvFinished := false
	select {
	case err := <-sendDone:
		if err == nil {
			err = conn.CloseWrite()
		}
		if err == nil {
			recvFinished, recvErr, err = s.waitAnswered(ctx, recvDone, timeout)
		}
		if err != nil {
			fmt.Fprintf(stderr, "herd client: %v\n", err)
			status = ExitError
		}
	case recvErr = <-recvDone:
		recvFinished = true
		if recvErr == nil {
			fmt.Fprintf(stderr, "herd client: %s closed the connection\n", addr)
			status = ExitError
		}
	case <-ctx.Done():
		fmt.Fprintf(stderr, "herd client: %v\n", ctx.Err())
		status = ExitError
	}
	conn.Close()
	if !recvFinished {
		<-recvDone // a receiver stopped by our own Close has nothing to report
	} else if recvErr != nil {
		fmt.Fprintf(stderr, "herd client: %v\n", recvErr)
		status = ExitError
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case status != ExitOK:
		return status
	case s.strange:
		fmt.Fprintf(stderr, "herd client: unexpected reply from %s\n", addr)
		return ExitError
	case s.invalid:
		return ExitInvalid
	}
	return ExitOK
}

// send copies the lines of in to the connection, replacing an IAMAT's
// "now". Lines that are already buffered go out in one write, so piped
// input is pipelined; a typed line goes out at once.
func (s *session) send(in io.Reader) error {
	r := bufio.NewReader(in)
	w := bufio.NewWriter(s.conn)
	s.showPrompt()
	for {
		line, err := r.ReadString('\n')
		if len(line) > 0 {
			line = substituteNow(strings.TrimSuffix(line, "\n"), time.Now())
			if isBlank(line) {
				s.showPrompt()
			} else {
				s.mu.Lock()
				s.forms = append(s.forms, protocol.FormOf(line))
				s.sent++
				s.mu.Unlock()
			}
			w.WriteString(line)
			w.WriteByte('\n')
		}
		if err != nil {
			if ferr := w.Flush(); ferr != nil {
				return ferr
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("reading standard input: %w", err)
		}
		if !protocol.LineBuffered(r) {
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
}

// receive prints replies until the connection ends, and returns nil at a
// clean end of the connection.
func (s *session) receive() error {
	rr := protocol.NewReplyReader(s.conn)
	out := bufio.NewWriter(s.stdout)
	defer out.Flush()
	for {
		// Wait for the reply to start before looking up its command, which
		// the sender records before it writes it.
		if rr.Buffered() == 0 {
			// About to block: show what has arrived so far.
			if err := out.Flush(); err != nil {
				return err
			}
			if err := rr.Fill(); err != nil && rr.Buffered() == 0 {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
			continue
		}
		s.mu.Lock()
		form := protocol.LineReply
		if len(s.forms) > 0 {
			form = s.forms[0]
		}
		s.mu.Unlock()
		reply, ok := rr.Next(form)
		if !ok {
			if err := out.Flush(); err != nil {
				return err
			}
			r, err := rr.ReadReply(form)
			if err != nil {
				out.Write(r.Raw)
				return err
			}
			reply = &r
		}
		out.Write(reply.Raw)
		s.answer(reply.Kind)
	}
}

// answer records a complete reply.
func (s *session) answer(k protocol.ReplyKind) {
	s.mu.Lock()
	if len(s.forms) > 0 {
		s.forms = s.forms[1:]
	}
	s.answered++
	s.invalid = s.invalid || k == protocol.ReplyInvalid
	s.strange = s.strange || k == protocol.ReplyMalformed
	s.mu.Unlock()
	select {
	case s.progress <- struct{}{}:
	default:
	}
	s.showPrompt()
}

// showPrompt writes the prompt to a terminal when no reply is awaited.
func (s *session) showPrompt() {
	if !s.prompt {
		return
	}
	s.mu.Lock()
	idle := s.answered >= s.sent
	s.mu.Unlock()
	if idle {
		fmt.Fprint(s.stderr, prompt)
	}
}

func (s *session) missing() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent - s.answered
}

// waitAnswered waits, after the end of input, until every command has its
// reply, the receiver stops, or the time-out passes. finished tells whether
// the receiver stopped, and recvErr is then its error.
func (s *session) waitAnswered(ctx context.Context, recvDone <-chan error, timeout time.Duration) (finished bool, recvErr, err error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		if s.missing() <= 0 {
			return false, nil, nil
		}
		select {
		case <-s.progress:
		case recvErr = <-recvDone:
			if n := s.missing(); n > 0 && recvErr == nil {
				return true, nil, fmt.Errorf("connection closed with %d replies missing", n)
			}
			return true, recvErr, nil
		case <-timer.C:
			return false, nil, fmt.Errorf("%d replies missing %v after the end of input", s.missing(), timeout)
		case <-ctx.Done():
			return false, nil, ctx.Err()
		}
	}
}
