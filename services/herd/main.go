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
// Every command answers -h and --help with its usage. Each has a file of
// its own (serve.go, local.go, ...) with its usage text and flags; this
// one only dispatches.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	// CA roots for HTTPS to Google from an image with no /etc/ssl.
	_ "golang.org/x/crypto/x509roots/fallback"
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

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run runs the command args names with the arguments after it, and
// returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "serve":
		return serveCmd(ctx, args, stdout, stderr)
	case "local":
		return localCmd(ctx, args, stdout, stderr)
	case "client":
		return clientCmd(ctx, args, stdin, stdout, stderr)
	case "bench":
		return benchCmd(ctx, args, stdin, stdout, stderr)
	case "health":
		return healthCmd(ctx, args, stdout, stderr)
	case "journal":
		return journalCmd(args, stdout, stderr)
	case "version":
		return versionCmd(args, stdout)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "herd: unknown command %q\n\n%s", cmd, usage)
	return 2
}
