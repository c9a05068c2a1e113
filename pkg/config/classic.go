package config

// Server is one server of a herd's topology.
type Server struct {
	Name       string
	Neighbours []string
}

// Classic is the five-server herd of PROTOCOL.md, in its order: the
// order gives the default ports (client 12200 + i, peer 12300 + i,
// metrics 9200 + i on 127.0.0.1). Any server is at most two hops from any
// other.
var Classic = []Server{
	{Name: "Hill", Neighbours: []string{"Jaquez", "Smith"}},
	{Name: "Jaquez", Neighbours: []string{"Hill", "Singleton"}},
	{Name: "Smith", Neighbours: []string{"Hill", "Campbell", "Singleton"}},
	{Name: "Campbell", Neighbours: []string{"Smith", "Singleton"}},
	{Name: "Singleton", Neighbours: []string{"Jaquez", "Smith", "Campbell"}},
}

// Default ports of the classic herd's server i on 127.0.0.1.
const (
	ClassicClientPort  = 12200
	ClassicPeerPort    = 12300
	ClassicMetricsPort = 9200
)

// Connected reports whether the servers of a topology that are not down
// can all reach each other.
func Connected(herd []Server, down map[string]bool) bool {
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
