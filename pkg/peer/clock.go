package peer

import (
	"strings"
	"sync"
	"time"
)

// Clocks across machines. Records order by the client's time, so a
// server's clock never decides which record wins; but
// herd_propagation_delay_seconds subtracts the origin's receive time from
// the receiver's clock, which across machines includes their offset. Each
// end of a link therefore estimates the other's clock offset from its
// heartbeats, as NTP does: a timed ping `P t1` carries the sender's clock
// at sending, and the answer `Q t1 t2 t3` adds the receiver's clock when
// it read the ping (t2) and when it answered (t3); the sender reads the
// answer at t4. Then
//
//	offset = ((t2 - t1) + (t3 - t4)) / 2   the neighbour's clock minus ours
//	delay  = (t4 - t1) - (t3 - t2)         the round trip on the wire
//
// and the true offset lies within offset ± delay/2 whatever the two
// directions' delays were. Of the last clockWindow samples the one with
// the smallest round trip is kept (NTP's clock filter): queueing behind a
// batch of records only lengthens a round trip.
//
// Timed pings and answers are new frames in version 1 of the peer
// protocol, which a server that predates them refuses. A server that
// speaks them says so in its handshake nonce (clockTag), which the HMAC
// proofs bind, and sends them only to a neighbour that said so too; to
// any other it sends the plain `P` as before.

// clockWindow is how many of the latest samples the estimate chooses from.
const clockWindow = 8

// clockTag ends the nonce of a server that speaks timed pings: its
// letters are not hex digits, so no nonce of an older server ends with
// it, and an old server checks only a nonce's length.
const clockTag = "ck"

// nonceLen is the length of a handshake nonce in every version 1 hello.
const nonceLen = 32

// newNonce returns a handshake nonce: 14 random bytes in hex (112 bits),
// then treeTag and clockTag, the frames this server speaks beyond the
// first version 1 servers', nonceLen characters in all.
func newNonce() string {
	return randomHex(14) + treeTag + clockTag
}

// speaksClock reports whether a hello's nonce says its server speaks timed
// pings.
func speaksClock(nonce string) bool { return strings.HasSuffix(nonce, clockTag) }

// offsetDelay computes one NTP sample from its four timestamps, in Unix
// nanoseconds: t1 ping sent and t4 answer read by us, t2 ping read and t3
// answer sent by the neighbour.
func offsetDelay(t1, t2, t3, t4 int64) (offset, delay time.Duration) {
	return time.Duration(((t2 - t1) + (t3 - t4)) / 2), time.Duration((t4 - t1) - (t3 - t2))
}

// clockFilter keeps a neighbour's latest clock samples and estimates its
// offset from the one with the smallest round trip.
type clockFilter struct {
	mu      sync.Mutex
	samples [clockWindow]clockSample
	n       int // samples held, up to clockWindow
	next    int // where the next one goes
}

type clockSample struct{ offset, delay time.Duration }

// add takes a sample and returns the estimate: the offset of the held
// sample with the smallest round trip, and that round trip. A sample with
// a negative round trip (a clock stepped during it) is ignored.
func (c *clockFilter) add(t1, t2, t3, t4 int64) (offset, delay time.Duration, ok bool) {
	o, d := offsetDelay(t1, t2, t3, t4)
	c.mu.Lock()
	defer c.mu.Unlock()
	if d >= 0 {
		c.samples[c.next] = clockSample{o, d}
		c.next = (c.next + 1) % clockWindow
		c.n = min(c.n+1, clockWindow)
	}
	return c.best()
}

// estimate returns the current estimate, if there is a sample.
func (c *clockFilter) estimate() (offset, delay time.Duration, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.best()
}

func (c *clockFilter) best() (offset, delay time.Duration, ok bool) {
	if c.n == 0 {
		return 0, 0, false
	}
	b := c.samples[0]
	for _, s := range c.samples[1:c.n] {
		if s.delay < b.delay {
			b = s
		}
	}
	return b.offset, b.delay, true
}
