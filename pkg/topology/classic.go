package topology

// Server is one server of a herd's topology: its name and its
// neighbours' names.
type Server struct {
	Name       string
	Neighbours []string
}

// Classic is the five-server herd of PROTOCOL.md, in its order: the
// order gives the default ports (package config: client 12200 + i, peer
// 12300 + i, metrics 9200 + i on 127.0.0.1). Any server is at most two
// hops from any other, and exactly three pairs of servers split the herd
// when both are down: Hill and Singleton, Jaquez and Smith, Smith and
// Singleton.
var Classic = []Server{
	{Name: "Hill", Neighbours: []string{"Jaquez", "Smith"}},
	{Name: "Jaquez", Neighbours: []string{"Hill", "Singleton"}},
	{Name: "Smith", Neighbours: []string{"Hill", "Campbell", "Singleton"}},
	{Name: "Campbell", Neighbours: []string{"Smith", "Singleton"}},
	{Name: "Singleton", Neighbours: []string{"Jaquez", "Smith", "Campbell"}},
}
