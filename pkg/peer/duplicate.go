package peer

import "time"

// Two live servers with one name (a second Hill started by mistake) both
// link to a common neighbour. A link to a new incarnation of a neighbour
// replaces the current one, since a new incarnation normally means the old
// process is gone; here it is not, so each Hill's link replaces the
// other's, and every link that comes up reconciles from scratch, the link
// flapping about once a second and resending the whole store each time.
//
// A server that restarts closes its sockets as it dies, so its neighbours
// see the old link end before the new incarnation dials; and a link whose
// server vanished without a close (a frozen machine) is silent. So a new
// incarnation that replaces a live link (one that read within two
// heartbeats) is a takeover, and a second takeover within
// duplicateWindow means two live servers claim the name. The neighbour
// then keeps the claimant that was linked first, refuses the one that took
// over from it (ERR duplicate_name) for as long as the one kept was linked
// within duplicateHold, logs ERROR once for the episode and counts it in
// herd_peer_duplicate_names_total.
const (
	duplicateWindow = 10 * time.Second
	duplicateHold   = 30 * time.Second
)

// claims follows which incarnations claim one neighbour's name. Its owner
// serialises the calls (neighbour.mu).
type claims struct {
	// The last takeover: when, by whom, of whom.
	takeoverAt       time.Time
	intruder, victim uint64

	// An episode: banned is refused while kept was linked within
	// duplicateHold.
	episode      bool
	banned, kept uint64
	keptSeen     time.Time
}

// takeover records that a link to incarnation to replaced a live link to
// incarnation from. It reports whether this starts an episode.
func (c *claims) takeover(from, to uint64, now time.Time) bool {
	repeated := !c.takeoverAt.IsZero() && now.Sub(c.takeoverAt) <= duplicateWindow
	c.takeoverAt, c.intruder, c.victim = now, to, from
	if !repeated || c.episode {
		return false
	}
	// from took over a live link itself a moment ago: it is the newer
	// claimant, and to normally the one it took over from, coming back.
	c.episode, c.banned, c.kept, c.keptSeen = true, from, to, now
	return true
}

// linked records that incarnation inc holds the link now.
func (c *claims) linked(inc uint64, now time.Time) {
	if c.episode && inc == c.kept {
		c.keptSeen = now
	}
}

// refused reports whether a link to incarnation inc is refused now. An
// episode ends once the kept claimant has been gone for duplicateHold:
// the other may then be the only one left.
func (c *claims) refused(inc uint64, now time.Time) bool {
	if !c.episode {
		return false
	}
	if now.Sub(c.keptSeen) > duplicateHold {
		*c = claims{}
		return false
	}
	return inc == c.banned
}
