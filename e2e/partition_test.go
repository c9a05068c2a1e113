package e2e

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/herdkit/herd/pkg/topology"
)

// neighbours returns a server's neighbours in topology.Classic.
func neighbours(t testing.TB, name string) []string {
	t.Helper()
	for _, s := range topology.Classic {
		if s.Name == name {
			return s.Neighbours
		}
	}
	t.Fatalf("%s is not in topology.Classic", name)
	return nil
}

// Singleton is cut off the network while clients talk to both sides.
// Reconnected, the herd converges on the newest record of every client,
// including two that moved on both sides, and the reconciliation moves
// only what each side missed: 200 records preloaded before the cut are
// not sent again.
func TestSingletonPartition(t *testing.T) {
	t.Parallel()
	h := newHerd(t)
	const preload = 200
	var pre []string
	for i := range preload {
		pre = append(pre, fmt.Sprintf("pre%03d.partition", i))
	}
	h.iamatMany(t, "Hill", pre[:preload/2])
	h.iamatMany(t, "Campbell", pre[preload/2:])
	h.waitAgree(t)

	nbs := neighbours(t, "Singleton")
	before := map[string]scrape{"Singleton": h.scrape(t, "Singleton")}
	for _, n := range nbs {
		before[n] = h.scrape(t, n)
	}

	h.disconnect(t, "Singleton")
	for _, n := range nbs {
		h.waitMetric(t, n, "herd_peer_up", labels{"peer": "Singleton"}, "shows the link to Singleton down", equal(0))
	}

	// Both sides hear from clients. Two clients move on both sides: the
	// newer record of "east" is on Singleton's side, that of "west" on the
	// other; the newest must win everywhere.
	base := time.Now().Add(-time.Minute)
	at := func(s int) string { return clientTime(base.Add(time.Duration(s) * time.Second)) }
	majority := map[string][]string{"Hill": nil, "Smith": nil, "Campbell": nil, "Jaquez": nil}
	var elsewhere []string
	for i := range 12 {
		server := []string{"Hill", "Smith", "Campbell", "Jaquez"}[i%4]
		id := fmt.Sprintf("main%02d.partition", i)
		majority[server] = append(majority[server], id)
		elsewhere = append(elsewhere, id)
	}
	for server, ids := range majority {
		h.iamatMany(t, server, ids)
	}
	eastOld := h.iamatAt(t, "Smith", "east.partition", at(1))
	westNew := h.iamatAt(t, "Hill", "west.partition", at(4))
	elsewhere = append(elsewhere, "east.partition", "west.partition")

	var side []string
	for i := range 3 {
		id := fmt.Sprintf("side%02d.partition", i)
		h.iamatExec(t, "Singleton", id, now())
		side = append(side, id)
	}
	eastNew := h.iamatExec(t, "Singleton", "east.partition", at(3))
	westOld := h.iamatExec(t, "Singleton", "west.partition", at(2))
	side = append(side, "east.partition", "west.partition")
	missed, sentOnSide := len(elsewhere), len(side) // records stored on each side during the cut

	// A partition is a partition: neither side hears of the other's
	// clients.
	for _, id := range elsewhere[:3] {
		if got := h.whatsatExec(t, "Singleton", id); got != "" {
			t.Errorf("Singleton, cut off, answers WHATSAT %s with %q", id, got)
		}
	}
	if got := h.whatsatExec(t, "Singleton", "east.partition"); got != eastNew {
		t.Errorf("Singleton, cut off, answers WHATSAT east.partition with %q, want its own %q", got, eastNew)
	}
	for _, s := range h.others("Singleton") {
		if got := h.whatsat(t, s, side[0]); got != "" {
			t.Errorf("%s answers WHATSAT %s with %q while Singleton is cut off", s, side[0], got)
		}
		if got := h.whatsat(t, s, "west.partition"); got != westNew {
			t.Errorf("%s answers WHATSAT west.partition with %q, want %q", s, got, westNew)
		}
	}

	h.connect(t, "Singleton")
	h.waitAgree(t)
	for _, s := range h.names {
		if got := h.whatsat(t, s, "east.partition"); got != eastNew {
			t.Errorf("%s: east.partition is %q, want the newer %q (not %q)", s, got, eastNew, eastOld)
		}
		if got := h.whatsat(t, s, "west.partition"); got != westNew {
			t.Errorf("%s: west.partition is %q, want the newer %q (not %q)", s, got, westNew, westOld)
		}
	}
	for _, n := range nbs {
		h.waitMetric(t, n, "herd_peer_up", labels{"peer": "Singleton"}, "shows the link to Singleton up again", equal(1))
		h.waitMetric(t, "Singleton", "herd_peer_up", labels{"peer": n}, "shows the link up again", equal(1))
	}

	// What crossed each link. A link carries each change of its sender at
	// most once: per link, at most what was stored on either side during
	// the cut, and nothing of the preload.
	bound := float64(missed + sentOnSide)
	after := map[string]scrape{"Singleton": h.scrape(t, "Singleton")}
	for _, n := range nbs {
		after[n] = h.scrape(t, n)
	}
	delta := func(server, name string, l labels) float64 {
		return after[server].get(name, l) - before[server].get(name, l)
	}
	for _, n := range nbs {
		in := delta("Singleton", "herd_peer_records_received_total", labels{"peer": n, "kind": "reconcile"})
		all := delta("Singleton", "herd_peer_records_received_total", labels{"peer": n})
		out := delta(n, "herd_peer_records_received_total", labels{"peer": "Singleton", "kind": "reconcile"})
		t.Logf("%s -> Singleton: %v reconciled, %v in all; Singleton -> %s: %v reconciled (bound %v; preload %d)", n, in, all, n, out, bound, preload)
		if in > bound || all > bound {
			t.Errorf("Singleton received %v records from %s by reconciliation (%v in all), want at most %v: the %d missed and the %d sent on its side, not the %d preloaded",
				in, n, all, bound, missed, sentOnSide, preload)
		}
		if out > bound {
			t.Errorf("%s received %v records from Singleton by reconciliation, want at most %v", n, out, bound)
		}
	}
	// Singleton stored, by reconciliation, the records it missed that were
	// newer than its own: all but east.partition's older one.
	newer := float64(missed - 1)
	if got := delta("Singleton", "herd_store_updates_total", labels{"source": "reconcile"}); got < newer || got > bound {
		t.Errorf("Singleton stored %v records by reconciliation, want %v (the newer of those it missed)", got, newer)
	}
	if got := after["Singleton"].get("herd_store_records", nil); got != float64(preload+len(elsewhere)+3) {
		t.Errorf("Singleton holds %v records, want %d", got, preload+len(elsewhere)+3)
	}
	for _, n := range nbs {
		if got := delta(n, "herd_peer_disconnects_total", labels{"peer": "Singleton"}); got < 1 {
			t.Errorf("%s counts %v disconnections of its link to Singleton, want at least 1", n, got)
		}
	}
}

// Jaquez is frozen (paused): its sockets stay open but nothing answers.
// The rest of the herd keeps serving its clients at once and flooding
// around it within the peer time-out, and Jaquez catches up once thawed.
func TestJaquezPaused(t *testing.T) {
	t.Parallel()
	h := newHerd(t)
	h.iamat(t, "Jaquez", "warm.paused")
	h.waitAgree(t)
	jaquez := map[string]scrape{"Hill": h.scrape(t, "Hill"), "Singleton": h.scrape(t, "Singleton")}

	stored := h.metric(t, "Jaquez", "herd_store_updates_total", nil)
	h.pause(t, "Jaquez")
	pausedAt := time.Now()
	var ids []string
	afterDrop := 0 // records sent before the links to Jaquez were dropped
	// Rounds right after the freeze (links to Jaquez still up, writes to it
	// buffered), until its neighbours have dropped those links and again
	// while they redial a server that accepts and never answers.
	for round := 0; ; round++ {
		for _, pair := range [][2]string{{"Hill", "Campbell"}, {"Hill", "Singleton"}, {"Singleton", "Hill"}} {
			id := fmt.Sprintf("r%d.%s-%s.paused", round, pair[0], pair[1])
			ids = append(ids, id)
			start := time.Now()
			at := h.iamat(t, pair[0], id)
			if d := time.Since(start); d > peerTimeout {
				t.Errorf("round %d: %s took %v to answer an IAMAT", round, pair[0], d)
			}
			h.waitKnowsWithin(t, peerTimeout, pair[1], id, at)
		}
		for _, s := range []string{"Smith", "Campbell"} {
			start := time.Now()
			h.whatsat(t, s, "warm.paused")
			if d := time.Since(start); d > peerTimeout {
				t.Errorf("round %d: %s took %v to answer a WHATSAT", round, s, d)
			}
		}
		if round >= 2 && time.Since(pausedAt) > 3*peerTimeout {
			break
		}
		// Next round once the links to Jaquez are down, then once they
		// have been redialled at least once.
		if round == 0 {
			for _, s := range []string{"Hill", "Singleton"} {
				h.waitMetric(t, s, "herd_peer_up", labels{"peer": "Jaquez"}, "drops the silent link to Jaquez", equal(0))
			}
			afterDrop = len(ids)
		} else {
			h.waitMetric(t, "Hill", "herd_peer_handshake_failures_total", labels{"reason": "timeout"},
				"times out redialling Jaquez", atLeast(jaquez["Hill"].get("herd_peer_handshake_failures_total", labels{"reason": "timeout"})+float64(round)))
		}
	}
	for _, s := range []string{"Hill", "Singleton"} {
		want := jaquez[s].get("herd_peer_disconnects_total", labels{"peer": "Jaquez", "reason": "timeout"}) + 1
		if got := h.metric(t, s, "herd_peer_disconnects_total", labels{"peer": "Jaquez", "reason": "timeout"}); got < want {
			t.Errorf("%s: herd_peer_disconnects_total{peer=Jaquez,reason=timeout} = %v, want at least %v", s, got, want)
		}
	}

	h.unpause(t, "Jaquez")
	for _, n := range neighbours(t, "Jaquez") {
		h.waitMetric(t, "Jaquez", "herd_peer_up", labels{"peer": n}, "shows the link up again", equal(1))
	}
	h.waitAgree(t)
	// The first round's records were in Jaquez's socket buffers when its
	// neighbours dropped the links: it reads them as floods when it thaws.
	// The later ones only reconciliation can bring.
	h.waitMetric(t, "Jaquez", "herd_store_updates_total", labels{"source": "reconcile"},
		"counts the records sent after its links were dropped", atLeast(float64(len(ids)-afterDrop)))
	if got := h.metric(t, "Jaquez", "herd_store_updates_total", nil) - stored; got != float64(len(ids)) {
		t.Errorf("Jaquez stored %v records after it thawed, want the %d it missed", got, len(ids))
	}
}

// A Campbell with the wrong peer secret is refused by its neighbours: the
// handshakes fail as bad_secret on Smith and Singleton, their links to
// Campbell stay down, and records cross in neither direction. The real
// Campbell then comes back and catches up.
func TestWrongSecretRefused(t *testing.T) {
	t.Parallel()
	h := newHerd(t)
	h.iamat(t, "Campbell", "before.secret")
	h.waitAgree(t)
	nbs := neighbours(t, "Campbell")
	before := map[string]scrape{}
	for _, n := range nbs {
		before[n] = h.scrape(t, n)
	}

	h.replace(t, "Campbell", map[string]string{"HERD_PEER_SECRET": "not-the-herd-secret-0123456789"})
	impostor := h.iamat(t, "Campbell", "impostor.secret")
	h.forget("impostor.secret") // the herd must not hold it
	for _, n := range nbs {
		// Several refusals, redial after redial, and never a link.
		want := before[n].get("herd_peer_handshake_failures_total", labels{"reason": "bad_secret"}) + 3
		eventually(t, converge, n+" refuses Campbell three times as bad_secret", func() (bool, string) {
			m := h.scrape(t, n)
			if up := m.get("herd_peer_up", labels{"peer": "Campbell"}); up != 0 {
				t.Fatalf("%s: herd_peer_up{peer=Campbell} = %v with the wrong secret", n, up)
			}
			got := m.get("herd_peer_handshake_failures_total", labels{"reason": "bad_secret"})
			return got >= want, strconv.FormatFloat(got, 'g', -1, 64)
		})
	}
	for _, n := range nbs {
		if up := h.metric(t, "Campbell", "herd_peer_up", labels{"peer": n}); up != 0 {
			t.Errorf("the impostor: herd_peer_up{peer=%s} = %v", n, up)
		}
	}
	if got := h.metric(t, "Campbell", "herd_peer_handshake_failures_total", nil); got == 0 {
		t.Errorf("the impostor counts no failed handshakes")
	}

	realAt := h.iamat(t, "Smith", "real.secret")
	for _, s := range h.others("Campbell") {
		h.waitKnows(t, s, "real.secret", realAt)
	}
	if got := h.whatsat(t, "Campbell", "real.secret"); got != "" {
		t.Errorf("the impostor knows real.secret: %q", got)
	}
	if got := h.whatsat(t, "Campbell", "before.secret"); got != "" {
		t.Errorf("the impostor knows before.secret: %q", got)
	}
	for _, s := range h.others("Campbell") {
		if got := h.whatsat(t, s, "impostor.secret"); got != "" {
			t.Errorf("%s knows the impostor's client: %q (the impostor said %q)", s, got, impostor)
		}
	}
	if got := h.metric(t, "Campbell", "herd_store_records", nil); got != 1 {
		t.Errorf("the impostor holds %v records, want only its own client's", got)
	}

	h.restore(t, "Campbell")
	for _, n := range nbs {
		h.waitMetric(t, n, "herd_peer_up", labels{"peer": "Campbell"}, "links to the real Campbell", equal(1))
	}
	h.waitAgree(t)
	if got := h.whatsat(t, "Hill", "impostor.secret"); got != "" {
		t.Errorf("Hill knows the impostor's client after the restore: %q", got)
	}
}
