package config

import "testing"

// TestClassicMatchesProtocol checks the topology against PROTOCOL.md:
// links are symmetric, any server is at most two hops from any other, and
// exactly three pairs of servers split the herd when down.
func TestClassicMatchesProtocol(t *testing.T) {
	links := map[[2]string]bool{}
	for _, s := range Classic {
		for _, n := range s.Neighbours {
			links[[2]string{s.Name, n}] = true
		}
	}
	for l := range links {
		if !links[[2]string{l[1], l[0]}] {
			t.Errorf("link %s-%s is one-way", l[0], l[1])
		}
	}
	for _, a := range Classic {
		for _, b := range Classic {
			if a.Name == b.Name || links[[2]string{a.Name, b.Name}] {
				continue
			}
			common := false
			for _, n := range a.Neighbours {
				common = common || links[[2]string{n, b.Name}]
			}
			if !common {
				t.Errorf("%s and %s are more than two hops apart", a.Name, b.Name)
			}
		}
	}
	splits := map[[2]string]bool{}
	for i, a := range Classic {
		for _, b := range Classic[i+1:] {
			if !Connected(Classic, map[string]bool{a.Name: true, b.Name: true}) {
				splits[[2]string{a.Name, b.Name}] = true
			}
		}
	}
	want := map[[2]string]bool{{"Hill", "Singleton"}: true, {"Jaquez", "Smith"}: true, {"Smith", "Singleton"}: true}
	if len(splits) != len(want) {
		t.Errorf("splitting pairs %v, want %v", splits, want)
	}
	for p := range want {
		if !splits[p] {
			t.Errorf("pair %v should split the herd", p)
		}
	}
}
