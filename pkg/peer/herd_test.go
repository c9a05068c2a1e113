package peer

import (
	"errors"
	"fmt"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/metrics"
	"github.com/herdkit/herd/pkg/store"
	"github.com/herdkit/herd/pkg/topology"
)

var everyone = []string{"Hill", "Jaquez", "Smith", "Campbell", "Singleton"}

func TestRecordReachesEveryServer(t *testing.T) {
	h := newHerd(t, topology.Classic, fastTimings)
	h.ready()
	r := h.iamat("Hill", "kiwi.cs.ucla.edu", "+34.068930-118.445127", "1621464827.959498503")
	h.waitAll(r, everyone...)
	// Campbell is two hops from Hill (three by way of Singleton, if that
	// path was quicker).
	got, _ := h.nodes["Campbell"].st.Get("kiwi.cs.ucla.edu")
	if got.Hops < 2 || got.Hops > 3 || got.Origin != "Hill" {
		t.Errorf("Campbell holds %+v, want 2 or 3 hops from Hill", got)
	}
	h.quiesce()
	// Flooding stops: every server stored the record exactly once.
	for _, name := range everyone {
		n := h.nodes[name]
		applied := promtest.ToFloat64(n.m.StoreUpdates.WithLabelValues(metrics.SourceFlood))
		if name == "Hill" && applied != 0 || name != "Hill" && applied != 1 {
			t.Errorf("%s stored the flood %v times", name, applied)
		}
	}
}

// TestPairsDown stops each of the ten pairs of servers in turn, sends a
// distinct record to every survivor, and checks that the survivors agree
// exactly when they stay connected.
func TestPairsDown(t *testing.T) {
	connected := 0
	for i, a := range everyone {
		for _, b := range everyone[i+1:] {
			down := map[string]bool{a: true, b: true}
			ok := classicConnected(down)
			if ok {
				connected++
			}
			t.Run(a+"+"+b, func(t *testing.T) {
				h := newHerd(t, topology.Classic, fastTimings)
				h.ready()
				h.stop(a)
				h.stop(b)
				var survivors []string
				for _, s := range everyone {
					if !down[s] {
						survivors = append(survivors, s)
					}
				}
				sent := map[string]string{} // survivor -> client id sent there
				for _, s := range survivors {
					sent[s] = h.iamat(s, "from-"+s, "+1+1", "100").Client()
				}
				if ok {
					for _, s := range survivors {
						r, _ := h.nodes[s].st.Get(sent[s])
						h.waitAll(r.Unpack(), survivors...)
					}
					return
				}
				// Split: each survivor holds exactly the records of the
				// survivors it can still reach.
				h.quiesce()
				for _, s := range survivors {
					for _, o := range survivors {
						_, has := h.nodes[s].st.Get(sent[o])
						if reach := reachable(h.topo, down, s, o); has != reach {
							t.Errorf("%s holds %s's record: %v, want %v", s, o, has, reach)
						}
					}
				}
				// And once the pair is back, everyone agrees.
				h.restart(a)
				h.restart(b)
				for _, s := range survivors {
					r, _ := h.nodes[s].st.Get(sent[s])
					h.waitAll(r.Unpack(), everyone...)
				}
			})
		}
	}
	if connected != 7 {
		t.Errorf("%d pairs leave the herd connected, want 7", connected)
	}
}

// classicConnected reports whether the servers of topology.Classic that are not
// down can all reach each other.
func classicConnected(down map[string]bool) bool {
	links := map[string][]string{}
	var alive []string
	for _, s := range topology.Classic {
		links[s.Name] = s.Neighbours
		if !down[s.Name] {
			alive = append(alive, s.Name)
		}
	}
	for _, s := range alive {
		if !reachable(links, down, alive[0], s) {
			return false
		}
	}
	return true
}

// TestRestartedServerCatchesUp stops Campbell, sends records elsewhere,
// starts Campbell again empty, and finds every record there within two
// seconds with no new client traffic.
func TestRestartedServerCatchesUp(t *testing.T) {
	h := newHerd(t, topology.Classic, Config{Heartbeat: 100 * time.Millisecond, Timeout: time.Second, BackoffMax: 2 * time.Second})
	before := h.iamat("Hill", "before", "+1+1", "1")
	h.waitAll(before, everyone...)
	h.stop("Campbell")
	var sent = []string{}
	for i, s := range []string{"Hill", "Jaquez", "Smith", "Singleton"} {
		for j := range 50 {
			r := h.iamat(s, fmt.Sprintf("c%d-%d", i, j), "+2+2", "2")
			sent = append(sent, r.Text)
		}
	}
	start := time.Now()
	h.restart("Campbell")
	c := h.nodes["Campbell"]
	testutil.Eventually(t, 10*time.Second, func() error {
		if n := c.st.Len(); n != len(sent)+1 {
			return fmt.Errorf("Campbell holds %d records, want %d", n, len(sent)+1)
		}
		return nil
	})
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Campbell caught up in %v, want under 2s", d)
	} else {
		t.Logf("Campbell caught up with %d records in %v", len(sent)+1, d)
	}
}

// TestPartitionedServerGetsOnlyMissed cuts Singleton off, sends records on
// both sides of the cut, heals it, and counts what reconciliation moved:
// the missed records, not the store.
func TestPartitionedServerGetsOnlyMissed(t *testing.T) {
	h := newHerd(t, topology.Classic, fastTimings)
	h.ready()
	const preload, missed = 2000, 7
	for i := range preload {
		h.iamat(everyone[i%5], fmt.Sprintf("pre-%d", i), "+1+1", "1")
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		for _, n := range everyone {
			if l := h.nodes[n].st.Len(); l != preload {
				return fmt.Errorf("%s holds %d records, want %d", n, l, preload)
			}
		}
		return nil
	})
	h.quiesce()
	s := h.nodes["Singleton"]
	h.net.cutOff("Singleton")
	testutil.Eventually(t, 10*time.Second, func() error {
		for _, l := range s.mgr.Status() {
			if l.Up {
				return fmt.Errorf("the link to %s is up", l.Name)
			}
		}
		return nil
	})
	// On the majority side: new clients, and an update of a known one.
	var sent []store.Record
	for i := range missed - 1 {
		sent = append(sent, h.iamat(everyone[i%4], fmt.Sprintf("missed-%d", i), "+2+2", "2"))
	}
	update := h.iamat("Campbell", "pre-0", "+9+9", "9")
	// On Singleton's side.
	mine := h.iamat("Singleton", "during-cut", "+3+3", "3")
	others := []string{"Hill", "Jaquez", "Smith", "Campbell"}
	h.waitAll(update, others...)
	h.quiesce()
	recon := func(n *node, peer string) float64 { return received(n, peer, metrics.SourceReconcile) }
	before := map[string][2]float64{}
	for _, nb := range h.topo["Singleton"] {
		before[nb] = [2]float64{recon(s, nb), recon(h.nodes[nb], "Singleton")}
	}
	appliedBefore := promtest.ToFloat64(s.m.StoreUpdates.WithLabelValues(metrics.SourceReconcile))

	h.net.heal("Singleton")
	h.waitAll(update, everyone...)
	h.waitAll(mine, everyone...)
	for _, r := range sent {
		h.waitAll(r, "Singleton")
	}
	h.quiesce()

	// Singleton stored exactly the missed records through reconciliation.
	if got := promtest.ToFloat64(s.m.StoreUpdates.WithLabelValues(metrics.SourceReconcile)) - appliedBefore; got != missed {
		t.Errorf("Singleton applied %v reconciled records, want %d", got, missed)
	}
	// Each link moved what was missed on either side, never the store. A
	// link may carry a few more than its own share: a record that reached
	// one end through another link while this one was reconciling.
	for _, nb := range h.topo["Singleton"] {
		toS, toNb := recon(s, nb)-before[nb][0], recon(h.nodes[nb], "Singleton")-before[nb][1]
		t.Logf("link Singleton-%s: %v records to Singleton, %v to %s", nb, toS, toNb, nb)
		if toS < missed || toS > missed+1 {
			t.Errorf("Singleton got %v records from %s in reconciliation, want the %d missed (+1 racing)", toS, nb, missed)
		}
		if toNb < 1 || toNb > 1+missed {
			t.Errorf("%s got %v records from Singleton in reconciliation, want 1 (+%d racing)", nb, toNb, missed)
		}
	}
}

// TestEqualTimesConverge sends records of one client with the same time
// but different positions to every server at once: all servers must end
// up holding the same one.
func TestEqualTimesConverge(t *testing.T) {
	h := newHerd(t, topology.Classic, fastTimings)
	h.ready()
	for i, s := range everyone {
		h.iamat(s, "twin", fmt.Sprintf("+%d+%d", i, i), "1621464827.5")
	}
	h.quiesce()
	want, _ := h.nodes["Hill"].st.Get("twin")
	for _, s := range everyone {
		if got, _ := h.nodes[s].st.Get("twin"); got.Text() != want.Text() || got.Origin != want.Origin {
			t.Errorf("%s holds %q from %s, Hill holds %q from %s", s, got.Text(), got.Origin, want.Text(), want.Origin)
		}
	}
	if want.Origin != "Smith" {
		t.Errorf("the tie went to %s, want Smith (the greatest name)", want.Origin)
	}
}

// TestSkippedChangesShareWrites floods records one at a time from Hill to
// Jaquez. Jaquez's link back to Hill has only marks to send for them,
// and a mark waits for company rather than taking a write of its own per
// record; quiesce checks that the marks still reach Hill.
func TestSkippedChangesShareWrites(t *testing.T) {
	pair := []topology.Server{{Name: "Hill", Neighbours: []string{"Jaquez"}}, {Name: "Jaquez", Neighbours: []string{"Hill"}}}
	timings := fastTimings
	timings.Heartbeat, timings.Timeout = time.Minute, 2*time.Minute // no pings in the count
	h := newHerd(t, pair, timings)
	h.ready()
	h.quiesce()
	before := h.net.writesOf("Jaquez").Load()
	start := time.Now()
	const records = 200
	for i := range records {
		r := h.iamat("Hill", fmt.Sprintf("client-%d", i), "+34.068930-118.445127", "1621464827.5")
		h.waitAll(r, "Jaquez")
	}
	// At most a mark per markDelay, and far fewer writes than records
	// unless the machine is so slow that each record took a markDelay.
	marks := int64(time.Since(start)/markDelay) + 2
	h.quiesce()
	if w := h.net.writesOf("Jaquez").Load() - before; w > records/2 && w > marks {
		t.Errorf("Jaquez wrote %d times to Hill for %d records it only had to acknowledge", w, records)
	}
}

// TestPartialFrameHoldsNoRecord: the records before a frame still
// arriving are stored without waiting for its end.
func TestPartialFrameHoldsNoRecord(t *testing.T) {
	h := newHerd(t, pair, fastTimings)
	h.standIn("B")
	a := h.nodes["A"]
	nc, br := rawPeer(t, a.addr)
	if _, err := dialHandshake(nc, br, hello{name: "B", inc: 7, nonce: newNonce()}, "A", testSecret, nil, time.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	first := store.Record{Text: "kiwi +34.068930-118.445127 1621464827.5", Origin: "B", Recv: 1}
	frames := appendSync(nil, 0, 0)
	frames = appendSeq(frames, frameSynced, 0)
	frames = appendRecord(frames, frameFlood, 1, store.Pack(first))
	frames = appendRecord(frames, frameFlood, 2, store.Pack(store.Record{Text: "kiwi +34.068930-118.445127 1621464828.5", Origin: "B", Recv: 2}))
	nc.Write(frames[:len(frames)-10]) // all but the end of the last frame
	testutil.Eventually(t, 10*time.Second, func() error {
		if _, ok := a.st.Get("kiwi"); !ok {
			return errors.New("no record of kiwi")
		}
		return nil
	})
	nc.Write(frames[len(frames)-10:])
	testutil.Eventually(t, 10*time.Second, func() error {
		if r, _ := a.st.Get("kiwi"); r.Recv != 2 {
			return fmt.Errorf("kiwi's record received at %d, want 2", r.Recv)
		}
		return nil
	})
}
