package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// herdJournal runs `herd journal args...` and returns its exit code and
// output.
func herdJournal(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(herdBin, append([]string{"journal"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	t.Logf("herd journal %v: %v\n%s%s", args, err, stdout.String(), stderr.String())
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// stoppedWith waits for a herd process to exit with an error, and returns
// the error it logged.
func stoppedWith(t *testing.T, p *proc) string {
	t.Helper()
	if err := p.wait(); err == nil {
		t.Fatal("herd exited with status 0")
	}
	return p.logged("herd stopped")["err"].(string)
}

// TestJournalOwnerAndRepair drives the data directory's guarantees with
// real processes: one owner, one name, `herd journal check` and `repair`,
// and a damaged node without neighbours that refuses to start until
// repaired.
func TestJournalOwnerAndRepair(t *testing.T) {
	dir := t.TempDir()
	p, addr := serve(t, serveEnv("HERD_DATA_DIR", dir))
	exchange(t, addr, kiwi+"\nIAMAT lemon +1+1 5\nIAMAT melon +1+1 6\n")

	// A second process on the same directory fails at once.
	second := start(t, serveEnv("HERD_DATA_DIR", dir), "serve")
	if msg := stoppedWith(t, second); !strings.Contains(msg, dir) || !strings.Contains(msg, "in use by another process") {
		t.Errorf("second process: %s", msg)
	}
	if code, _, stderr := herdJournal(t, "check", dir); code != 2 || !strings.Contains(stderr, "in use") {
		t.Errorf("check while the node runs: exit %d, %s", code, stderr)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.wait(); err != nil {
		t.Fatal(err)
	}

	code, out, _ := herdJournal(t, "check", dir)
	if code != 0 || !strings.Contains(out, "node name      Hill") || !strings.Contains(out, "records        3") ||
		!strings.HasSuffix(out, "whole\n") {
		t.Errorf("check of a whole directory: exit %d\n%s", code, out)
	}

	// Another name refuses, naming both.
	wrong := start(t, serveEnv("HERD_DATA_DIR", dir, "HERD_NAME", "Jaquez"), "serve")
	if msg := stoppedWith(t, wrong); !strings.Contains(msg, `"Hill"`) || !strings.Contains(msg, `"Jaquez"`) {
		t.Errorf("wrong name: %s", msg)
	}

	// One flipped bit in the middle of the segment.
	segs, _ := filepath.Glob(filepath.Join(dir, "wal-*.log"))
	b, _ := os.ReadFile(segs[0])
	b[bytes.Index(b, []byte("lemon"))] ^= 0x01
	os.WriteFile(segs[0], b, 0o644)
	code, out, _ = herdJournal(t, "check", dir)
	if code != 1 || !strings.Contains(out, "DAMAGE         "+filepath.Base(segs[0])+" at offset") {
		t.Errorf("check of a damaged directory: exit %d\n%s", code, out)
	}
	refused := start(t, serveEnv("HERD_DATA_DIR", dir), "serve")
	if msg := stoppedWith(t, refused); !strings.Contains(msg, "herd journal repair "+dir) {
		t.Errorf("a damaged node without neighbours: %s", msg)
	}
	code, out, _ = herdJournal(t, "repair", dir)
	if code != 0 || !strings.Contains(out, "records        2") || !strings.HasSuffix(out, "whole\n") {
		t.Errorf("repair: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(segs[0] + ".damaged"); err != nil {
		t.Errorf("the damaged segment was not set aside: %v", err)
	}
	p, addr = serve(t, serveEnv("HERD_DATA_DIR", dir))
	if got := exchange(t, addr, "WHATSAT melon 10 1\n"); !strings.HasPrefix(got, "AT Hill") {
		t.Errorf("after repair, melon: %q", got)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait()
}

// TestFailedServeLeavesNoTrace: `herd serve` whose client port is taken
// exits with an error, and its new data directory holds only LOCK and
// NAME.
func TestFailedServeLeavesNoTrace(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := filepath.Join(t.TempDir(), "data")
	p := start(t, serveEnv("HERD_DATA_DIR", dir, "HERD_CLIENT_ADDR", ln.Addr().String()), "serve")
	if msg := stoppedWith(t, p); !strings.Contains(msg, "address already in use") {
		t.Errorf("serve: %s", msg)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "LOCK NAME" {
		t.Errorf("the data directory holds %v", names)
	}
}
