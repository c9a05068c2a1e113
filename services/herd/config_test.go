package main

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// runHerd runs the herd binary with args and exactly env to its end, and
// returns its output and exit status.
func runHerd(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(herdBin, args...)
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	done := make(chan struct{})
	defer close(done)
	go func() { // a configuration that is accepted starts a server: stop it
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
	}()
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

// TestConfigHoles: the configurations of issue 15 that used to be
// accepted exit 2 naming the variable and its range.
func TestConfigHoles(t *testing.T) {
	tests := []struct {
		name, variable, value, want string
	}{
		{"heartbeat whose double overflows", "HERD_PEER_HEARTBEAT", "1500000h", "HERD_PEER_HEARTBEAT: 1500000h0m0s is not within 10ms to 1m"},
		{"backoff of a nanosecond", "HERD_PEER_BACKOFF_MAX", "1ns", "HERD_PEER_BACKOFF_MAX: 1ns is not within 10ms to 10m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := runHerd(t, []string{"HERD_NAME=Hill", "HERD_CLIENT_ADDR=127.0.0.1:0",
				"HERD_PEER_ADDR=127.0.0.1:0", "HERD_METRICS_ADDR=127.0.0.1:0", tt.variable + "=" + tt.value}, "serve")
			if code != 2 || !strings.Contains(out, tt.want) {
				t.Fatalf("exit %d, output:\n%s\nwant exit 2 and %q", code, out, tt.want)
			}
		})
	}
}

// TestLocalPortFlags: `herd local` names the flag that is wrong, not the
// variable it would have become.
func TestLocalPortFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"client port past 65535", []string{"-client-port", "99999"}, "-client-port: 99999 is not within 1 to 65531"},
		{"last peer port past 65535", []string{"-peer-port", "65532"}, "-peer-port: 65532 is not within 1 to 65531"},
		{"metrics port zero", []string{"-metrics-port", "0"}, "-metrics-port: 0 is not within 1 to 65531"},
		{"negative port", []string{"-client-port", "-5"}, "-client-port: -5 is not within"},
		{"overlapping ranges", []string{"-client-port", "20000", "-peer-port", "20004", "-metrics-port", "30000"},
			"-peer-port: 20004 to 20008 overlaps -client-port's 20000 to 20004"},
		{"too many servers", []string{"-servers", "1025"}, "-servers: 1025 is not within 1 to 1024"},
		{"nine servers' ranges", []string{"-servers", "9", "-client-port", "20000", "-peer-port", "20008", "-metrics-port", "30000"},
			"-peer-port: 20008 to 20016 overlaps -client-port's 20000 to 20008"},
		{"a hundred and one servers on the default ports", []string{"-servers", "101"},
			"-peer-port: 12300 to 12400 overlaps -client-port's 12200 to 12300"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := runHerd(t, []string{"HERD_LOG_LEVEL=warn"}, append([]string{"local"}, tt.args...)...)
			if code != 2 || !strings.Contains(out, tt.want) {
				t.Fatalf("exit %d, output:\n%s\nwant exit 2 and %q", code, out, tt.want)
			}
			if strings.Contains(out, "HERD_") {
				t.Errorf("the error blames a variable:\n%s", out)
			}
		})
	}
}

// TestLocalConfigError: `herd local` checks the environment once, with
// every node's settings, and reports a bad variable as `herd serve` does,
// without a server name it never asked for.
func TestLocalConfigError(t *testing.T) {
	out, code := runHerd(t, []string{"HERD_LOG_FORMAT=xml", "HERD_MAX_LINE=10"}, "local")
	if code != 2 || !strings.Contains(out, "HERD_LOG_FORMAT: \"xml\" is not json or text") ||
		!strings.Contains(out, "HERD_MAX_LINE: 10 is not within") {
		t.Fatalf("exit %d, output:\n%s\nwant exit 2 naming HERD_LOG_FORMAT and HERD_MAX_LINE", code, out)
	}
	if strings.Contains(out, "HERD_NAME") || strings.Contains(out, "Hill") {
		t.Errorf("the error names a server or HERD_NAME:\n%s", out)
	}
}
