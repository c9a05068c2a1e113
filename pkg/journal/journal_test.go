package journal

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/metrics"
	"github.com/herdkit/herd/pkg/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func rec(client, time string) store.Record {
	return store.Record{Text: client + " +34.068930-118.445127 " + time, Origin: "Hill", Recv: 1621464828223371889, Hops: 1}
}

// open opens dir and starts the journal on the recovered store; the
// journal is closed when the test ends, if the test has not closed it.
func open(t *testing.T, cfg Config, marks func() map[string]store.Watermark) (*Journal, State, *metrics.Metrics) {
	t.Helper()
	m := metrics.New()
	j, st, err := Open(cfg, testutil.Logger(t, slog.LevelInfo), m)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Start(st.Store, marks); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j, st, m
}

// contents lists a store's records in change order.
func contents(s *store.Store) []string {
	changes, _ := s.Changes(0, 1<<30, nil)
	var out []string
	for _, c := range changes {
		out = append(out, fmt.Sprintf("%s|%s|%d|%d", c.Record.Text(), c.Record.Origin, c.Record.Recv, c.Record.Hops))
	}
	return out
}

// waitWritten waits until the journal holds every change of s.
func waitWritten(t *testing.T, s *store.Store, j *Journal) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, func() error {
		if w, seq := j.Written(), s.Seq(); w < seq {
			return fmt.Errorf("the journal holds %d of %d changes", w, seq)
		}
		return nil
	})
}

func TestCleanRestart(t *testing.T) {
	dir := t.TempDir()
	marks := map[string]store.Watermark{"Jaquez": {Incarnation: 7, Seq: 42}}
	cfg := Config{Dir: dir, FsyncInterval: 10 * time.Millisecond}
	j, st, _ := open(t, cfg, func() map[string]store.Watermark { return marks })
	for i := range 100 {
		testutil.Apply(st.Store, rec(fmt.Sprint("c", i%30), fmt.Sprint(i)), store.Local)
	}
	want, wantSeq := contents(st.Store), st.Store.Seq()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j2, st2, m2 := open(t, cfg, nil)
	defer j2.Close()
	if got := contents(st2.Store); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("recovered %d records, want %d:\n%v\n%v", len(got), len(want), got, want)
	}
	if !st2.Clean || st2.Incarnation != st.Incarnation || st2.Store.Seq() != wantSeq || st2.Records < 30 {
		t.Errorf("clean %v, incarnation %x (was %x), seq %d (was %d), records %d",
			st2.Clean, st2.Incarnation, st.Incarnation, st2.Store.Seq(), wantSeq, st2.Records)
	}
	if st2.Watermarks["Jaquez"] != marks["Jaquez"] {
		t.Errorf("watermarks %v", st2.Watermarks)
	}
	if got := promtest.ToFloat64(m2.JournalRecovered); got != float64(st2.Records) {
		t.Errorf("recovered gauge %v", got)
	}
}

// crashCopy copies a running journal's directory as a crash would leave it.
func crashCopy(t *testing.T, dir string) string {
	t.Helper()
	dst := t.TempDir()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644)
	}
	return dst
}

func TestCrashRestartJumpsChangeNumbers(t *testing.T) {
	dir := t.TempDir()
	j, st, _ := open(t, Config{Dir: dir, FsyncInterval: 10 * time.Millisecond}, nil)
	defer j.Close()
	for i := range 50 {
		testutil.Apply(st.Store, rec(fmt.Sprint("c", i), "1"), store.Local)
	}
	waitWritten(t, st.Store, j)
	crashed := crashCopy(t, dir)
	j2, st2, _ := open(t, Config{Dir: crashed, FsyncInterval: 10 * time.Millisecond}, nil)
	defer j2.Close()
	if st2.Clean || st2.Records != 50 || st2.Incarnation != st.Incarnation {
		t.Errorf("clean %v records %d incarnation %x", st2.Clean, st2.Records, st2.Incarnation)
	}
	if got := st2.Store.Seq(); got != 50+seqJump {
		t.Errorf("next change number after %d, want %d", got, 50+seqJump)
	}
	// New changes are numbered after the jump, and survive another restart.
	seq, _ := testutil.Apply(st2.Store, rec("new", "2"), store.Local)
	if seq != 51+seqJump {
		t.Errorf("new change got %d", seq)
	}
	j2.Close()
	_, st3, _ := open(t, Config{Dir: crashed, FsyncInterval: 10 * time.Millisecond}, nil)
	if r, ok := st3.Store.Get("new"); !ok || r.Text() != rec("new", "2").Text || st3.Store.Seq() != seq {
		t.Errorf("after the second restart: %v %v seq %d", r, ok, st3.Store.Seq())
	}
}

// TestTornTail cuts the last segment at every byte offset of its last
// entries and checks that recovery keeps a prefix of the records, never
// fails, and truncates the file to whole entries.
func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	j, st, _ := open(t, Config{Dir: dir, FsyncInterval: 10 * time.Millisecond}, nil)
	for i := range 20 {
		testutil.Apply(st.Store, rec(fmt.Sprint("c", i), "1"), store.Local)
	}
	waitWritten(t, st.Store, j)
	crashed := crashCopy(t, dir)
	j.Close()
	segs, _ := segmentFile.list(crashed)
	seg := filepath.Join(crashed, segmentFile.name(segs[len(segs)-1]))
	full, _ := os.ReadFile(seg)
	for cut := max(0, len(full)-200); cut <= len(full); cut++ {
		d := t.TempDir()
		for _, i := range segs[:len(segs)-1] {
			b, _ := os.ReadFile(filepath.Join(crashed, segmentFile.name(i)))
			os.WriteFile(filepath.Join(d, segmentFile.name(i)), b, 0o644)
		}
		os.WriteFile(filepath.Join(d, segmentFile.name(segs[len(segs)-1])), full[:cut], 0o644)
		m := metrics.New()
		j2, st2, err := Open(Config{Dir: d, FsyncInterval: time.Hour}, slog.New(slog.DiscardHandler), m)
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		got := contents(st2.Store)
		for i, r := range got {
			if !strings.HasPrefix(r, fmt.Sprintf("c%d ", i)) {
				t.Fatalf("cut at %d: record %d is %q", cut, i, r)
			}
		}
		if cut < len(full) && len(got) == 20 || cut == len(full) && len(got) != 20 {
			t.Fatalf("cut at %d of %d: %d records", cut, len(full), len(got))
		}
		j2.Close()
		// The truncation left whole entries: a second start finds nothing to cut.
		m2 := metrics.New()
		j3, _, err := Open(Config{Dir: d, FsyncInterval: time.Hour}, slog.New(slog.DiscardHandler), m2)
		if err != nil || promtest.ToFloat64(m2.JournalTruncations) != 0 {
			t.Fatalf("cut at %d: reopening: %v, %v truncations", cut, err, promtest.ToFloat64(m2.JournalTruncations))
		}
		j3.Close()
	}
}

// TestCorruptEntryKeepsTheRest corrupts one record in the middle of the
// only segment: it is lost, reported, and the records after it are kept
// (what TestRecoveryFaults checks for every kind of damage).
func TestCorruptEntryKeepsTheRest(t *testing.T) {
	dir := t.TempDir()
	j, st, _ := open(t, Config{Dir: dir, FsyncInterval: 10 * time.Millisecond}, nil)
	for i := range 10 {
		testutil.Apply(st.Store, rec(fmt.Sprint("c", i), "1"), store.Local)
	}
	j.Close()
	segs, _ := segmentFile.list(dir)
	seg := filepath.Join(dir, segmentFile.name(segs[0]))
	b, _ := os.ReadFile(seg)
	i := bytes.Index(b, []byte("c5 "))
	b[i] ^= 0xff
	os.WriteFile(seg, b, 0o644)
	j2, st2, m2 := open(t, Config{Dir: dir, FsyncInterval: 10 * time.Millisecond}, nil)
	defer j2.Close()
	_, has5 := st2.Store.Get("c5")
	_, has9 := st2.Store.Get("c9")
	if st2.Records != 9 || has5 || !has9 || !st2.Damaged || promtest.ToFloat64(m2.JournalTruncations) != 0 {
		t.Errorf("recovered %d records (c5 %v, c9 %v), damaged %v, %v truncations; want 9, without c5, damaged, none",
			st2.Records, has5, has9, st2.Damaged, promtest.ToFloat64(m2.JournalTruncations))
	}
	if _, err := os.Stat(seg + damagedSuffix); err != nil {
		t.Errorf("the damaged segment was not renamed aside: %v", err)
	}
}

// TestSnapshotCompacts writes through many small segments, so that
// snapshots replace them, and checks the recovered store against the live
// one.
func TestSnapshotCompacts(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, FsyncInterval: 5 * time.Millisecond, SegmentSize: 4 << 10}
	var mu sync.Mutex
	marks := map[string]store.Watermark{"Smith": {Incarnation: 3, Seq: 1}}
	j, st, m := open(t, cfg, func() map[string]store.Watermark {
		mu.Lock()
		defer mu.Unlock()
		return marks
	})
	for i := range 3000 {
		testutil.Apply(st.Store, rec(fmt.Sprint("c", i%100), fmt.Sprint(i)), store.Local)
		if i%500 == 0 {
			mu.Lock()
			marks = map[string]store.Watermark{"Smith": {Incarnation: 3, Seq: uint64(i)}}
			mu.Unlock()
			waitWritten(t, st.Store, j)
		}
	}
	waitWritten(t, st.Store, j)
	want := contents(st.Store)
	wantMarks := marks
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if n := promtest.ToFloat64(m.JournalSnapshots); n == 0 {
		t.Fatal("no snapshot was written")
	}
	segs, _ := segmentFile.list(dir)
	snaps, _ := snapshotFile.list(dir)
	if len(snaps) != 1 || len(segs) > 20 {
		t.Errorf("%d snapshots and %d segments left", len(snaps), len(segs))
	}
	j2, st2, _ := open(t, cfg, nil)
	defer j2.Close()
	if got := contents(st2.Store); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("recovered %d records, want %d", len(got), len(want))
	}
	if st2.Watermarks["Smith"] != wantMarks["Smith"] {
		t.Errorf("watermark %v, want %v", st2.Watermarks["Smith"], wantMarks["Smith"])
	}
}

// FuzzReadEntries feeds arbitrary bytes as a segment: reading must never
// panic, and must stop at a whole entry.
func FuzzReadEntries(f *testing.F) {
	var valid []byte
	valid = appendIncarnation(valid, 7)
	valid = appendRecord(valid, 1, store.Pack(rec("kiwi", "1")))
	valid = appendWatermark(valid, "Hill", store.Watermark{Incarnation: 3, Seq: 9})
	valid = appendEnd(valid, 1)
	f.Add(valid)
	f.Add(valid[:len(valid)-3])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		good, _ := readEntries(bytes.NewReader(b), func(entry) error { return nil })
		if good < 0 || good > int64(len(b)) {
			t.Fatalf("good offset %d of %d", good, len(b))
		}
		// What was read as good reads back the same, without error.
		again, err := readEntries(bytes.NewReader(b[:good]), func(entry) error { return nil })
		if err != nil || again != good {
			t.Fatalf("prefix %d reads as %d, %v", good, again, err)
		}
	})
}

// TestRecoveryAppliesTheLimit: the journal holds records that the store
// evicted since; read back under the same limit, the store holds what it
// held, and under a smaller limit the highest records of those.
func TestRecoveryAppliesTheLimit(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, FsyncInterval: 10 * time.Millisecond, MaxRecords: 50}
	j, st, _ := open(t, cfg, nil)
	if st.Store.Limit() != 50 {
		t.Fatalf("recovered store's limit %d, want 50", st.Store.Limit())
	}
	for i := range 400 { // 200 clients, times rising: the first 150 are evicted
		testutil.Apply(st.Store, rec(fmt.Sprint("c", i%200), fmt.Sprint(i)), store.Local)
	}
	waitWritten(t, st.Store, j)
	want := contents(st.Store)
	if len(want) != 50 || st.Store.Evictions() == 0 {
		t.Fatalf("store holds %d records after %d evictions", len(want), st.Store.Evictions())
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j2, st2, _ := open(t, cfg, nil)
	if got := contents(st2.Store); fmt.Sprint(got) != fmt.Sprint(want) || st2.Store.Limit() != 50 {
		t.Errorf("recovered, limit %d:\n%v\nwant\n%v", st2.Store.Limit(), got, want)
	}
	if err := j2.Close(); err != nil {
		t.Fatal(err)
	}
	cfg.MaxRecords = 10
	j3, st3, _ := open(t, cfg, nil)
	defer j3.Close()
	if got := contents(st3.Store); fmt.Sprint(got) != fmt.Sprint(want[40:]) {
		t.Errorf("recovered under a limit of 10:\n%v\nwant\n%v", got, want[40:])
	}
}

// TestSegmentsWrittenRaw: the journal writes its segment through rawio
// (docs/benchmarks.md, "Raw system calls"), the first and the next after
// a rotation.
func TestSegmentsWrittenRaw(t *testing.T) {
	j, _, _ := open(t, Config{Dir: t.TempDir(), FsyncInterval: 10 * time.Millisecond}, nil)
	j.wlock <- struct{}{} // rotate's caller holds the writer's lock
	defer j.unlockWriter()
	if j.raw == nil {
		t.Fatalf("segment %d is not written through rawio", j.seg)
	}
	first := j.raw
	if err := j.rotate(); err != nil {
		t.Fatal(err)
	}
	if j.raw == first || j.raw == nil {
		t.Fatalf("segment %d, after a rotation, is not written through a rawio.File of its own", j.seg)
	}
}
