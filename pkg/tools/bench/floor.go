package bench

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herdkit/herd/pkg/accept"
	"github.com/herdkit/herd/pkg/protocol"
)

// Floor server settings.
const (
	// DefaultFloorAddr is where `herd bench floor` listens by default.
	DefaultFloorAddr = "127.0.0.1:12299"
	// DefaultFloorName is the server name in the floor's AT lines; it has
	// the length of Smith, a middling herd name.
	DefaultFloorName = "Floor"
	// floorMaxLine is the herd's default line limit: a longer line closes
	// the connection.
	floorMaxLine = 4 << 10
	// floorWhatsatTail follows the client id in the floor's AT line for a
	// WHATSAT: a fixed position and time.
	floorWhatsatTail = " +34.068930-118.445127 1621464827.959498503"
	// floorJSON is the floor's fixed places JSON.
	floorJSON = `{"html_attributions":[],"results":[],"status":"OK"}`
)

// FloorCounts are the lines a floor server has answered, by kind.
type FloorCounts struct {
	IAMAT   int64 `json:"iamat"`
	WHATSAT int64 `json:"whatsat"`
	Invalid int64 `json:"invalid"`
}

// Lines returns the number of lines answered (blank lines get no answer
// and are not counted).
func (c FloorCounts) Lines() int64 { return c.IAMAT + c.WHATSAT + c.Invalid }

// FloorServer answers every line at once and does nothing else: an IAMAT
// gets an AT line of a real one's size, built by formatting alone, with no
// store; a WHATSAT gets an AT line, a small fixed JSON object and the blank
// line; anything else "? line". It keeps the herd's framing: lines end at
// LF with a CR before it dropped, pipelined lines are answered in order, a
// last line without LF is answered at end of input, a line over 4 KiB
// closes the connection. It reads what is available, answers every
// complete line and writes once, so that load results can be quoted as a
// fraction of what the machine can do at all.
type FloorServer struct {
	// Name is the server name in AT lines. Set it before Serve.
	Name string

	ln     net.Listener
	counts [3]atomic.Int64 // IAMAT, WHATSAT, invalid

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	done   chan struct{} // closed by Close
	wg     sync.WaitGroup
}

// ListenFloor returns a floor server listening on addr (port 0 picks a
// free one); Serve starts answering.
func ListenFloor(addr string) (*FloorServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &FloorServer{Name: DefaultFloorName, ln: ln, conns: map[net.Conn]struct{}{}, done: make(chan struct{})}, nil
}

// Addr returns the address the server listens on.
func (s *FloorServer) Addr() string { return s.ln.Addr().String() }

// Counts returns the lines answered so far.
func (s *FloorServer) Counts() FloorCounts {
	return FloorCounts{IAMAT: s.counts[0].Load(), WHATSAT: s.counts[1].Load(), Invalid: s.counts[2].Load()}
}

// Serve accepts connections until Close, and returns nil then. Errors of
// accept do not stop it: accept.Loop backs off from them.
func (s *FloorServer) Serve() error {
	accept.Loop(s.ln, s.done, nil, s.handle)
	return nil
}

// handle serves one accepted connection in a goroutine of its own, or
// closes it when the server is closing.
func (s *FloorServer) handle(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Go(func() {
		s.serveConn(c)
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	})
}

// Close stops the server: it closes the listener and every connection,
// and waits for their goroutines.
func (s *FloorServer) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	err := s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *FloorServer) serveConn(c net.Conn) {
	in := make([]byte, 64<<10)
	out := make([]byte, 0, 64<<10)
	var text []byte
	r, w := 0, 0
	for {
		n, err := c.Read(in[w:])
		w += n
		now := time.Now().UnixNano()
		out = out[:0]
		var counts [3]int64
		tooLong := false
		for {
			i := bytes.IndexByte(in[r:w], '\n')
			if i < 0 {
				break
			}
			if i > floorMaxLine {
				tooLong = true
				break
			}
			out, text = s.answer(out, in[r:r+i], text, now, &counts)
			r += i + 1
		}
		if err != nil && !tooLong && r < w && w-r <= floorMaxLine && errors.Is(err, io.EOF) {
			out, text = s.answer(out, in[r:w], text, now, &counts) // the last line, without LF
			r = w
		}
		for i, n := range counts {
			s.counts[i].Add(n)
		}
		if len(out) > 0 {
			if _, werr := c.Write(out); werr != nil {
				return
			}
		}
		if err != nil || tooLong || w-r > floorMaxLine {
			return
		}
		w = copy(in, in[r:w])
		r = 0
	}
}

// answer appends the reply to one line, without its LF; text is scratch
// space for an IAMAT's client fields.
func (s *FloorServer) answer(out, line, text []byte, now int64, counts *[3]int64) ([]byte, []byte) {
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	c := protocol.Parse(line)
	switch c.Kind {
	case protocol.Blank:
		return out, text
	case protocol.IAMAT:
		counts[0]++
		text = c.AppendText(text[:0])
		out = protocol.AppendATParsed(out, s.Name, now, c.Sec, c.Nsec, text)
		return append(out, '\n'), text
	case protocol.WHATSAT:
		counts[1]++
		return protocol.AppendPlacesReply(out,
			func(b []byte) []byte {
				// A difference of zero; the fixed position and time follow.
				b = protocol.AppendATParsed(b, s.Name, 0, 0, 0, c.Client)
				return append(b, floorWhatsatTail...)
			},
			func(b []byte) []byte { return append(b, floorJSON...) }), text
	}
	counts[2]++
	return protocol.AppendInvalid(out, line), text
}
