package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/herdkit/herd/pkg/config"
	"github.com/herdkit/herd/pkg/logging"
	"github.com/herdkit/herd/pkg/places/offline"
	"github.com/herdkit/herd/pkg/topology"
)

// Serve runs one node configured by cfg until ctx is done, then shuts it
// down within cfg.ShutdownTimeout: `herd serve`.
func Serve(ctx context.Context, cfg config.Config, log *logging.Log) error {
	if cfg.PeerSecret == config.DevPeerSecret {
		log.Warn("HERD_PEER_SECRET is the development default; set a secret of your own outside development")
	}
	n, err := New(cfg, log)
	if err != nil {
		return err
	}
	if err := n.Start(); err != nil {
		return err
	}
	return wait(ctx, cfg.ShutdownTimeout, n)
}

// wait runs until ctx is done or a node fails, then shuts the nodes down.
func wait(ctx context.Context, timeout time.Duration, nodes ...*Node) error {
	errs := make(chan error, len(nodes))
	for _, n := range nodes {
		go func() {
			select {
			case err := <-n.Err():
				errs <- err
			case <-ctx.Done():
			}
		}()
	}
	var failure error
	select {
	case <-ctx.Done():
	case failure = <-errs:
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, n := range nodes {
		if err := n.Shutdown(sctx); err != nil && failure == nil {
			failure = fmt.Errorf("shutdown: %w", err)
		}
	}
	return failure
}

// Ports are the first ports of a one-process herd; server i listens on
// each plus i, on 127.0.0.1.
type Ports struct{ Client, Peer, Metrics int }

// ClassicPorts are the ports of PROTOCOL.md: clients 12200 to 12204,
// peers 12300 to 12304, metrics 9200 to 9204.
var ClassicPorts = Ports{Client: config.ClassicClientPort, Peer: config.ClassicPeerPort, Metrics: config.ClassicMetricsPort}

// LocalHerd returns the servers of `herd local -servers n`: the classic
// five for 0, and otherwise herd-0 to herd-(n-1) linked as package
// topology derives, as n servers given HERD_SERVERS=n are.
func LocalHerd(n int) []config.Server {
	if n == 0 {
		return config.Classic
	}
	herd := make([]config.Server, n)
	for i := range herd {
		herd[i].Name = "herd-" + strconv.Itoa(i)
		for _, j := range topology.Neighbours(i, n) {
			herd[i].Neighbours = append(herd[i].Neighbours, "herd-"+strconv.Itoa(j))
		}
	}
	return herd
}

// LocalConfigs returns the configuration of a herd in one process, `herd
// local`: the servers of LocalHerd(servers) on the given ports on
// 127.0.0.1, the offline places provider, and a peer secret drawn at
// random. Other settings come from env, the process environment's HERD_
// variables; an error is about those, the same for every node, so it does
// not name one.
func LocalConfigs(env map[string]string, ports Ports, servers int) ([]config.Config, error) {
	key := make([]byte, 24)
	rand.Read(key)
	secret := hex.EncodeToString(key)
	addr := func(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
	herd := LocalHerd(servers)
	index := map[string]int{}
	for i, s := range herd {
		index[s.Name] = i
	}
	var cfgs []config.Config
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
		vars["HERD_PLACES"] = config.PlacesOffline
		cfg, err := config.FromMap(vars)
		if err != nil {
			return nil, err
		}
		cfgs = append(cfgs, cfg)
	}
	return cfgs, nil
}

// Local runs the herd of LocalConfigs in one process until ctx is done:
// `herd local`. The nodes share one offline places data set and one
// log, each record tagged with its node.
func Local(ctx context.Context, cfgs []config.Config, log *logging.Log) error {
	shared := offline.New(log.Logger)
	var nodes []*Node
	for _, cfg := range cfgs {
		n, err := New(cfg, log.With("node", cfg.Name), WithPlaces(shared))
		if err == nil {
			err = n.Start()
		}
		if err != nil {
			sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
			for _, started := range nodes {
				started.Shutdown(sctx)
			}
			cancel()
			return fmt.Errorf("%s: %w", cfg.Name, err)
		}
		nodes = append(nodes, n)
	}
	return wait(ctx, cfgs[0].ShutdownTimeout, nodes...)
}

// Health probes a node's /readyz, as the container healthcheck does:
// `herd health [URL]`. The default URL is built from HERD_METRICS_ADDR.
func Health(ctx context.Context, url string, metricsAddr string, out io.Writer) error {
	if url == "" {
		host, port, err := net.SplitHostPort(metricsAddr)
		if err != nil {
			return fmt.Errorf("HERD_METRICS_ADDR: %q is not host:port", metricsAddr)
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		url = "http://" + net.JoinHostPort(host, port) + "/readyz"
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	fmt.Fprint(out, string(body))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}
