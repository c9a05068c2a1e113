package node

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/protocol"
	"github.com/herdkit/herd/pkg/tools/bench"
)

// BenchmarkHerdPropagation measures whole-herd propagation at light load:
// one IAMAT at a time at Hill, over TCP, timed from its send until every
// one of the five servers has stored it (each watched through its store's
// change notifications). Reports p50, p99 and max.
func BenchmarkHerdPropagation(b *testing.B) { benchmarkPropagation(b, 0) }

// BenchmarkHerdPropagationUnderLoad is BenchmarkHerdPropagation while
// `herd bench load` sends 10,000 IAMAT per second, spread over the five
// servers, in the background (open loop).
func BenchmarkHerdPropagationUnderLoad(b *testing.B) { benchmarkPropagation(b, 10_000) }

func benchmarkPropagation(b *testing.B, loadRate float64) {
	nodes := startHerd(b)
	waitHerdReady(b, nodes)
	if loadRate > 0 {
		var addrs []string
		for _, n := range nodes {
			addrs = append(addrs, n.ClientAddr().String())
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan *bench.LoadSummary, 1)
		go func() {
			sum, err := bench.Load(ctx, bench.LoadConfig{Addrs: addrs, Conns: 10, Rate: loadRate, Clients: 100_000})
			if err != nil {
				b.Error(err)
			}
			done <- sum
		}()
		defer func() {
			cancel()
			if sum := <-done; sum != nil {
				b.ReportMetric(sum.Rate, "load-IAMAT/s")
			}
		}()
		// Measure once the load has run for about half a second.
		waitStores(b, nodes, int(loadRate/2))
	}
	nc, err := net.Dial("tcp", nodes[0].ClientAddr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	rr := protocol.NewReplyReader(nc)
	notes := make([]<-chan struct{}, len(nodes))
	for i, n := range nodes {
		notes[i] = n.Store().Subscribe()
		defer n.Store().Unsubscribe(notes[i])
	}
	samples := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprintf("prop-%d", i)
		start := time.Now()
		fmt.Fprintf(nc, "IAMAT %s +34.068930-118.445127 %d.5\n", id, 1621464827+i)
		for k, n := range nodes {
			for _, ok := n.Store().Get(id); !ok; _, ok = n.Store().Get(id) {
				<-notes[k]
			}
		}
		samples = append(samples, time.Since(start))
		if _, err := rr.ReadReply(protocol.LineReply); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportQuantiles(b, samples)
}

// BenchmarkHerdThroughput sends b.N IAMATs for distinct clients, pipelined
// on one connection to each of the five servers, and measures the time
// until every server has stored every one of them.
func BenchmarkHerdThroughput(b *testing.B) {
	nodes := startHerd(b)
	waitHerdReady(b, nodes)
	before := nodes[0].Store().Len()
	b.ResetTimer()
	start := time.Now()
	for i, n := range nodes {
		go func() {
			nc, err := net.Dial("tcp", n.ClientAddr().String())
			if err != nil {
				b.Error(err)
				return
			}
			defer nc.Close()
			w := bufio.NewWriterSize(nc, 64<<10)
			go func() {
				rr := protocol.NewReplyReader(nc)
				for range (b.N + len(nodes) - 1 - i) / len(nodes) {
					if _, err := rr.ReadReply(protocol.LineReply); err != nil {
						return
					}
				}
			}()
			for k := i; k < b.N; k += len(nodes) {
				fmt.Fprintf(w, "IAMAT tput-%d +34.068930-118.445127 1621464827.5\n", k)
			}
			w.Flush()
			// Keep the connection open until every reply was read.
			waitStores(b, nodes, before+b.N)
		}()
	}
	waitStores(b, nodes, before+b.N)
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "IAMAT/s")
}

// waitStores waits until every node holds want records. It is part of
// the time measured, so it looks every 100 µs rather than with
// testutil.Eventually, whose pause grows to 10 ms.
func waitStores(b testing.TB, nodes []*Node, want int) {
	deadline := time.Now().Add(time.Minute)
	for _, n := range nodes {
		for n.Store().Len() < want {
			if time.Now().After(deadline) {
				b.Fatalf("%s holds %d records, want %d", n.cfg.Name, n.Store().Len(), want)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
}

func waitHerdReady(b testing.TB, nodes []*Node) {
	testutil.Eventually(b, 20*time.Second, func() error {
		for _, n := range nodes {
			if !n.Peers().Reconciled() {
				return fmt.Errorf("%s has not reconciled", n.cfg.Name)
			}
		}
		return nil
	})
}

func reportQuantiles(b *testing.B, samples []time.Duration) {
	if len(samples) == 0 {
		return
	}
	slices.Sort(samples)
	q := func(f float64) float64 {
		return float64(samples[min(len(samples)-1, int(f*float64(len(samples))))].Microseconds())
	}
	b.ReportMetric(q(0.5), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
	b.ReportMetric(float64(samples[len(samples)-1].Microseconds()), "max-µs")
	b.ReportMetric(0, "ns/op")
}
