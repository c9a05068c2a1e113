package main

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herdkit/herd/pkg/protocol"
)

// The crash test's load: connections that keep a fixed number of IAMATs in
// flight, each request numbered, so that what was sent and acknowledged is
// two counters per connection and the checker can tell a record the
// harness sent from one it did not.
//
// A session is one TCP connection's life. Its request n is for the client
// id <tag>-<n mod ids>, at the position posOf(n) and the client time
// timeOf(n), so the records of one id get newer with n. Replies come in
// order, so the requests acknowledged are exactly 0 to acked-1; a killed
// connection's successor starts a new session with a new tag.

// session is one connection's requests and replies.
type session struct {
	tag   string
	round int
	node  int
	ids   int64
	sent  atomic.Int64 // requests 0 to sent-1 were (or are being) written
	acked atomic.Int64 // requests 0 to acked-1 were answered with an AT line
	// marks are the acknowledged counts and when they were reached, one per
	// read; written by the session's goroutine, read after it ended.
	marks []ackMark
	lost  int64 // acknowledged requests lost as of the last check
}

type ackMark struct {
	acked int64
	at    time.Time
}

// ackedAt returns when request n was acknowledged.
func (s *session) ackedAt(n int64) time.Time {
	for _, m := range s.marks {
		if m.acked > n {
			return m.at
		}
	}
	return time.Time{}
}

// timeBase is the client time of request 0, in seconds.
const timeBase = 1_600_000_000

func (s *session) id(n int64) string { return s.tag + "-" + strconv.FormatInt(n%s.ids, 10) }

// appendPos appends request n's position: a latitude of at most 89.999999
// and a longitude of at most 179.5, both derived from n.
func appendPos(dst []byte, n int64) []byte {
	dst = append(dst, '+')
	dst = strconv.AppendInt(dst, n%90, 10)
	dst = append(dst, '.')
	dst = appendPadded(dst, n/90%1_000_000, 6)
	dst = append(dst, '-')
	dst = strconv.AppendInt(dst, n%180, 10)
	return append(dst, ".5"...)
}

// appendTime appends request n's client time, n nanoseconds after timeBase.
func appendTime(dst []byte, n int64) []byte {
	dst = strconv.AppendInt(dst, timeBase+n/1e9, 10)
	dst = append(dst, '.')
	return appendPadded(dst, n%1e9, 9)
}

func appendPadded(dst []byte, v int64, width int) []byte {
	var digits [20]byte
	b := strconv.AppendInt(digits[:0], v, 10)
	for range width - len(b) {
		dst = append(dst, '0')
	}
	return append(dst, b...)
}

// appendIAMAT appends request n of the session.
func (s *session) appendIAMAT(dst []byte, n int64) []byte {
	dst = append(dst, "IAMAT "...)
	dst = append(dst, s.tag...)
	dst = append(dst, '-')
	dst = strconv.AppendInt(dst, n%s.ids, 10)
	dst = append(dst, ' ')
	dst = appendPos(dst, n)
	dst = append(dst, ' ')
	dst = appendTime(dst, n)
	return append(dst, '\n')
}

// load runs connections to a herd until stopped; a connection that fails
// (its node was killed) is dialled again, as a new session.
type load struct {
	round    int
	inflight int
	ids      int64
	addr     func(node int) string

	stopped atomic.Bool
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[net.Conn]bool
	started []*session
	errs    []error
}

// startLoad starts clients connections, connection c to node c mod nodes.
func startLoad(round, clients, nodes, inflight int, ids int64, addr func(int) string) *load {
	l := &load{round: round, inflight: inflight, ids: ids, addr: addr, conns: map[net.Conn]bool{}}
	for c := range clients {
		l.wg.Go(func() { l.client(c, c%nodes) })
	}
	return l
}

// stop ends every connection and returns the sessions and the errors.
func (l *load) stop() ([]*session, []error) {
	l.stopped.Store(true)
	l.mu.Lock()
	for nc := range l.conns {
		nc.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
	return l.started, l.errs
}

func (l *load) client(c, node int) {
	for k := 0; !l.stopped.Load(); k++ {
		nc, err := net.DialTimeout("tcp", l.addr(node), time.Second)
		if err != nil {
			time.Sleep(10 * time.Millisecond) // the node is down: poll until it is back
			continue
		}
		s := &session{tag: fmt.Sprintf("r%dc%ds%d", l.round, c, k), round: l.round, node: node, ids: l.ids}
		l.mu.Lock()
		if l.stopped.Load() {
			l.mu.Unlock()
			nc.Close()
			return
		}
		l.conns[nc] = true
		l.started = append(l.started, s)
		l.mu.Unlock()
		err = l.run(s, nc)
		l.mu.Lock()
		delete(l.conns, nc)
		if err != nil {
			l.errs = append(l.errs, fmt.Errorf("session %s: %w", s.tag, err))
		}
		l.mu.Unlock()
		nc.Close()
	}
}

// run keeps inflight requests outstanding on nc: it writes all that are
// missing in one write, reads what arrived, and starts over, as `herd bench
// load` does. It returns an error only for a reply that is not an AT line;
// a connection that fails (a killed node) just ends the session.
func (l *load) run(s *session, nc net.Conn) error {
	out := make([]byte, 0, l.inflight*96)
	rr := protocol.NewReplyReader(nc)
	var sent, acked int64
	for !l.stopped.Load() {
		if n := int64(l.inflight) - (sent - acked); n > 0 {
			out = out[:0]
			for range n {
				out = s.appendIAMAT(out, sent)
				sent++
			}
			// Counted before the write: the server may store them.
			s.sent.Store(sent)
			if _, err := nc.Write(out); err != nil {
				return nil
			}
		}
		if err := rr.Fill(); err != nil {
			if errors.Is(err, protocol.ErrReplyTooLong) {
				return err
			}
			return nil
		}
		got := int64(0)
		for {
			r, ok := rr.Next(protocol.LineReply)
			if !ok {
				break
			}
			if r.Kind != protocol.ReplyAT {
				return fmt.Errorf("reply %q to an IAMAT", r.Raw)
			}
			got++
		}
		if got > 0 {
			acked += got
			s.acked.Store(acked)
			s.marks = append(s.marks, ackMark{acked, time.Now()})
		}
	}
	return nil
}
