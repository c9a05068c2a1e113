package store

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// load reads recs back as a journal does, under change numbers 1, 2 ...
func load(t testing.TB, limit int, recs []Record) *Store {
	t.Helper()
	l := NewLoader(limit)
	for i, r := range recs {
		if err := l.Add(uint64(i+1), []byte(r.Text), []byte(r.Origin), r.Recv, r.Hops); err != nil {
			t.Fatal(err)
		}
	}
	return l.Store()
}

func TestLoader(t *testing.T) {
	a1, b1, c1 := rec("a", "+1+1", "1", "Hill", 1), rec("b", "+1+1", "2", "Jaquez", 1), rec("c", "+1+1", "3", "Hill", 1)
	a4 := rec("a", "+2.123456789+2", "4", "Smith", 2) // a text that does not pack
	tests := []struct {
		name    string
		limit   int
		recs    []Record
		changes string // the changes read back: client and change number
	}{
		{"empty", 0, nil, ""},
		{"one record a client, as a snapshot", 0, []Record{a1, b1, c1}, "a 1, b 2, c 3"},
		{"a client twice: the later record", 0, []Record{a1, b1, a4, c1}, "b 2, a 3, c 4"},
		{"a client three times", 0, []Record{a1, a4, b1, a1}, "b 3, a 4"},
		{"the limit keeps the highest", 2, []Record{c1, a1, b1}, "c 1, b 3"},
		{"the limit after a later record", 2, []Record{a1, b1, c1, a4}, "c 3, a 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := load(t, tt.limit, tt.recs)
			checkStore(t, s)
			var got []string
			for _, c := range all(s) {
				got = append(got, fmt.Sprint(c.Record.Client(), " ", c.Seq))
			}
			if strings.Join(got, ", ") != tt.changes {
				t.Errorf("changes %q, want %q", strings.Join(got, ", "), tt.changes)
			}
			if s.Seq() != uint64(len(tt.recs)) || s.Limit() != tt.limit {
				t.Errorf("Seq %d, Limit %d; want %d, %d", s.Seq(), s.Limit(), len(tt.recs), tt.limit)
			}
			if s.slots.len() != s.Len()+len(s.free) || len(s.free) != 0 && tt.limit == 0 {
				t.Errorf("%d slots for %d clients, %d free", s.slots.len(), s.Len(), len(s.free))
			}
			// Read back exactly, and the store goes on as any other.
			for _, c := range all(s) {
				want := tt.recs[c.Seq-1]
				if c.Record.Unpack() != want {
					t.Errorf("change %d read back %+v, want %+v", c.Seq, c.Record.Unpack(), want)
				}
			}
			if _, ok := s.Apply(rec("d", "+1+1", "9", "Hill", 1), Local); !ok {
				t.Error("a new client was not stored after loading")
			}
			checkStore(t, s)
		})
	}
}

// TestLoaderMatchesApply loads random records, many of them of one
// client, into small tables (where runs of the index wrap past its end):
// the store holds what applying the same records in order gives when
// each is newer than its client's last.
func TestLoaderMatchesApply(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	wrapped := 0
	for round := range 500 {
		var recs []Record
		for i := range 20 + rng.IntN(40) {
			recs = append(recs, rec(fmt.Sprint("c", rng.IntN(60)), "+1+1", fmt.Sprint(i+1), "Hill", 1))
		}
		want := New()
		for _, r := range recs {
			want.Apply(r, Local)
		}
		s := load(t, 0, recs)
		checkStore(t, s)
		if got, w := contents(s), contents(want); !slices.Equal(got, w) {
			t.Fatalf("round %d: loaded\n%v\nwant\n%v", round, got, w)
		}
		for pos, v := range s.index.table {
			if v != 0 && pos < int(s.index.hash(keyOf(&s.slots, &s.ids, v-1))&uint64(len(s.index.table)-1)) {
				wrapped++
			}
		}
	}
	if wrapped == 0 {
		t.Error("no run of the index wrapped past its end: the test does not test that")
	}
}

func TestSortByHome(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, size := range []int{64, 1 << 11, 1 << 12, 1 << 22, 1 << 23} {
		order := make([]uint64, 1000)
		for i := range order {
			order[i] = uint64(rng.IntN(size))<<32 | uint64(i)
		}
		got := sortByHome(slices.Clone(order), size)
		want := slices.Clone(order)
		slices.SortStableFunc(want, func(a, b uint64) int { return int(a>>32) - int(b>>32) })
		if !slices.Equal(got, want) {
			t.Errorf("size %d: not sorted by home, or equal homes out of their order", size)
		}
	}
}

// BenchmarkLoad reads back 200,000 clients: with a Loader, and applied
// one at a time, as a store fed by a journal would be without it.
func BenchmarkLoad(b *testing.B) {
	const clients = 200_000
	recs := make([]Record, clients)
	for i := range recs {
		recs[i] = benchRecord(i, 1621464827+int64(i))
	}
	b.Run("loader", func(b *testing.B) {
		for range b.N {
			load(b, clients, recs)
		}
	})
	b.Run("apply", func(b *testing.B) {
		for range b.N {
			s := New()
			s.SetLimit(clients)
			for _, r := range recs {
				s.Apply(r, Local)
			}
		}
	})
}
