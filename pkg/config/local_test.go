package config

import (
	"slices"
	"strconv"
	"testing"

	"github.com/herdkit/herd/pkg/topology"
)

// TestDerived: the servers of a derived herd are named base-i and linked
// as topology.Neighbours links their indexes.
func TestDerived(t *testing.T) {
	tests := []struct {
		name string
		base string
		n    int
		want []topology.Server
	}{
		{"none", "herd", 0, nil},
		{"alone", "herd", 1, []topology.Server{{Name: "herd-0"}}},
		{"three, complete", "my-herd", 3, []topology.Server{
			{Name: "my-herd-0", Neighbours: []string{"my-herd-1", "my-herd-2"}},
			{Name: "my-herd-1", Neighbours: []string{"my-herd-0", "my-herd-2"}},
			{Name: "my-herd-2", Neighbours: []string{"my-herd-0", "my-herd-1"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Derived(tt.base, tt.n)
			if !slices.EqualFunc(got, tt.want, func(a, b topology.Server) bool {
				return a.Name == b.Name && slices.Equal(a.Neighbours, b.Neighbours)
			}) {
				t.Errorf("Derived(%q, %d) = %v, want %v", tt.base, tt.n, got, tt.want)
			}
		})
	}
}

// TestLocalHerdOfNServers: `herd local -servers 9` gives herd-0 to
// herd-8 the neighbours HERD_SERVERS=9 derives, on consecutive ports.
func TestLocalHerdOfNServers(t *testing.T) {
	ports := Ports{Client: 20000, Peer: 21000, Metrics: 22000}
	cfgs, err := LocalHerd(map[string]string{"HERD_SERVERS": "3", "HERD_PEER_TEMPLATE": "x:{i}"}, ports, Derived("herd", 9))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfgs) != 9 {
		t.Fatalf("%d servers", len(cfgs))
	}
	for i, c := range cfgs {
		derived, err := FromMap(map[string]string{"HERD_NAME": "herd-" + strconv.Itoa(i), "HERD_SERVERS": "9",
			"HERD_PEER_TEMPLATE": "127.0.0.1:21{i}", "HERD_PEER_SECRET": "0123456789abcdef"})
		if err != nil {
			t.Fatal(err)
		}
		var got, want []string
		for _, p := range c.Peers {
			got = append(got, p.Name)
			if p.Addr != "127.0.0.1:2100"+p.Name[len("herd-"):] {
				t.Errorf("%s: neighbour %s at %s", c.Name, p.Name, p.Addr)
			}
		}
		for _, p := range derived.Peers {
			want = append(want, p.Name)
		}
		if c.Name != derived.Name || !slices.Equal(got, want) {
			t.Errorf("%s links to %v; HERD_SERVERS=9 gives %s %v", c.Name, got, derived.Name, want)
		}
		if c.ClientAddr != "127.0.0.1:2000"+strconv.Itoa(i) || c.MetricsAddr != "127.0.0.1:2200"+strconv.Itoa(i) {
			t.Errorf("%s: client %s, metrics %s", c.Name, c.ClientAddr, c.MetricsAddr)
		}
	}
	classic, err := LocalHerd(nil, ports, topology.Classic)
	if err != nil || len(classic) != 5 || classic[0].Name != "Hill" {
		t.Fatalf("the classic herd: %d servers, %v", len(classic), err)
	}
	if got := classic[0].Peers.String(); got != "Jaquez=127.0.0.1:21001,Smith=127.0.0.1:21002" {
		t.Errorf("Hill's neighbours %s", got)
	}
}
