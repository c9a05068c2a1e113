package peer

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/store"
)

// TestOutboxFill: each write a link's writer composes tells the neighbour
// every change up to the last one read, so that it may end the wait of a
// mark; only skipped changes with nothing to write leave a mark waiting.
func TestOutboxFill(t *testing.T) {
	const nb, other = store.Source(1), store.Source(2) // the link's neighbour, and another
	change := func(seq uint64, from store.Source) store.Change {
		return store.Change{Seq: seq, From: from, Record: store.Pack(store.Record{Text: "c +1+1 1", Origin: "X", Recv: 5})}
	}
	rec := func(kind byte, seq uint64) string { return string(appendRecord(nil, kind, seq, change(seq, 0).Record)) }
	pong := string(appendPong(nil, 1, 2, 3))
	tests := []struct {
		name      string
		out       outbox // before
		pong      bool   // a pong is first in the write
		batch     []store.Change
		next      uint64
		want      string // the write; "" for none
		markWaits bool   // after
	}{
		{name: "reconciliation sends the neighbour's own records too, then D",
			out:   outbox{end: 2, reconciling: true},
			batch: []store.Change{change(1, other), change(2, nb)}, next: 2,
			want: rec(frameReconcile, 1) + rec(frameReconcile, 2) + "D 2\n"},
		{name: "nothing to reconcile: D alone",
			out: outbox{reconciling: true}, next: 0, want: "D 0\n"},
		{name: "a flood skips the neighbour's records, and a mark follows",
			out:   outbox{end: 0},
			batch: []store.Change{change(1, other), change(2, nb)}, next: 2,
			want: rec(frameFlood, 1) + "M 2\n"},
		{name: "only skipped changes: the mark waits",
			out:   outbox{end: 0},
			batch: []store.Change{change(1, nb)}, next: 1,
			markWaits: true},
		{name: "records after a waiting mark tell it",
			out:   outbox{cursor: 1, markWaits: true},
			batch: []store.Change{change(2, other)}, next: 2,
			want: rec(frameFlood, 2)},
		{name: "a pong alone while a mark waits carries the mark",
			out:  outbox{cursor: 1, markWaits: true},
			pong: true, next: 1,
			want: pong + "M 1\n"},
		{name: "a pong with skipped changes carries their mark",
			out:  outbox{cursor: 1},
			pong: true, batch: []store.Change{change(2, nb)}, next: 2,
			want: pong + "M 2\n"},
		{name: "a pong alone, no mark waiting",
			out:  outbox{cursor: 1},
			pong: true, next: 1,
			want: pong},
		{name: "changes replaced since: the mark waits",
			out:  outbox{cursor: 1},
			next: 4, markWaits: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := tt.out
			out.from = nb
			var buf []byte
			if tt.pong {
				buf = appendPong(buf, 1, 2, 3)
			}
			buf, _ = out.fill(buf, tt.batch, tt.next, time.Unix(100, 0))
			if string(buf) != tt.want {
				t.Errorf("write\n%s\nwant\n%s", strings.TrimSpace(string(buf)), strings.TrimSpace(tt.want))
			}
			if out.markWaits != tt.markWaits || out.cursor != tt.next {
				t.Errorf("mark waits %v at %d, want %v at %d", out.markWaits, out.cursor, tt.markWaits, tt.next)
			}
		})
	}
}

// testWriter returns the writer of a link from A to B (testManager) on a
// fakeConn, subscribed and started but not synced: it streams A's changes
// from the first. B speaks timed pings if clocks. Its clock reads 3 ns
// past the epoch; its heartbeat is an hour.
func testWriter(t *testing.T, clocks bool) (*writer, *fakeConn) {
	mg := testManager(t, testLogger(t, "A"))
	mg.cfg.Now = func() time.Time { return time.Unix(0, 3) }
	mg.cfg.Heartbeat = time.Hour
	nonce := newNonce()
	if !clocks {
		nonce = nonce[:len(nonce)-len(clockTag)] + "00"
	}
	nc := &fakeConn{}
	l := newLink(mg.neighbours[0], nc, nil, hello{name: "B", inc: 2, nonce: nonce}, false)
	w := newWriter(l)
	t.Cleanup(w.close)
	w.out = outbox{from: l.n.id}
	w.start()
	return w, nc
}

// TestWriterSync: the writer sends its sync frame, then streams from the
// neighbour's watermark of this incarnation, or from the start.
func TestWriterSync(t *testing.T) {
	tests := []struct {
		name   string
		theirs frame // the neighbour's sync frame; kind 0 for none
		stop   bool  // the link closes
		cancel bool  // the manager stops
		cursor uint64
		reason string
	}{
		{name: "the neighbour holds this incarnation's changes up to 2", theirs: frame{kind: frameSync, seq: 2}, cursor: 2},
		{name: "another incarnation's: from the start", theirs: frame{kind: frameSync, inc: 99, seq: 2}},
		{name: "more than this incarnation made: from the start", theirs: frame{kind: frameSync, seq: 4}},
		{name: "the link closes first", stop: true, reason: downError},
		{name: "the manager stops first", cancel: true, reason: downShutdown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, nc := testWriter(t, true)
			mg := w.l.n.mgr
			for i := range 3 {
				testutil.Apply(mg.store, store.Record{Text: fmt.Sprintf("c%d +1+1 1", i), Origin: "A", Recv: 5}, store.Local)
			}
			if tt.theirs.kind != 0 {
				if tt.theirs.inc == 0 {
					tt.theirs.inc = mg.cfg.Incarnation
				}
				w.l.sync <- tt.theirs
			}
			if tt.stop {
				w.l.close(downError)
			}
			if tt.cancel {
				mg.cancel()
			}
			if got := w.sync(7); got != tt.reason {
				t.Fatalf("sync = %q, want %q", got, tt.reason)
			}
			if got, want := nc.take(), string(appendSyncHead(nil, 2, 7, 3)); got != want { // B speaks trees: the head too
				t.Errorf("wrote %q, want %q", got, want)
			}
			if tt.reason == "" && (w.out.cursor != tt.cursor || w.out.end != 3 || !w.out.reconciling) {
				t.Errorf("outbox %+v, want cursor %d, end 3, reconciling", w.out, tt.cursor)
			}
		})
	}
}

// TestWriterRound: a round writes a pong first, then the changes; a mark
// that waits for company arms its timer, and a write disarms it; a full
// batch asks for another round and sets the backlog.
func TestWriterRound(t *testing.T) {
	const nb = store.Source(1) // testManager's B
	pong := string(appendPong(nil, 1, 2, 3))
	tests := []struct {
		name    string
		rounds  [][]store.Source // the sources of the changes stored before each round
		pong    bool             // a pong waits before the last round
		fail    bool             // writes fail
		prefix  string           // the last round's write starts with it
		records int              // and holds so many records
		markDue bool             // a mark waits for company after
		more    bool             // the last round's answer
		backlog float64
		reason  string
	}{
		{name: "records from elsewhere are written", rounds: [][]store.Source{{store.Local, 2}}, records: 2},
		{name: "only the neighbour's changes: the mark waits", rounds: [][]store.Source{{nb}}, markDue: true},
		{name: "a write ends the mark's wait", rounds: [][]store.Source{{nb}, {store.Local}}, records: 1},
		{name: "a pong goes first", rounds: [][]store.Source{{store.Local}}, pong: true, prefix: pong, records: 1},
		{name: "a full batch: another round, and the backlog",
			rounds:  [][]store.Source{slices.Repeat([]store.Source{store.Local}, batchSize+10)},
			records: batchSize, more: true, backlog: 10},
		{name: "a write fails", rounds: [][]store.Source{{store.Local}}, fail: true, reason: downTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, nc := testWriter(t, true)
			nc.fail = tt.fail
			var more bool
			var reason string
			for r, sources := range tt.rounds {
				for i, from := range sources {
					rec := store.Record{Text: fmt.Sprintf("c%d-%d +1+1 1", r, i), Origin: "A", Recv: 5}
					testutil.Apply(w.st, rec, from)
				}
				if r == len(tt.rounds)-1 && tt.pong {
					w.l.pongs <- [2]int64{1, 2}
				}
				nc.take()
				more, reason = w.round()
			}
			got := nc.take()
			if reason != tt.reason || more != tt.more {
				t.Fatalf("round = %v, %q; want %v, %q", more, reason, tt.more, tt.reason)
			}
			if !strings.HasPrefix(got, tt.prefix) || strings.Count(got, "\nF ")+btoi(strings.HasPrefix(got, "F ")) != tt.records {
				t.Errorf("wrote\n%swant %d records after %q", got, tt.records, tt.prefix)
			}
			if (w.waitDue != nil) != tt.markDue {
				t.Errorf("a mark waits: %v, want %v", w.waitDue != nil, tt.markDue)
			}
			if got := promtest.ToFloat64(w.l.sent[kindFlood]); got != float64(tt.records) {
				t.Errorf("%v records counted sent, want %d", got, tt.records)
			}
			if got := promtest.ToFloat64(w.l.backlog); got != tt.backlog {
				t.Errorf("backlog %v, want %v", got, tt.backlog)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestWriterWake: each wake-up of an idle writer sends what it is for.
func TestWriterWake(t *testing.T) {
	tests := []struct {
		name   string
		clocks bool            // the neighbour speaks timed pings
		idle   bool            // nothing written for a heartbeat
		ready  func(w *writer) // makes one wake-up ready
		fail   bool            // writes fail
		want   string          // written
		reason string
	}{
		{name: "a change stored: the next round reads it", ready: func(w *writer) {
			testutil.Apply(w.st, store.Record{Text: "c +1+1 1", Origin: "A", Recv: 5}, store.Local)
		}},
		{name: "a mark due", want: "M 7\n", ready: func(w *writer) {
			w.out.cursor, w.out.markWaits = 7, true
			w.wait.Reset(time.Millisecond)
			w.waitDue = w.wait.C
		}},
		{name: "a timed ping to answer", want: string(appendPong(nil, 1, 2, 3)), ready: func(w *writer) { w.l.pongs <- [2]int64{1, 2} }},
		{name: "a heartbeat to a server with timed pings: one, busy or idle", clocks: true, want: string(appendPing(nil, 3)), ready: beatNow},
		{name: "a heartbeat to an older server, busy: nothing", ready: beatNow},
		{name: "a heartbeat to an older server, idle: a plain ping", idle: true, want: "P\n", ready: beatNow},
		{name: "a write fails", fail: true, reason: downTimeout, ready: func(w *writer) { w.l.pongs <- [2]int64{1, 2} }},
		{name: "the link closes", reason: downError, ready: func(w *writer) { w.l.close(downError) }},
		{name: "the manager stops", reason: downShutdown, ready: func(w *writer) { w.l.n.mgr.cancel() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, nc := testWriter(t, tt.clocks)
			nc.fail = tt.fail
			if tt.idle {
				w.lastWrite = time.Now().Add(-2 * time.Hour)
			}
			tt.ready(w)
			if got := w.wake(); got != tt.reason {
				t.Fatalf("wake = %q, want %q", got, tt.reason)
			}
			if got := nc.take(); got != tt.want {
				t.Errorf("wrote %q, want %q", got, tt.want)
			}
			if w.waitDue != nil || w.out.markWaits {
				t.Error("a mark still waits")
			}
		})
	}
}

// beatNow makes the writer's heartbeat tick at once.
func beatNow(w *writer) { w.heartbeat.Reset(time.Nanosecond) }

// TestWriterRoundAllocatesNothing: the writer is on the path of every
// record forwarded; once its batch and buffer have grown, a round of
// changes allocates nothing.
func TestWriterRoundAllocatesNothing(t *testing.T) {
	w, nc := testWriter(t, true)
	for i := range 100 {
		testutil.Apply(w.st, store.Record{Text: fmt.Sprintf("c%d +1+1 1", i), Origin: "A", Recv: 5}, store.Local)
	}
	nc.written = make([]byte, 0, 1<<20)
	round := func() {
		w.out.cursor = 0
		nc.written = nc.written[:0]
		if more, reason := w.round(); more || reason != "" {
			t.Fatalf("round = %v, %q", more, reason)
		}
	}
	round()
	if n := testing.AllocsPerRun(100, round); n != 0 {
		t.Errorf("%v allocations per round of 100 changes, want 0", n)
	}
}

// TestOutboxAnnounces: a lazy origin's changes are announced, and the
// announcements wait for a write to travel with, in the order of their
// change numbers; records of an eager origin go at once and carry them.
func TestOutboxAnnounces(t *testing.T) {
	const nb = store.Source(1)
	t0 := time.Unix(100, 0)
	ids := map[string]uint16{"Eager": 0, "Lazy": 1} // as a store numbers them
	change := func(seq uint64, origin string) store.Change {
		r := store.Pack(store.Record{Text: "c +1+1 1", Origin: origin, Recv: 5})
		r.OriginID = ids[origin]
		return store.Change{Seq: seq, From: 2, Record: r}
	}
	ann := func(seq uint64) string { return string(appendAnnounce(nil, seq, change(seq, "Lazy").Record)) }
	rec := func(seq uint64) string {
		return string(appendRecord(nil, frameFlood, seq, change(seq, "Eager").Record))
	}
	out := outbox{from: nb, delay: time.Second}
	out.lazy.set(ids["Lazy"], true)
	steps := []struct {
		at      time.Duration // after t0
		batch   []store.Change
		next    uint64
		want    string // written now
		waiting string
		until   time.Duration // after t0: when what waits goes
	}{
		{at: 0, batch: []store.Change{change(1, "Lazy")}, next: 1, waiting: ann(1), until: time.Second},
		{at: 5 * time.Millisecond, batch: []store.Change{change(2, "Lazy")}, next: 2, waiting: ann(1) + ann(2), until: time.Second},
		{at: 7 * time.Millisecond, batch: []store.Change{change(3, "Eager"), change(4, "Lazy")}, next: 5,
			want: ann(1) + ann(2) + rec(3) + ann(4) + "M 5\n"},
		{at: 8 * time.Millisecond, next: 5},
	}
	for i, s := range steps {
		buf, _ := out.fill(nil, s.batch, s.next, t0.Add(s.at))
		if string(buf) != s.want || string(out.waiting) != s.waiting {
			t.Fatalf("step %d: write %q, waiting %q; want %q, %q", i, buf, out.waiting, s.want, s.waiting)
		}
		if s.waiting != "" && !out.waitUntil().Equal(t0.Add(s.until)) {
			t.Fatalf("step %d: waits until %v, want %v", i, out.waitUntil().Sub(t0), s.until)
		}
	}
	// What waits in vain goes with a mark of every change read.
	out.fill(nil, []store.Change{change(6, "Lazy")}, 7, t0.Add(time.Second))
	if got, want := string(out.flushWaiting(nil, t0.Add(2*time.Second))), ann(6)+"M 7\n"; got != want {
		t.Errorf("flushWaiting %q, want %q", got, want)
	}
}

// TestOutboxLingers: on a long link, a record goes at once after linger
// without a write of records, and one that comes sooner waits until
// linger after that write, with those that come meanwhile.
func TestOutboxLingers(t *testing.T) {
	t0 := time.Unix(100, 0)
	change := func(seq uint64) store.Change {
		return store.Change{Seq: seq, From: 2, Record: store.Pack(store.Record{Text: "c +1+1 1", Origin: "O", Recv: 5})}
	}
	rec := func(seq uint64) string { return string(appendRecord(nil, frameFlood, seq, change(seq).Record)) }
	out := outbox{from: 1, linger: 40 * time.Millisecond}
	steps := []struct {
		at    time.Duration
		seq   uint64
		want  string
		until time.Duration // when what waits goes, if anything waits
	}{
		{at: 0, seq: 1, want: rec(1)},                                     // idle: at once
		{at: 10 * time.Millisecond, seq: 2, until: 40 * time.Millisecond}, // too soon: waits
		{at: 30 * time.Millisecond, seq: 3, until: 40 * time.Millisecond}, // and this one with it
		{at: 41 * time.Millisecond, seq: 4, want: rec(2) + rec(3) + rec(4)},
		{at: 100 * time.Millisecond, seq: 5, want: rec(5)},
	}
	for i, s := range steps {
		buf, _ := out.fill(nil, []store.Change{change(s.seq)}, s.seq, t0.Add(s.at))
		if string(buf) != s.want {
			t.Fatalf("step %d: write %q, want %q", i, buf, s.want)
		}
		if s.want == "" && !out.waitUntil().Equal(t0.Add(s.until)) {
			t.Fatalf("step %d: waits until %v, want %v", i, out.waitUntil().Sub(t0), s.until)
		}
	}
}

// TestOriginSet: origins go in and out of the set by number, across the
// words it grows to, and taking out one never put in grows nothing.
func TestOriginSet(t *testing.T) {
	var s originSet
	s.set(700, false)
	if len(s) != 0 {
		t.Fatalf("taking out an origin never put in grew the set to %d words", len(s))
	}
	in := []uint16{0, 63, 64, 127, 128, 65535}
	for _, o := range in {
		s.set(o, true)
	}
	for _, tt := range []struct {
		origin uint16
		want   bool
	}{
		{0, true}, {1, false}, {62, false}, {63, true}, {64, true}, {65, false},
		{127, true}, {128, true}, {129, false}, {65534, false}, {65535, true},
	} {
		if got := s.has(tt.origin); got != tt.want {
			t.Errorf("has(%d) = %v, want %v", tt.origin, got, tt.want)
		}
	}
	for _, o := range in {
		s.set(o, false)
		if s.has(o) {
			t.Errorf("%d still in the set once taken out", o)
		}
	}
	var empty originSet
	if empty.has(5) {
		t.Error("an empty set has 5")
	}
}
