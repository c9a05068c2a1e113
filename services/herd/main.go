// Command herd runs and measures a herd of location servers.
//
//	herd serve           run one node, configured by HERD_ environment variables
//	herd local           run the classic five-server herd, or -servers N, in this process
//	herd client [ADDR]   talk to a node by hand, or send one command
//	herd bench MODE      measure a herd: load, propagation, floor
//	herd health [URL]    probe a node's /readyz (the container healthcheck)
//	herd journal check|repair DIR   inspect or repair a data directory
//	herd version         print the version and revision
//
// Every command answers -h and --help with its usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	// CA roots for HTTPS to Google from an image with no /etc/ssl.
	_ "golang.org/x/crypto/x509roots/fallback"

	"github.com/herdkit/herd/pkg/config"
	"github.com/herdkit/herd/pkg/journal"
	"github.com/herdkit/herd/pkg/logging"
	"github.com/herdkit/herd/pkg/metrics"
	"github.com/herdkit/herd/pkg/node"
	"github.com/herdkit/herd/pkg/tools/bench"
	"github.com/herdkit/herd/pkg/tools/client"
	"github.com/herdkit/herd/pkg/topology"
)

const usage = `usage: herd <command> [arguments]

commands:
  serve           run one node, configured by HERD_ environment variables
  local [flags]   run the classic five-server herd, or -servers N, in this process
  client [ADDR]   talk to a node by hand, or send one command
  bench MODE      measure a herd: load, propagation, floor
  health [URL]    probe a node's /readyz, exit 0 when ready
  journal check DIR    print what a data directory holds, exit 0 when whole, 1 when damaged
  journal repair DIR   keep what is valid in a damaged data directory, so that a node can start
  version         print the version and revision

Every command answers -h and --help with its usage.
`

const serveUsage = `usage: herd serve

Runs one node of a herd, configured only by HERD_ environment variables
(HERD_NAME is required; README.md lists every variable, its default and
its range). It serves the client protocol, the peer links and
/metrics, /healthz and /readyz, until SIGINT or SIGTERM.
`

const localUsage = `usage: herd local [-servers N] [-client-port 12200] [-peer-port 12300] [-metrics-port 9200]

Runs the classic five-server herd (Hill, Jaquez, Smith, Campbell,
Singleton), or with -servers N the derived herd herd-0 to herd-(N-1), in
this process, on 127.0.0.1, with the offline places data and a random
peer secret; server i listens on each port plus i. Other HERD_ variables
apply to every server.

flags:
`

const healthUsage = `usage: herd health [URL]

Probes a node's readiness, as the image's healthcheck does, and prints its
answer: exit 0 when ready, 1 when not or unreachable. URL is a node's
metrics address: a base URL (http://127.0.0.1:9200, whose /readyz is
asked), host:port, or a full URL with its path. Without URL, it asks
/readyz on HERD_METRICS_ADDR (default :9100) of this host.
`

const journalUsage = `usage: herd journal check DIR | herd journal repair DIR

check prints what a data directory holds: exit 0 whole, 1 damaged, 2 error.
repair keeps what is valid, so that a node without neighbours can start
again. Both refuse while a node uses DIR.
`

const versionUsage = `usage: herd version

Prints the version, the VCS revision and the Go version of this binary.
`

// isHelp reports whether args asks for a command's usage.
func isHelp(args []string) bool {
	return len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help")
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "serve":
		if isHelp(args) {
			fmt.Fprint(stdout, serveUsage)
			return 0
		}
		if len(args) > 0 {
			fmt.Fprintf(stderr, "herd serve takes no arguments, only HERD_ environment variables\n\n%s", serveUsage)
			return 2
		}
		cfg, err := config.Load()
		if err != nil {
			fmt.Fprintf(stderr, "herd: configuration:\n%s\n", indent(err))
			return 2
		}
		return withLogger(node.LogConfig(cfg), stderr, func(log *logging.Log) error { return node.Serve(ctx, cfg, log) })
	case "local":
		fs := flag.NewFlagSet("herd local", flag.ContinueOnError)
		fs.SetOutput(stderr)
		fs.Usage = func() {
			fmt.Fprint(fs.Output(), localUsage)
			fs.PrintDefaults()
		}
		ports := node.ClassicPorts
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
		if err := checkLocalPorts(ports, len(node.LocalHerd(*servers))); err != nil {
			fmt.Fprintf(stderr, "herd local: %v\n", err)
			return 2
		}
		cfgs, err := node.LocalConfigs(herdEnv(), ports, *servers)
		if err != nil {
			fmt.Fprintf(stderr, "herd: configuration:\n%s\n", indent(err))
			return 2
		}
		return withLogger(node.LogConfig(cfgs[0]), stderr, func(log *logging.Log) error { return node.Local(ctx, cfgs, log) })
	case "client":
		return client.Run(ctx, args, stdin, stdout, stderr)
	case "bench":
		return bench.Run(ctx, args, stdin, stdout, stderr)
	case "health":
		if isHelp(args) {
			fmt.Fprint(stdout, healthUsage)
			return 0
		}
		if len(args) > 1 {
			fmt.Fprint(stderr, healthUsage)
			return 2
		}
		url := ""
		if len(args) > 0 {
			var err error
			if url, err = readyzURL(args[0]); err != nil {
				fmt.Fprintf(stderr, "herd health: %v\n\n%s", err, healthUsage)
				return 2
			}
		}
		addr := os.Getenv("HERD_METRICS_ADDR")
		if addr == "" {
			addr = config.Default("HERD_METRICS_ADDR")
		}
		if err := node.Health(ctx, url, addr, stdout); err != nil {
			fmt.Fprintf(stderr, "herd health: %v\n", err)
			return 1
		}
		return 0
	case "journal":
		if isHelp(args) {
			fmt.Fprint(stdout, journalUsage)
			return 0
		}
		return journalCmd(args, stdout, stderr)
	case "version":
		if isHelp(args) {
			fmt.Fprint(stdout, versionUsage)
			return 0
		}
		version, revision := metrics.Build()
		fmt.Fprintln(stdout, "herd", version, revision, runtime.Version())
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "herd: unknown command %q\n\n%s", cmd, usage)
	return 2
}

// journalCmd runs `herd journal check|repair DIR`. Both take the data
// directory's lock, so they refuse while a node runs.
func journalCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) != 2 || (args[0] != "check" && args[0] != "repair") {
		fmt.Fprint(stderr, journalUsage)
		return 2
	}
	var rep journal.Report
	var err error
	if args[0] == "check" {
		rep, err = journal.Check(args[1])
	} else {
		rep, err = journal.Repair(args[1], slog.New(slog.NewTextHandler(stderr, nil)))
	}
	if err != nil {
		fmt.Fprintf(stderr, "herd journal %s: %v\n", args[0], err)
		return 2
	}
	rep.Print(stdout)
	if !rep.Whole() {
		return 1
	}
	return 0
}

// withLogger runs f with the configured logger and reports its error.
func withLogger(cfg logging.Config, stderr io.Writer, f func(*logging.Log) error) int {
	log, closeLog, err := logging.Open(cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "herd: HERD_LOG_FILE: %v\n", err)
		return 2
	}
	err = f(log)
	if err != nil {
		log.Error("herd stopped", "err", err)
	}
	closeLog()
	if err != nil {
		return 1
	}
	return 0
}

// checkLocalPorts checks the port flags of `herd local`, whose n servers
// listen on each base port plus 0 to n-1: every such port is within 1 to
// 65535 and no two ranges overlap. It names the flag, since the variables
// the ports become (HERD_CLIENT_ADDR ...) are not the user's.
func checkLocalPorts(ports node.Ports, n int) error {
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

// readyzURL turns the argument of `herd health` into the URL to probe:
// a base URL or host:port gets the path /readyz, a URL with a path keeps
// it.
func readyzURL(arg string) (string, error) {
	if !strings.Contains(arg, "://") {
		arg = "http://" + arg
	}
	u, err := url.Parse(arg)
	if err != nil {
		return "", err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an http URL or host:port of a node's metrics address", arg)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/readyz"
	}
	return u.String(), nil
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

func indent(err error) string {
	return "  " + strings.ReplaceAll(err.Error(), "\n", "\n  ")
}
