package store

import (
	"encoding/binary"
	"iter"
)

// arena holds the store's variable-length bytes: per record, its client
// id, or its whole text when the position and time did not pack
// (protocol.Unpacked). An item is its length (a uvarint) and its bytes,
// named by a ref, so that a record costs the bytes of its id and one or
// two more, with no string header and no allocation of its own
// (TestMemoryPerRecord).
//
// The items are in chunks that are never moved or grown once full:
// growing the arena adds a chunk rather than copying the others. And
// bytes once written are never written again: an item freed stays where
// it was, counted as dead, until compact copies the live items to new
// chunks. So the slices item returns stay valid and unchanged while the
// store goes on (Packed holds them), and keep no more than their chunk
// alive.
//
// A ref is the chunk's number above chunkBits and the offset in it below:
// 2^(32-chunkBits) chunks of at most 2^chunkBits bytes, 4 GiB in all.
type arena struct {
	chunks [][]byte // each with the capacity it was made with; the last is being filled
	size   int      // bytes of every item, dead included
	dead   int      // bytes of freed items
}

const (
	chunkBits = 21
	// maxChunk is the size of a chunk, and the largest item: more than a
	// record of the longest line a client or a neighbour may send (1 MiB).
	maxChunk = 1 << chunkBits
	// firstChunk is the size of a store's first chunk; each next one is
	// twice the last, up to maxChunk, so that a small store stays small.
	firstChunk = 1 << 10
	maxChunks  = 1 << (32 - chunkBits)
)

// add appends an item and returns its ref, or false when it does not fit:
// larger than a chunk, or the arena holds 4 GiB (compact first: it may
// not).
func add[T ~string | ~[]byte](a *arena, item T) (uint32, bool) {
	n := uvarintLen(len(item)) + len(item)
	if n > maxChunk {
		return 0, false
	}
	last := len(a.chunks) - 1
	if last < 0 || len(a.chunks[last])+n > cap(a.chunks[last]) {
		if len(a.chunks) == maxChunks {
			return 0, false
		}
		size := maxChunk
		if last >= 0 && cap(a.chunks[last]) < maxChunk {
			size = 2 * cap(a.chunks[last])
		} else if last < 0 {
			size = firstChunk
		}
		for size < n {
			size *= 2
		}
		a.chunks = append(a.chunks, make([]byte, 0, size))
		last++
	}
	c := a.chunks[last]
	ref := uint32(last)<<chunkBits | uint32(len(c))
	c = binary.AppendUvarint(c, uint64(len(item)))
	a.chunks[last] = append(c, item...)
	a.size += n
	return ref, true
}

func uvarintLen(n int) int {
	w := 1
	for ; n >= 0x80; n >>= 7 {
		w++
	}
	return w
}

// item returns the item at ref, with no room to append to.
func (a *arena) item(ref uint32) []byte {
	c := a.chunks[ref>>chunkBits]
	off := int(ref & (maxChunk - 1))
	n, w := uint64(c[off]), 1
	if n >= 0x80 { // an item of 128 bytes or more
		n, w = binary.Uvarint(c[off:])
	}
	start := off + w
	end := start + int(n)
	return c[start:end:end]
}

// free counts the item at ref as dead.
func (a *arena) free(ref uint32) {
	n := len(a.item(ref))
	a.dead += uvarintLen(n) + n
}

// live returns the bytes of the items not freed.
func (a *arena) live() int { return a.size - a.dead }

// wasteful reports whether the dead items are worth a compaction: more
// than half the live bytes, and enough that the copy is not for nothing.
func (a *arena) wasteful() bool { return a.dead >= minArenaDead && 2*a.dead > a.live() }

// minArenaDead is the fewest dead bytes worth a compaction.
const minArenaDead = 64 << 10

// compact copies the live items, whose refs refs yields, to new chunks
// and updates each ref. The old chunks are left as they were, for the
// slices still held.
func (a *arena) compact(refs iter.Seq[*uint32]) {
	old := *a
	*a = arena{}
	for ref := range refs {
		*ref, _ = add(a, old.item(*ref)) // they fitted before
	}
}
