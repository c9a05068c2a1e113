package peer

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/netip"
	"sync"
)

// What a connection to the peer port may cost before it has proved the
// secret: a read buffer of handshakeBuffer bytes (a hello is under 200),
// one goroutine, and its socket, about 16 KiB in all; and at most
// MaxHandshakes of them at once, MaxHandshakesPerIP from one address, each
// for at most the peer time-out from its accept. A connection beyond
// those bounds is told ERR too_many_handshakes or ERR per_ip and closed at
// once, from the accept loop, so it costs nothing after. Only an
// authenticated link gets the read buffer of a whole frame (maxFrame), and
// there is one link per neighbour. The bounds are those of nginx's
// limit_conn and HAProxy's maxconn, applied where the cost is: before
// authentication.
const (
	handshakeBuffer = 4096

	// DefaultMaxHandshakes is the default of Config.MaxHandshakes.
	DefaultMaxHandshakes = 64
	// DefaultMaxHandshakesPerIP is the default of Config.MaxHandshakesPerIP.
	DefaultMaxHandshakesPerIP = 8
)

// gate bounds the inbound handshakes in progress, overall and per source
// address.
type gate struct {
	max, perIP int

	mu    sync.Mutex
	total int
	byIP  map[netip.Addr]int
}

func newGate(max, perIP int) *gate {
	return &gate{max: max, perIP: perIP, byIP: map[netip.Addr]int{}}
}

// enter admits a handshake from src, or returns why not.
func (g *gate) enter(src netip.Addr) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.total >= g.max:
		return reasonTooMany
	case g.byIP[src] >= g.perIP:
		return reasonPerIP
	}
	g.total++
	g.byIP[src]++
	return ""
}

// leave ends a handshake that enter admitted.
func (g *gate) leave(src netip.Addr) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.total--
	if g.byIP[src]--; g.byIP[src] <= 0 {
		delete(g.byIP, src)
	}
}

// inProgress returns the handshakes in progress.
func (g *gate) inProgress() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.total
}

// sourceOf returns the address a connection comes from; connections other
// than TCP (tests' pipes) share the zero address.
func sourceOf(a net.Addr) netip.Addr {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// grow returns the reader of an authenticated link: a buffer of
// linkBuffer bytes over nc, that first yields what the handshake's small
// reader had already read past the handshake (the other end's first frames
// may come in the same segment as its OK). A frame longer than the buffer,
// up to maxFrame, is read into one of its own (link.readLong).
func grow(small *bufio.Reader, nc io.Reader) *bufio.Reader {
	n := small.Buffered()
	if n == 0 {
		return bufio.NewReaderSize(nc, linkBuffer)
	}
	rest, _ := small.Peek(n)
	return bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(rest)), nc), linkBuffer)
}

// linkBuffer is the read buffer of a link: many frames (a record is about
// a hundred bytes), but not a whole maxFrame, which a herd of 81 servers in
// one process would hold 648 times.
const linkBuffer = 64 << 10
