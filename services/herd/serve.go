package main

import (
	"context"
	"fmt"
	"io"

	"github.com/herdkit/herd/pkg/config"
	"github.com/herdkit/herd/pkg/logging"
	"github.com/herdkit/herd/pkg/node"
)

const serveUsage = `usage: herd serve

Runs one node of a herd, configured only by HERD_ environment variables
(HERD_NAME is required; docs/configuration.md lists every variable, its
default and its range). It serves the client protocol, the peer links and
/metrics, /healthz and /readyz, until SIGINT or SIGTERM.
`

// serveCmd runs `herd serve`: one node configured by the environment,
// until ctx is done.
func serveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
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
}
