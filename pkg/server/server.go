// Package server serves the client protocol on TCP: it reads lines, parses
// them with package protocol, stores IAMATs in the store, answers WHATSATs
// from the store and a places provider, and writes replies in order.
//
// A connection has one reader goroutine that parses and executes commands
// in order. Replies that are ready at once (AT lines, "? " lines) are
// batched and written together when the reader has no more input buffered,
// so pipelined commands cost one write per batch and a single command one
// write per reply. A WHATSAT whose places are at hand in the cache is
// answered as at once; otherwise it looks its places up in a goroutine of
// its own, so a slow upstream holds back only the replies behind it on the
// same connection; the replies owed to a connection keep its order.
package server

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herdkit/herd/pkg/accept"
	"github.com/herdkit/herd/pkg/metrics"
	"github.com/herdkit/herd/pkg/places"
	"github.com/herdkit/herd/pkg/store"
)

// Config holds the server's settings; see package config for their
// variables and defaults.
type Config struct {
	Name          string        // this server's name, in its AT replies
	Addr          string        // TCP address to listen on
	MaxLine       int           // longest line accepted, without its line end
	MaxConns      int           // open connections beyond this are closed at once
	MaxConnsPerIP int           // open connections from one source address beyond this are closed at once
	MaxInflight   int           // requests owed a reply per connection before reading pauses
	IdleTimeout   time.Duration // a connection with nothing to say or owed is closed after this
	WriteTimeout  time.Duration // a reply not taken within this closes the connection
	// Journal, when set, makes stored records durable: an IAMAT is
	// acknowledged only once Journal.Wait says its record is, and a
	// connection whose records it cannot make durable within WriteTimeout
	// is closed without their replies. Nil acknowledges records once they
	// are in memory.
	Journal Journal
	// MaxClockAhead is how far past the server's clock, to the second, an
	// IAMAT's time may be; one further ahead is invalid. 0 is no bound.
	MaxClockAhead time.Duration
}

// Journal makes the store's changes durable (journal.Journal).
type Journal interface {
	// Wait returns nil once the change numbered seq and every change
	// before it are durable, or an error when that did not happen within
	// timeout.
	Wait(seq uint64, timeout time.Duration) error
}

// LineLogger writes the protocol log, one record per client line with its
// reply, or per read's IAMATs with their replies (logging.Lines).
type LineLogger interface {
	Line(t time.Time, conn uint64, remote string, in, out []byte, key, value string)
	// IAMATs logs the replies to IAMATs whose lines are each "IAMAT"
	// and the last three fields of its reply, single-spaced: the lines
	// are not repeated.
	IAMATs(t time.Time, conn uint64, remote string, out []byte)
}

// Server is the client protocol server of one node.
type Server struct {
	cfg    Config
	store  *store.Store
	places places.Provider
	peek   places.Peeker // places, if it can answer from memory
	m      *metrics.Metrics
	log    *slog.Logger
	lines  LineLogger
	now    func() time.Time
	stats  stats
	ahead  int64 // MaxClockAhead in whole seconds; 0 is no bound

	ln      net.Listener
	ctx     context.Context // cancelled when shutdown gives up waiting
	cancel  context.CancelFunc
	closing chan struct{} // closed when Shutdown begins, under mu
	mu      sync.Mutex
	conns   map[*conn]struct{}
	perIP   map[string]int // open connections by source address
	wg      sync.WaitGroup
	nextID  atomic.Uint64
}

// New returns a server that stores records in st, answers WHATSAT from pl
// and writes its protocol log to lines. Call Listen, then Serve.
func New(cfg Config, st *store.Store, pl places.Provider, m *metrics.Metrics, log *slog.Logger, lines LineLogger) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	peek, _ := pl.(places.Peeker)
	return &Server{
		cfg: cfg, store: st, places: pl, peek: peek, m: m, log: log.With("component", "client"), lines: lines, now: time.Now,
		stats: newStats(m), ahead: int64(cfg.MaxClockAhead / time.Second), ctx: ctx, cancel: cancel, closing: make(chan struct{}), conns: make(map[*conn]struct{}), perIP: make(map[string]int),
	}
}

// Listen binds the server's address.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return err
	}
	s.ln = ln
	return nil
}

// Addr returns the address the server listens on, once Listen returned.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve accepts connections until Shutdown, and then returns nil. Accept
// errors (out of file descriptors and the like) are logged and waited out
// (accept.Loop); Shutdown ends the wait at once.
func (s *Server) Serve() error {
	accept.Loop(s.ln, s.closing, s.log, s.handle)
	return nil
}

// handle serves an accepted connection, or closes it at once when it is
// refused, without a reply: there is no line to answer.
func (s *Server) handle(nc net.Conn) {
	s.m.ClientAccepted.Inc()
	c := s.newConn(nc)
	reason := s.admit(c)
	if reason == "" {
		go c.serve()
		return
	}
	if reason != refuseShutdown {
		s.m.ClientRefused.WithLabelValues(reason).Inc()
		s.log.Debug("connection refused", "remote", nc.RemoteAddr().String(), "reason", reason)
	}
	c.cancel()
	nc.Close()
}

// Reasons a connection is refused; refuseMaxConns and refusePerIP are
// labels of herd_client_connections_refused_total.
const (
	refuseMaxConns = "max_conns" // HERD_MAX_CONNS connections are open
	refusePerIP    = "per_ip"    // HERD_MAX_CONNS_PER_IP connections are open from this address
	refuseShutdown = "shutdown"
)

// admit adds a connection to those open, or says why it is refused.
func (s *Server) admit(c *conn) (refused string) {
	ip := remoteIP(c.nc)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.shuttingDown():
		return refuseShutdown
	case len(s.conns) >= s.cfg.MaxConns:
		return refuseMaxConns
	case s.perIP[ip] >= s.cfg.MaxConnsPerIP:
		return refusePerIP
	}
	s.conns[c] = struct{}{}
	s.perIP[ip]++
	s.wg.Add(1)
	s.m.ClientConnections.Inc()
	return ""
}

// remove removes a connection that closed from those open.
func (s *Server) remove(c *conn) {
	ip := remoteIP(c.nc)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	if s.perIP[ip]--; s.perIP[ip] == 0 {
		delete(s.perIP, ip)
	}
	s.wg.Done()
	s.m.ClientConnections.Dec()
}

// shuttingDown reports whether Shutdown began. s.mu is held.
func (s *Server) shuttingDown() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

func remoteIP(nc net.Conn) string {
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return nc.RemoteAddr().String()
}

// Shutdown stops accepting, lets every connection finish the commands it
// has read (including WHATSAT lookups in flight) and write their replies,
// then closes them. When ctx ends first, lookups are cancelled and the
// remaining connections closed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.shuttingDown() {
		close(s.closing) // the accept loop's back-off ends at once
	}
	for c := range s.conns {
		c.dc.interrupt()
	}
	s.mu.Unlock()
	if s.ln != nil {
		s.ln.Close()
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.cancel()
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}
