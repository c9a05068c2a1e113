package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herdkit/herd/pkg/protocol"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// placesJSON spans lines, as the real server's does.
const placesJSON = "{\n   \"html_attributions\" : [],\n   \"results\" : [],\n   \"status\" : \"OK\"\n}"

// fake is a herd server for tests: it answers IAMAT and WHATSAT from a map
// with the protocol's framing, one write per reply.
type fake struct {
	ln net.Listener
	// holdOpen keeps a connection open after the client half-closes, to
	// test that the client stops once it has every reply.
	holdOpen bool
	// mute reads but never answers.
	mute bool

	mu    sync.Mutex
	known map[string]string // client id -> AT line
	wg    sync.WaitGroup
	done  chan struct{}
}

func startFake(t *testing.T, configure func(*fake)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fake{ln: ln, known: map[string]string{}, done: make(chan struct{})}
	if configure != nil {
		configure(f)
	}
	conns := make(map[net.Conn]bool)
	var connsMu sync.Mutex
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			connsMu.Lock()
			conns[c] = true
			connsMu.Unlock()
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				defer c.Close()
				f.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		close(f.done)
		ln.Close()
		connsMu.Lock()
		for c := range conns {
			c.Close()
		}
		connsMu.Unlock()
		f.wg.Wait()
	})
	return ln.Addr().String()
}

func (f *fake) serve(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if line != "" && !f.mute {
			if reply := f.answer(strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")); reply != "" {
				if _, werr := c.Write([]byte(reply)); werr != nil {
					return
				}
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) && (f.holdOpen || f.mute) {
				<-f.done
			}
			return
		}
	}
}

func (f *fake) answer(line string) string {
	c := protocol.Parse([]byte(line))
	switch c.Kind {
	case protocol.Blank:
		return ""
	case protocol.IAMAT:
		at := string(protocol.AppendAT(nil, "Hill", 1621464828223371889, c.Text()))
		f.mu.Lock()
		f.known[string(c.Client)] = at
		f.mu.Unlock()
		return at + "\n"
	case protocol.WHATSAT:
		f.mu.Lock()
		at, ok := f.known[string(c.Client)]
		f.mu.Unlock()
		if ok {
			return string(protocol.AppendPlacesReply(nil,
				func(b []byte) []byte { return append(b, at...) },
				func(b []byte) []byte { return append(b, placesJSON...) }))
		}
	}
	return string(protocol.AppendInvalid(nil, []byte(line)))
}

func run(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	t.Logf("herd client %q: status %d, stderr %q", args, code, errb.String())
	return out.String(), errb.String(), code
}

func TestOneShot(t *testing.T) {
	addr := startFake(t, nil)
	at := `AT Hill [+-]\d+\.\d{9} kiwi \+34\.068930-118\.445127 `
	tests := []struct {
		name   string
		args   []string
		stdout string // a regular expression for the whole output
		code   int
	}{
		{"iamat", []string{addr, "IAMAT", "kiwi", "+34.068930-118.445127", "1621464827.959498503"},
			`AT Hill \+0\.263873386 kiwi \+34\.068930-118\.445127 1621464827\.959498503\n`, ExitOK},
		{"iamat now", []string{addr, "IAMAT", "kiwi", "+34.068930-118.445127", "now"}, at + `\d{10,}\.\d{9}\n`, ExitOK},
		{"one argument with spaces", []string{addr, "IAMAT kiwi +34.068930-118.445127 now"}, at + `\d{10,}\.\d{9}\n`, ExitOK},
		{"flags after addr", []string{addr, "-timeout", "5s", "WHATSAT", "kiwi", "10", "5"},
			at + `\d{10,}\.\d{9}\n` + regexp.QuoteMeta(placesJSON) + `\n\n`, ExitOK},
		{"whatsat", []string{addr, "WHATSAT", "kiwi", "10", "5"},
			at + `\d{10,}\.\d{9}\n` + regexp.QuoteMeta(placesJSON) + `\n\n`, ExitOK},
		{"whatsat unknown", []string{addr, "WHATSAT", "nobody", "10", "5"}, `\? WHATSAT nobody 10 5\n`, ExitInvalid},
		{"invalid", []string{addr, "IAMAT", "Clark", "+12-118"}, `\? IAMAT Clark \+12-118\n`, ExitInvalid},
		{"now only in iamat", []string{addr, "WHATSAT", "kiwi", "now", "5"}, `\? WHATSAT kiwi now 5\n`, ExitInvalid},
		{"blank", []string{addr, " "}, ``, ExitError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, code := run(t, "", tt.args...)
			if code != tt.code {
				t.Errorf("status %d, want %d", code, tt.code)
			}
			if !regexp.MustCompile(`^` + tt.stdout + `$`).MatchString(out) {
				t.Errorf("stdout %q does not match %q", out, tt.stdout)
			}
		})
	}
}

// TestOneShotHalfCloses uses a server that answers only once the client
// has half-closed.
func TestOneShotHalfCloses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		in, _ := io.ReadAll(c)
		c.Write([]byte("? " + strings.TrimSuffix(string(in), "\n") + "\n"))
	}()
	out, _, code := run(t, "", ln.Addr().String(), "HELLO")
	if out != "? HELLO\n" || code != ExitInvalid {
		t.Errorf("got %q, status %d", out, code)
	}
}

func TestOneShotErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()
	mute := startFake(t, func(f *fake) { f.mute = true })
	tests := []struct {
		name string
		args []string
	}{
		{"connection refused", []string{refused, "IAMAT", "k", "+1+2", "now"}},
		{"time-out", []string{"-timeout", "50ms", mute, "IAMAT", "k", "+1+2", "now"}},
		{"bad flag", []string{"-bogus"}},
		{"bad timeout", []string{"-timeout", "0s", refused, "IAMAT"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errs, code := run(t, "", tt.args...)
			if code != ExitError || out != "" || errs == "" {
				t.Errorf("got stdout %q, stderr %q, status %d; want only a message and status 2", out, errs, code)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	_, errs, code := run(t, "", "-h")
	if code != ExitOK || !strings.Contains(errs, "usage: herd client") {
		t.Errorf("got %q, status %d", errs, code)
	}
}

func TestIsAddr(t *testing.T) {
	for s, want := range map[string]bool{
		"127.0.0.1:12200": true, "localhost:1": true, "[::1]:12200": true, ":12200": true,
		"IAMAT": false, "WHATSAT": false, "kiwi": false, "host:port": false, "h:99999": false, "+34-118": false,
	} {
		if got := isAddr(s); got != want {
			t.Errorf("isAddr(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestSubstituteNow(t *testing.T) {
	now := time.Unix(1621464827, 959498503)
	for in, want := range map[string]string{
		"IAMAT kiwi +1+2 now":       "IAMAT kiwi +1+2 1621464827.959498503",
		" IAMAT\tkiwi +1+2  now\r":  "IAMAT kiwi +1+2 1621464827.959498503",
		"IAMAT now +1+2 5":          "IAMAT now +1+2 5",
		"IAMAT kiwi +1+2 now extra": "IAMAT kiwi +1+2 now extra",
		"WHATSAT kiwi 10 now":       "WHATSAT kiwi 10 now",
		"  IAMAT k +1+2 NOW ":       "  IAMAT k +1+2 NOW ",
	} {
		if got := substituteNow(in, now); got != want {
			t.Errorf("substituteNow(%q) = %q, want %q", in, got, want)
		}
	}
	if got := FormatTime(time.Unix(5, 7)); got != "5.000000007" {
		t.Errorf("FormatTime = %q", got)
	}
}

func TestInteractive(t *testing.T) {
	json := regexp.QuoteMeta(placesJSON)
	tests := []struct {
		name      string
		configure func(*fake)
		stdin     string
		stdout    string
		code      int
	}{
		{
			name:  "pipelined",
			stdin: "IAMAT a +1+2 now\nWHATSAT a 10 5\n\n  \nIAMAT b +3-4 5.5\r\nWHATSAT b 1 0\nIAMAT c +5+6 7",
			stdout: `AT Hill [+-]\d+\.\d{9} a \+1\+2 \d+\.\d{9}\n` +
				`AT Hill [+-]\d+\.\d{9} a \+1\+2 \d+\.\d{9}\n` + json + `\n\n` +
				`AT Hill \+1621464822\.723371889 b \+3-4 5\.5\n` +
				`AT Hill \+1621464822\.723371889 b \+3-4 5\.5\n` + json + `\n\n` +
				`AT Hill \+1621464821\.223371889 c \+5\+6 7\n`,
			code: ExitOK,
		},
		{
			name:  "invalid lines",
			stdin: "WHATSAT z 10 5\nIAMAT z +1+2 3\nWHATSAT z 10 5\nHELLO\n",
			stdout: `\? WHATSAT z 10 5\n` +
				`AT Hill \S+ z \+1\+2 3\n` +
				`AT Hill \S+ z \+1\+2 3\n` + json + `\n\n` +
				`\? HELLO\n`,
			code: ExitInvalid,
		},
		{
			name:      "server keeps the connection open",
			configure: func(f *fake) { f.holdOpen = true },
			stdin:     "IAMAT a +1+2 3\nIAMAT a +1+2 4\n",
			stdout:    `AT Hill \S+ a \+1\+2 3\nAT Hill \S+ a \+1\+2 4\n`,
			code:      ExitOK,
		},
		{name: "empty input", stdin: "", stdout: ``, code: ExitOK},
		{name: "only blank lines", stdin: "\n \n", stdout: ``, code: ExitOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := startFake(t, tt.configure)
			out, _, code := run(t, tt.stdin, addr)
			if code != tt.code {
				t.Errorf("status %d, want %d", code, tt.code)
			}
			if !regexp.MustCompile(`^` + tt.stdout + `$`).MatchString(out) {
				t.Errorf("stdout %q does not match %q", out, tt.stdout)
			}
		})
	}
}

func TestInteractiveMissingReplies(t *testing.T) {
	addr := startFake(t, func(f *fake) { f.mute = true })
	out, errs, code := run(t, "IAMAT a +1+2 3\n", "-timeout", "50ms", addr)
	if code != ExitError || out != "" || !strings.Contains(errs, "1 replies missing") {
		t.Errorf("got stdout %q, stderr %q, status %d", out, errs, code)
	}
}

func TestInteractiveConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if _, errs, code := run(t, "IAMAT a +1+2 3\n", addr); code != ExitError || errs == "" {
		t.Errorf("status %d, stderr %q", code, errs)
	}
}

// TestInteractivePartialLine: a command typed or piped whole goes out and
// its reply is shown while the next line is still arriving.
func TestInteractivePartialLine(t *testing.T) {
	addr := startFake(t, nil)
	in, feed := io.Pipe()
	defer feed.Close() // on failure too, so that Run ends
	out, outW := io.Pipe()
	lines := make(chan string, 2)
	go func() {
		defer close(lines)
		rr := protocol.NewReplyReader(out)
		for {
			r, err := rr.ReadReply(protocol.LineReply)
			if err != nil {
				return
			}
			lines <- string(r.Raw)
		}
	}()
	done := make(chan int, 1)
	go func() {
		done <- Run(context.Background(), []string{addr}, in, outW, io.Discard)
		outW.Close()
	}()
	next := func(why string) string {
		t.Helper()
		select {
		case l := <-lines:
			return l
		case <-time.After(5 * time.Second):
			t.Fatalf("no reply %s", why)
			return ""
		}
	}
	io.WriteString(feed, "IAMAT a +1+2 3\nIAMAT b +1")
	if l := next("to the whole line while the next is partial"); !strings.HasPrefix(l, "AT Hill ") {
		t.Fatalf("first reply %q", l)
	}
	io.WriteString(feed, "+2 3\n")
	if l := next("to the line completed"); !strings.HasPrefix(l, "AT Hill ") {
		t.Fatalf("second reply %q", l)
	}
	feed.Close()
	if code := <-done; code != ExitOK {
		t.Errorf("status %d", code)
	}
	if l, more := <-lines; more {
		t.Errorf("more output %q", l)
	}
}

// TestOneShotBadReplies: what is not a whole reply of the protocol is
// shown as it came and fails the command.
func TestOneShotBadReplies(t *testing.T) {
	const at = "AT Hill +0.1 k +1+1 1\n"
	tests := []struct {
		name    string
		command string
		reply   string // written, then the connection closes
		stderr  string
	}{
		{"not a reply", "IAMAT k +1+1 1", "hello\n", "unexpected reply"},
		{"WHATSAT without JSON", "WHATSAT k 1 1", at + "not JSON\n", "unexpected reply"},
		{"cut in the JSON", "WHATSAT k 1 1", at + "{\"results\" :", "middle of a reply"},
		{"cut before the empty line", "WHATSAT k 1 1", at + "{}\n", "middle of a reply"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			served := make(chan struct{})
			go func() {
				defer close(served)
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				io.ReadAll(c)
				c.Write([]byte(tt.reply))
			}()
			out, errs, code := run(t, "", ln.Addr().String(), tt.command)
			<-served
			if code != ExitError || out != tt.reply || !strings.Contains(errs, tt.stderr) {
				t.Errorf("got stdout %q, stderr %q, status %d", out, errs, code)
			}
		})
	}
}
