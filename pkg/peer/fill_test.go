package peer

import (
	"fmt"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/topology"
)

// TestEmptyServerFillsFromOne: a server that comes back empty to a herd
// holding thousands of records is sent them by one neighbour, not by each
// of its three; it says it is filling until it holds them; it then takes
// new records from all its links. Every link delays each way by 20 ms, as
// a LAN under load might: on bare loopback the fill of 3,000 records ends
// within 2 ms, before the last of the three links is up (a link that comes
// up after the fill reconciles whole, as it must: fill.go) and between two
// looks of the test.
func TestEmptyServerFillsFromOne(t *testing.T) {
	timings := fastTimings
	timings.Fill = true
	fn := newFaultNet()
	fn.delay = 20 * time.Millisecond
	h := newHerdOn(t, fn, topology.Classic, timings)
	h.ready()
	const n = 3000
	var last = h.iamat("Hill", "first", "+1+1", "1")
	for i := range n {
		last = h.iamat(h.order[i%4], fmt.Sprintf("c%d", i), "+1+1", fmt.Sprint(1000+i))
	}
	h.waitAll(last, h.order...)
	h.quiesce()

	h.stop("Singleton") // three neighbours: Jaquez, Smith, Campbell
	h.restartWith("Singleton", timings)
	single := h.nodes["Singleton"]
	sawFilling := single.mgr.Filling()
	testutil.Eventually(t, 20*time.Second, func() error {
		sawFilling = sawFilling || single.mgr.Filling()
		if got := single.st.Len(); got < n+1 {
			return fmt.Errorf("Singleton holds %d of %d records", got, n+1)
		}
		if single.mgr.Filling() {
			return fmt.Errorf("Singleton holds every record and still says it fills")
		}
		// The links that waited claim their neighbour's head once the
		// fill is done: nothing remains on any.
		for _, nb := range h.topo["Singleton"] {
			if r := promtest.ToFloat64(single.m.PeerReconcileRemaining.WithLabelValues(nb)); r != 0 {
				return fmt.Errorf("%s still has %v changes to send, once filled", nb, r)
			}
		}
		return nil
	})
	if !sawFilling {
		t.Error("Singleton never said it was filling")
	}
	var sent float64
	for _, nb := range h.topo["Singleton"] {
		sent += promtest.ToFloat64(single.m.PeerRecordsReceived.WithLabelValues(nb, "reconcile"))
	}
	if sent > 1.1*(n+1) {
		t.Errorf("Singleton was sent %v records to fill, want about one copy, %d", sent, n+1)
	}
	after := h.iamat("Campbell", "after", "+1+1", "99999")
	h.waitAll(after, h.order...)
	h.quiesce()
}
