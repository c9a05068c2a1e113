package store

import (
	"encoding/binary"
	"iter"
	"math"
)

// arena holds the store's variable-length bytes in one buffer: per
// record, its client id, or its whole text when the position and time
// did not pack (protocol.Unpacked). An item is its length (a uvarint)
// and its bytes, named by its offset (a ref), so that a record costs the
// bytes of its id and one or two more, with no string header and no
// allocation of its own (TestMemoryPerRecord).
//
// Bytes once written are never written again: an item freed stays where
// it was, counted as dead, until compact copies the live items to a new
// buffer. So the slices item returns stay valid and unchanged while the
// store goes on (Packed holds them), and keep their buffer alive until
// they are dropped.
type arena struct {
	b    []byte
	dead int // bytes of freed items
}

// maxArena is the most bytes the arena holds: a ref is a uint32.
const maxArena = math.MaxUint32

// add appends an item and returns its ref, or false when the arena would
// outgrow maxArena (compact first: it may not).
func add[T ~string | ~[]byte](a *arena, item T) (uint32, bool) {
	if !a.fits(len(item)) {
		return 0, false
	}
	ref := uint32(len(a.b))
	a.b = binary.AppendUvarint(a.b, uint64(len(item)))
	a.b = append(a.b, item...)
	return ref, true
}

// fits reports whether an item of n bytes fits after the others.
func (a *arena) fits(n int) bool { return len(a.b)+binary.MaxVarintLen64+n <= maxArena }

// item returns the item at ref, with no room to append to.
func (a *arena) item(ref uint32) []byte {
	n, w := binary.Uvarint(a.b[ref:])
	start := int(ref) + w
	end := start + int(n)
	return a.b[start:end:end]
}

// size returns the bytes the item at ref takes, its length included.
func (a *arena) size(ref uint32) int {
	n, w := binary.Uvarint(a.b[ref:])
	return w + int(n)
}

// free counts the item at ref as dead.
func (a *arena) free(ref uint32) { a.dead += a.size(ref) }

// live returns the bytes of the items not freed.
func (a *arena) live() int { return len(a.b) - a.dead }

// wasteful reports whether the dead items are worth a compaction: more
// than half the live bytes, and enough that the copy is not for nothing.
func (a *arena) wasteful() bool { return a.dead >= minArenaDead && 2*a.dead > a.live() }

// minArenaDead is the fewest dead bytes worth a compaction.
const minArenaDead = 64 << 10

// compact copies the live items, whose refs refs yields, to a new buffer
// with an eighth of room to grow, and updates each ref. The old buffer is
// left as it was, for the slices still held.
func (a *arena) compact(refs iter.Seq[*uint32]) {
	live := a.live()
	b := make([]byte, 0, live+live/8)
	for ref := range refs {
		item := a.item(*ref)
		*ref = uint32(len(b))
		b = binary.AppendUvarint(b, uint64(len(item)))
		b = append(b, item...)
	}
	a.b, a.dead = b, 0
}
