package store

import (
	"math"

	"github.com/herdkit/herd/pkg/protocol"
)

// The bound on records (SetLimit) keeps the records that rank highest
// (Rank: the client time, Newer's tie-breaks, then the client id). A store
// holding its limit takes a record of a new client only if it ranks above
// the lowest one held, which it then evicts; an update of a client it
// holds never evicts. Each server so keeps the highest records of all it
// has seen, and a herd whose servers share the limit converges to the
// highest records of everything any of them saw: a record dropped or
// evicted anywhere ranks below that many records that every server keeps
// and floods (docs/reconciliation.md).
//
// lowest finds the lowest record exactly: it is a binary min-heap of the
// live slots, each with its position (slot.heap). An update only raises a
// record, and the record updated is usually the one its client sent
// longest ago, near the top: moving it down at once would cost a path to a
// leaf on every IAMAT. So an update only marks its node dirty: a dirty
// node keeps the key of an older record of its slot, a lower bound of the
// current one, and ranks below the clean nodes of equal key, which can
// only move it up (rarely far). Before the top is read, dirty nodes at the
// top take their slot's current key and move down (clean). Then the top is
// the lowest record: every dirty node's key is above the top's, or it
// would be higher in the heap, and its record is above its key.
//
// So an update costs a mark and usually no move, and a node moves down at
// most once per update of its slot, only when evictions reach it.
//
// The heap is two parallel arrays, 12 bytes a node: the keys, and the
// slot numbers with the dirty mark in their top bit (a store holds fewer
// than 2^31 clients, config.MaxRecords).
type lowest struct {
	keys  paged[uint64] // keys.at(0) is the lowest record's
	slots paged[uint32] // slot number | dirty
}

func (h *lowest) len() int { return h.slots.len() }

// key and node return node k's key and its slot number with the mark.
func (h *lowest) key(k int) *uint64  { return h.keys.at(k) }
func (h *lowest) node(k int) *uint32 { return h.slots.at(k) }

// dirty marks a node whose key is that of an older record of its slot.
const dirty = 1 << 31

// timeKey maps a client time to an integer that never decreases as the
// time grows: the seconds above 30 bits of nanoseconds, which is exact to
// the nanosecond up to 2^34 s (the year 2514), and is what
// protocol.Fields.Time holds. Later times, and the digits past the ninth
// decimal, fall back to comparing records (Rank) on equal keys. Measured
// (BenchmarkRank): a key per stored record costs less than comparing the
// records at every step of the heap.
func timeKey[T ~string | ~[]byte](k keys[T]) uint64 {
	if k.packed() {
		return k.f.Time
	}
	sec, nsec, ok := protocol.ParseTime(k.text[lastIndexByte(k.text, ' ')+1:])
	if !ok || sec >= 1<<34 {
		return math.MaxUint64
	}
	return uint64(sec)<<30 | uint64(nsec)
}

// less reports whether heap node a comes before b: by key, then dirty
// before clean, then by Rank between clean nodes (whose records the keys
// are of) and by slot between dirty ones. s.mu is held.
func (s *Store) less(a, b int) bool {
	h := &s.low
	if ka, kb := *h.key(a), *h.key(b); ka != kb {
		return ka < kb
	}
	sa, sb := *h.node(a), *h.node(b)
	if sa&dirty != sb&dirty {
		return sa&dirty != 0
	}
	if sa&dirty != 0 {
		return sa < sb
	}
	return rank(s.keysOf(sa), s.keysOf(sb)) < 0
}

// clean makes the top of the heap a clean node, the lowest record.
func (s *Store) clean() {
	h := &s.low
	for h.len() > 0 && *h.node(0)&dirty != 0 {
		*h.node(0) &^= dirty
		*h.key(0) = timeKey(s.keysOf(*h.node(0)))
		s.down(0)
	}
}

// outranksLowest reports whether r, of a client not held, ranks above the
// lowest record held. s.mu is held and the heap is not empty.
func (s *Store) outranksLowest(r keys[string]) bool {
	s.clean()
	if k, low := timeKey(r), *s.low.key(0); k != low {
		return k > low
	}
	return rank(r, s.keysOf(*s.low.node(0))) > 0
}

// push adds slot i to the heap.
func (s *Store) push(i uint32) {
	h := &s.low
	h.keys.push(timeKey(s.keysOf(i)))
	h.slots.push(i)
	s.slot(i).heap = uint32(h.len() - 1)
	s.up(h.len() - 1)
}

// raised marks slot i dirty after its record was replaced by a higher
// one (see lowest).
func (s *Store) raised(i uint32) {
	k := int(s.slot(i).heap)
	if n := s.low.node(k); *n&dirty == 0 {
		*n |= dirty
		s.up(k)
	}
}

// drop removes slot i from the heap.
func (s *Store) drop(i uint32) {
	h := &s.low
	k, last := int(s.slot(i).heap), h.len()-1
	if k != last {
		s.swap(k, last)
	}
	h.keys.pop()
	h.slots.pop()
	if k != last && !s.down(k) {
		s.up(k)
	}
}

func (s *Store) swap(a, b int) {
	h := &s.low
	ka, kb := h.key(a), h.key(b)
	*ka, *kb = *kb, *ka
	na, nb := h.node(a), h.node(b)
	*na, *nb = *nb, *na
	s.slot(*na&^dirty).heap, s.slot(*nb&^dirty).heap = uint32(a), uint32(b)
}

func (s *Store) up(k int) {
	for k > 0 {
		p := (k - 1) / 2
		if !s.less(k, p) {
			return
		}
		s.swap(k, p)
		k = p
	}
}

// down moves the node at k down to its place and reports whether it
// moved.
func (s *Store) down(k int) bool {
	start, n := k, s.low.len()
	for {
		c := 2*k + 1
		if c >= n {
			break
		}
		if r := c + 1; r < n && s.less(r, c) {
			c = r
		}
		if !s.less(c, k) {
			break
		}
		s.swap(k, c)
		k = c
	}
	return k > start
}

// heapify builds the heap of every live slot.
func (s *Store) heapify() {
	h := &s.low
	*h = lowest{}
	for i := range uint32(s.slots.len()) {
		sl := s.slot(i)
		if sl.seq == 0 {
			continue // free
		}
		sl.heap = uint32(h.len())
		h.keys.push(timeKey(s.keysOf(i)))
		h.slots.push(i)
	}
	for k := h.len()/2 - 1; k >= 0; k-- {
		s.down(k)
	}
}
