package peer

import (
	"fmt"
	"slices"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/store"
	"github.com/herdkit/herd/pkg/topology"
)

func TestSpeaksTree(t *testing.T) {
	tests := []struct {
		nonce string
		want  bool
	}{
		{newNonce(), true},
		{"0123456789abcdef0123456789abcdck", false}, // timed pings only
		{"0123456789abcdef0123456789abcdef", false}, // the first version 1 servers
		{"0123456789abcdef0123456789abtrck", true},
		{"0123456789abcdef0123456789abtr00", false}, // the tag only with the clock's
		{"trck", false},
	}
	for _, tt := range tests {
		if got := speaksTree(tt.nonce); got != tt.want {
			t.Errorf("speaksTree(%q) = %v, want %v", tt.nonce, got, tt.want)
		}
	}
}

// announcement returns the frame that announces r as change seq.
func announcement(t *testing.T, seq uint64, r store.Record) frame {
	t.Helper()
	line := appendAnnounce(nil, seq, store.Pack(r))
	f, err := parseFrame(line[:len(line)-1])
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestCovered(t *testing.T) {
	st := store.New()
	held := store.Record{Text: "kiwi +1+1 100.5", Origin: "Jaquez", Recv: 7}
	testutil.Apply(st, held, store.Local)
	tests := []struct {
		name string
		ann  store.Record
		want bool
	}{
		{"the same record", held, true},
		{"an older time", store.Record{Text: "kiwi +2+2 99", Origin: "Hill", Recv: 9}, true},
		{"a later time", store.Record{Text: "kiwi +1+1 100.6", Origin: "Jaquez", Recv: 8}, false},
		{"the same instant written otherwise", store.Record{Text: "kiwi +1+1 100.50", Origin: "Jaquez", Recv: 7}, true},
		{"the same time from a smaller origin", store.Record{Text: "kiwi +1+1 100.5", Origin: "Hill", Recv: 7}, true},
		{"the same time from a larger origin", store.Record{Text: "kiwi +1+1 100.5", Origin: "Smith", Recv: 7}, false},
		{"the same time and origin, another read", store.Record{Text: "kiwi +1+1 100.5", Origin: "Jaquez", Recv: 6}, false},
		{"another client", store.Record{Text: "kea +1+1 1", Origin: "Jaquez", Recv: 7}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := announcement(t, 1, tt.ann)
			if got := covered(st, f.client, f.time, f.origin, f.recv); got != tt.want {
				t.Errorf("covered = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestTreeMissing: an announced change the store does not hold holds the
// watermark back until it comes, by any way; one missing for graftAfter
// falls due once, and an answer to its graft ends its wait.
func TestTreeMissing(t *testing.T) {
	st := store.New()
	tr := newTree(st)
	t0 := time.Unix(1000, 0)
	have := store.Record{Text: "a +1+1 1", Origin: "Hill", Recv: 1}
	testutil.Apply(st, have, store.Local)
	tr.announce(announcement(t, 5, have))
	if got := tr.watermark(5); got != 5 {
		t.Fatalf("watermark after an announcement of a record held = %d, want 5", got)
	}
	b := store.Record{Text: "b +1+1 1", Origin: "Hill", Recv: 2}
	c := store.Record{Text: "c +1+1 1", Origin: "Hill", Recv: 3}
	tr.now = func() time.Time { return t0 }
	tr.announce(announcement(t, 6, b))
	tr.now = func() time.Time { return t0.Add(50 * time.Millisecond) }
	tr.announce(announcement(t, 7, c))
	if got := tr.watermark(9); got != 5 {
		t.Fatalf("watermark with 6 missing = %d, want 5", got)
	}
	due, next := tr.due(t0.Add(99*time.Millisecond), 100*time.Millisecond, nil)
	if len(due) != 0 || !next.Equal(t0.Add(100*time.Millisecond)) {
		t.Fatalf("due before graftAfter: %v, next %v", due, next)
	}
	due, next = tr.due(t0.Add(100*time.Millisecond), 100*time.Millisecond, nil)
	if len(due) != 1 || due[0].client != "b" || !next.Equal(t0.Add(150*time.Millisecond)) {
		t.Fatalf("due at graftAfter: %v, next %v", due, next)
	}
	if due, _ = tr.due(t0.Add(120*time.Millisecond), 100*time.Millisecond, nil); len(due) != 0 {
		t.Fatalf("b falls due twice: %v", due)
	}
	// c comes by the tree: it is no longer missing, and is not asked for.
	testutil.Apply(st, c, store.Local)
	if got := tr.watermark(9); got != 5 {
		t.Fatalf("watermark with 6 still missing = %d, want 5", got)
	}
	if due, next = tr.due(t0.Add(time.Second), 100*time.Millisecond, nil); len(due) != 0 || !next.IsZero() {
		t.Fatalf("due after c came: %v, next %v", due, next)
	}
	// b's graft is answered with no record (the neighbour evicted it).
	tr.repaired([]byte("b"), nil)
	if got := tr.watermark(9); got != 9 {
		t.Fatalf("watermark with nothing missing = %d, want 9", got)
	}
}

// TestTreeRepairedByRecord: a graft's answer ends the wait of the changes
// of its client up to its time, not of a later one.
func TestTreeRepairedByRecord(t *testing.T) {
	tr := newTree(store.New())
	t0 := time.Unix(1000, 0)
	for i, r := range []store.Record{
		{Text: "b +1+1 1", Origin: "Hill", Recv: 1},
		{Text: "b +1+1 3", Origin: "Hill", Recv: 3},
	} {
		tr.now = func() time.Time { return t0 }
		tr.announce(announcement(t, uint64(i+1), r))
	}
	tr.due(t0.Add(time.Second), time.Millisecond, nil)
	tr.repaired([]byte("b"), []byte("2"))
	if got := tr.watermark(2); got != 1 {
		t.Fatalf("watermark = %d, want 1: the later change of b still waits", got)
	}
}

func TestPrunedKeepsOneWayIn(t *testing.T) {
	var p pruned
	up := map[store.Source]bool{1: true, 2: true, 3: true}
	isUp := func(s store.Source) bool { return up[s] }
	steps := []struct {
		from   store.Source
		origin string
		want   bool
	}{
		{1, "Hill", true},
		{2, "Hill", true},
		{3, "Hill", false}, // the last way in for Hill
		{3, "Smith", true}, // another origin's tree
	}
	for i, s := range steps {
		if got := p.prune(s.origin, s.from, 3, isUp, time.Unix(int64(i), 0)); got != s.want {
			t.Fatalf("step %d: prune(%s, %d) = %v, want %v", i, s.origin, s.from, got, s.want)
		}
	}
	p.eager(2, "Hill") // grafted
	if !p.prune("Hill", 3, 3, isUp, time.Unix(100, 0)) {
		t.Fatal("a grafted neighbour is a way in again: 3 may be pruned")
	}
	p.eager(1, "")
	up[1] = false // and its link is down
	if p.prune("Hill", 2, 3, isUp, time.Unix(200, 0)) {
		t.Fatal("2 is the last way in that is up")
	}
}

// treeStats sums a herd's tree metrics over every link.
func treeStats(h *herd) (full, announced, grafts float64) {
	for _, name := range h.order {
		n := h.nodes[name]
		if n.mgr == nil {
			continue
		}
		for _, nb := range h.topo[name] {
			full += promtest.ToFloat64(n.m.PeerRecordsSent.WithLabelValues(nb, "flood"))
			announced += promtest.ToFloat64(n.m.PeerAnnounced.WithLabelValues(nb))
			grafts += promtest.ToFloat64(n.m.PeerTreeChanges.WithLabelValues(nb, "graft_sent"))
		}
	}
	return full, announced, grafts
}

// TestTreesCarryEachRecordOnce: once the trees of the classic herd have
// formed, a record from any server crosses four links whole, one to each
// other server, and is announced on the others; flooding sent it eight
// times.
func TestTreesCarryEachRecordOnce(t *testing.T) {
	h := newHerd(t, topology.Classic, fastTimings)
	h.ready()
	write := func(round, n int) {
		for i := range n {
			r := h.iamat(h.order[i%5], fmt.Sprintf("c%d-%d", round, i), "+1+1", fmt.Sprint(1000+i))
			h.waitAll(r, h.order...)
		}
	}
	write(0, 50) // the trees form
	h.quiesce()  // and every announcement has gone: they wait for company
	full0, ann0, grafts0 := treeStats(h)
	const n = 100
	write(1, n)
	h.quiesce()
	full, ann, grafts := treeStats(h)
	if got := (full - full0) / n; got != 4 {
		t.Errorf("%.2f whole records sent a record, want 4 (one to each other server)", got)
	}
	if got := (ann - ann0) / n; got != 4 {
		t.Errorf("%.2f announcements a record, want 4 (the other link directions)", got)
	}
	if grafts != grafts0 {
		t.Errorf("%v grafts once the trees formed, want none", grafts-grafts0)
	}
}

// TestTreesMendWhenAServerStops: when a server on the trees stops, the
// servers it fed get the records announced to them, by a graft, and the
// trees form again around it: soon records reach them whole again, sooner
// than a graft would bring them.
func TestTreesMendWhenAServerStops(t *testing.T) {
	h := newHerd(t, topology.Classic, fastTimings)
	h.ready()
	for i := range 30 { // the trees form; Smith feeds Campbell Hill's records
		r := h.iamat("Hill", fmt.Sprintf("before-%d", i), "+1+1", fmt.Sprint(1000+i))
		h.waitAll(r, h.order...)
	}
	h.stop("Smith")
	live := []string{"Hill", "Jaquez", "Campbell", "Singleton"}
	var took []time.Duration
	for i := range 30 {
		sent := time.Now()
		r := h.iamat("Hill", fmt.Sprintf("after-%d", i), "+1+1", fmt.Sprint(2000+i))
		h.waitAll(r, live...)
		took = append(took, time.Since(sent))
	}
	for i, d := range took[20:] {
		if d >= graftAfterMin {
			t.Errorf("record %d after the stop took %v to reach every live server: the trees did not form again (%v)", 20+i, d, took)
			break
		}
	}
	h.quiesce()
}

// TestTreesBesideAFloodingServer: a server from before broadcast trees
// gets every record whole and sends no tree frame; its neighbours flood
// to it and build trees among themselves.
func TestTreesBesideAFloodingServer(t *testing.T) {
	h := &herd{t: t, net: newFaultNet(), nodes: map[string]*node{}, topo: map[string][]string{}}
	for _, s := range topology.Classic {
		ln := listen(t)
		h.nodes[s.Name] = &node{name: s.Name, addr: ln.Addr().String(), ln: ln}
		h.order = append(h.order, s.Name)
		h.topo[s.Name] = s.Neighbours
		h.net.names[ln.Addr().String()] = s.Name
	}
	for _, name := range h.order {
		timings := fastTimings
		timings.floodOnly = name == "Smith"
		h.start(name, h.nodes[name].ln, timings, testSecret)
	}
	t.Cleanup(func() {
		for _, name := range h.order {
			h.stop(name)
		}
	})
	h.ready()
	for i := range 60 {
		r := h.iamat(h.order[i%5], fmt.Sprintf("c%d", i), "+1+1", fmt.Sprint(1000+i))
		h.waitAll(r, h.order...)
	}
	smith := h.nodes["Smith"]
	for _, nb := range h.topo["Smith"] {
		if n := promtest.ToFloat64(smith.m.PeerAnnouncedReceived.WithLabelValues(nb)); n != 0 {
			t.Errorf("Smith got %v announcements from %s", n, nb)
		}
		if n := promtest.ToFloat64(h.nodes[nb].m.PeerAnnouncedReceived.WithLabelValues("Smith")); n != 0 {
			t.Errorf("%s got %v announcements from Smith", nb, n)
		}
	}
	if _, ann, _ := treeStats(h); ann == 0 {
		t.Error("no announcements at all: the others built no trees")
	}
	h.quiesce()
}

// derivedHerd returns the servers of a derived herd of n, named herd-i.
func derivedHerd(n int) []topology.Server {
	servers := make([]topology.Server, n)
	for i := range servers {
		servers[i].Name = fmt.Sprintf("herd-%d", i)
		for _, j := range topology.Neighbours(i, n) {
			servers[i].Neighbours = append(servers[i].Neighbours, fmt.Sprintf("herd-%d", j))
		}
	}
	return servers
}

// TestTreesAcrossSlowLinks: 25 servers whose every link delays each way
// by 100 ms, and 100 writes a second spread over them, the load of the
// Maelstrom broadcast challenge. Every write reaches every server within
// 10 s, costs the herd's links fewer than 20 messages (writes carrying
// records or announcements: an announcement batch is one), and is carried
// by the trees, not by their repair: fewer than one graft a write, where a
// herd whose trees carried nothing would need one a server, 24. The
// issue's timings (median delivery under 400 ms, slowest under 600 ms) are
// measured on a quiet machine by BenchmarkTreesAcrossSlowLinks. This test
// runs beside every other package and under the race detector, which
// delays deliveries past the time a server waits before it asks (seen in
// CI: median 597 ms, slowest 2.4 s, 0.044 grafts a write), so it holds
// delivery only to a median under 2 s: about three hops of 100 ms along
// the trees, where a record every server had to ask for would take a
// graft's wait and a round trip more at each.
func TestTreesAcrossSlowLinks(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 25 servers for about 20 s")
	}
	r := runSlowLinks(t, 10*time.Second)
	if r.median >= 2*time.Second {
		t.Errorf("delivery median %v, want under 2 s", r.median)
	}
	if r.messages >= 20 {
		t.Errorf("%.1f messages a write, want under 20", r.messages)
	}
	if r.grafts >= 1 {
		t.Errorf("%.2f grafts a write, want under 1: the trees did not carry the writes", r.grafts)
	}
}

// BenchmarkTreesAcrossSlowLinks reports the figures of
// TestTreesAcrossSlowLinks: the median and slowest delivery of a write to
// all 25 servers, and the messages a write costs.
//
//	go test -run '^$' -bench TreesAcrossSlowLinks ./pkg/peer
func BenchmarkTreesAcrossSlowLinks(b *testing.B) {
	var r slowLinks
	for b.Loop() {
		r = runSlowLinks(b, 10*time.Second)
	}
	b.ReportMetric(float64(r.median)/1e6, "median-ms")
	b.ReportMetric(float64(r.slowest)/1e6, "slowest-ms")
	b.ReportMetric(r.messages, "messages/write")
	b.ReportMetric(0, "ns/op")
}

// slowLinks is what runSlowLinks measured.
type slowLinks struct {
	median, slowest time.Duration // delivery of a write to every server
	messages        float64       // writes on the links carrying records or announcements, a write
	grafts          float64       // records asked for because the tree had not delivered them, a write
}

// runSlowLinks runs 25 servers whose links delay each way by 100 ms,
// writes 100 records a second spread over them for 3 s while the trees
// form and then for d, and measures the writes of d.
func runSlowLinks(tb testing.TB, d time.Duration) slowLinks {
	const (
		n     = 25
		delay = 100 * time.Millisecond
		rate  = 100 // writes a second, over all servers
	)
	fn := newFaultNet()
	fn.delay = delay
	h := newHerdOn(tb, fn, derivedHerd(n), Config{Heartbeat: 500 * time.Millisecond, Timeout: 3 * time.Second, BackoffMax: time.Second})
	h.ready()
	run := func(phase string, d time.Duration) (delivered []time.Duration, messages float64) {
		before, announcing := fn.broadcast.Load(), fn.announcing.Load()
		defer func() {
			tb.Logf("%s: %.1f writes of announcements alone a write", phase, float64(fn.announcing.Load()-announcing)/float64(len(delivered)))
		}()
		type write struct {
			r    store.Record
			sent time.Time
		}
		var pending []write
		// Writes go at rate; every 2 ms the pending ones are looked for.
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		start := time.Now()
		end := start.Add(d)
		for i := 0; time.Now().Before(end) || len(pending) > 0; {
			<-tick.C
			for ; time.Now().Before(end) && time.Since(start) >= time.Duration(i)*time.Second/rate; i++ {
				r := h.iamat(h.order[i%n], fmt.Sprintf("%s-%d", phase, i), "+1+1", fmt.Sprint(1000+i))
				pending = append(pending, write{r, time.Now()})
			}
			kept := pending[:0]
			for _, w := range pending {
				all := true
				for _, name := range h.order {
					if !h.has(name, w.r) {
						all = false
						break
					}
				}
				switch {
				case all:
					delivered = append(delivered, time.Since(w.sent))
				case time.Since(w.sent) > 10*time.Second:
					tb.Fatalf("%s: %q not everywhere after 10 s", phase, w.r.Text)
				default:
					kept = append(kept, w)
				}
			}
			pending = kept
		}
		return delivered, float64(fn.broadcast.Load()-before) / float64(len(delivered))
	}
	run("warm-up", 3*time.Second) // the trees form
	full0, ann0, grafts0 := treeStats(h)
	delivered, messages := run("measured", d)
	full, ann, grafts := treeStats(h)
	tb.Logf("a write: %.1f records whole, %.1f announcements; %v grafts", (full-full0)/float64(len(delivered)), (ann-ann0)/float64(len(delivered)), grafts-grafts0)
	slices.Sort(delivered)
	r := slowLinks{
		median: delivered[len(delivered)/2], slowest: delivered[len(delivered)-1],
		messages: messages, grafts: (grafts - grafts0) / float64(len(delivered)),
	}
	tb.Logf("%d writes: delivery to all %d servers median %v, slowest %v; %.1f messages a write",
		len(delivered), n, r.median.Round(time.Millisecond), r.slowest.Round(time.Millisecond), messages)
	return r
}

// TestTreesAfterTwoServersStop: 25 servers under 1,000 writes a second;
// two of them stop. No record a live server took is missing on any live
// server, and within two seconds the trees are mended: the slowest
// deliveries (p99) are back to what they were before.
func TestTreesAfterTwoServersStop(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 25 servers for about 10 s")
	}
	const n, rate = 25, 1000
	h := newHerd(t, derivedHerd(n), Config{Heartbeat: 100 * time.Millisecond, Timeout: time.Second, BackoffMax: 500 * time.Millisecond})
	h.ready()
	stopped := map[string]bool{}
	type write struct {
		r    store.Record
		at   string
		sent time.Time
		seen int // h.order[:seen] hold r, or stopped: looked at no more
	}
	var pending []write
	var delays []struct {
		sent time.Time
		d    time.Duration
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	var stopAt time.Time
	// Writes go on for 5 s after the stop, however late a loaded machine
	// gets to it (CI once stopped at 5.8 s rather than 3, and a fixed end
	// at 8 s left too few writes to measure after the mending).
	writing := func() bool { return stopAt.IsZero() || time.Since(stopAt) < 5*time.Second }
	for i := 0; writing() || len(pending) > 0; {
		<-tick.C
		// At most a few writes a tick: a machine that cannot keep up (the
		// race detector beside other packages) writes fewer, rather than
		// spending the whole run catching up before it stops anything.
		for due := 0; due < 5 && writing() && time.Since(start) >= time.Duration(i)*time.Second/rate; i, due = i+1, due+1 {
			at := h.order[i%n]
			if stopped[at] {
				continue
			}
			pending = append(pending, write{h.iamat(at, fmt.Sprintf("c%d", i), "+1+1", fmt.Sprint(1000+i)), at, time.Now(), 0})
		}
		if stopAt.IsZero() && time.Since(start) > 3*time.Second {
			stopAt = time.Now()
			for _, name := range []string{"herd-3", "herd-7"} { // neighbours of each other's neighbours
				stopped[name] = true
				h.stop(name)
			}
		}
		kept := pending[:0]
		for _, w := range pending {
			// Each server is looked at until it holds the record, not on
			// every tick: under -race, 25 lookups a pending write a
			// millisecond were more than the test's share of the machine.
			for w.seen < len(h.order) && (stopped[h.order[w.seen]] || h.has(h.order[w.seen], w.r)) {
				w.seen++
			}
			switch {
			case w.seen == len(h.order):
				delays = append(delays, struct {
					sent time.Time
					d    time.Duration
				}{w.sent, time.Since(w.sent)})
			case stopped[w.at]:
				// Taken by a server that stopped: it may not have gone on.
			case time.Since(w.sent) > 10*time.Second:
				t.Fatalf("%q, taken by %s, is not on every live server after 10 s", w.r.Text, w.at)
			default:
				kept = append(kept, w)
			}
		}
		pending = kept
	}
	p99 := func(from, to time.Time) time.Duration {
		var ds []time.Duration
		for _, d := range delays {
			if !d.sent.Before(from) && d.sent.Before(to) {
				ds = append(ds, d.d)
			}
		}
		if len(ds) < 100 {
			t.Fatalf("%d writes sent from %v to %v after the start: too few to measure", len(ds), from.Sub(start), to.Sub(start))
		}
		slices.Sort(ds)
		return ds[len(ds)*99/100]
	}
	before := p99(start.Add(time.Second), stopAt)
	mending := p99(stopAt, stopAt.Add(2*time.Second))
	after := p99(stopAt.Add(2*time.Second), stopAt.Add(5*time.Second))
	t.Logf("p99 of delivery to every live server: %v before the stop, %v in the 2 s after, %v from then on",
		before.Round(10*time.Microsecond), mending.Round(10*time.Microsecond), after.Round(10*time.Microsecond))
	// Unmended trees leave p99 at a graft's wait (107 ms against 7.4
	// before, without -race); the room here is for CI, whose other
	// packages start and end while this runs.
	if after > 3*before+5*time.Millisecond {
		t.Errorf("p99 %v from 2 s after the stop, want back near the %v before it", after, before)
	}
}
