package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestEveryCommandHelps: every command answers -h and --help with its
// usage and exit 0, and reads no configuration first (`herd serve --help`
// with no HERD_NAME set). The usage goes to standard output, or to
// standard error for the tools (client, bench), whose flag sets follow
// the flag package's habit.
func TestEveryCommandHelps(t *testing.T) {
	t.Setenv("HERD_NAME", "")
	for _, cmd := range [][]string{{"serve"}, {"local"}, {"client"}, {"bench"}, {"bench", "load"}, {"health"}, {"journal"}, {"version"}, {}} {
		for _, flag := range []string{"-h", "--help"} {
			args := append(append([]string{}, cmd...), flag)
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				var out, errOut strings.Builder
				code := run(context.Background(), args, strings.NewReader(""), &out, &errOut)
				want := "usage: herd " + strings.Join(cmd, " ")
				if len(cmd) == 0 {
					want = "usage: herd <command>"
				}
				usage := out.String()
				if len(cmd) > 0 && (cmd[0] == "client" || cmd[0] == "bench") {
					usage = out.String() + errOut.String()
				}
				if code != 0 || !strings.HasPrefix(usage, want) {
					t.Errorf("exit %d, stdout %q, stderr %q; want exit 0 and %q", code, out.String(), errOut.String(), want+"...")
				}
				if len(cmd) > 0 && cmd[0] == "local" && !strings.Contains(usage, "  -servers int") {
					t.Errorf("herd local's usage does not list its flags:\n%s", usage)
				}
			})
		}
	}
}

// TestHealthURL: `herd health` takes a node's base URL, host:port or a
// full URL, and probes /readyz unless a path is given.
func TestHealthURL(t *testing.T) {
	var last atomic.Value
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		last.Store(r.URL.Path)
		if r.URL.Path != "/readyz" && r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("ready\n"))
	}))
	defer ts.Close()
	host := strings.TrimPrefix(ts.URL, "http://")
	for _, tc := range []struct {
		name, arg, path string
		code            int
	}{
		{"base URL", ts.URL, "/readyz", 0},
		{"base URL with a slash", ts.URL + "/", "/readyz", 0},
		{"host:port", host, "/readyz", 0},
		{"full URL", ts.URL + "/healthz", "/healthz", 0},
		{"a path that is not there", ts.URL + "/nothing", "/nothing", 1},
		{"not a URL", "ftp://" + host, "", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			last.Store("")
			var out, errOut strings.Builder
			code := run(context.Background(), []string{"health", tc.arg}, strings.NewReader(""), &out, &errOut)
			if code != tc.code || last.Load() != tc.path {
				t.Errorf("herd health %s: exit %d, path %q (stdout %q, stderr %q); want exit %d, path %q",
					tc.arg, code, last.Load(), out.String(), errOut.String(), tc.code, tc.path)
			}
		})
	}
}

// TestHealthDefaultURL: without URL, `herd health` asks /readyz on
// HERD_METRICS_ADDR of this host, a wildcard host on 127.0.0.1, and
// prints the answer.
func TestHealthDefaultURL(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("ready\n"))
	}))
	defer ts.Close()
	_, port, err := net.SplitHostPort(strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, addr, out string
		code            int
	}{
		{"host:port", "127.0.0.1:" + port, "ready\n", 0},
		{"every interface", ":" + port, "ready\n", 0},
		{"every IPv4 interface", "0.0.0.0:" + port, "ready\n", 0},
		{"every IPv6 interface", "[::]:" + port, "ready\n", 0},
		{"not host:port", "nonsense", "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("HERD_METRICS_ADDR", tc.addr)
			var out, errOut strings.Builder
			code := run(context.Background(), []string{"health"}, strings.NewReader(""), &out, &errOut)
			if code != tc.code || out.String() != tc.out {
				t.Errorf("HERD_METRICS_ADDR=%s herd health: exit %d, stdout %q, stderr %q; want exit %d, stdout %q",
					tc.addr, code, out.String(), errOut.String(), tc.code, tc.out)
			}
		})
	}
}
