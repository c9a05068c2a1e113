package store

import (
	"cmp"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/herdkit/herd/pkg/protocol"
)

func rec(client, pos, time, origin string, recv int64) Record {
	return Record{Text: client + " " + pos + " " + time, Origin: origin, Recv: recv}
}

func TestNewer(t *testing.T) {
	base := rec("k", "+1+2", "10.5", "Hill", 100)
	tests := []struct {
		name string
		a    Record
		want bool
	}{
		{"same record", base, false},
		{"later time", rec("k", "+1+2", "10.6", "Hill", 100), true},
		{"earlier time", rec("k", "+1+2", "10.4", "Hill", 100), false},
		{"later time by a tenth decimal", rec("k", "+1+2", "10.5000000001", "Hill", 100), true},
		{"same instant written longer, else equal", rec("k", "+1+2", "10.50", "Hill", 100), true},
		{"equal time, greater origin", rec("k", "+1+2", "10.5", "Jaquez", 100), true},
		{"equal time, smaller origin", rec("k", "+1+2", "10.5", "Campbell", 100), false},
		{"equal time and origin, greater position", rec("k", "+3+2", "10.5", "Hill", 100), true},
		{"equal time and origin, smaller position", rec("k", "+0+2", "10.5", "Hill", 100), false},
		{"only receive time later", rec("k", "+1+2", "10.5", "Hill", 101), true},
		{"only receive time earlier", rec("k", "+1+2", "10.5", "Hill", 99), false},
		{"more hops is not newer", Record{Text: base.Text, Origin: "Hill", Recv: 100, Hops: 3}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Newer(tt.a, base); got != tt.want {
				t.Errorf("Newer(%+v, base) = %v, want %v", tt.a, got, tt.want)
			}
			if tt.want && Newer(base, tt.a) {
				t.Errorf("Newer is not antisymmetric for %+v", tt.a)
			}
		})
	}
}

// TestNewerConvergesInAnyOrder applies the same set of competing records in
// every order and checks that the winner never depends on the order.
func TestNewerConvergesInAnyOrder(t *testing.T) {
	recs := []Record{
		rec("k", "+1+2", "5", "Hill", 1),
		rec("k", "+1+3", "5", "Hill", 1),
		rec("k", "+1+2", "5", "Smith", 1),
		rec("k", "+1+2", "5.0", "Hill", 2),
		rec("k", "+9+9", "4.99", "Singleton", 9),
	}
	var want string
	permute(recs, 0, func(order []Record) {
		s := New()
		for _, r := range order {
			s.Apply(r, Local)
		}
		got, _ := s.Get("k")
		got.OriginID = 0 // each store numbers the origins in the order it met them
		key := fmt.Sprintf("%+v", got)
		if want == "" {
			want = key
		} else if key != want {
			t.Fatalf("order %v kept %s, another order kept %s", order, key, want)
		}
	})
}

func permute(a []Record, k int, f func([]Record)) {
	if k == len(a) {
		f(a)
		return
	}
	for i := k; i < len(a); i++ {
		a[k], a[i] = a[i], a[k]
		permute(a, k+1, f)
		a[k], a[i] = a[i], a[k]
	}
}

func TestRecordFields(t *testing.T) {
	r := rec("kiwi.cs.ucla.edu", "+34.068930-118.445127", "1621464827.959498503", "Hill", 1621464828223371889)
	if r.Client() != "kiwi.cs.ucla.edu" || r.Pos() != "+34.068930-118.445127" || r.Time() != "1621464827.959498503" {
		t.Errorf("fields of %q: %q %q %q", r.Text, r.Client(), r.Pos(), r.Time())
	}
	if got := string(r.AppendAT(nil)); got != "AT Hill +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503" {
		t.Errorf("AppendAT = %q", got)
	}
}

func TestApplyAndGet(t *testing.T) {
	s := New()
	if _, ok := s.Get("k"); ok {
		t.Fatal("empty store has a record")
	}
	steps := []struct {
		r       Record
		applied bool
		seq     uint64
	}{
		{rec("k", "+1+2", "10", "Hill", 1), true, 1},
		{rec("k", "+1+2", "9", "Hill", 2), false, 0},
		{rec("k", "+1+2", "10", "Hill", 1), false, 0},
		{rec("j", "+1+2", "1", "Hill", 1), true, 2},
		{rec("k", "+5+5", "11", "Smith", 3), true, 3},
	}
	for i, st := range steps {
		seq, ok := s.Apply(st.r, Local)
		if ok != st.applied || seq != st.seq {
			t.Fatalf("step %d: Apply = %d %v, want %d %v", i, seq, ok, st.seq, st.applied)
		}
	}
	got, ok := s.Get("k")
	if !ok || got.Text() != "k +5+5 11" || got.Origin != "Smith" || got.Recv != 3 {
		t.Errorf("Get(k) = %+v %v", got, ok)
	}
	if s.Len() != 2 || s.Seq() != 3 {
		t.Errorf("Len, Seq = %d, %d; want 2, 3", s.Len(), s.Seq())
	}
}

func TestApplyAllIsApplyInOrder(t *testing.T) {
	tests := []struct {
		name string
		recs []Record
	}{
		{"empty", nil},
		{"distinct clients", []Record{rec("a", "+1+1", "1", "Hill", 1), rec("b", "+1+1", "1", "Hill", 1)}},
		{"one client, newer then older", []Record{rec("k", "+1+2", "10", "Hill", 1), rec("k", "+1+2", "9", "Hill", 2), rec("k", "+5+5", "11", "Smith", 3)}},
		{"a duplicate", []Record{rec("k", "+1+2", "10", "Hill", 1), rec("k", "+1+2", "10", "Hill", 1)}},
		{"nothing newer than the store", []Record{rec("old", "+1+2", "1", "Hill", 1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			one, all := New(), New()
			for _, s := range []*Store{one, all} {
				s.Apply(rec("old", "+1+2", "5", "Hill", 1), Local)
			}
			c := all.Subscribe()
			var want []bool
			for _, r := range tt.recs {
				_, ok := one.Apply(r, 7)
				want = append(want, ok)
			}
			got := all.ApplyAll(tt.recs, 7, nil)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("applied %v, want %v", got, want)
			}
			a, _ := one.Changes(0, 100, nil)
			b, _ := all.Changes(0, 100, nil)
			if fmt.Sprint(a) != fmt.Sprint(b) {
				t.Errorf("changes %v, want %v", b, a)
			}
			notified := false
			select {
			case <-c:
				notified = true
			default:
			}
			if stored := slices.Contains(want, true); notified != stored {
				t.Errorf("notified %v after storing %v", notified, want)
			}
		})
	}
}

func TestChanges(t *testing.T) {
	s := New()
	s.Apply(rec("a", "+1+1", "1", "Hill", 1), Local) // 1
	s.Apply(rec("b", "+1+1", "1", "Hill", 1), 2)     // 2
	s.Apply(rec("c", "+1+1", "1", "Hill", 1), Local) // 3
	s.Apply(rec("a", "+1+1", "2", "Hill", 1), 1)     // 4, supersedes 1
	tests := []struct {
		after uint64
		max   int
		want  []string
		next  uint64
	}{
		{0, 10, []string{"b 2", "c 3", "a 4"}, 4},
		{0, 1, []string{"b 2"}, 2},
		{2, 10, []string{"c 3", "a 4"}, 4},
		{3, 10, []string{"a 4"}, 4},
		{4, 10, nil, 4},
	}
	for _, tt := range tests {
		got, next := s.Changes(tt.after, tt.max, nil)
		var names []string
		for _, c := range got {
			names = append(names, fmt.Sprintf("%s %d", c.Record.Client(), c.Seq))
		}
		if fmt.Sprint(names) != fmt.Sprint(tt.want) || next != tt.next {
			t.Errorf("Changes(%d, %d) = %v, %d; want %v, %d", tt.after, tt.max, names, next, tt.want, tt.next)
		}
	}
	got, _ := s.Changes(0, 10, nil)
	if got[0].From != 2 || got[2].From != 1 {
		t.Errorf("Changes lost the links: %+v", got)
	}
}

func TestCompactionKeepsOrder(t *testing.T) {
	s := New()
	const clients = 100
	for round := 0; round < 200; round++ {
		for c := 0; c < clients; c++ {
			s.Apply(rec(fmt.Sprint(c), "+1+1", fmt.Sprint(round), "Hill", 1), Local)
		}
	}
	if s.log.len() > 2*clients+minCompact {
		t.Errorf("log holds %d entries for %d clients", s.log.len(), clients)
	}
	got, next := s.Changes(0, 1000, nil)
	if len(got) != clients || next != s.Seq() {
		t.Fatalf("Changes(0) = %d changes, next %d; want %d, %d", len(got), next, clients, s.Seq())
	}
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq {
			t.Fatalf("changes out of order at %d", i)
		}
	}
	// A cursor from before the compaction still works.
	got, _ = s.Changes(s.Seq()-10, 1000, nil)
	if len(got) != 10 {
		t.Errorf("Changes(seq-10) = %d changes, want 10", len(got))
	}
}

func TestSubscribe(t *testing.T) {
	s := New()
	c := s.Subscribe()
	s.Apply(rec("a", "+1+1", "1", "Hill", 1), Local)
	s.Apply(rec("b", "+1+1", "1", "Hill", 1), Local)
	select {
	case <-c:
	default:
		t.Fatal("no notification after Apply")
	}
	s.Unsubscribe(c)
	s.Apply(rec("c", "+1+1", "1", "Hill", 1), Local)
	select {
	case <-c:
		t.Fatal("notification after Unsubscribe")
	default:
	}
}

// TestConcurrentUse runs writers, readers and change readers at once; run
// it with -race. Whatever the interleaving, the newest record must win.
func TestConcurrentUse(t *testing.T) {
	s := New()
	const writers, clients, rounds = 4, 50, 200
	var wg, readers sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for r := range rounds {
				for c := range clients {
					s.Apply(rec(fmt.Sprint(c), "+1+1", fmt.Sprint(r*writers+w), "Hill", 1), Source(w))
				}
			}
		})
	}
	done := make(chan struct{})
	readers.Go(func() {
		var cursor uint64
		for {
			select {
			case <-done:
				return
			default:
			}
			var batch []Change
			batch, cursor = s.Changes(cursor, 64, nil)
			for i := 1; i < len(batch); i++ {
				if batch[i].Seq <= batch[i-1].Seq {
					t.Errorf("changes out of order: %d after %d", batch[i].Seq, batch[i-1].Seq)
				}
			}
			s.Get("1")
		}
	})
	wg.Wait()
	close(done)
	readers.Wait()
	for c := range clients {
		got, _ := s.Get(fmt.Sprint(c))
		if want := fmt.Sprint((rounds-1)*writers + writers - 1); got.Time() != want {
			t.Errorf("client %d holds time %s, want %s", c, got.Time(), want)
		}
	}
}

// TestMemoryPerRecord checks that a million clients fit a small container:
// it fills a store with a limit, as a node's is (HERD_MAX_RECORDS), and
// measures the heap it holds per record.
func TestMemoryPerRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a large store")
	}
	const n = 200_000
	perRecord := measureMemory(n, n)
	t.Logf("%.0f bytes per record, %.0f MB per million clients", perRecord, perRecord)
	if perRecord > 125 {
		t.Errorf("a record costs %.0f bytes; budget 125 (125 MB per million clients)", perRecord)
	}
}

func measureMemory(n, limit int) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := New()
	s.SetLimit(limit)
	for i := range n {
		// Realistic sizes: a host name, a six-decimal position, a nanosecond time.
		s.Apply(Record{
			Text:   fmt.Sprintf("client-%07d.cs.ucla.edu +34.068930-118.445127 1621464827.959498503", i),
			Origin: "Hill", Recv: 1621464828223371889,
		}, Local)
	}
	// And a second round of updates, as a live herd would see.
	for i := range n {
		s.Apply(Record{
			Text:   fmt.Sprintf("client-%07d.cs.ucla.edu +34.068930-118.445127 1621464828.959498503", i),
			Origin: "Hill", Recv: 1621464829223371889,
		}, Local)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(s)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

// benchLimit is a limit the benchmarks never reach: they measure the
// upkeep of the bound that every node pays, as HERD_MAX_RECORDS is on by
// default. BenchmarkApplyAtLimit measures a store at its limit.
const benchLimit = 1 << 30

func BenchmarkApplyNew(b *testing.B) {
	texts := make([]string, b.N)
	for i := range texts {
		texts[i] = fmt.Sprintf("client-%d +34.068930-118.445127 1621464827.959498503", i)
	}
	s := New()
	s.SetLimit(benchLimit)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s.Apply(Record{Text: texts[i], Origin: "Hill", Recv: 1}, Local)
	}
}

func BenchmarkApplyUpdate(b *testing.B) {
	const clients = 10_000
	texts := make([]string, 1000)
	for i := range texts {
		texts[i] = fmt.Sprintf("client-%d +34.068930-118.445127 1621464827.%09d", i%clients, i)
	}
	s := New()
	s.SetLimit(benchLimit)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s.Apply(Record{Text: texts[i%len(texts)], Origin: "Hill", Recv: int64(i)}, Local)
	}
}

func BenchmarkGet(b *testing.B) {
	s := New()
	s.SetLimit(benchLimit)
	for i := range 10_000 {
		s.Apply(Record{Text: fmt.Sprintf("client-%d +34.068930-118.445127 1", i), Origin: "Hill", Recv: 1}, Local)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Get("client-5000")
		}
	})
}

func BenchmarkMemoryPerRecord(b *testing.B) {
	for range b.N {
		b.ReportMetric(measureMemory(1_000_000, 1_000_000), "B/record")
	}
}

// BenchmarkLimitUpkeep measures what the bound adds to updates that are
// newer and to new clients, in a store of 100,000 clients.
func BenchmarkLimitUpkeep(b *testing.B) {
	const clients = 100_000
	for _, limit := range []int{0, benchLimit} {
		name := map[int]string{0: "unbounded", benchLimit: "bounded"}[limit]
		b.Run("update/"+name, func(b *testing.B) {
			s := filled(clients, limit)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				s.Apply(benchRecord(i%clients, 1621464900+int64(i)), Local)
			}
		})
		b.Run("new/"+name, func(b *testing.B) {
			s := filled(clients, limit)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				s.Apply(benchRecord(clients+i, 1621464900+int64(i)), Local)
			}
		})
	}
}

// BenchmarkApplyAtLimit measures new clients at a full store of 100,000:
// each one evicts the lowest record, or is refused.
func BenchmarkApplyAtLimit(b *testing.B) {
	const clients = 100_000
	b.Run("evict", func(b *testing.B) {
		s := filled(clients, clients)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			s.Apply(benchRecord(clients+i, 1621464900+int64(i)), Local)
		}
	})
	b.Run("refuse", func(b *testing.B) {
		s := filled(clients, clients)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			s.Apply(benchRecord(clients+i, 1000+int64(i%1000)), Local)
		}
	})
}

// filled returns a store of n clients with times a second apart.
func filled(n, limit int) *Store {
	s := New()
	s.SetLimit(limit)
	for i := range n {
		s.Apply(benchRecord(i, 1621464827-int64(n)+int64(i)), Local)
	}
	return s
}

func benchRecord(client int, sec int64) Record {
	b := make([]byte, 0, 64)
	b = append(b, "client-"...)
	b = strconv.AppendInt(b, int64(client), 10)
	b = append(b, " +34.068930-118.445127 "...)
	b = strconv.AppendInt(b, sec, 10)
	b = append(b, ".959498503"...)
	return Record{Text: string(b), Origin: "Hill", Recv: sec}
}

// textCompare is Newer's order as it was written on the texts, before
// records were packed: the reference that compare must follow.
func textCompare(a, b Record) int {
	at, bt := a.Time(), b.Time()
	if c := protocol.CompareTime(at, bt); c != 0 {
		return c
	}
	if c := strings.Compare(a.Origin, b.Origin); c != 0 {
		return c
	}
	if c := strings.Compare(a.Pos(), b.Pos()); c != 0 {
		return c
	}
	if a.Recv != b.Recv {
		return cmp.Compare(a.Recv, b.Recv)
	}
	return strings.Compare(at, bt)
}

// TestPackedOrderIsTheTexts compares records of every form, packed or
// kept as text (eight decimals, leading zeros, ten decimals of time), in
// every pair: the packed order must be the texts', and Rank's too.
func TestPackedOrderIsTheTexts(t *testing.T) {
	positions := []string{"+1+1", "+1.0+1", "+01+1", "-1+1", "-0+1", "+1.5-2.25", "+1.50-2.25", "+1.50000000-2.25",
		"+1.49999999-2.25", "+90.0000000-180.0000000", "+034.068930-118.445127",
		"+1.5-2.26", "+1.4-2.25", "+2.5-2.25", "+1.5-3.25", "-1.5-2.25", "+1.5+2.25", "+9.9-9.99"} // same shapes, other digits
	times := []string{"1", "1.0", "1.5", "1.50", "01.5", "1.500000000", "1.5000000001", "2", "0", "00",
		"1621464827.959498503", "1621464827.9594985030", "17179869184", "17179869183.999999999"}
	var recs []Record
	for _, p := range positions {
		for _, tm := range times {
			recs = append(recs, rec("k", p, tm, "Hill", 1))
		}
	}
	for _, p := range positions[:4] { // the other keys, and the client ids of Rank
		for _, tm := range times[:4] {
			recs = append(recs, rec("k", p, tm, "Jaquez", 1), rec("k", p, tm, "Hill", 2), rec("j", p, tm, "Hill", 1))
		}
	}
	for _, a := range recs {
		for _, b := range recs {
			want := textCompare(a, b)
			if got := compare(keysOf(a), keysOf(b)); got != want {
				t.Fatalf("compare(%+v, %+v) = %d, the texts say %d", a, b, got, want)
			}
			if want == 0 {
				want = strings.Compare(a.Client(), b.Client())
			}
			if got := Rank(a, b); got != want {
				t.Fatalf("Rank(%+v, %+v) = %d, want %d", a, b, got, want)
			}
		}
	}
}

// TestPackedRoundTrip stores records of every form, packed or kept as
// text, each replacing the last one of its client, and reads each back
// exactly: its text, its AT line and its fields, from Get and Changes.
func TestPackedRoundTrip(t *testing.T) {
	texts := []string{
		"kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503",
		"kiwi.cs.ucla.edu +34.06893012-118.445127 1621464827.959498504", // eight decimals: text
		"kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.9594985050",  // ten decimals: text
		"kiwi.cs.ucla.edu +34-118 1621464828",
		"kiwi.cs.ucla.edu +034.5-008.25 01621464829", // leading zeros of the time: text
		"kiwi.cs.ucla.edu -0.0-0.0 1621464830.0",
		"kiwi.cs.ucla.edu +90.0000000-180.0000000 17179869183.999999999",
		"kiwi.cs.ucla.edu +1+1 17179869184", // seconds past 2^34: text
	}
	s := New()
	s.SetLimit(10)
	for i, text := range texts {
		r := Record{Text: text, Origin: "Hill", Recv: 1621464828223371889 + int64(i), Hops: uint8(i)}
		if _, ok := s.Apply(r, Local); !ok {
			t.Fatalf("%q not stored", text)
		}
		checkStore(t, s)
		got, _ := s.Get("kiwi.cs.ucla.edu")
		changes, _ := s.Changes(0, 10, nil)
		for _, p := range []Packed{got, changes[0].Record} {
			if p.Unpack() != r || p.Text() != text || p.TextLen() != len(text) || string(p.AppendText([]byte("x"))) != "x"+text {
				t.Errorf("stored %+v, read back %+v (%q, length %d)", r, p.Unpack(), p.Text(), p.TextLen())
			}
			if got, want := string(p.AppendAT(nil)), string(r.AppendAT(nil)); got != want {
				t.Errorf("AT line %q, want %q", got, want)
			}
			if p.Client() != r.Client() || p.Pos() != r.Pos() || p.Time() != r.Time() {
				t.Errorf("fields %q %q %q, want %q %q %q", p.Client(), p.Pos(), p.Time(), r.Client(), r.Pos(), r.Time())
			}
		}
	}
	if s.Len() != 1 {
		t.Errorf("Len %d, want 1", s.Len())
	}
}

// BenchmarkChanges reads the change log of 100,000 clients in batches of
// 512, as a link's writer or the journal does: the records alone (read),
// and each record's text appended to a buffer as a frame or an entry
// would be (text).
func BenchmarkChanges(b *testing.B) {
	const clients = 100_000
	s := filled(clients, benchLimit)
	for _, text := range []bool{false, true} {
		b.Run(map[bool]string{false: "read", true: "text"}[text], func(b *testing.B) {
			var batch []Change
			var buf []byte
			next := uint64(0)
			b.ReportAllocs()
			for i := 0; i < b.N; i += len(batch) {
				batch, next = s.Changes(next, 512, batch[:0])
				if len(batch) < 512 {
					next = 0
				}
				if text {
					buf = buf[:0]
					for _, c := range batch {
						buf = c.Record.AppendText(buf)
					}
				}
			}
		})
	}
}

// BenchmarkAppendAT formats the AT line of a record read with Get, as a
// WHATSAT's reply does.
func BenchmarkAppendAT(b *testing.B) {
	s := filled(10_000, benchLimit)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for i := range b.N {
		r, _ := s.Get("client-" + strconv.Itoa(i%10_000))
		buf = r.AppendAT(buf[:0])
	}
}

// TestOriginID: the records a store returns carry the number OriginID
// gives their origin, one number a name; a name of no record has none,
// and asking for it numbers nothing.
func TestOriginID(t *testing.T) {
	s := New()
	if id, ok := s.OriginID("Smith"); ok {
		t.Fatalf("Smith numbered %d before any record of Smith's", id)
	}
	s.Apply(Record{Text: "a +1+1 1", Origin: "Hill", Recv: 1}, Local)
	s.Apply(Record{Text: "b +1+1 1", Origin: "Smith", Recv: 1}, Local)
	hill, _ := s.OriginID("Hill")
	smith, _ := s.OriginID("Smith")
	if len(s.origins.names) != 2 {
		t.Fatalf("%d origins numbered, want 2", len(s.origins.names))
	}
	if hill == smith {
		t.Fatalf("Hill and Smith both numbered %d", hill)
	}
	for client, want := range map[string]uint16{"a": hill, "b": smith} {
		r, ok := s.Get(client)
		if !ok || r.OriginID != want {
			t.Errorf("Get(%q): origin %q numbered %d, want %d", client, r.Origin, r.OriginID, want)
		}
	}
	changes, _ := s.Changes(0, 10, nil)
	if len(changes) != 2 {
		t.Fatalf("%d changes, want 2", len(changes))
	}
	for _, c := range changes {
		if again, _ := s.OriginID(c.Record.Origin); c.Record.OriginID != again {
			t.Errorf("change %d: origin %q numbered %d, OriginID says %d", c.Seq, c.Record.Origin, c.Record.OriginID, again)
		}
	}
}

// TestSubscriptionHolds: a subscription that holds is woken only by the
// changes its Urgency calls urgent; one that listens, by every change.
func TestSubscriptionHolds(t *testing.T) {
	s := New()
	sub := s.SubscribeUrgent(func(origin uint16, from Source) bool {
		hill, ok := s.origins.index["Hill"] // under the store's lock, as urgent runs
		return ok && origin == hill && from != 2
	})
	defer s.Unsubscribe(sub.C)
	woken := func() bool {
		select {
		case <-sub.C:
			return true
		default:
			return false
		}
	}
	steps := []struct {
		hold   bool
		origin string
		from   Source
		want   bool
	}{
		{false, "Smith", 1, true}, // listening: every change wakes it
		{true, "Smith", 1, false}, // holding: not urgent
		{true, "Hill", 2, false},  // holding: from its own neighbour
		{true, "Hill", 1, true},   // holding: urgent
		{false, "Smith", 2, true}, // listening again
	}
	for i, st := range steps {
		if st.hold {
			sub.Hold()
		} else {
			sub.Listen()
		}
		s.ApplyAll([]Record{{Text: fmt.Sprintf("c%d +1+1 1", i), Origin: st.origin, Recv: 1}}, st.from, nil)
		if got := woken(); got != st.want {
			t.Errorf("step %d: woken %v, want %v", i, got, st.want)
		}
	}
}
