package node

import (
	"slices"
	"strconv"
	"testing"

	"github.com/herdkit/herd/pkg/config"
)

// TestLocalConfigsOfNServers: `herd local -servers 9` gives herd-0 to
// herd-8 the neighbours HERD_SERVERS=9 derives, on consecutive ports.
func TestLocalConfigsOfNServers(t *testing.T) {
	ports := Ports{Client: 20000, Peer: 21000, Metrics: 22000}
	cfgs, err := LocalConfigs(map[string]string{"HERD_SERVERS": "3", "HERD_PEER_TEMPLATE": "x:{i}"}, ports, 9)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfgs) != 9 {
		t.Fatalf("%d servers", len(cfgs))
	}
	for i, c := range cfgs {
		derived, err := config.FromMap(map[string]string{"HERD_NAME": "herd-" + strconv.Itoa(i), "HERD_SERVERS": "9",
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
	classic, err := LocalConfigs(nil, ports, 0)
	if err != nil || len(classic) != 5 || classic[0].Name != "Hill" {
		t.Errorf("-servers 0: %d servers, %v", len(classic), err)
	}
}
