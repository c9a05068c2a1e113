package store

import (
	"bytes"
	"errors"
	"fmt"
)

// Loader builds a store from the records a journal reads back at start,
// in increasing change number: a snapshot's (one record a client), then
// its segments'. Storing each as ApplyAll does would find its client in
// the index, a random read of a table larger than the caches, and file it
// in the bound's heap; a Loader appends each record to the store's arrays
// and, once every record is in, builds the index in table order and the
// heap in one pass each (Store), in a fraction of the time
// (BenchmarkLoad).
type Loader struct {
	s *Store
}

// NewLoader returns a Loader for a store with the limit on records limit
// (SetLimit; 0 for none).
func NewLoader(limit int) *Loader {
	s := New()
	s.limit = max(limit, 0)
	return &Loader{s: s}
}

// Add adds a record read back from disk under the change number seq it
// had, which must be greater than the last one added: its text, origin,
// receive time and hops, as in Record, the text and origin as bytes that
// it does not keep (a journal's read buffer, not a string per record).
func (l *Loader) Add(seq uint64, text, origin []byte, recv int64, hops uint8) error {
	s := l.s
	if seq <= s.seq {
		return fmt.Errorf("store: change %d restored after %d", seq, s.seq)
	}
	o, ok := intern(&s.origins, origin)
	if !ok {
		return errors.New("store: too many origin servers")
	}
	k := packText(text, "", recv)
	ref, ok := add(&s.ids, k.text)
	if !ok {
		return errors.New("store: the client ids outgrow the arena (4 GiB)")
	}
	f := k.f
	i := uint32(s.slots.len())
	s.slots.push(slot{seq: seq, recv: recv, time: f.Time, lat: f.Lat, lng: f.Lng, ref: ref,
		format: f.Format, origin: o, hops: hops})
	s.log.add(seq, i)
	s.seq = seq
	return nil
}

// Store returns the store of the records added, each under its change
// number: a client added twice holds the record added last, and with a
// limit the records that rank highest (what storing them one by one
// gives, for records of a client that only grow, as a journal writes
// them). The Loader must not be used after.
func (l *Loader) Store() *Store {
	s := l.s
	l.s = nil
	s.buildIndex()
	if len(s.free) > 0 {
		s.renumber()
	}
	if s.ids.wasteful() {
		s.compactArena()
	}
	s.last.Store(s.seq)
	if s.limit > 0 {
		s.heapify()
		for s.len() > s.limit {
			s.evict()
		}
	}
	return s
}

// buildIndex fills the index, which holds none of the slots, with every
// slot (index.rebuild). A client whose id is in the table already (a
// snapshot holds none) keeps its later record, as a journal says.
func (s *Store) buildIndex() {
	size := len(s.index.table)
	for s.slots.len()*4 >= size*3 {
		size *= 2
	}
	s.index.rebuild(&s.slots, &s.ids, size, s.duplicate)
}

// renumber moves the live slots down over the free ones, and renumbers
// the index and the change log to match, dropping the log's stale
// entries.
func (s *Store) renumber() {
	moved := make([]uint32, s.slots.len()) // the new number of each live slot
	var live paged[slot]
	for i := range uint32(s.slots.len()) {
		if sl := s.slot(i); sl.seq != 0 {
			moved[i] = uint32(live.len())
			live.push(*sl)
		}
	}
	s.log.compact(func(seq uint64, i uint32) (uint32, bool) { return moved[i], s.slot(i).seq == seq })
	for pos, v := range s.index.table {
		if v != 0 {
			s.index.table[pos] = moved[v-1] + 1
		}
	}
	s.slots, s.free, s.stale = live, nil, 0
}

// duplicate reports whether slot i's client is in the index already,
// placed from home on, and if so gives its place to slot i, a later
// record, and frees the earlier one. Slot i is not in the index. For
// index.rebuild.
func (s *Store) duplicate(home int, i uint32, tag uint8) bool {
	x := &s.index
	mask := len(x.table) - 1
	for pos := home; x.table[pos] != 0; pos = (pos + 1) & mask {
		j := x.table[pos] - 1
		if x.tags[pos] != tag || !bytes.Equal(keyOf(&s.slots, &s.ids, j), keyOf(&s.slots, &s.ids, i)) {
			continue
		}
		x.table[pos] = i + 1
		s.ids.free(s.slot(j).ref)
		*s.slot(j) = slot{}
		s.free = append(s.free, j)
		s.stale++
		return true
	}
	return false
}
