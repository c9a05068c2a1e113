package topology

import "testing"

// connected reports whether the servers of herd that are not down can all
// reach each other.
func connected(herd []Server, down map[string]bool) bool {
	adj := map[string][]string{}
	var start string
	alive := 0
	for _, s := range herd {
		if down[s.Name] {
			continue
		}
		alive++
		start = s.Name
		adj[s.Name] = s.Neighbours
	}
	seen := map[string]bool{}
	var visit func(string)
	visit = func(n string) {
		if seen[n] || down[n] {
			return
		}
		seen[n] = true
		for _, m := range adj[n] {
			visit(m)
		}
	}
	if alive > 0 {
		visit(start)
	}
	return len(seen) == alive
}

func TestConnected(t *testing.T) {
	line := []Server{{"a", []string{"b"}}, {"b", []string{"a", "c"}}, {"c", []string{"b"}}}
	tests := []struct {
		name string
		down []string
		want bool
	}{
		{"all up", nil, true},
		{"an end down", []string{"a"}, true},
		{"the middle down", []string{"b"}, false},
		{"all down", []string{"a", "b", "c"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			down := map[string]bool{}
			for _, d := range tt.down {
				down[d] = true
			}
			if got := connected(line, down); got != tt.want {
				t.Errorf("connected with %v down = %v, want %v", tt.down, got, tt.want)
			}
		})
	}
}

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
			if !connected(Classic, map[string]bool{a.Name: true, b.Name: true}) {
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
