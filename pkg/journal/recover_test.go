package journal

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/metrics"
	"github.com/herdkit/herd/pkg/store"
)

// fixture writes records of distinct clients through small segments until
// a snapshot has replaced the first segments and at least three segments
// follow it, then closes the journal. It returns the directory, the
// records written and the incarnation.
func fixture(t *testing.T) (string, []string, uint64) {
	t.Helper()
	// Snapshots run beside the writer: one may still end, and delete
	// segments, after the layout was seen; try again then.
	for range 20 {
		dir, want, inc := fixtureTry(t)
		snaps, _ := snapshotFile.list(dir)
		segs, _ := segmentFile.list(dir)
		if len(snaps) == 1 && segs[0] == snaps[0] && len(segs) >= 4 && segs[0] > 1 {
			return dir, want, inc
		}
	}
	t.Fatal("no snapshot followed by segments")
	return "", nil, 0
}

func fixtureTry(t *testing.T) (string, []string, uint64) {
	t.Helper()
	dir := t.TempDir()
	cfg := Config{Dir: dir, FsyncInterval: 5 * time.Millisecond, SegmentSize: 4 << 10}
	marks := map[string]store.Watermark{"Smith": {Incarnation: 3, Seq: 9}}
	j, st, _ := open(t, cfg, func() map[string]store.Watermark { return marks })
	for i := 0; ; i++ {
		testutil.Apply(st.Store, rec(fmt.Sprint("c", i), "1"), store.Local)
		if i%50 != 49 {
			continue
		}
		waitWritten(t, st.Store, j)
		snaps, _ := snapshotFile.list(dir)
		segs, _ := segmentFile.list(dir)
		if len(snaps) == 1 && segs[0] == snaps[0] && len(segs) >= 4 && segs[0] > 1 {
			break
		}
		if i > 20000 {
			t.Fatalf("no snapshot followed by segments: %v %v", snaps, segs)
		}
	}
	for i := range 5 { // records in the last segment
		testutil.Apply(st.Store, rec(fmt.Sprint("last", i), "1"), store.Local)
	}
	want := contents(st.Store)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, want, st.Incarnation
}

// listing names the files of dir with their sizes.
func listing(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		fi, _ := e.Info()
		out = append(out, fmt.Sprintf("%s:%d:%v", e.Name(), fi.Size(), e.IsDir()))
	}
	return strings.Join(out, " ")
}

// flipBit flips one bit at a fraction of path's length, or, with at < 0,
// in the text of its first record.
func flipBit(t *testing.T, path string, at float64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := int(float64(len(b)) * at)
	if at < 0 {
		i = bytes.Index(b, []byte(" +34.0")) + 2
	}
	b[i] ^= 0x10
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRecoveryFaults damages a data directory in each way a disk or an
// operator can, and checks what Open makes of it: a torn tail or a
// redundant file is no loss; anything else is a loss, reported, healed
// under a new incarnation with no watermarks, keeping every valid record
// and inventing none, with the damaged files renamed aside.
func TestRecoveryFaults(t *testing.T) {
	snap := func(snaps, segs []uint64) string { return snapshotFile.name(snaps[0]) }
	mid := func(snaps, segs []uint64) string { return segmentFile.name(segs[1]) }
	last := func(snaps, segs []uint64) string { return segmentFile.name(segs[len(segs)-1]) }
	cases := []struct {
		name    string
		file    func(snaps, segs []uint64) string
		fault   func(t *testing.T, path string)
		damaged bool
		kept    func(all, inSegments int) (lo, hi int) // records kept
		aside   bool                                   // the file is renamed *.damaged
	}{
		{"snapshot with one flipped bit", snap, func(t *testing.T, p string) { flipBit(t, p, 0.5) }, true,
			func(all, _ int) (int, int) { return all - 1, all - 1 }, true},
		{"snapshot with one flipped bit and no segment", snap, func(t *testing.T, p string) {
			flipBit(t, p, 0.5)
			segs, _ := segmentFile.list(filepath.Dir(p))
			for _, i := range segs {
				os.Remove(filepath.Join(filepath.Dir(p), segmentFile.name(i)))
			}
		}, true, func(all, seg int) (int, int) { return all - seg - 1, all - seg - 1 }, true},
		{"empty snapshot", snap, func(t *testing.T, p string) { os.Truncate(p, 0) }, true,
			func(_, seg int) (int, int) { return seg, seg }, true},
		{"deleted snapshot", snap, func(t *testing.T, p string) { os.Remove(p) }, true,
			func(_, seg int) (int, int) { return seg, seg }, false},
		{"segment with one flipped bit", mid, func(t *testing.T, p string) { flipBit(t, p, -1) }, true,
			func(all, _ int) (int, int) { return all - 1, all - 1 }, true},
		{"empty segment", mid, func(t *testing.T, p string) { os.Truncate(p, 0) }, true,
			func(all, _ int) (int, int) { return 1, all - 1 }, true},
		{"deleted segment (a gap)", mid, func(t *testing.T, p string) { os.Remove(p) }, true,
			func(all, _ int) (int, int) { return 1, all - 1 }, false},
		{"last segment corrupt before valid entries", last, func(t *testing.T, p string) { flipBit(t, p, -1) }, true,
			func(all, _ int) (int, int) { return all - 1, all - 1 }, true},
		{"torn tail", last, func(t *testing.T, p string) {
			fi, _ := os.Stat(p)
			os.Truncate(p, fi.Size()-3)
		}, false, func(all, _ int) (int, int) { return all - 1, all }, false},
		{"leftover of an interrupted snapshot", func(_, _ []uint64) string { return "snap.tmp" },
			func(t *testing.T, p string) { os.WriteFile(p, []byte("half a snapshot"), 0o644) }, false,
			func(all, _ int) (int, int) { return all, all }, false},
		{"bad newer snapshot that the segments cover", func(snaps, _ []uint64) string { return snapshotFile.name(snaps[0] + 1) },
			func(t *testing.T, p string) { os.WriteFile(p, []byte("garbage garbage garbage"), 0o644) }, false,
			func(all, _ int) (int, int) { return all, all }, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, want, inc := fixture(t)
			snaps, _ := snapshotFile.list(dir)
			segs, _ := segmentFile.list(dir)
			inSegments := 0
			for _, i := range segs {
				r := &recovery{dir: dir, log: testutil.Logger(t, slog.LevelInfo)}
				fi, _, _ := r.read(segmentFile.name(i), stopAtBad, func(entry) error { return nil })
				inSegments += fi.Records
			}
			name := c.file(snaps, segs)
			c.fault(t, filepath.Join(dir, name))

			m := metrics.New()
			j, st, err := Open(Config{Dir: dir, FsyncInterval: time.Hour}, testutil.Logger(t, slog.LevelInfo), m)
			if err != nil {
				t.Fatal(err)
			}
			got := contents(st.Store)
			for _, r := range got {
				if !slices.Contains(want, r) {
					t.Errorf("recovered a record never written: %s", r)
				}
			}
			if lo, hi := c.kept(len(want), inSegments); len(got) < lo || len(got) > hi || st.Records != len(got) {
				t.Errorf("kept %d records (State.Records %d) of %d, want %d to %d", len(got), st.Records, len(want), lo, hi)
			}
			if st.Damaged != c.damaged {
				t.Fatalf("damaged %v (%s), want %v", st.Damaged, st.Loss, c.damaged)
			}
			loss, damagedGauge := promtest.ToFloat64(m.JournalDataLoss), promtest.ToFloat64(m.JournalDamaged)
			if !c.damaged {
				if st.Incarnation != inc || len(st.Watermarks) == 0 || loss != 0 || damagedGauge != 0 {
					t.Errorf("incarnation %x (was %x), watermarks %v, loss %v, damaged %v", st.Incarnation, inc, st.Watermarks, loss, damagedGauge)
				}
			} else {
				if st.Incarnation == inc || len(st.Watermarks) != 0 || loss != 1 || damagedGauge != 1 {
					t.Errorf("after a loss: incarnation %x (was %x), watermarks %v, loss %v, damaged %v",
						st.Incarnation, inc, st.Watermarks, loss, damagedGauge)
				}
				if !strings.Contains(st.Loss, strings.TrimSuffix(name, ".tmp")) {
					t.Errorf("loss %q does not name %s", st.Loss, name)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "snap.tmp")); err == nil {
				t.Error("snap.tmp left behind")
			}
			if err := j.Start(st.Store, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dir, name+damagedSuffix)); (err == nil) != c.aside {
				t.Errorf("%s renamed aside: %v, want %v (%s)", name, err == nil, c.aside, listing(t, dir))
			}
			j.Close()

			// The next start finds a whole directory, still healing after
			// a loss; once healed, a normal one.
			for _, healing := range []bool{c.damaged, false} {
				m := metrics.New()
				j, again, err := Open(Config{Dir: dir, FsyncInterval: time.Hour}, testutil.Logger(t, slog.LevelInfo), m)
				if err != nil {
					t.Fatal(err)
				}
				if again.Damaged != healing || promtest.ToFloat64(m.JournalDataLoss) != 0 ||
					again.Incarnation != st.Incarnation || fmt.Sprint(contents(again.Store)) != fmt.Sprint(got) {
					t.Errorf("reopened: damaged %v (%s), want %v; loss %v; incarnation %x, want %x; %d records, want %d",
						again.Damaged, again.Loss, healing, promtest.ToFloat64(m.JournalDataLoss),
						again.Incarnation, st.Incarnation, again.Records, len(got))
				}
				if err := j.Start(again.Store, nil); err != nil {
					t.Fatal(err)
				}
				if healing {
					if err := j.Healed(); err != nil {
						t.Fatal(err)
					}
				}
				j.Close()
			}
		})
	}
}

// TestReadErrorIsNotCorruption puts a directory where a snapshot or a
// segment should be: reading it fails (EISDIR), as a permission or I/O
// error would (chmod 000 does not stop root, who runs these tests). Open
// must fail, name the file and the error, and change nothing.
func TestReadErrorIsNotCorruption(t *testing.T) {
	cases := []struct {
		name string
		file func(snaps, segs []uint64) string
	}{
		{"snapshot", func(snaps, _ []uint64) string { return snapshotFile.name(snaps[0]) }},
		{"middle segment", func(_, segs []uint64) string { return segmentFile.name(segs[1]) }},
		{"last segment", func(_, segs []uint64) string { return segmentFile.name(segs[len(segs)-1]) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, _, _ := fixture(t)
			snaps, _ := snapshotFile.list(dir)
			segs, _ := segmentFile.list(dir)
			name := c.file(snaps, segs)
			path := filepath.Join(dir, name)
			os.Rename(path, path+".real")
			if err := os.Mkdir(path, 0o755); err != nil {
				t.Fatal(err)
			}
			before := listing(t, dir)
			m := metrics.New()
			_, _, err := Open(Config{Dir: dir, FsyncInterval: time.Hour}, testutil.Logger(t, slog.LevelInfo), m)
			if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "is a directory") {
				t.Fatalf("Open: %v, want an error naming %s and EISDIR", err, name)
			}
			if after := listing(t, dir); after != before {
				t.Errorf("the directory changed:\n%s\n%s", before, after)
			}
			// Once the file is back, nothing was lost.
			os.Remove(path)
			os.Rename(path+".real", path)
			_, st, err := Open(Config{Dir: dir, FsyncInterval: time.Hour}, testutil.Logger(t, slog.LevelInfo), m)
			if err != nil || st.Damaged {
				t.Errorf("after the fix: %v, damaged %v (%s)", err, st.Damaged, st.Loss)
			}
		})
	}
}

// TestOneOwner opens a directory twice: the second Open fails at once,
// naming the directory, and changes nothing; after Close it succeeds.
func TestOneOwner(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, FsyncInterval: time.Hour, Name: "Hill"}
	j, st, _ := open(t, cfg, nil)
	testutil.Apply(st.Store, rec("kiwi", "1"), store.Local)
	waitWritten(t, st.Store, j)
	before := listing(t, dir)
	if _, _, err := Open(cfg, testutil.Logger(t, slog.LevelInfo), metrics.New()); err == nil ||
		!strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second Open: %v", err)
	}
	if after := listing(t, dir); after != before {
		t.Errorf("the directory changed:\n%s\n%s", before, after)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j2, st2, _ := open(t, cfg, nil)
	defer j2.Close()
	if _, ok := st2.Store.Get("kiwi"); !ok {
		t.Error("the record did not survive")
	}
}

// TestWrongName opens Hill's directory as Jaquez.
func TestWrongName(t *testing.T) {
	dir := t.TempDir()
	j, _, _ := open(t, Config{Dir: dir, FsyncInterval: time.Hour, Name: "Hill"}, nil)
	j.Close()
	if b, _ := os.ReadFile(filepath.Join(dir, nameFile)); string(b) != "Hill\n" {
		t.Errorf("NAME holds %q", b)
	}
	before := listing(t, dir)
	_, _, err := Open(Config{Dir: dir, FsyncInterval: time.Hour, Name: "Jaquez"}, testutil.Logger(t, slog.LevelInfo), metrics.New())
	if err == nil || !strings.Contains(err.Error(), `"Hill"`) || !strings.Contains(err.Error(), `"Jaquez"`) {
		t.Fatalf("Open as Jaquez: %v", err)
	}
	if after := listing(t, dir); after != before {
		t.Errorf("the directory changed:\n%s\n%s", before, after)
	}
}

// TestOpenWritesNothing opens a new directory and closes it without
// Start: only LOCK and NAME are there, so a start that fails later
// leaves no trace.
func TestOpenWritesNothing(t *testing.T) {
	dir := t.TempDir()
	j, _, err := Open(Config{Dir: dir, FsyncInterval: time.Hour, Name: "Hill"}, testutil.Logger(t, slog.LevelInfo), metrics.New())
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if got := listing(t, dir); got != "LOCK:0:false NAME:5:false" {
		t.Errorf("after Open and Close: %s", got)
	}
}

// TestStartReturnsItsError takes the first segment's name with a
// directory, so that Start cannot create it: Start says so at once,
// writes nothing, and Close releases the directory; once the name is
// free, the journal starts, once.
func TestStartReturnsItsError(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, FsyncInterval: time.Hour, Name: "Hill"}
	j, st, err := Open(cfg, testutil.Logger(t, slog.LevelInfo), metrics.New())
	if err != nil {
		t.Fatal(err)
	}
	first := filepath.Join(dir, segmentFile.name(1))
	if err := os.Mkdir(first, 0o755); err != nil {
		t.Fatal(err)
	}
	before := listing(t, dir)
	if err := j.Start(st.Store, nil); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("Start: %v, want EISDIR", err)
	}
	if after := listing(t, dir); after != before {
		t.Errorf("the directory changed:\n%s\n%s", before, after)
	}
	if err := j.Close(); err != nil {
		t.Fatalf("Close after a failed Start: %v", err)
	}
	os.Remove(first)
	j2, st2, err := Open(cfg, testutil.Logger(t, slog.LevelInfo), metrics.New())
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	if err := j2.Start(st2.Store, nil); err != nil {
		t.Fatal(err)
	}
	if err := j2.Start(st2.Store, nil); err == nil {
		t.Error("a second Start succeeded")
	}
	if err := j2.Close(); err != nil {
		t.Fatal(err)
	}
}
