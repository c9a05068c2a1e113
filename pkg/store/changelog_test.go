package store

import (
	"fmt"
	"testing"
)

func TestChangeLog(t *testing.T) {
	const jump = 1 << 40 // the journal's jump after a crash
	tests := []struct {
		name string
		seqs []uint64
		runs int
	}{
		{"empty", nil, 0},
		{"small numbers", []uint64{1, 2, 3, 7}, 1},
		{"across 2^32", []uint64{1<<32 - 2, 1<<32 - 1, 1 << 32, 1<<32 + 5}, 2},
		{"a jump after a crash", []uint64{5, 6, jump + 7, jump + 8, 2*jump + 9}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l changeLog
			for i, seq := range tt.seqs {
				l.add(seq, uint32(i))
			}
			if l.len() != len(tt.seqs) || len(l.runs) != tt.runs {
				t.Fatalf("len %d in %d runs, want %d in %d", l.len(), len(l.runs), len(tt.seqs), tt.runs)
			}
			for k, want := range tt.seqs {
				if seq, slot := l.at(k); seq != want || slot != uint32(k) {
					t.Errorf("at(%d) = %d, %d; want %d, %d", k, seq, slot, want, k)
				}
			}
			for k, seq := range tt.seqs {
				for _, after := range []uint64{seq - 1, seq} {
					want := k
					if after == seq {
						want = k + 1
					}
					if got := l.search(after); got != want {
						t.Errorf("search(%d) = %d, want %d", after, got, want)
					}
				}
			}
			if got := l.search(1<<64 - 1); got != len(tt.seqs) {
				t.Errorf("search(max) = %d, want %d", got, len(tt.seqs))
			}
			// Keep every other entry, renumbered: the numbers and runs follow.
			l.compact(func(seq uint64, slot uint32) (uint32, bool) { return slot + 100, slot%2 == 0 })
			var got, want []string
			for k := range l.len() {
				seq, slot := l.at(k)
				got = append(got, fmt.Sprint(seq, "/", slot))
			}
			for i, seq := range tt.seqs {
				if i%2 == 0 {
					want = append(want, fmt.Sprint(seq, "/", i+100))
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("after compact: %v, want %v", got, want)
			}
		})
	}
}
