package journal

import (
	"fmt"
	"log/slog"
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
