package peer

import (
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/metrics"
	"github.com/herdkit/herd/pkg/store"
	"github.com/herdkit/herd/pkg/topology"
)

// BenchmarkLinkFlood measures one peer link alone, without client
// connections: b.N records stored at A are flooded to B, timed until B
// holds them all. The link's writer at A and reader at B are its path.
func BenchmarkLinkFlood(b *testing.B) {
	a, bb := benchPair(b)
	recs := make([]store.Record, b.N)
	for i := range recs {
		recs[i] = store.Record{Text: fmt.Sprintf("flood-%d +34.068930-118.445127 1621464827.5", i), Origin: "A", Recv: 1}
	}
	note := bb.store.Subscribe()
	defer bb.store.Unsubscribe(note)
	b.ResetTimer()
	start := time.Now()
	for _, r := range recs {
		testutil.Apply(a.store, r, store.Local)
	}
	for bb.store.Len() < b.N {
		select {
		case <-note:
		case <-time.After(time.Minute):
			b.Fatalf("B holds %d records of %d", bb.store.Len(), b.N)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
}

// BenchmarkDeliveryAlone measures the CPU that one record costs the
// machine to cross one link when it travels alone, with nothing to batch
// with, as a record does on most links of a large herd at moderate load
// (docs/benchmarks.md, "A herd of a hundred"). "link": a record stored at
// A, then a wait until B holds it, over a real link. "socket": the floor
// under it, a frame of the same size written on a loopback TCP
// connection, read by a goroutine woken by the poller, which then wakes
// the writer for the next. Both report the process's CPU (user and
// system, every goroutine) per record.
func BenchmarkDeliveryAlone(b *testing.B) {
	const text = "alone-0000000 +34.068930-118.445127 1621464827.5"
	b.Run("socket", func(b *testing.B) {
		ln := benchListen(b)
		defer ln.Close()
		got := make(chan struct{})
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			buf := make([]byte, 64<<10)
			for {
				if _, err := c.Read(buf); err != nil {
					return
				}
				got <- struct{}{}
			}
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		frame := []byte("F 1 A 1621464827000000000 1 " + text + "\n")
		cpu := testutil.CPUTime()
		for b.Loop() {
			if _, err := c.Write(frame); err != nil {
				b.Fatal(err)
			}
			<-got
		}
		testutil.ReportCPU(b, cpu)
	})
	b.Run("link", func(b *testing.B) {
		a, bb := benchPair(b)
		note := bb.store.Subscribe()
		defer bb.store.Unsubscribe(note)
		i := 0
		cpu := testutil.CPUTime()
		for b.Loop() {
			i++
			testutil.Apply(a.store, store.Record{Text: fmt.Sprintf("alone-%07d +34.068930-118.445127 1621464827.5", i), Origin: "A", Recv: 1}, store.Local)
			for bb.store.Len() < i {
				<-note
			}
		}
		testutil.ReportCPU(b, cpu)
	})
}

// benchPair runs two managers, A and B, linked to each other, until the
// benchmark ends, and returns them once the link is reconciled.
func benchPair(b *testing.B) (a, bb *Manager) {
	lnA, lnB := benchListen(b), benchListen(b)
	a = benchNode(b, "A", lnA, topology.Peer{Name: "B", Addr: lnB.Addr().String()})
	bb = benchNode(b, "B", lnB, topology.Peer{Name: "A", Addr: lnA.Addr().String()})
	testutil.Eventually(b, 20*time.Second, func() error {
		if !a.Reconciled() || !bb.Reconciled() {
			return fmt.Errorf("A and B have not reconciled")
		}
		return nil
	})
	return a, bb
}

func benchListen(b *testing.B) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return ln
}

// benchNode runs a manager named name on ln, linked to peer, until the
// benchmark ends; it logs nothing.
func benchNode(b *testing.B, name string, ln net.Listener, peer topology.Peer) *Manager {
	cfg := Config{Name: name, Secret: testSecret, Neighbours: []topology.Peer{peer},
		Heartbeat: time.Second, Timeout: 10 * time.Second, BackoffMax: 100 * time.Millisecond}
	mg := New(cfg, store.New(), metrics.New(), slog.New(slog.DiscardHandler))
	mg.Start()
	served := make(chan struct{})
	go func() {
		mg.Serve(ln)
		close(served)
	}()
	b.Cleanup(func() {
		ln.Close()
		mg.Close()
		<-served
	})
	return mg
}
