package config

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"strconv"
	"strings"

	"github.com/herdkit/herd/pkg/topology"
)

// Default ports of the classic herd's server i (topology.Classic) on
// 127.0.0.1: the ports of PROTOCOL.md, those of `herd local` and of the
// compose herd's published ports.
const (
	ClassicClientPort  = 12200
	ClassicPeerPort    = 12300
	ClassicMetricsPort = 9200
)

// Ports are the first ports of a herd in one process; server i listens on
// each plus i, on 127.0.0.1.
type Ports struct{ Client, Peer, Metrics int }

// LocalHerd returns the configuration of the servers of herd run in one
// process, as `herd local` runs them: on the given ports on 127.0.0.1,
// each linked to its neighbours there, with the offline places provider
// and a peer secret drawn at random. Other settings come from env, the
// process environment's HERD_ variables; an error is about those, the
// same for every server, so it does not name one.
//
// It is configuration (HERD_ variables in, a Config out), and it lives
// here rather than beside the command in services/herd because test/
// starts the same herd in its own process.
func LocalHerd(env map[string]string, ports Ports, herd []topology.Server) ([]Config, error) {
	key := make([]byte, 24)
	rand.Read(key)
	secret := hex.EncodeToString(key)
	addr := func(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
	index := map[string]int{}
	for i, s := range herd {
		index[s.Name] = i
	}
	var cfgs []Config
	for i, s := range herd {
		vars := map[string]string{}
		for k, v := range env {
			vars[k] = v
		}
		// The neighbours are listed; a derived herd's variables would only
		// be ignored.
		delete(vars, "HERD_SERVERS")
		delete(vars, "HERD_PEER_TEMPLATE")
		var peers []string
		for _, nb := range s.Neighbours {
			peers = append(peers, nb+"="+addr(ports.Peer+index[nb]))
		}
		vars["HERD_NAME"] = s.Name
		vars["HERD_CLIENT_ADDR"] = addr(ports.Client + i)
		vars["HERD_PEER_ADDR"] = addr(ports.Peer + i)
		vars["HERD_METRICS_ADDR"] = addr(ports.Metrics + i)
		vars["HERD_PEERS"] = strings.Join(peers, ",")
		vars["HERD_PEER_SECRET"] = secret
		vars["HERD_PLACES"] = PlacesOffline
		cfg, err := FromMap(vars)
		if err != nil {
			return nil, err
		}
		cfgs = append(cfgs, cfg)
	}
	return cfgs, nil
}
