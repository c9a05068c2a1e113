package journal

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/metrics"
	"github.com/herdkit/herd/pkg/store"
)

// benchJournal starts a journal on a new directory whose tick never
// comes, so that only Wait writes, as under client load.
func benchJournal(b *testing.B, always bool) (*Journal, *store.Store) {
	b.Helper()
	cfg := Config{Dir: b.TempDir(), FsyncInterval: time.Hour, Always: always}
	j, st, err := Open(cfg, slog.New(slog.DiscardHandler), metrics.New())
	if err != nil {
		b.Fatal(err)
	}
	if err := j.Start(st.Store, nil); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { j.Close() })
	return j, st.Store
}

// benchRecords returns n records of distinct clients, made before the
// timer starts.
func benchRecords(n int) []store.Record {
	recs := make([]store.Record, n)
	for i := range recs {
		recs[i] = rec(fmt.Sprintf("client-%08d", i), "1")
	}
	return recs
}

// BenchmarkWait is the journal's part of one client's acknowledgement:
// store a record, wait until it is written (one write per change, since
// nobody else waits).
func BenchmarkWait(b *testing.B) {
	j, st := benchJournal(b, false)
	recs := benchRecords(b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		seq, _ := testutil.Apply(st, recs[i], store.Local)
		if err := j.Wait(seq, 5*time.Second); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWaitParallel is BenchmarkWait from many connections at once:
// group commit, one write for the changes of every waiter; with Always,
// one fsync too.
func BenchmarkWaitParallel(b *testing.B) {
	for _, always := range []bool{false, true} {
		b.Run(fmt.Sprintf("always=%v", always), func(b *testing.B) {
			j, st := benchJournal(b, always)
			recs := benchRecords(b.N)
			var next atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					seq, _ := testutil.Apply(st, recs[next.Add(1)-1], store.Local)
					if err := j.Wait(seq, 10*time.Second); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkRecover reads back a data directory of 200,000 clients, as a
// start does: a snapshot of 160,000, and a segment after it of 40,000 new
// clients and 40,000 updates.
func BenchmarkRecover(b *testing.B) {
	const clients = 200_000
	dir := b.TempDir()
	st := store.New()
	for i := range 4 * clients / 5 {
		testutil.Apply(st, rec(fmt.Sprintf("client-%08d", i), fmt.Sprint(1621464827+i)), store.Local)
	}
	const inc = 0x7b4f06e1ab4
	if _, _, err := writeSnapshot(dir, 2, inc, st, st.Seq(), nil, nil); err != nil {
		b.Fatal(err)
	}
	seg := appendIncarnation(nil, inc)
	for i := range 2 * clients / 5 {
		c := i % (clients / 5) * 5 // an update of every fourth of the snapshot's clients, then a new client
		if i >= clients/5 {
			c = 4*clients/5 + i - clients/5
		}
		r := rec(fmt.Sprintf("client-%08d", c), fmt.Sprint(1621500000+i))
		seg = appendRecord(seg, st.Seq()+1+uint64(i), store.Pack(r))
	}
	if err := os.WriteFile(filepath.Join(dir, segmentFile.name(2)), seg, 0o644); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		r, err := recoverState(dir, 1_000_000, slog.New(slog.DiscardHandler), metrics.New())
		if err != nil || r.state.Store.Len() != clients {
			b.Fatalf("recovered %d clients, %v", r.state.Store.Len(), err)
		}
	}
}
