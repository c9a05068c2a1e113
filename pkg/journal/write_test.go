package journal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/metrics"
	"github.com/herdkit/herd/pkg/store"
)

// TestWaitMeansWritten checks the promise behind every acknowledgement:
// once Wait returns for a change, a crash at that instant keeps it. It
// copies the directory, as a SIGKILL would leave it, right after each Wait.
func TestWaitMeansWritten(t *testing.T) {
	for _, always := range []bool{false, true} {
		t.Run(fmt.Sprintf("always=%v", always), func(t *testing.T) {
			dir := t.TempDir()
			// The tick never comes: only Wait and the changes make things durable.
			j, st, m := open(t, Config{Dir: dir, FsyncInterval: time.Hour, Always: always}, nil)
			defer j.Close()
			for i := range 20 {
				seq, _ := testutil.Apply(st.Store, rec(fmt.Sprint("c", i), "1"), store.Local)
				if err := j.Wait(seq, 5*time.Second); err != nil {
					t.Fatal(err)
				}
				_, crashed, _ := open(t, Config{Dir: crashCopy(t, dir), FsyncInterval: time.Hour}, nil)
				if _, ok := crashed.Store.Get(fmt.Sprint("c", i)); !ok || crashed.Records != i+1 {
					t.Fatalf("change %d acknowledged but not in the journal: %d records", seq, crashed.Records)
				}
			}
			fsyncs := fsyncCount(m)
			if always && fsyncs < 20 {
				t.Errorf("always: %d fsyncs for 20 waits", fsyncs)
			}
			if !always && fsyncs > 2 {
				t.Errorf("interval: %d fsyncs with the tick never due", fsyncs)
			}
		})
	}
}

// fsyncCount returns the number of fsyncs observed.
func fsyncCount(m *metrics.Metrics) int {
	var d dto.Metric
	m.JournalFsync.(prometheus.Metric).Write(&d)
	return int(d.GetHistogram().GetSampleCount())
}

// TestWaitGroupCommit has many goroutines store and wait at once: each
// gets its change written, and the journal needs far fewer writes than
// changes.
func TestWaitGroupCommit(t *testing.T) {
	dir := t.TempDir()
	j, st, m := open(t, Config{Dir: dir, FsyncInterval: time.Hour, Always: true}, nil)
	const writers, each = 16, 200
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			for i := range each {
				seq, _ := testutil.Apply(st.Store, rec(fmt.Sprintf("w%d-%d", w, i), "1"), store.Local)
				if err := j.Wait(seq, 10*time.Second); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	_, st2, _ := open(t, Config{Dir: dir, FsyncInterval: time.Hour}, nil)
	if st2.Records != writers*each {
		t.Errorf("recovered %d records, want %d", st2.Records, writers*each)
	}
	if n := fsyncCount(m); n >= writers*each {
		t.Errorf("%d fsyncs for %d changes: no group commit", n, writers*each)
	} else {
		t.Logf("%d changes in %d fsyncs", writers*each, n)
	}
}

// TestSnapshotDoesNotStopAppends holds a snapshot between its write and
// its read-back, and meanwhile stores and waits for changes: the journal
// keeps writing them. A snapshot whose file does not read back is thrown
// away and the segments it would replace are kept.
func TestSnapshotDoesNotStopAppends(t *testing.T) {
	for _, corrupt := range []bool{false, true} {
		t.Run(fmt.Sprintf("corrupt=%v", corrupt), func(t *testing.T) {
			dir := t.TempDir()
			held, release := make(chan string), make(chan struct{})
			snapshotWritten = func(tmp string) {
				if corrupt {
					b, _ := os.ReadFile(tmp)
					b[len(b)/2] ^= 1
					os.WriteFile(tmp, b, 0o644)
				}
				held <- tmp
				<-release
			}
			defer func() { snapshotWritten = nil }()
			cfg := Config{Dir: dir, FsyncInterval: time.Hour, SegmentSize: 4 << 10}
			j, st, m := open(t, cfg, nil)
			var tmp string
			for i := 0; tmp == ""; i++ {
				seq, _ := testutil.Apply(st.Store, rec(fmt.Sprint("c", i%100), fmt.Sprint(i)), store.Local)
				if err := j.Wait(seq, 5*time.Second); err != nil {
					t.Fatal(err)
				}
				select {
				case tmp = <-held:
				default:
				}
			}
			// The snapshot is stopped before its read-back; appends go on.
			for i := range 500 {
				seq, _ := testutil.Apply(st.Store, rec(fmt.Sprint("during", i), "1"), store.Local)
				if err := j.Wait(seq, 5*time.Second); err != nil {
					t.Fatalf("append %d while a snapshot is written: %v", i, err)
				}
			}
			before, _ := segmentFile.list(dir)
			close(release)
			want := contents(st.Store)
			testutil.Eventually(t, 5*time.Second, func() error {
				if promtest.ToFloat64(m.JournalSnapshots)+promtest.ToFloat64(m.JournalErrors) == 0 {
					return errors.New("the snapshot has not ended")
				}
				return nil
			})
			after, _ := segmentFile.list(dir)
			if corrupt {
				if promtest.ToFloat64(m.JournalSnapshots) != 0 || after[0] != before[0] {
					t.Errorf("a snapshot that did not read back was kept, or segments deleted: %v -> %v", before, after)
				}
				if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the bad snapshot's temporary file is left: %v", err)
				}
			} else if after[0] == before[0] {
				t.Errorf("the snapshot replaced no segment: %v -> %v", before, after)
			}
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			_, st2, _ := open(t, cfg, nil)
			if got := contents(st2.Store); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("recovered %d records, want %d", len(got), len(want))
			}
		})
	}
}

// TestFullDisk fills a small tmpfs: the journal stops making changes
// durable and says why, Wait gives up, and once space is freed it writes
// again by itself, losing nothing that Wait acknowledged. It needs root to
// mount the tmpfs, as in CI.
func TestFullDisk(t *testing.T) {
	dir := testutil.Tmpfs(t, "256k")
	filler := filepath.Join(dir, "filler")
	cfg := Config{Dir: filepath.Join(dir, "data"), FsyncInterval: 10 * time.Millisecond}
	j, st, _ := open(t, cfg, nil)
	// Leave about 64 KB for the journal.
	if err := os.WriteFile(filler, make([]byte, 180<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	var acked []string
	var failed atomic.Bool
	for i := 0; !failed.Load(); i++ {
		id := fmt.Sprintf("client-%06d", i)
		seq, _ := testutil.Apply(st.Store, rec(id, "1"), store.Local)
		if err := j.Wait(seq, 200*time.Millisecond); err != nil {
			if !errors.Is(err, ErrNotDurable) || j.Fault() == nil || !strings.Contains(j.Fault().Error(), "no space") {
				t.Fatalf("Wait: %v, fault %v", err, j.Fault())
			}
			failed.Store(true)
			break
		}
		acked = append(acked, id)
		if i > 100_000 {
			t.Fatal("the disk never filled")
		}
	}
	t.Logf("%d records acknowledged before the disk filled; fault: %v", len(acked), j.Fault())
	// Still full: nothing more is acknowledged.
	seq, _ := testutil.Apply(st.Store, rec("while-full", "1"), store.Local)
	if err := j.Wait(seq, 100*time.Millisecond); err == nil {
		t.Fatal("acknowledged while the disk is full")
	}
	os.Remove(filler)
	if err := j.Wait(seq, 5*time.Second); err != nil {
		t.Fatalf("no recovery once space was freed: %v", err)
	}
	if j.Fault() != nil {
		t.Errorf("fault after recovery: %v", j.Fault())
	}
	acked = append(acked, "while-full")
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	_, st2, _ := open(t, cfg, nil)
	for _, id := range acked {
		if _, ok := st2.Store.Get(id); !ok {
			t.Fatalf("acknowledged %s lost", id)
		}
	}
}
