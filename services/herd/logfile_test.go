package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/herdkit/herd/internal/testutil"
)

// TestLogFileStaysWithinItsBound floods `herd serve` with pipelined
// WHATSATs, each logged with its whole reply, and checks that HERD_LOG_FILE
// and its rotated files never hold more than HERD_LOG_FILE_MAX_SIZE ×
// (HERD_LOG_FILE_MAX_FILES + 1), while the protocol log they keep has
// every request of its span, in order.
func TestLogFileStaysWithinItsBound(t *testing.T) {
	const (
		maxFiles = 2
		bound    = (maxFiles + 1) << 20 // bytes; HERD_LOG_FILE_MAX_SIZE=1 is 1 MB
		requests = 3000
	)
	dir := t.TempDir()
	file := filepath.Join(dir, "herd.log")
	// Standard error gets the same log; nobody reads it here.
	cmd := exec.Command(herdBin, "serve")
	cmd.Env = []string{"HERD_NAME=Hill", "HERD_CLIENT_ADDR=127.0.0.1:0", "HERD_PEER_ADDR=127.0.0.1:0",
		"HERD_METRICS_ADDR=127.0.0.1:0", "HERD_PLACES=offline", "HERD_LOG_FILE=" + file,
		"HERD_LOG_FILE_MAX_SIZE=1", "HERD_LOG_FILE_MAX_FILES=" + strconv.Itoa(maxFiles)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()
	addr := startedOn(t, file)

	// Sample the files while the flood runs: the bound holds at every
	// moment, since the oldest file goes before a new one starts.
	var samples, peak atomic.Int64
	stop, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if n, total := logFiles(dir); n <= maxFiles+1 {
				peak.Store(max(peak.Load(), total))
			} else {
				peak.Store(-int64(n)) // too many files
				return
			}
			samples.Add(1)
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()

	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	fmt.Fprintf(nc, "%s\n", kiwi)
	go func() {
		w := bufio.NewWriter(nc)
		for i := range requests { // the radius numbers the requests, 1 to 50 and again
			fmt.Fprintf(w, "WHATSAT kiwi.cs.ucla.edu %d 20\n", i%50+1)
		}
		w.Flush()
		nc.(*net.TCPConn).CloseWrite()
	}()
	nc.SetReadDeadline(time.Now().Add(60 * time.Second))
	replies, err := io.Copy(io.Discard, nc)
	if err != nil {
		t.Fatalf("after %d bytes of replies: %v", replies, err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := <-exited; err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	exited <- nil
	close(stop)
	<-sampled

	n, total := logFiles(dir)
	t.Logf("%d requests, %d bytes of replies; %d files, %d bytes; peak %d bytes over %d samples",
		requests, replies, n, total, peak.Load(), samples.Load())
	if p := peak.Load(); p < 0 {
		t.Fatalf("%d files at once, want at most %d", -p, maxFiles+1)
	}
	if replies < 2*bound {
		t.Fatalf("only %d bytes of replies: the flood was too small to fill the bound", replies)
	}
	if n != maxFiles+1 || total > bound || peak.Load() > bound {
		t.Fatalf("%d files, %d bytes, peak %d; want %d files, at most %d bytes", n, total, peak.Load(), maxFiles+1, bound)
	}
	checkWhatsatRun(t, file, maxFiles, requests)
}

// startedOn waits for the node's start record in its log file and returns
// its client address.
func startedOn(t *testing.T, file string) string {
	t.Helper()
	var client string
	testutil.Eventually(t, 10*time.Second, func() error {
		b, _ := os.ReadFile(file)
		for line := range bytes.Lines(b) {
			var rec struct{ Msg, Client string }
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "herd node started" {
				client = rec.Client
				return nil
			}
		}
		return fmt.Errorf("no start record in %s", file)
	})
	return client
}

// logFiles counts the files in dir and their bytes.
func logFiles(dir string) (int, int64) {
	entries, _ := os.ReadDir(dir)
	var total int64
	for _, e := range entries {
		if fi, err := e.Info(); err == nil {
			total += fi.Size()
		}
	}
	return len(entries), total
}

// checkWhatsatRun checks that the kept files, oldest first, hold a run of
// the flood's WHATSATs with none missing or out of order, ending with the
// last one.
func checkWhatsatRun(t *testing.T, file string, maxFiles, requests int) {
	t.Helper()
	var names []string
	for i := maxFiles; i >= 1; i-- {
		names = append(names, file+"."+strconv.Itoa(i))
	}
	names = append(names, file)
	var radii []int
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 1<<20 {
			t.Errorf("%s: %d bytes, more than 1 MB", name, len(b))
		}
		for line := range bytes.Lines(b) {
			var rec struct{ Msg, In string }
			if err := json.Unmarshal(line, &rec); err != nil {
				t.Fatalf("%s: %.60q is not a JSON record: %v", name, line, err)
			}
			var radius int
			if rec.Msg == "line" && strings.HasPrefix(rec.In, "WHATSAT") {
				fmt.Sscanf(rec.In, "WHATSAT kiwi.cs.ucla.edu %d 20", &radius)
				radii = append(radii, radius)
			}
		}
	}
	if len(radii) == 0 {
		t.Fatal("no WHATSAT in the kept files")
	}
	for i := 1; i < len(radii); i++ {
		if radii[i] != radii[i-1]%50+1 {
			t.Fatalf("WHATSAT of radius %d after %d: a line lost or reordered", radii[i], radii[i-1])
		}
	}
	if last := (requests-1)%50 + 1; radii[len(radii)-1] != last {
		t.Fatalf("the last WHATSAT kept has radius %d, want %d", radii[len(radii)-1], last)
	}
	t.Logf("the kept files hold the last %d of %d WHATSATs", len(radii), requests)
}
