package peer

import (
	"math"
	"strings"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/metrics"
	"github.com/herdkit/herd/pkg/store"
	"github.com/herdkit/herd/pkg/topology"
)

func TestOffsetDelay(t *testing.T) {
	tests := []struct {
		name           string
		t1, t2, t3, t4 int64
		offset, delay  time.Duration
	}{
		{"same clock, 1 ms each way", 0, 1e6, 1e6, 2e6, 0, 2 * time.Millisecond},
		{"neighbour 5 s ahead", 0, 5e9 + 1e6, 5e9 + 2e6, 3e6, 5 * time.Second, 2 * time.Millisecond},
		{"neighbour 5 s behind", 10e9, 5e9 + 1e6, 5e9 + 1e6, 10e9 + 2e6, -5 * time.Second, 2 * time.Millisecond},
		{"slow answer: the answer's time is not on the wire", 0, 1e6, 101e6, 102e6, 0, 2 * time.Millisecond},
		{"one way slower: half the difference is error", 0, 3e6, 3e6, 4e6, time.Millisecond, 4 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, d := offsetDelay(tt.t1, tt.t2, tt.t3, tt.t4)
			if o != tt.offset || d != tt.delay {
				t.Errorf("offsetDelay = %v, %v, want %v, %v", o, d, tt.offset, tt.delay)
			}
		})
	}
}

// TestClockFilterKeepsTheShortestRoundTrip: the estimate is the sample of
// the smallest round trip among the last clockWindow, and a sample with a
// negative round trip is ignored.
func TestClockFilterKeepsTheShortestRoundTrip(t *testing.T) {
	var c clockFilter
	if _, _, ok := c.estimate(); ok {
		t.Fatal("an estimate before any sample")
	}
	// offset 7 ms, round trip 2 ms: the best.
	c.add(0, 8e6, 8e6, 2e6)
	// offset 20 ms measured over a 40 ms round trip (queued behind records).
	c.add(0, 40e6, 40e6, 40e6)
	if o, d, _ := c.estimate(); o != 7*time.Millisecond || d != 2*time.Millisecond {
		t.Errorf("estimate %v over %v, want 7ms over 2ms", o, d)
	}
	c.add(10, 0, 0, 0) // negative round trip
	if o, _, _ := c.estimate(); o != 7*time.Millisecond {
		t.Errorf("a negative round trip changed the estimate to %v", o)
	}
	// clockWindow later samples push the best one out.
	for range clockWindow {
		c.add(0, 5e6, 5e6, 4e6) // offset 3 ms, round trip 4 ms
	}
	if o, d, _ := c.estimate(); o != 3*time.Millisecond || d != 4*time.Millisecond {
		t.Errorf("estimate %v over %v after the window moved, want 3ms over 4ms", o, d)
	}
}

func TestPingFramesRoundTrip(t *testing.T) {
	f, err := parseFrame(appendPing(nil, 1621464828223371889)[:len("P 1621464828223371889")])
	if err != nil || f.kind != framePing || !f.timed || f.stamps[0] != 1621464828223371889 {
		t.Errorf("ping: %+v, %v", f, err)
	}
	line := appendPong(nil, 1, 2, 3)
	f, err = parseFrame(line[:len(line)-1])
	if err != nil || f.kind != framePong || f.stamps != [3]int64{1, 2, 3} {
		t.Errorf("pong: %+v, %v", f, err)
	}
	if !speaksClock(newNonce()) || len(newNonce()) != 32 || speaksClock(randomHex(16)) {
		t.Error("the nonce's clock tag")
	}
}

// TestClockOffsetAcrossMachines plays B on a machine whose clock is 5 s
// ahead of A's: each end estimates the other's offset within a few
// milliseconds, exports it, and A's propagation delay of B's records is
// corrected by it, instead of 5 s short (which would count as zero).
func TestClockOffsetAcrossMachines(t *testing.T) {
	const skew = 5 * time.Second
	lnA, lnB := listen(t), listen(t)
	ahead := fastTimings
	ahead.Now = func() time.Time { return time.Now().Add(skew) }
	a := runNode(t, "A", lnA, []topology.Peer{{Name: "B", Addr: lnB.Addr().String()}}, testSecret, fastTimings, nil)
	b := runNode(t, "B", lnB, []topology.Peer{{Name: "A", Addr: lnA.Addr().String()}}, testSecret, ahead, nil)
	offsetOf := func(n *node, peer string) float64 {
		return promtest.ToFloat64(n.m.PeerClockOffset.WithLabelValues(peer))
	}
	near := func(got, want float64) bool { return math.Abs(got-want) < 0.05 }
	testutil.Eventually(t, 10*time.Second, testutil.Holds("the condition of line 96", func() bool { return near(offsetOf(a, "B"), skew.Seconds()) && near(offsetOf(b, "A"), -skew.Seconds()) }))
	// A record B received from its client 200 ms ago, stamped by B's
	// clock: corrected, A sees it 200 ms old (give or take the estimate's
	// error and the trip); uncorrected, 4.8 s in the future.
	const age = 200 * time.Millisecond
	testutil.Apply(b.st, store.Record{Text: "skewed +1+1 1", Origin: "B", Recv: time.Now().Add(skew - age).UnixNano()}, store.Local)
	testutil.Eventually(t, 10*time.Second, testutil.Holds("A has B's record", func() bool { _, ok := a.st.Get("skewed"); return ok }))
	sum, count := delaySum(t, a.m)
	if count != 1 || sum < age.Seconds()-0.05 || sum > 1 {
		t.Errorf("A observed %v delays summing to %v s; want one of about %v", count, sum, age)
	}
	// A record of an origin whose clock A does not measure, stamped 5 s
	// ahead: its delay is not corrected, and below zero it counts as zero.
	testutil.Apply(b.st, store.Record{Text: "unmeasured +1+1 1", Origin: "C", Recv: time.Now().Add(skew).UnixNano()}, store.Local)
	testutil.Eventually(t, 10*time.Second, testutil.Holds("A has C's record", func() bool { _, ok := a.st.Get("unmeasured"); return ok }))
	if sum2, count2 := delaySum(t, a.m); count2 != 2 || sum2 != sum {
		t.Errorf("after a record from an unmeasured clock ahead: %v delays summing to %v s; want 2 summing to %v", count2, sum2, sum)
	}
}

// delaySum returns the sum and count of herd_propagation_delay_seconds of
// flooded records.
func delaySum(t *testing.T, m *metrics.Metrics) (float64, uint64) {
	t.Helper()
	var out dto.Metric
	obs := m.PropagationDelay.WithLabelValues(metrics.SourceFlood)
	if err := obs.(interface{ Write(*dto.Metric) error }).Write(&out); err != nil {
		t.Fatal(err)
	}
	return out.GetHistogram().GetSampleSum(), out.GetHistogram().GetSampleCount()
}

// TestOlderNeighbourGetsPlainPings: a neighbour whose nonce does not say
// it speaks timed pings (a server from before them) gets only the frames
// it knows: plain P, never P with a time or Q.
func TestOlderNeighbourGetsPlainPings(t *testing.T) {
	// The test answers A's pings by hand: with fastTimings' 200 ms, a
	// loaded machine that keeps it from running that long ends the link
	// (herd_peer_disconnects_total{reason="timeout"}) and the test reads
	// EOF. Frequent pings, and a time-out the test cannot miss.
	timings := fastTimings
	timings.Timeout = 5 * time.Second
	h := newHerd(t, pair, timings)
	h.standIn("B")
	nc, br := rawPeer(t, h.nodes["A"].addr)
	old := hello{name: "B", inc: 7, nonce: randomHex(16)}
	if _, err := dialHandshake(nc, br, old, "A", testSecret, nil, time.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	nc.Write(appendSync(nil, 0, 0))
	nc.Write(appendSeq(nil, frameSynced, 0))
	pings := 0
	for pings < 5 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		line = strings.TrimSuffix(line, "\n")
		if strings.HasPrefix(line, "P ") || strings.HasPrefix(line, "Q") {
			t.Fatalf("an older neighbour got %q", line)
		}
		if line == "P" {
			pings++
			nc.Write([]byte("P\n"))
		}
	}
}
