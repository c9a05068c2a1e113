package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/herdkit/herd/pkg/config"
)

const healthUsage = `usage: herd health [URL]

Probes a node's readiness, as the image's healthcheck does, and prints its
answer: exit 0 when ready, 1 when not or unreachable. URL is a node's
metrics address: a base URL (http://127.0.0.1:9200, whose /readyz is
asked), host:port, or a full URL with its path. Without URL, it asks
/readyz on HERD_METRICS_ADDR (default :9100) of this host.
`

// healthTimeout bounds a probe: a healthcheck that hangs is worse than
// one that fails.
const healthTimeout = 2 * time.Second

// healthCmd runs `herd health [URL]`.
func healthCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if isHelp(args) {
		fmt.Fprint(stdout, healthUsage)
		return 0
	}
	if len(args) > 1 {
		fmt.Fprint(stderr, healthUsage)
		return 2
	}
	var u string
	var err error
	if len(args) > 0 {
		u, err = readyzURL(args[0])
		if err != nil {
			fmt.Fprintf(stderr, "herd health: %v\n\n%s", err, healthUsage)
			return 2
		}
	} else {
		addr := os.Getenv("HERD_METRICS_ADDR")
		if addr == "" {
			addr = config.Default("HERD_METRICS_ADDR")
		}
		u, err = localReadyzURL(addr)
	}
	if err == nil {
		err = probe(ctx, u, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "herd health: %v\n", err)
		return 1
	}
	return 0
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

// localReadyzURL returns the /readyz URL of a node on this host whose
// HERD_METRICS_ADDR is metricsAddr: a wildcard host is asked on
// 127.0.0.1.
func localReadyzURL(metricsAddr string) (string, error) {
	host, port, err := net.SplitHostPort(metricsAddr)
	if err != nil {
		return "", fmt.Errorf("HERD_METRICS_ADDR: %q is not host:port", metricsAddr)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz", nil
}

// probe asks u, prints the first KiB of its answer to out, and returns
// an error unless the answer is 200 OK.
func probe(ctx context.Context, u string, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
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
		return fmt.Errorf("%s: %s", u, resp.Status)
	}
	return nil
}
