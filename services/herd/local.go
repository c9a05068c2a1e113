package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/herdkit/herd/pkg/config"
	"github.com/herdkit/herd/pkg/logging"
	"github.com/herdkit/herd/pkg/node"
	"github.com/herdkit/herd/pkg/places/offline"
	"github.com/herdkit/herd/pkg/topology"
)

const localUsage = `usage: herd local [-servers N] [-client-port 12200] [-peer-port 12300] [-metrics-port 9200]

Runs the classic five-server herd (Hill, Jaquez, Smith, Campbell,
Singleton), or with -servers N the derived herd herd-0 to herd-(N-1), in
this process, on 127.0.0.1, with the offline places data and a random
peer secret; server i listens on each port plus i. Other HERD_ variables
apply to every server.

flags:
`

// localCmd runs `herd local`: a herd of nodes in this process until ctx
// is done.
func localCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("herd local", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), localUsage)
		fs.PrintDefaults()
	}
	ports := config.Ports{Client: config.ClassicClientPort, Peer: config.ClassicPeerPort, Metrics: config.ClassicMetricsPort}
	fs.IntVar(&ports.Client, "client-port", ports.Client, "client port of the first server (Hill, or herd-0); the others follow")
	fs.IntVar(&ports.Peer, "peer-port", ports.Peer, "peer port of the first server; the others follow")
	fs.IntVar(&ports.Metrics, "metrics-port", ports.Metrics, "metrics port of the first server; the others follow")
	servers := fs.Int("servers", 0, "run herd-0 to herd-(N-1) linked as HERD_SERVERS=N links them (docs/topology.md), instead of the classic five; 1 to 1024")
	if isHelp(args) { // after the flags are defined, so that the usage lists them
		fs.SetOutput(stdout)
		fs.Usage()
		return 0
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0 // -h after other flags: the usage went to stderr
		}
		return 2
	}
	if *servers < 0 || *servers > topology.MaxServers {
		fmt.Fprintf(stderr, "herd local: -servers: %d is not within 1 to %d\n", *servers, topology.MaxServers)
		return 2
	}
	herd := topology.Classic
	if *servers > 0 {
		herd = config.Derived("herd", *servers)
	}
	if err := checkLocalPorts(ports, len(herd)); err != nil {
		fmt.Fprintf(stderr, "herd local: %v\n", err)
		return 2
	}
	cfgs, err := config.LocalHerd(herdEnv(), ports, herd)
	if err != nil {
		fmt.Fprintf(stderr, "herd: configuration:\n%s\n", indent(err))
		return 2
	}
	return withLogger(node.LogConfig(cfgs[0]), stderr, func(log *logging.Log) error { return runLocal(ctx, cfgs, log) })
}

// checkLocalPorts checks the port flags of `herd local`, whose n servers
// listen on each base port plus 0 to n-1: every such port is within 1 to
// 65535 and no two ranges overlap. It names the flag, since the variables
// the ports become (HERD_CLIENT_ADDR ...) are not the user's.
func checkLocalPorts(ports config.Ports, n int) error {
	last := n - 1
	flags := []struct {
		name string
		base int
	}{{"-client-port", ports.Client}, {"-peer-port", ports.Peer}, {"-metrics-port", ports.Metrics}}
	var errs []error
	for _, f := range flags {
		if f.base < 1 || f.base > 65535-last {
			errs = append(errs, fmt.Errorf("%s: %d is not within 1 to %d (the servers use it to it+%d)", f.name, f.base, 65535-last, last))
		}
	}
	if errs != nil {
		return errors.Join(errs...)
	}
	for i, f := range flags {
		for _, g := range flags[:i] {
			if f.base <= g.base+last && g.base <= f.base+last {
				errs = append(errs, fmt.Errorf("%s: %d to %d overlaps %s's %d to %d", f.name, f.base, f.base+last, g.name, g.base, g.base+last))
			}
		}
	}
	return errors.Join(errs...)
}

// herdEnv returns the process's HERD_ variables.
func herdEnv() map[string]string {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "HERD_") {
			env[k] = v
		}
	}
	return env
}

// runLocal runs the nodes of cfgs in this process until ctx is done or
// one fails. They share one offline places data set and one log, each
// record tagged with its node. If a node cannot start, those started
// before it are shut down.
func runLocal(ctx context.Context, cfgs []config.Config, log *logging.Log) error {
	shared := offline.New(log.Logger)
	var nodes []*node.Node
	for _, cfg := range cfgs {
		n, err := node.New(cfg, log.With("node", cfg.Name), node.WithPlaces(shared))
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
	return node.Wait(ctx, cfgs[0].ShutdownTimeout, nodes...)
}
