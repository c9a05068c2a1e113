package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/protocol"
)

// TestFullDisk runs `herd serve` with its data directory on a 1 MB tmpfs
// and pipelines IAMATs for new clients until the disk is full. The node
// must stop acknowledging (the connection closes without the replies it
// could not make durable), say why on /readyz, keep serving what it holds,
// recover by itself once there is room, and, killed and restarted, hold
// every record it acknowledged. Mounting needs root, as in CI.
func TestFullDisk(t *testing.T) {
	dir := testutil.Tmpfs(t, "1m")
	base := testutil.FreePortBase(t, 25)
	addr, metrics := fmt.Sprintf("127.0.0.1:%d", base), fmt.Sprintf("127.0.0.1:%d", base+1)
	env := serveEnv("HERD_DATA_DIR", dir+"/data", "HERD_WRITE_TIMEOUT", "1s", "HERD_LOG_LEVEL", "warn",
		"HERD_FSYNC_INTERVAL", "20ms", "HERD_CLIENT_ADDR", addr, "HERD_METRICS_ADDR", metrics)
	p := start(t, env, "serve")
	waitReady(t, metrics)

	acked := fillUntilRefused(t, addr)
	t.Logf("%d records acknowledged before the disk filled", len(acked))
	if len(acked) < 1000 {
		t.Fatalf("only %d records acknowledged on 1 MB", len(acked))
	}
	if code, body := get(t, "http://"+metrics+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "no space left") {
		t.Errorf("/readyz with a full disk: %d %q", code, body)
	}
	if got := whatsatAT(t, addr, acked[len(acked)-1].id); got != acked[len(acked)-1].at {
		t.Errorf("the last record acknowledged is not served: %q", got)
	}
	// Room again: the node writes, becomes ready and acknowledges by itself.
	testutil.ResizeTmpfs(t, dir, "8m")
	waitReady(t, metrics)
	line := fmt.Sprintf("IAMAT after-full +34.068930-118.445127 %d.5", time.Now().Unix())
	if out := exchange(t, addr, line+"\n"); !strings.HasPrefix(out, "AT ") {
		t.Fatalf("after recovery: %q", out)
	}
	acked = append(acked, ack{id: "after-full", at: ""})

	p.cmd.Process.Signal(syscall.SIGKILL)
	p.wait()
	start(t, env, "serve")
	waitReady(t, metrics)
	for _, a := range acked {
		got := whatsatAT(t, addr, a.id)
		if !strings.HasPrefix(got, "AT ") || a.at != "" && got != a.at {
			t.Fatalf("acknowledged %s lost after the restart: %q", a.id, got)
		}
	}
}

// fillUntilRefused pipelines IAMATs for new clients on one connection
// until the server closes it, and returns those it acknowledged.
func fillUntilRefused(t *testing.T, addr string) []ack {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(60 * time.Second))
	sent := make(chan string, 1<<16)
	go func() {
		defer close(sent)
		w := bufio.NewWriter(nc)
		for n := 0; ; n++ {
			id := fmt.Sprintf("filler-%07d-%s", n, strings.Repeat("x", 40))
			sent <- id
			if _, err := fmt.Fprintf(w, "IAMAT %s +34.068930-118.445127 1621464827.%09d\n", id, n); err != nil {
				return
			}
			if n%64 == 63 && w.Flush() != nil {
				return
			}
		}
	}()
	rr := protocol.NewReplyReader(nc)
	var acked []ack
	for id := range sent {
		r, err := rr.ReadReply(protocol.LineReply)
		if err == io.EOF || errors.Is(err, syscall.ECONNRESET) {
			// Closed: the server half-closes and drains, but a client that
			// writes on for longer than that is reset.
			return acked
		}
		if err != nil {
			t.Fatalf("after %d replies: %v (%q)", len(acked), err, r.Raw)
		}
		if at, ok := protocol.ParseAT(r.Line); !ok || string(at.Client) != id {
			t.Fatalf("reply %q to %s", r.Raw, id)
		}
		acked = append(acked, ack{id: id, at: string(r.Line)})
	}
	t.Fatal("the writer stopped first")
	return nil
}

// whatsatAT asks a node about a client and returns the AT line of its
// answer, or the "?" line.
func whatsatAT(t *testing.T, addr, id string) string {
	t.Helper()
	out := exchange(t, addr, "WHATSAT "+id+" 1 0\n")
	rs, err := testutil.ReadReplies(strings.NewReader(out), "WHATSAT "+id+" 1 0")
	if err != nil {
		t.Fatalf("reply %q: %v", out, err)
	}
	return string(rs[0].Line)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
