package store

import "sort"

// changeLog is the store's live changes in increasing change number, each
// with the slot it stored: the outgoing queue of every link and of the
// journal. An entry is two uint32s, 8 bytes: the change number's low 32
// bits and the slot. The high bits are the same over long runs (they
// change every 2^32 changes, and at the jump of 2^40 after a crash), so
// they are kept once per run.
type changeLog struct {
	entries paged[logEntry]
	runs    []logRun // in increasing from; runs[0].from is 0 when there are entries
}

type logEntry struct {
	lo   uint32 // the change number's low 32 bits
	slot uint32
}

// logRun says that the entries from index from on have the high bits hi,
// up to the next run.
type logRun struct {
	from int
	hi   uint32
}

func (l *changeLog) len() int { return l.entries.len() }

// add appends a change, whose number is greater than every one logged.
func (l *changeLog) add(seq uint64, slot uint32) {
	hi := uint32(seq >> 32)
	if len(l.runs) == 0 || l.runs[len(l.runs)-1].hi != hi {
		l.runs = append(l.runs, logRun{from: l.entries.len(), hi: hi})
	}
	l.entries.push(logEntry{lo: uint32(seq), slot: slot})
}

// at returns the change number and slot of entry k.
func (l *changeLog) at(k int) (seq uint64, slot uint32) {
	e := l.entries.at(k)
	return uint64(l.hi(k))<<32 | uint64(e.lo), e.slot
}

// hi returns the high bits of entry k's change number.
func (l *changeLog) hi(k int) uint32 {
	r := len(l.runs) - 1
	if r > 0 && l.runs[r].from > k {
		r = sort.Search(len(l.runs), func(i int) bool { return l.runs[i].from > k }) - 1
	}
	return l.runs[r].hi
}

// search returns the index of the first entry whose change number is
// greater than after, or len() if none is.
func (l *changeLog) search(after uint64) int {
	return sort.Search(l.entries.len(), func(k int) bool {
		seq, _ := l.at(k)
		return seq > after
	})
}

// compact keeps the entries for which keep is true, in order, in a new
// log, each with the slot number keep returns (the same, unless slots
// were renumbered).
func (l *changeLog) compact(keep func(seq uint64, slot uint32) (uint32, bool)) {
	var kept changeLog
	kept.entries.reserve(l.entries.len())
	k, r := 0, 0 // the entry, and its run
	for _, page := range l.entries.pages {
		for _, e := range page {
			for r+1 < len(l.runs) && l.runs[r+1].from <= k {
				r++
			}
			seq := uint64(l.runs[r].hi)<<32 | uint64(e.lo)
			if slot, ok := keep(seq, e.slot); ok {
				kept.add(seq, slot)
			}
			k++
		}
	}
	*l = kept
}
