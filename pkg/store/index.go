package store

import (
	"hash/maphash"

	"github.com/herdkit/herd/pkg/protocol"
)

// index maps a client id to its slot. It is an open-addressing hash table
// of slot numbers whose keys are the client ids of the slots' items in the
// arena, so a client costs a few bytes here instead of a second copy of
// its id and a map entry (see TestMemoryPerRecord). Beside each entry is a
// byte of its hash, so a probe looks at a record's id only when that byte
// matches (one time in 256 for another client). A removal shifts the
// entries after it back (Knuth's algorithm R), so linear probing needs no
// tombstones.
type index struct {
	seed  maphash.Seed
	table []uint32 // slot number + 1; 0 is empty
	tags  []uint8  // the top byte of each entry's hash
	n     int
}

func newIndex() index {
	return index{seed: maphash.MakeSeed(), table: make([]uint32, 64), tags: make([]uint8, 64)}
}

// hasClient reports whether item, an id or a whole text, is client's.
func hasClient(item []byte, client string) bool {
	return len(item) >= len(client) && (len(item) == len(client) || item[len(client)] == ' ') &&
		string(item[:len(client)]) == client
}

// keyOf returns the client id of slot i.
func keyOf(slots *paged[slot], ids *arena, i uint32) []byte {
	sl := slots.at(int(i))
	item := ids.item(sl.ref)
	if sl.format == protocol.Unpacked {
		return clientOf(item) // the whole text
	}
	return item
}

// hash returns the hash of a client id.
func (x *index) hash(client []byte) uint64 { return maphash.Bytes(x.seed, client) }

// find returns the slot of client, or the table position where it would go.
func (x *index) find(slots *paged[slot], ids *arena, client string) (slotNum uint32, pos int, ok bool) {
	mask := len(x.table) - 1
	h := maphash.String(x.seed, client)
	tag := uint8(h >> 56)
	pos = int(h) & mask
	for {
		v := x.table[pos]
		if v == 0 {
			return 0, pos, false
		}
		if x.tags[pos] == tag && hasClient(ids.item(slots.at(int(v-1)).ref), client) {
			return v - 1, pos, true
		}
		pos = (pos + 1) & mask
	}
}

// position returns the table position of slot i, which is held.
func (x *index) position(slots *paged[slot], ids *arena, i uint32) int {
	mask := len(x.table) - 1
	pos := int(x.hash(keyOf(slots, ids, i))) & mask
	for x.table[pos] != i+1 {
		pos = (pos + 1) & mask
	}
	return pos
}

// insert records that slot holds client, at the position find returned.
func (x *index) insert(slots *paged[slot], ids *arena, pos int, slotNum uint32) {
	x.table[pos] = slotNum + 1
	x.tags[pos] = uint8(x.hash(keyOf(slots, ids, slotNum)) >> 56)
	x.n++
	if x.n*4 >= len(x.table)*3 {
		x.grow(slots, ids)
	}
}

// remove empties the table position pos, which find returned for a
// client held, and moves back the entries of the same run that would no
// longer be found past the hole.
func (x *index) remove(slots *paged[slot], ids *arena, pos int) {
	mask := len(x.table) - 1
	x.table[pos] = 0
	x.n--
	for j := (pos + 1) & mask; x.table[j] != 0; j = (j + 1) & mask {
		v := x.table[j]
		home := int(x.hash(keyOf(slots, ids, v-1))) & mask
		// The entry stays if its home is cyclically within (pos, j]: a
		// probe from there reaches j without crossing the hole.
		if pos <= j && pos < home && home <= j || j < pos && (pos < home || home <= j) {
			continue
		}
		x.table[pos], x.tags[pos] = v, x.tags[j]
		x.table[j] = 0
		pos = j
	}
}

// grow doubles the table.
func (x *index) grow(slots *paged[slot], ids *arena) { x.rebuild(slots, ids, 2*len(x.table), nil) }

// rebuild makes a table of size places holding every live slot, in the
// order of their places: sorted by their hash's home, each goes to the
// first free place from its home on, so the table is written from start
// to end (and the few entries whose run passes the end wrap to its start,
// last). Reading the slots in order and writing the table in order, it
// costs a third of inserting them one by one, whose every step is a
// random read of a table larger than the caches (measured on a million
// clients). The table is one that inserting them would give.
//
// dup, if not nil, is asked about each slot whose tag is already in its
// run, and reports whether it took care of it (a second record of one
// client, read back by a Loader): the slot is not placed.
func (x *index) rebuild(slots *paged[slot], ids *arena, size int, dup func(home int, i uint32, tag uint8) bool) {
	x.table, x.tags, x.n = make([]uint32, size), make([]uint8, size), 0
	mask := uint64(size - 1)
	tags := make([]uint8, slots.len())
	order := make([]uint64, 0, slots.len()) // home << 32 | slot number
	for i := range slots.len() {
		if slots.at(i).seq == 0 {
			continue // free
		}
		h := x.hash(keyOf(slots, ids, uint32(i)))
		tags[i] = uint8(h >> 56)
		order = append(order, (h&mask)<<32|uint64(i))
	}
	order = sortByHome(order, size)
	next := 0 // the first place not yet taken from the start on
	var wrapped []uint64
	for _, e := range order {
		home, i := int(e>>32), uint32(e)
		if dup != nil && dup(home, i, tags[i]) {
			continue
		}
		pos := max(home, next)
		if pos == size {
			wrapped = append(wrapped, e)
			continue
		}
		x.table[pos], x.tags[pos] = i+1, tags[i]
		x.n++
		next = pos + 1
	}
	for _, e := range wrapped {
		i := uint32(e)
		if dup != nil && dup(int(e>>32), i, tags[i]) {
			continue
		}
		pos := 0
		for x.table[pos] != 0 {
			pos++
		}
		x.table[pos], x.tags[pos] = i+1, tags[i]
		x.n++
	}
}

// sortByHome sorts entries home << 32 | slot by home, a number below
// size, keeping the order of equal homes (a radix sort: 11 bits a pass,
// two passes for a million clients).
func sortByHome(order []uint64, size int) []uint64 {
	const bits = 11
	tmp := make([]uint64, len(order))
	for shift := 32; size > 1<<(shift-32); shift += bits {
		var count [1<<bits + 1]int
		for _, e := range order {
			count[(e>>shift)&(1<<bits-1)+1]++
		}
		for d := 1; d < len(count); d++ {
			count[d] += count[d-1]
		}
		for _, e := range order {
			d := (e >> shift) & (1<<bits - 1)
			tmp[count[d]] = e
			count[d]++
		}
		order, tmp = tmp, order
	}
	return order
}
