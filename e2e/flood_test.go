package e2e

import (
	"testing"
)

// A record sent to Hill reaches all five servers, and Campbell's
// propagation histogram counts the flood that brought it.
func TestFloodReachesEveryServer(t *testing.T) {
	t.Parallel()
	h := newHerd(t)
	h.waitAgree(t)

	campbell := h.scrape(t, "Campbell")
	at := h.iamat(t, "Hill", "flood.kiwi.cs.ucla.edu")
	for _, s := range h.names {
		h.waitKnows(t, s, "flood.kiwi.cs.ucla.edu", at)
	}

	delay := campbell.get("herd_propagation_delay_seconds_count", labels{"source": "flood"})
	h.waitMetric(t, "Campbell", "herd_propagation_delay_seconds_count", labels{"source": "flood"},
		"counts the flooded record", atLeast(delay+1))
	stored := campbell.get("herd_store_updates_total", labels{"source": "flood"})
	h.waitMetric(t, "Campbell", "herd_store_updates_total", labels{"source": "flood"},
		"counts the record stored from the flood", equal(stored+1))
	// Two links (Hill, Smith, Campbell) or more: the flood races on every
	// path, and the first copy to arrive is the one stored.
	h.waitMetric(t, "Campbell", "herd_propagation_hops_count", nil, "counts the record's hops",
		equal(campbell.get("herd_propagation_hops_count", nil)+1))
	h.waitMetric(t, "Hill", "herd_client_requests_total", labels{"command": "IAMAT", "outcome": "ok"},
		"counts the IAMAT", atLeast(1))
	for _, s := range h.names {
		h.waitMetric(t, s, "herd_store_records", nil, "holds the one record", equal(1))
	}
}

// With Smith killed, a record sent to Hill still reaches Campbell, the
// long way round: Hill, Jaquez, Singleton, Campbell. Smith gets it when it
// comes back.
func TestSmithDown(t *testing.T) {
	t.Parallel()
	h := newHerd(t)
	h.waitAgree(t)

	h.kill(t, "Smith")
	for _, s := range []string{"Hill", "Campbell", "Singleton"} {
		h.waitMetric(t, s, "herd_peer_up", labels{"peer": "Smith"}, "shows the link to Smith down", equal(0))
	}
	campbell := h.scrape(t, "Campbell")
	at := h.iamat(t, "Hill", "detour.kiwi.cs.ucla.edu")
	for _, s := range h.others("Smith") {
		h.waitKnows(t, s, "detour.kiwi.cs.ucla.edu", at)
	}
	// The only way left crosses three links: Campbell's hops histogram
	// gets one sample above its le="2" bucket.
	h.waitMetric(t, "Campbell", "herd_propagation_hops_count", nil, "counts the record",
		equal(campbell.get("herd_propagation_hops_count", nil)+1))
	if le2 := h.metric(t, "Campbell", "herd_propagation_hops_bucket", labels{"le": "2"}); le2 != campbell.get("herd_propagation_hops_bucket", labels{"le": "2"}) {
		t.Errorf("Campbell counts the record within two hops (le=\"2\" bucket %v, was %v), want three: Hill, Jaquez, Singleton, Campbell",
			le2, campbell.get("herd_propagation_hops_bucket", labels{"le": "2"}))
	}
	if le3 := h.metric(t, "Campbell", "herd_propagation_hops_bucket", labels{"le": "3"}); le3 != campbell.get("herd_propagation_hops_bucket", labels{"le": "3"})+1 {
		t.Errorf("Campbell's le=\"3\" hops bucket is %v, want %v: the record crossed three links", le3, campbell.get("herd_propagation_hops_bucket", labels{"le": "3"})+1)
	}

	h.start(t, "Smith")
	h.waitKnows(t, "Smith", "detour.kiwi.cs.ucla.edu", at)
	h.waitMetric(t, "Smith", "herd_store_updates_total", labels{"source": "reconcile"}, "counts the record it missed", atLeast(1))
	h.waitAgree(t)
}
