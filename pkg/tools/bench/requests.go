package bench

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
)

// kind is what a request asks.
type kind uint8

const (
	kindIAMAT kind = iota
	kindWHATSAT
)

// randomPrefix returns a client-id prefix of its own for one run, so that
// runs against the same herd do not collide.
func randomPrefix() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails, by crypto/rand's contract
	return "hb" + hex.EncodeToString(b[:])
}

// splitmix64 is a fast, well-mixed hash of one word (Steele et al.).
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// positions is a table of valid positions near UCLA, where the places
// data of a WHATSAT are dense; a request picks one by index so that none
// is formatted during a run.
var positions = sync.OnceValue(func() [][]byte {
	p := make([][]byte, 1024)
	for i := range p {
		h := splitmix64(uint64(i))
		lat := 34.068930 + (float64(h&0xffff)/0xffff-0.5)*0.1
		lng := -118.445127 + (float64(h>>16&0xffff)/0xffff-0.5)*0.1
		p[i] = fmt.Appendf(nil, "%+.6f%+.6f", lat, lng)
	}
	return p
})

// generator writes the requests of one connection. Which kind request k
// is depends only on the connection and k (kindOf), so that the code
// reading the replies knows it without being told. A WHATSAT asks about a
// client id this connection has already sent in an IAMAT: on one
// connection the server handles the IAMAT first, so the id is known.
type generator struct {
	conn, conns int64   // this connection's index and how many there are
	clients     int64   // distinct client ids of the run
	prefix      []byte  // "prefix-"
	d           dialect // how requests are written
	mix         uint64  // a request is a WHATSAT when hash>>11 < mix, out of 1<<53
	seed        uint64

	iamats int64  // IAMATs written so far
	rng    uint64 // state for picking ids and positions
	time   []byte // the client time of the current batch
	id     []byte // the id of the request being written
}

func newGenerator(conn, conns int, cfg *LoadConfig, d dialect) *generator {
	mix := uint64(cfg.Mix * (1 << 53))
	return &generator{
		conn:    int64(conn),
		conns:   int64(conns),
		clients: int64(cfg.Clients),
		prefix:  []byte(cfg.Prefix + "-"),
		d:       d,
		mix:     mix,
		seed:    splitmix64(uint64(conn) + 1),
		rng:     uint64(conn) << 32,
		time:    make([]byte, 0, 32),
	}
}

// kindOf returns the kind of request k. The first is always an IAMAT, so
// that a WHATSAT has an id to ask about.
func (g *generator) kindOf(k int64) kind {
	if k == 0 || g.mix == 0 {
		return kindIAMAT
	}
	if splitmix64(g.seed^uint64(k))>>11 < g.mix {
		return kindWHATSAT
	}
	return kindIAMAT
}

// setTime sets the client time of the IAMATs that follow, POSIX seconds
// with nine decimals, formatted once per batch.
func (g *generator) setTime(unixNano int64) {
	t := strconv.AppendInt(g.time[:0], unixNano/1e9, 10)
	t = append(t, '.')
	frac := unixNano % 1e9
	for d := int64(1e8); d > 0; d /= 10 {
		t = append(t, byte('0'+frac/d%10))
	}
	g.time = t
}

func (g *generator) next() uint64 {
	g.rng++
	return splitmix64(g.rng)
}

// appendID appends the id of this connection's j-th IAMAT. Connections
// take ids in turn, so that they share the -clients ids evenly.
func (g *generator) appendID(dst []byte, j int64) []byte {
	dst = append(dst, g.prefix...)
	return strconv.AppendInt(dst, (g.conn+j*g.conns)%g.clients, 10)
}

// appendRequest appends request k, which has the kind kindOf(k).
func (g *generator) appendRequest(dst []byte, k int64) []byte {
	if g.kindOf(k) == kindWHATSAT {
		g.id = g.appendID(g.id[:0], int64(g.next()%uint64(g.iamats)))
		return g.d.appendRead(dst, g.id)
	}
	g.id = g.appendID(g.id[:0], g.iamats)
	g.iamats++
	return g.d.appendWrite(dst, g.id, int(g.next()%uint64(len(positions()))), g.time)
}
