package e2e

import (
	"fmt"
	"slices"
	"testing"

	"github.com/herdkit/herd/pkg/topology"
)

// components splits the servers of topology.Classic that are not down into
// the groups that can reach each other, as a map from server to the
// sorted members of its group.
func components(down map[string]bool) map[string][]string {
	group := map[string][]string{}
	for _, s := range topology.Classic {
		if down[s.Name] || group[s.Name] != nil {
			continue
		}
		var members []string
		seen := map[string]bool{s.Name: true}
		queue := []string{s.Name}
		for len(queue) > 0 {
			n := queue[0]
			queue = queue[1:]
			members = append(members, n)
			for _, c := range topology.Classic {
				if c.Name != n {
					continue
				}
				for _, nb := range c.Neighbours {
					if !down[nb] && !seen[nb] {
						seen[nb] = true
						queue = append(queue, nb)
					}
				}
			}
		}
		slices.Sort(members)
		for _, m := range members {
			group[m] = members
		}
	}
	return group
}

// Each of the ten pairs of servers is killed in turn. A record sent to
// each survivor reaches exactly the survivors it can reach: all of them
// when the survivors stay connected (seven pairs); in the three pairs that
// split the herd, the isolated server neither gets the others' records
// nor gives them its own. Between rounds the pair comes back, and the
// herd agrees again.
func TestEveryPairDown(t *testing.T) {
	t.Parallel()
	h := newHerd(t)
	h.waitAgree(t)

	var splits [][2]string
	round := 0
	for i, a := range topology.Classic {
		for _, b := range topology.Classic[i+1:] {
			round++
			pair := [2]string{a.Name, b.Name}
			down := map[string]bool{a.Name: true, b.Name: true}
			survivors := h.others(a.Name, b.Name)
			group := components(down)
			connected := len(group[survivors[0]]) == len(survivors)
			t.Logf("round %d: %s and %s down; survivors connected: %v", round, a.Name, b.Name, connected)
			if !connected {
				splits = append(splits, pair)
			}

			base := h.metric(t, survivors[0], "herd_store_records", nil)
			h.kill(t, a.Name)
			h.kill(t, b.Name)
			for _, s := range survivors {
				for _, nb := range neighbours(t, s) {
					if down[nb] {
						h.waitMetric(t, s, "herd_peer_up", labels{"peer": nb}, "shows the link down", equal(0))
					}
				}
			}

			at := map[string]string{} // by survivor: the AT line of the record sent to it
			id := func(s string) string { return fmt.Sprintf("r%02d.%s.pairs", round, s) }
			for _, s := range survivors {
				at[s] = h.iamat(t, s, id(s))
			}
			// First every record where it must go, then (the floods being
			// over) nowhere else.
			for _, s := range survivors {
				for _, o := range group[s] {
					h.waitKnows(t, s, id(o), at[o])
				}
			}
			for _, s := range survivors {
				for _, o := range survivors {
					if slices.Contains(group[s], o) {
						continue
					}
					if got := h.whatsat(t, s, id(o)); got != "" {
						t.Errorf("round %d (%s, %s down): %s knows %s's client, which it cannot reach: %q", round, a.Name, b.Name, s, o, got)
					}
				}
				if got, want := h.metric(t, s, "herd_store_records", nil), base+float64(len(group[s])); got != want {
					t.Errorf("round %d (%s, %s down): %s holds %v records, want %v", round, a.Name, b.Name, s, got, want)
				}
			}
			if !connected {
				for _, s := range survivors {
					if len(group[s]) == 1 {
						rest := map[string]bool{a.Name: true, b.Name: true, s: true}
						if others := h.others(a.Name, b.Name, s); len(components(rest)[others[0]]) != len(others) {
							t.Errorf("round %d: the survivors but %s are not connected either", round, s)
						}
					}
				}
			}

			h.start(t, a.Name, b.Name)
			h.waitAgree(t)
		}
	}
	// PROTOCOL.md names three pairs that split the herd.
	want := [][2]string{{"Hill", "Singleton"}, {"Jaquez", "Smith"}, {"Smith", "Singleton"}}
	if !slices.Equal(splits, want) {
		t.Errorf("the splitting pairs are %v, PROTOCOL.md says %v", splits, want)
	}
}
