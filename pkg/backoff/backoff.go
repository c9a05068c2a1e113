// Package backoff computes the waits between retries of something that
// keeps failing: a dial to a neighbour, an accept on a listener out of file
// descriptors. It is one small type, in the manner of tailscale's backoff.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Backoff is the wait before each retry: Base after the first failure,
// doubling after each further one up to Max. With Jitter, each wait is
// drawn uniformly from the upper half of that ("equal jitter"), so that
// servers that failed together do not retry together. Set Base and Max;
// the zero value of the rest starts at the first failure.
type Backoff struct {
	Base   time.Duration
	Max    time.Duration
	Jitter bool

	failures int // since the last Reset
}

// Next counts one more failure and returns how long to wait before the
// next try.
func (b *Backoff) Next() time.Duration {
	d := b.Wait(b.failures)
	b.failures++
	return d
}

// Wait returns the wait after failures failures in a row (0 for the
// first), without counting one.
func (b *Backoff) Wait(failures int) time.Duration {
	d := b.Max
	if failures < 30 { // Base<<30 is past any sensible Max, and <<63 overflows
		d = min(d, b.Base<<failures)
	}
	if b.Jitter && d > 0 {
		d = d/2 + rand.N(d/2+1)
	}
	return d
}

// Failures returns the failures counted since the last Reset.
func (b *Backoff) Failures() int { return b.failures }

// Reset starts again from Base, after a success.
func (b *Backoff) Reset() { b.failures = 0 }
