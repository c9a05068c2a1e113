package e2e

import (
	"fmt"
	"testing"
	"time"
)

// Campbell is stopped while records go to the other four; started again,
// it holds them all within seconds, with no client saying anything more:
// its neighbours reconcile it, as herd_store_updates_total{source=
// "reconcile"} shows.
func TestCampbellRestartCatchesUp(t *testing.T) {
	t.Parallel()
	h := newHerd(t)
	var before []string
	for i := range 10 {
		before = append(before, fmt.Sprintf("before%02d.restart", i))
	}
	h.iamatMany(t, "Smith", before)
	h.waitAgree(t)

	h.stop(t, "Campbell")
	var missed []string
	for i, s := range h.others("Campbell") {
		var ids []string
		for j := range 5 {
			ids = append(ids, fmt.Sprintf("missed%d%d.restart", i, j))
		}
		h.iamatMany(t, s, ids)
		missed = append(missed, ids...)
	}
	// One client moves while Campbell is away: its newer record must
	// replace the one Campbell kept.
	moved := h.iamat(t, "Hill", before[0])
	h.waitAgree(t, h.others("Campbell")...)

	start := time.Now()
	h.start(t, "Campbell") // ready: reconciled with Smith and Singleton
	want := h.expected()
	eventually(t, converge, "Campbell holds every record after its restart", func() (bool, string) {
		got := h.whatsatMany(t, "Campbell", append(missed, before...))
		for id, at := range got {
			if at != want[id] {
				return false, fmt.Sprintf("WHATSAT %s: %q, want %q", id, at, want[id])
			}
		}
		return true, ""
	})
	t.Logf("Campbell caught up %v after its start", time.Since(start).Round(time.Millisecond))
	if got := h.whatsat(t, "Campbell", before[0]); got != moved {
		t.Errorf("Campbell answers %q for the client that moved, want %q", got, moved)
	}
	h.waitMetric(t, "Campbell", "herd_store_records", nil, "holds every record", equal(float64(len(want))))
	// A new process: its counters start at 0. Everything it missed (and the
	// move) came by reconciliation.
	reconciled := h.waitMetric(t, "Campbell", "herd_store_updates_total", labels{"source": "reconcile"},
		"counts the records it missed", atLeast(float64(len(missed)+1)))
	if c := h.metric(t, "Campbell", "herd_store_updates_total", labels{"source": "client"}); c != 0 {
		t.Errorf("Campbell stored %v records from clients, want none", c)
	}
	t.Logf("Campbell stored %v records by reconciliation (%d missed, 1 moved, %d kept in its journal)", reconciled, len(missed), len(before))
	h.waitAgree(t)
}
