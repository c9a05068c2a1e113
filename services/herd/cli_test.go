package main

import (
	"context"
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
