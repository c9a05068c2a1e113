package store

import (
	"hash/maphash"
	"strings"
)

// index maps a client id to its slot. It is an open-addressing hash table
// of slot numbers whose keys are the client ids at the start of the slots'
// own texts, so a client costs a few bytes here instead of a second copy of
// its id and a map entry (see TestMemoryPerRecord). Beside each entry is a
// byte of its hash, so a probe looks at a record's text only when that
// byte matches (one time in 256 for another client). A removal shifts the
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

// clientOf returns the client id at the start of a record text.
func clientOf(text string) string { return text[:strings.IndexByte(text, ' ')] }

// hasClient reports whether text is a record of client.
func hasClient(text, client string) bool {
	return len(text) > len(client) && text[len(client)] == ' ' && text[:len(client)] == client
}

// find returns the slot of client, or the table position where it would go.
func (x *index) find(slots []slot, client string) (slotNum uint32, pos int, ok bool) {
	mask := len(x.table) - 1
	h := maphash.String(x.seed, client)
	tag := uint8(h >> 56)
	pos = int(h) & mask
	for {
		v := x.table[pos]
		if v == 0 {
			return 0, pos, false
		}
		if x.tags[pos] == tag && hasClient(slots[v-1].text, client) {
			return v - 1, pos, true
		}
		pos = (pos + 1) & mask
	}
}

// insert records that slot holds client, at the position find returned.
func (x *index) insert(slots []slot, pos int, slotNum uint32) {
	x.table[pos] = slotNum + 1
	x.tags[pos] = uint8(maphash.String(x.seed, clientOf(slots[slotNum].text)) >> 56)
	x.n++
	if x.n*4 >= len(x.table)*3 {
		x.grow(slots)
	}
}

// remove empties the table position pos, which find returned for a
// client held, and moves back the entries of the same run that would no
// longer be found past the hole.
func (x *index) remove(slots []slot, pos int) {
	mask := len(x.table) - 1
	x.table[pos] = 0
	x.n--
	for j := (pos + 1) & mask; x.table[j] != 0; j = (j + 1) & mask {
		v := x.table[j]
		home := int(maphash.String(x.seed, clientOf(slots[v-1].text))) & mask
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

func (x *index) grow(slots []slot) {
	old := x.table
	x.table, x.tags = make([]uint32, 2*len(old)), make([]uint8, 2*len(old))
	mask := len(x.table) - 1
	for _, v := range old {
		if v == 0 {
			continue
		}
		h := maphash.String(x.seed, clientOf(slots[v-1].text))
		pos := int(h) & mask
		for x.table[pos] != 0 {
			pos = (pos + 1) & mask
		}
		x.table[pos], x.tags[pos] = v, uint8(h>>56)
	}
}
