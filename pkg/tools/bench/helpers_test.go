package bench

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herdkit/herd/pkg/protocol"
	"go.uber.org/goleak"
)

// childEnv makes the test binary act as `herd`: StartFloorProcess runs
// os.Executable() with "bench floor ...", which TestMain hands to Run.
const childEnv = "HERD_BENCH_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" && len(os.Args) > 1 && os.Args[1] == "bench" {
		os.Exit(Run(context.Background(), os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

// startFloor starts an in-process floor server for one test.
func startFloor(t *testing.T) *FloorServer {
	t.Helper()
	s, err := ListenFloor("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Close() })
	return s
}

// startFloorInProcess is a FloorStarter for tests: a floor server in the
// test's process, on a free port of 127.0.0.1, where TestRunLoadFloorChild
// covers the child process of `herd bench load -floor`.
func startFloorInProcess(context.Context) (string, func() error, error) {
	s, err := ListenFloor("127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	go s.Serve()
	return s.Addr(), s.Close, nil
}

// lineServer serves each connection with answer, one line at a time, and
// closes a connection at the end of its input.
type lineServer struct {
	ln    net.Listener
	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func startLineServer(t *testing.T, answer func(line string) string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &lineServer{ln: ln, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = true
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				r := bufio.NewReader(c)
				w := bufio.NewWriter(c)
				for {
					line, err := r.ReadString('\n')
					if line != "" {
						w.WriteString(answer(strings.TrimRight(line, "\r\n")))
					}
					if r.Buffered() == 0 || err != nil {
						if w.Flush() != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return ln.Addr().String()
}

// fakePlaces spans lines, as the real server's JSON does.
const fakePlaces = "{\n   \"html_attributions\" : [],\n   \"results\" : [],\n   \"status\" : \"OK\"\n}"

// fakeHerd is a herd of servers sharing one map of records: a record
// received by one server becomes visible on server j delay[j] later.
type fakeHerd struct {
	delay []time.Duration
	// skew is added to the servers' clock; lag is how long an IAMAT takes
	// to reach its server.
	skew, lag time.Duration
	mu        sync.Mutex
	recs      map[string]fakeRecord
	lines     []int // lines handled by each server
}

type fakeRecord struct {
	origin int
	at     time.Time
	line   string
}

func startFakeHerd(t *testing.T, delays ...time.Duration) (*fakeHerd, []string) {
	h := &fakeHerd{delay: delays, recs: map[string]fakeRecord{}, lines: make([]int, len(delays))}
	var addrs []string
	for i := range delays {
		addrs = append(addrs, startLineServer(t, func(line string) string { return h.answer(i, line) }))
	}
	return h, addrs
}

func (h *fakeHerd) answer(server int, line string) string {
	c := protocol.Parse([]byte(line))
	if c.Kind == protocol.IAMAT {
		time.Sleep(h.lag)
	}
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	if c.Kind != protocol.Blank {
		h.lines[server]++
	}
	switch c.Kind {
	case protocol.Blank:
		return ""
	case protocol.IAMAT:
		at := string(protocol.AppendAT(nil, "Fake", now.Add(h.skew).UnixNano(), c.Text()))
		id := string(c.Client)
		if r, ok := h.recs[id]; !ok || protocol.CompareTime(string(c.Time), timeOf(r.line)) > 0 {
			h.recs[id] = fakeRecord{origin: server, at: now, line: at}
		}
		return at + "\n"
	case protocol.WHATSAT:
		r, ok := h.recs[string(c.Client)]
		if ok && (r.origin == server || now.Sub(r.at) >= h.delay[server]) {
			return string(protocol.AppendPlacesReply(nil,
				func(b []byte) []byte { return append(b, r.line...) },
				func(b []byte) []byte { return append(b, fakePlaces...) }))
		}
	}
	return string(protocol.AppendInvalid(nil, []byte(line)))
}

func (h *fakeHerd) handled(server int) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lines[server]
}

func timeOf(at string) string { return at[strings.LastIndexByte(at, ' ')+1:] }

// transcript talks to a server request by request, with deadlines.
type transcript struct {
	t  *testing.T
	c  *net.TCPConn
	rr *protocol.ReplyReader
}

func dialTranscript(t *testing.T, addr string) *transcript {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return &transcript{t: t, c: c.(*net.TCPConn), rr: protocol.NewReplyReader(c)}
}

func (tr *transcript) send(s string) {
	tr.t.Helper()
	if _, err := tr.c.Write([]byte(s)); err != nil {
		tr.t.Fatal(err)
	}
}

// reply reads the next reply, of the given form.
func (tr *transcript) reply(form protocol.ReplyForm) protocol.Reply {
	tr.t.Helper()
	r, err := tr.rr.ReadReply(form)
	if err != nil {
		tr.t.Fatalf("reading a reply: %v (got %q)", err, r.Raw)
	}
	return r
}

func (tr *transcript) expectClosed() {
	tr.t.Helper()
	if r, err := tr.rr.ReadReply(protocol.LineReply); err != io.EOF {
		tr.t.Fatalf("got %q, %v; want the connection closed", r.Raw, err)
	}
}
