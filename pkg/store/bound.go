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
// live slots, each with its position. An update only raises a record, and
// the record updated is usually the one its client sent longest ago, near
// the top: moving it down at once would cost a path to a leaf on every
// IAMAT. So an update only marks its node dirty: a dirty node keeps the
// key of an older record of its slot, a lower bound of the current one,
// and ranks below the clean nodes of equal key, which can only move it up
// (rarely far). Before the top is read, dirty nodes at the top take their
// slot's current key and move down (clean). Then the top is the lowest
// record: every dirty node's key is above the top's, or it would be
// higher in the heap, and its record is above its key.
//
// So an update costs a mark and usually no move, and a node moves down at
// most once per update of its slot, only when evictions reach it.
type lowest struct {
	heap []node   // heap[0] is the lowest record
	pos  []uint32 // the position in heap of each slot, by slot number
}

// node is a slot in the heap, with its record's time reduced to an
// integer (timeKey) so that most comparisons do not read the record.
type node struct {
	key   uint64
	slot  uint32
	dirty bool // key is that of an older record of the slot
}

// timeKey maps a client time to an integer that never decreases as the
// time grows: the seconds above 30 bits of nanoseconds, which is exact to
// the nanosecond up to 2^34 s (the year 2514). Later times, and the digits
// past the ninth decimal, fall back to comparing records (Rank) on equal
// keys. Measured (BenchmarkRank): parsing a time once per stored record
// costs less than comparing the texts at every step of the heap.
func timeKey(time string) uint64 {
	sec, nsec, ok := protocol.ParseTime(time)
	if !ok || sec >= 1<<34 {
		return math.MaxUint64
	}
	return uint64(sec)<<30 | uint64(nsec)
}

// less reports whether heap node a comes before b: by key, then dirty
// before clean, then by Rank between clean nodes (whose records the keys
// are of) and by slot between dirty ones. s.mu is held.
func (s *Store) less(a, b node) bool {
	if a.key != b.key {
		return a.key < b.key
	}
	if a.dirty != b.dirty {
		return a.dirty
	}
	if a.dirty {
		return a.slot < b.slot
	}
	return Rank(s.slots[a.slot].record(&s.origins), s.slots[b.slot].record(&s.origins)) < 0
}

// clean makes the top of the heap a clean node, the lowest record.
func (s *Store) clean() {
	h := &s.low
	for len(h.heap) > 0 && h.heap[0].dirty {
		h.heap[0].key = timeKey(s.slots[h.heap[0].slot].time())
		h.heap[0].dirty = false
		s.down(0)
	}
}

// outranksLowest reports whether r, of a client not held, ranks above the
// lowest record held. s.mu is held and the heap is not empty.
func (s *Store) outranksLowest(r Record) bool {
	s.clean()
	low := s.low.heap[0]
	if k := timeKey(r.Time()); k != low.key {
		return k > low.key
	}
	return Rank(r, s.slots[low.slot].record(&s.origins)) > 0
}

// push adds slot i to the heap.
func (s *Store) push(i uint32) {
	h := &s.low
	for uint32(len(h.pos)) <= i {
		h.pos = append(h.pos, 0)
	}
	h.heap = append(h.heap, node{key: timeKey(s.slots[i].time()), slot: i})
	h.pos[i] = uint32(len(h.heap) - 1)
	s.up(len(h.heap) - 1)
}

// raised marks slot i dirty after its record was replaced by a higher
// one (see lowest).
func (s *Store) raised(i uint32) {
	k := int(s.low.pos[i])
	if !s.low.heap[k].dirty {
		s.low.heap[k].dirty = true
		s.up(k)
	}
}

// drop removes slot i from the heap.
func (s *Store) drop(i uint32) {
	h := &s.low
	k, last := int(h.pos[i]), len(h.heap)-1
	if k != last {
		s.swap(k, last)
	}
	h.heap = h.heap[:last]
	if k != last && !s.down(k) {
		s.up(k)
	}
}

func (s *Store) swap(a, b int) {
	h := &s.low
	h.heap[a], h.heap[b] = h.heap[b], h.heap[a]
	h.pos[h.heap[a].slot], h.pos[h.heap[b].slot] = uint32(a), uint32(b)
}

func (s *Store) up(k int) {
	h := &s.low
	for k > 0 {
		p := (k - 1) / 2
		if !s.less(h.heap[k], h.heap[p]) {
			return
		}
		s.swap(k, p)
		k = p
	}
}

// down moves the node at k down to its place and reports whether it
// moved.
func (s *Store) down(k int) bool {
	h := &s.low
	start, n := k, len(h.heap)
	for {
		c := 2*k + 1
		if c >= n {
			break
		}
		if r := c + 1; r < n && s.less(h.heap[r], h.heap[c]) {
			c = r
		}
		if !s.less(h.heap[c], h.heap[k]) {
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
	h.heap = make([]node, 0, len(s.slots)-len(s.free))
	h.pos = make([]uint32, len(s.slots))
	for i := range s.slots {
		if s.slots[i].seq == 0 {
			continue // free
		}
		h.pos[i] = uint32(len(h.heap))
		h.heap = append(h.heap, node{key: timeKey(s.slots[i].time()), slot: uint32(i)})
	}
	for k := len(h.heap)/2 - 1; k >= 0; k-- {
		s.down(k)
	}
}
