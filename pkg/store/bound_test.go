package store

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestRank(t *testing.T) {
	base := rec("k", "+1+2", "10.5", "Hill", 100)
	tests := []struct {
		name string
		a    Record
		want int
	}{
		{"same record", base, 0},
		{"same record, more hops", Record{Text: base.Text, Origin: "Hill", Recv: 100, Hops: 2}, 0},
		{"later time, other client", rec("a", "+1+2", "10.6", "Hill", 100), 1},
		{"earlier time, other client", rec("z", "+1+2", "10.4", "Hill", 100), -1},
		{"equal time, greater origin", rec("a", "+1+2", "10.5", "Jaquez", 100), 1},
		{"equal time, smaller position", rec("z", "+0+2", "10.5", "Hill", 100), -1},
		{"equal time, later receive time", rec("a", "+1+2", "10.5", "Hill", 101), 1},
		{"equal time written longer", rec("a", "+1+2", "10.50", "Hill", 100), 1},
		{"equal in every key but a greater id", rec("l", "+1+2", "10.5", "Hill", 100), 1},
		{"equal in every key but a smaller id", rec("j", "+1+2", "10.5", "Hill", 100), -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Rank(tt.a, base); got != tt.want {
				t.Errorf("Rank(%+v, base) = %d, want %d", tt.a, got, tt.want)
			}
			if got := Rank(base, tt.a); got != -tt.want {
				t.Errorf("Rank is not antisymmetric for %+v: %d", tt.a, got)
			}
		})
	}
}

func TestTimeKeyFollowsCompareTime(t *testing.T) {
	times := []string{"0", "0.000000001", "1", "1.5", "1.50", "1.500000000", "1.5000000001", "1.999999999",
		"2", "1621464827.959498503", "1621464827.9594985031", "17179869183.999999999", "17179869184",
		"17179869184.5", "999999999999999999"}
	for _, a := range times {
		for _, b := range times {
			ka, kb := timeKey(keysOf(rec("k", "+1+1", a, "H", 1))), timeKey(keysOf(rec("k", "+1+1", b, "H", 1)))
			if c := compareTimes(a, b); c < 0 && ka > kb || c > 0 && ka < kb || c == 0 && ka != kb {
				t.Errorf("times %s, %s compare %d but keys %d, %d", a, b, c, ka, kb)
			}
		}
	}
}

func compareTimes(a, b string) int {
	return compare(keysOf(rec("k", "+1+1", a, "H", 1)), keysOf(rec("k", "+1+1", b, "H", 1)))
}

// TestLimit applies records one after another to a store of limit 3.
func TestLimit(t *testing.T) {
	type step struct {
		r       Record
		applied bool
		held    string // the clients held after the step, sorted
	}
	tests := []struct {
		name      string
		steps     []step
		evictions uint64
		refused   uint64
	}{
		{"under the limit", []step{
			{rec("a", "+1+1", "5", "Hill", 1), true, "a"},
			{rec("b", "+1+1", "1", "Hill", 1), true, "a b"},
			{rec("c", "+1+1", "9", "Hill", 1), true, "a b c"},
		}, 0, 0},
		{"a new client above the lowest evicts it", []step{
			{rec("a", "+1+1", "5", "Hill", 1), true, "a"},
			{rec("b", "+1+1", "1", "Hill", 1), true, "a b"},
			{rec("c", "+1+1", "9", "Hill", 1), true, "a b c"},
			{rec("d", "+1+1", "2", "Hill", 1), true, "a c d"},
			{rec("e", "+1+1", "7", "Hill", 1), true, "a c e"},
		}, 2, 0},
		{"a new client below the lowest is refused", []step{
			{rec("a", "+1+1", "5", "Hill", 1), true, "a"},
			{rec("b", "+1+1", "3", "Hill", 1), true, "a b"},
			{rec("c", "+1+1", "9", "Hill", 1), true, "a b c"},
			{rec("d", "+1+1", "2", "Hill", 1), false, "a b c"},
			{rec("e", "+1+1", "3", "Campbell", 1), false, "a b c"}, // equal time, smaller origin
		}, 0, 2},
		{"equal in every key, the client id decides", []step{
			{rec("b", "+1+1", "5", "Hill", 1), true, "b"},
			{rec("c", "+1+1", "5", "Hill", 1), true, "b c"},
			{rec("d", "+1+1", "5", "Hill", 1), true, "b c d"},
			{rec("a", "+1+1", "5", "Hill", 1), false, "b c d"},
			{rec("e", "+1+1", "5", "Hill", 1), true, "c d e"},
		}, 1, 1},
		{"an update never evicts, even of the lowest", []step{
			{rec("a", "+1+1", "5", "Hill", 1), true, "a"},
			{rec("b", "+1+1", "1", "Hill", 1), true, "a b"},
			{rec("c", "+1+1", "9", "Hill", 1), true, "a b c"},
			{rec("b", "+2+2", "20", "Hill", 2), true, "a b c"},
			{rec("b", "+2+2", "19", "Hill", 2), false, "a b c"}, // not newer
			{rec("d", "+1+1", "6", "Hill", 1), true, "b c d"},   // a is now the lowest
		}, 1, 0},
		{"an evicted client comes back above the lowest", []step{
			{rec("a", "+1+1", "1", "Hill", 1), true, "a"},
			{rec("b", "+1+1", "2", "Hill", 1), true, "a b"},
			{rec("c", "+1+1", "3", "Hill", 1), true, "a b c"},
			{rec("d", "+1+1", "4", "Hill", 1), true, "b c d"},
			{rec("a", "+1+1", "1", "Hill", 1), false, "b c d"}, // its old record: below
			{rec("a", "+1+1", "5", "Hill", 1), true, "a c d"},
		}, 2, 1},
		{"times past the nanosecond", []step{
			{rec("a", "+1+1", "1.0000000002", "Hill", 1), true, "a"},
			{rec("b", "+1+1", "1.0000000003", "Hill", 1), true, "a b"},
			{rec("c", "+1+1", "1.0000000001", "Hill", 1), true, "a b c"},
			{rec("d", "+1+1", "1.00000000025", "Hill", 1), true, "a b d"},
			{rec("e", "+1+1", "1.00000000015", "Hill", 1), false, "a b d"},
		}, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New()
			s.SetLimit(3)
			for k, st := range tt.steps {
				if _, ok := s.Apply(st.r, Local); ok != st.applied {
					t.Fatalf("step %d: Apply(%q) = %v, want %v", k, st.r.Text, ok, st.applied)
				}
				if got := strings.Join(held(s), " "); got != st.held {
					t.Fatalf("step %d: holds %q, want %q", k, got, st.held)
				}
				checkStore(t, s)
			}
			if s.Evictions() != tt.evictions || s.Refused() != tt.refused {
				t.Errorf("evictions, refused = %d, %d; want %d, %d", s.Evictions(), s.Refused(), tt.evictions, tt.refused)
			}
		})
	}
}

// held returns the clients a store holds, sorted.
func held(s *Store) []string {
	var out []string
	for _, c := range all(s) {
		out = append(out, c.Record.Client())
	}
	slices.Sort(out)
	return out
}

func all(s *Store) []Change {
	got, _ := s.Changes(0, 1<<30, nil)
	return got
}

// checkStore checks the store's structures against each other: every live
// slot is found by its client and sits where the heap says, the heap is
// ordered, and the change log holds one live entry per client.
func checkStore(t *testing.T, s *Store) {
	t.Helper()
	s.mu.RLock()
	defer s.mu.RUnlock()
	live := 0
	for i := range s.slots.len() {
		sl := s.slot(uint32(i))
		if sl.seq == 0 {
			continue
		}
		live++
		text := s.packed(uint32(i)).Text()
		if j, _, ok := s.index.find(&s.slots, &s.ids, string(keyOf(&s.slots, &s.ids, uint32(i)))); !ok || j != uint32(i) {
			t.Fatalf("slot %d (%s) found at %d, %v", i, text, j, ok)
		}
		if s.limit > 0 {
			n, key := *s.low.node(int(sl.heap)), *s.low.key(int(sl.heap))
			if n&^dirty != uint32(i) {
				t.Fatalf("slot %d is not at its heap position", i)
			}
			if k := timeKey(s.keysOf(uint32(i))); n&dirty != 0 && key > k || n&dirty == 0 && key != k {
				t.Fatalf("slot %d (%s) has the key %d, dirty %v", i, text, key, n&dirty != 0)
			}
		}
	}
	if live != s.len() || s.index.n != live {
		t.Fatalf("%d live slots, len %d, index %d", live, s.len(), s.index.n)
	}
	if s.limit > 0 {
		if s.low.len() != live || s.low.keys.len() != live || live > s.limit {
			t.Fatalf("heap of %d for %d live slots, limit %d", s.low.len(), live, s.limit)
		}
		for k := 1; k < s.low.len(); k++ {
			if s.less(k, (k-1)/2) {
				t.Fatalf("heap out of order at %d", k)
			}
		}
	}
	entries := 0
	for k := range s.log.len() {
		if seq, i := s.log.at(k); s.slot(i).seq == seq {
			entries++
		}
	}
	if entries != live {
		t.Fatalf("%d live log entries for %d clients", entries, live)
	}
}

// topN is what a bounded store must hold after seeing recs, whatever
// their order: the newest record of each client, and of those the n that
// rank highest.
func topN(recs []Record, n int) []string {
	newest := map[string]Record{}
	for _, r := range recs {
		if old, ok := newest[r.Client()]; !ok || Newer(r, old) {
			newest[r.Client()] = r
		}
	}
	var best []Record
	for _, r := range newest {
		best = append(best, r)
	}
	slices.SortFunc(best, func(a, b Record) int { return Rank(b, a) })
	best = best[:min(n, len(best))]
	out := make([]string, len(best))
	for i, r := range best {
		out[i] = fmt.Sprintf("%s@%s/%d", r.Text, r.Origin, r.Recv)
	}
	slices.Sort(out)
	return out
}

func contents(s *Store) []string {
	var out []string
	for _, c := range all(s) {
		out = append(out, fmt.Sprintf("%s@%s/%d", c.Record.Text(), c.Record.Origin, c.Record.Recv))
	}
	slices.Sort(out)
	return out
}

// randomRecords draws records of few clients, times and origins, so that
// updates, equal times and equal keys are frequent.
func randomRecords(rng *rand.Rand, n, clients int) []Record {
	origins := []string{"Bailey", "Bona", "Campbell", "Clark", "Jaquez"}
	times := []string{"1", "1.0", "1.5", "2", "2.000000000", "2.0000000001", "3", "1621464827.959498503", "17179869185.5"}
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = rec(fmt.Sprintf("c%d", rng.IntN(clients)), fmt.Sprintf("+%d+%d", rng.IntN(3), rng.IntN(2)),
			times[rng.IntN(len(times))], origins[rng.IntN(len(origins))], int64(rng.IntN(3)))
	}
	return recs
}

// TestLimitConvergesInAnyOrder applies the same records in different
// orders, one by one, in batches and read back (Loader), to stores of the
// same limit: each must hold the same set, the n highest newest records.
func TestLimitConvergesInAnyOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		clients := 1 + rng.IntN(40)
		limit := 1 + rng.IntN(20)
		recs := randomRecords(rng, rng.IntN(150), clients)
		want := topN(recs, limit)
		for order := range 4 {
			shuffled := slices.Clone(recs)
			rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			s := New()
			s.SetLimit(limit)
			switch order {
			case 0, 1:
				for _, r := range shuffled {
					s.Apply(r, Local)
				}
			case 2:
				for len(shuffled) > 0 {
					k := min(len(shuffled), 1+rng.IntN(10))
					s.ApplyAll(shuffled[:k], 1, nil)
					shuffled = shuffled[k:]
				}
			case 3: // unbounded, then bounded: SetLimit evicts as Apply would have
				s.SetLimit(0)
				for _, r := range shuffled {
					s.Apply(r, Local)
				}
				s.SetLimit(limit)
			}
			checkStore(t, s)
			if got := contents(s); !slices.Equal(got, want) {
				t.Fatalf("round %d, order %d, limit %d: holds\n%v\nwant\n%v", round, order, limit, got, want)
			}
		}
		// A store read back from its journal holds the same: from what
		// it stored, in order, and from a journal that logged every record
		// newer than its client's last, as a store without the limit would.
		live := New()
		live.SetLimit(limit)
		var stored, newer []Record
		for _, r := range recs {
			if _, ok := live.Apply(r, Local); ok {
				stored = append(stored, r)
			}
		}
		newest := map[string]Record{}
		for _, r := range recs {
			if old, ok := newest[r.Client()]; !ok || Newer(r, old) {
				newest[r.Client()] = r
				newer = append(newer, r)
			}
		}
		for _, journal := range [][]Record{stored, newer} {
			back := load(t, limit, journal)
			checkStore(t, back)
			if got := contents(back); !slices.Equal(got, want) {
				t.Fatalf("round %d: read back\n%v\nwant\n%v", round, got, want)
			}
		}
	}
}

func TestSetLimit(t *testing.T) {
	s := New()
	for i := range 10 {
		s.Apply(rec(fmt.Sprint(i), "+1+1", fmt.Sprint(100-i), "Hill", 1), Local)
	}
	if n := s.SetLimit(4); n != 6 || s.Len() != 4 || s.Limit() != 4 || s.Evictions() != 6 {
		t.Fatalf("SetLimit(4) evicted %d; Len %d, Limit %d, Evictions %d", n, s.Len(), s.Limit(), s.Evictions())
	}
	if got := strings.Join(held(s), " "); got != "0 1 2 3" {
		t.Errorf("holds %s, want the highest four 0 1 2 3", got)
	}
	checkStore(t, s)
	// Evicted records leave the change log's readers; new clients take their slots.
	for i := range 6 {
		s.Apply(rec(fmt.Sprint("n", i), "+1+1", fmt.Sprint(200+i), "Hill", 1), Local)
	}
	checkStore(t, s)
	if got := strings.Join(held(s), " "); got != "n2 n3 n4 n5" || s.slots.len() != 10 {
		t.Errorf("holds %s in %d slots, want n2 n3 n4 n5 in 10", got, s.slots.len())
	}
	if s.SetLimit(0); s.Limit() != 0 || s.low.len() != 0 {
		t.Errorf("SetLimit(0) kept a heap")
	}
	for i := range 10 {
		s.Apply(rec(fmt.Sprint("m", i), "+1+1", "1", "Hill", 1), Local)
	}
	if s.Len() != 14 {
		t.Errorf("without a limit, Len %d, want 14", s.Len())
	}
	checkStore(t, s)
}

// TestIndexRemoval fills a small table, removes entries at random and
// checks that every remaining client is still found.
func TestIndexRemoval(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	s := New()
	s.SetLimit(40)
	for i := range 5000 {
		// Random times: evictions hit every part of the table.
		s.Apply(rec(fmt.Sprint("client-", i), "+1+1", fmt.Sprint(rng.IntN(100000)), "Hill", 1), Local)
		if i%97 == 0 {
			checkStore(t, s)
		}
	}
	checkStore(t, s)
	if s.Len() != 40 || s.slots.len() != 40 {
		t.Errorf("Len %d in %d slots, want 40 in 40", s.Len(), s.slots.len())
	}
}

// TestCompactionWithEvictions keeps the change log bounded while records
// are evicted, and keeps Changes in order.
func TestCompactionWithEvictions(t *testing.T) {
	s := New()
	s.SetLimit(100)
	for i := range 50_000 {
		s.Apply(rec(fmt.Sprint(i), "+1+1", fmt.Sprint(i), "Hill", 1), Local)
	}
	if s.log.len() > 2*100+minCompact {
		t.Errorf("log holds %d entries for 100 clients", s.log.len())
	}
	got := all(s)
	if len(got) != 100 || got[0].Record.Client() != "49900" {
		t.Fatalf("Changes(0) = %d changes from %s", len(got), got[0].Record.Client())
	}
	checkStore(t, s)
}

func BenchmarkRank(b *testing.B) {
	x := rec("client-1", "+34.068930-118.445127", "1621464827.959498503", "Hill", 1)
	y := rec("client-2", "+34.068930-118.445127", "1621464827.959498504", "Hill", 1)
	b.Run("texts", func(b *testing.B) {
		for range b.N {
			Rank(x, y)
		}
	})
	kx, ky := timeKey(keysOf(x)), timeKey(keysOf(y))
	b.Run("keys", func(b *testing.B) {
		n := 0
		for range b.N {
			if kx < ky {
				n++
			}
		}
		_ = n
	})
	b.Run("timeKey", func(b *testing.B) {
		for range b.N {
			timeKey(keysOf(x))
		}
	})
}

// TestLoadLowerRecord: a Loader takes what the journal says, even a
// record below the one before it; the bound's heap must hold it there.
func TestLoadLowerRecord(t *testing.T) {
	s := load(t, 2, []Record{rec("a", "+1+1", "5", "Hill", 1), rec("b", "+1+1", "6", "Hill", 1), rec("a", "+1+1", "1", "Hill", 1)})
	checkStore(t, s)
	if _, ok := s.Apply(rec("c", "+1+1", "2", "Hill", 1), Local); !ok {
		t.Fatal("c, above a's restored record, was refused")
	}
	if got := strings.Join(held(s), " "); got != "b c" {
		t.Errorf("holds %s, want b c", got)
	}
}

// TestArenaCompactionInStore evicts enough clients that the arena is
// compacted several times: every record held is still found and read
// back whole, and a record read before a compaction keeps its bytes.
func TestArenaCompactionInStore(t *testing.T) {
	s := New()
	s.SetLimit(50)
	var before []Packed
	compactions := 0
	for i := range 30_000 {
		size := s.ids.size
		s.Apply(rec(fmt.Sprintf("client-%06d", i), "+1.123456789+1", fmt.Sprint(i), "Hill", 1), Local) // text: nine decimals
		if s.ids.size < size {
			compactions++
			checkStore(t, s)
		}
		if i%5000 == 0 {
			p, _ := s.Get(fmt.Sprintf("client-%06d", i))
			before = append(before, p)
		}
	}
	if compactions < 3 {
		t.Errorf("%d compactions, want several", compactions)
	}
	for k, p := range before {
		if want := fmt.Sprintf("client-%06d +1.123456789+1 %d", 5000*k, 5000*k); p.Text() != want {
			t.Errorf("a record read before compacting is now %q, want %q", p.Text(), want)
		}
	}
	for _, c := range all(s) {
		var n int
		fmt.Sscanf(c.Record.Client(), "client-%d", &n)
		if want := fmt.Sprintf("%s +1.123456789+1 %d", c.Record.Client(), n); c.Record.Text() != want {
			t.Errorf("read back %q, want %q", c.Record.Text(), want)
		}
	}
	if s.ids.live() != 50*35 {
		t.Errorf("the arena holds %d live bytes for 50 records", s.ids.live())
	}
}
