package store

import "hash/maphash"

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
func keyOf(slots []slot, ids *arena, i uint32) []byte { return clientOf(ids.item(slots[i].ref)) }

// hash returns the hash of a client id.
func (x *index) hash(client []byte) uint64 { return maphash.Bytes(x.seed, client) }

// find returns the slot of client, or the table position where it would go.
func (x *index) find(slots []slot, ids *arena, client string) (slotNum uint32, pos int, ok bool) {
	mask := len(x.table) - 1
	h := maphash.String(x.seed, client)
	tag := uint8(h >> 56)
	pos = int(h) & mask
	for {
		v := x.table[pos]
		if v == 0 {
			return 0, pos, false
		}
		if x.tags[pos] == tag && hasClient(ids.item(slots[v-1].ref), client) {
			return v - 1, pos, true
		}
		pos = (pos + 1) & mask
	}
}

// position returns the table position of slot i, which is held.
func (x *index) position(slots []slot, ids *arena, i uint32) int {
	mask := len(x.table) - 1
	pos := int(x.hash(keyOf(slots, ids, i))) & mask
	for x.table[pos] != i+1 {
		pos = (pos + 1) & mask
	}
	return pos
}

// insert records that slot holds client, at the position find returned.
func (x *index) insert(slots []slot, ids *arena, pos int, slotNum uint32) {
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
func (x *index) remove(slots []slot, ids *arena, pos int) {
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

func (x *index) grow(slots []slot, ids *arena) {
	old := x.table
	x.table, x.tags = make([]uint32, 2*len(old)), make([]uint8, 2*len(old))
	mask := len(x.table) - 1
	for _, v := range old {
		if v == 0 {
			continue
		}
		h := x.hash(keyOf(slots, ids, v-1))
		pos := int(h) & mask
		for x.table[pos] != 0 {
			pos = (pos + 1) & mask
		}
		x.table[pos], x.tags[pos] = v, uint8(h>>56)
	}
}
