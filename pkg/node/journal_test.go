package node

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/config"
	"github.com/herdkit/herd/pkg/journal"
	"github.com/herdkit/herd/pkg/logging"
	"github.com/herdkit/herd/pkg/metrics"
)

// withSegmentSize makes the journal rotate (and snapshot) at size bytes.
func withSegmentSize(size int64) Option { return func(o *options) { o.segmentSize = size } }

// newNode builds a node on loopback ports, configured by vars on top of a
// name and ephemeral addresses, without starting it.
func newNode(t *testing.T, vars map[string]string, opts ...Option) (*Node, error) {
	t.Helper()
	all := map[string]string{
		"HERD_NAME": "Hill", "HERD_CLIENT_ADDR": "127.0.0.1:0", "HERD_PEER_ADDR": "127.0.0.1:0",
		"HERD_METRICS_ADDR": "127.0.0.1:0", "HERD_PLACES": config.PlacesOffline,
	}
	for k, v := range vars {
		all[k] = v
	}
	cfg, err := config.FromMap(all)
	if err != nil {
		t.Fatal(err)
	}
	return New(cfg, logging.FromSlog(testutil.Logger(t, slog.LevelWarn)), opts...)
}

func startNodeWith(t *testing.T, vars map[string]string, opts ...Option) *Node {
	t.Helper()
	n, err := newNode(t, vars, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopNode(t, n) })
	return n
}

func readyz(t *testing.T, n *Node) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + n.MetricsAddr().String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHealAfterCorruptSnapshot flips one bit in the snapshot of A, whose
// neighbours are B and C (linked only through A), while A and C are down.
// A comes back under a new incarnation with no watermarks: B sends it
// everything, including the records A itself originated, yet A is not
// ready (whatever HERD_READY_GRACE says) until C is back and has sent
// everything too.
func TestHealAfterCorruptSnapshot(t *testing.T) {
	addrs := testutil.FreeLoopbackAddrs(t, 3)
	dirA := t.TempDir()
	common := map[string]string{"HERD_PEER_SECRET": "heal-secret-0123456789", "HERD_PEER_HEARTBEAT": "50ms",
		"HERD_PEER_TIMEOUT": "500ms", "HERD_PEER_BACKOFF_MAX": "100ms", "HERD_READY_GRACE": "10ms"}
	vars := func(name, own, peers string, more ...string) map[string]string {
		v := map[string]string{"HERD_NAME": name, "HERD_PEER_ADDR": own, "HERD_PEERS": peers}
		for k, x := range common {
			v[k] = x
		}
		for i := 0; i+1 < len(more); i += 2 {
			v[more[i]] = more[i+1]
		}
		return v
	}
	varsA := vars("A", addrs[0], "B="+addrs[1]+",C="+addrs[2], "HERD_DATA_DIR", dirA, "HERD_FSYNC_INTERVAL", "5ms")
	varsC := vars("C", addrs[2], "A="+addrs[0])
	b := startNodeWith(t, vars("B", addrs[1], "A="+addrs[0]))
	c, err := newNode(t, varsC)
	if err != nil || c.Start() != nil {
		t.Fatal(err)
	}
	a, err := newNode(t, varsA, withSegmentSize(4<<10))
	if err != nil || a.Start() != nil {
		t.Fatal(err)
	}
	const each = 200
	for _, n := range []*Node{a, b, c} {
		name := strings.ToLower(n.cfg.Name)
		var lines []string
		for i := range each {
			lines = append(lines, fmt.Sprintf("IAMAT %s%d +1+1 %d", name, i, i+1))
		}
		send(t, n, lines...)
	}
	for _, n := range []*Node{a, b, c} {
		waitLen(t, n, 3*each)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		snaps, _ := filepath.Glob(filepath.Join(dirA, "snap-*.snap"))
		if w, seq := a.journal.Durable(), a.Store().Seq(); w < seq || len(snaps) == 0 {
			return fmt.Errorf("A journaled %d of %d changes, %d snapshots", w, seq, len(snaps))
		}
		return nil
	})
	stopNode(t, a)
	stopNode(t, c)
	snaps, _ := filepath.Glob(filepath.Join(dirA, "snap-*.snap"))
	snap, _ := os.ReadFile(snaps[len(snaps)-1])
	clear(snap[17 : len(snap)/2]) // after the incarnation entry: the first records, A's own
	os.WriteFile(snaps[len(snaps)-1], snap, 0o644)
	// What a copy of the directory holds: A lost records, its own among them.
	kept, ownLost := journalRecords(t, dirA)
	if kept >= 3*each || ownLost == 0 {
		t.Fatalf("the damage kept %d records, lost %d of A's own", kept, ownLost)
	}
	t.Logf("the damaged journal kept %d of %d records; %d of A's own are lost", kept, 3*each, ownLost)

	restarted := time.Now()
	a2 := startNodeWith(t, varsA, withSegmentSize(4<<10))
	if code, body := readyz(t, a2); code != http.StatusServiceUnavailable || !strings.Contains(body, "journal lost records") {
		t.Errorf("/readyz of the damaged node: %d %q", code, body)
	}
	waitLen(t, a2, 3*each)
	// C is down: A holds everything from B but is still not ready.
	if code, _ := readyz(t, a2); code != http.StatusServiceUnavailable || a2.Ready() {
		t.Errorf("/readyz while C is down: %d", code)
	}
	fa := scrape(t, a2)
	if loss, damaged := fa.Value("herd_journal_data_loss_total"), fa.Value("herd_journal_damaged"); loss != 1 || damaged != 1 {
		t.Errorf("herd_journal_data_loss_total %v, herd_journal_damaged %v; want 1 and 1", loss, damaged)
	}
	c2 := startNodeWith(t, varsC)
	testutil.Eventually(t, 10*time.Second, func() error {
		if !a2.Ready() {
			return errors.New("A is not ready")
		}
		return nil
	})
	t.Logf("ready %v after the damaged restart", time.Since(restarted))
	for _, n := range []*Node{b, c2} {
		want, _ := n.Store().Changes(0, 1<<30, nil)
		for _, ch := range want {
			got, ok := a2.Store().Get(ch.Record.Client())
			if !ok || got.Text() != ch.Record.Text() || got.Origin != ch.Record.Origin {
				t.Fatalf("A holds %v %v, %s holds %v", got, ok, n.cfg.Name, ch.Record)
			}
		}
	}
	if r, ok := a2.Store().Get("a7"); !ok || r.Origin != "A" {
		t.Errorf("A's own record: %v %v", r, ok)
	}
	if got := scrape(t, a2).Value("herd_journal_damaged"); got != 0 {
		t.Errorf("herd_journal_damaged %v after healing", got)
	}
	if _, err := os.Stat(filepath.Join(dirA, "HEALING")); !os.IsNotExist(err) {
		t.Errorf("HEALING marker after healing: %v", err)
	}
}

// journalRecords opens a copy of a data directory: the records it holds,
// and how many of A's own (a0 to a199) it lacks.
func journalRecords(t *testing.T, dir string) (int, int) {
	t.Helper()
	cp := t.TempDir()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		os.WriteFile(filepath.Join(cp, e.Name()), b, 0o644)
	}
	j, st, err := journal.Open(journal.Config{Dir: cp, FsyncInterval: time.Hour}, testutil.Logger(t, slog.LevelWarn), metrics.New())
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	lost := 0
	for i := range 200 {
		if _, ok := st.Store.Get(fmt.Sprint("a", i)); !ok {
			lost++
		}
	}
	return st.Records, lost
}

// TestDamagedWithoutNeighboursRefuses: a node with no neighbour to heal
// from refuses to start, says how to proceed, and leaves its data
// directory as it was.
func TestDamagedWithoutNeighboursRefuses(t *testing.T) {
	dir := t.TempDir()
	vars := map[string]string{"HERD_DATA_DIR": dir}
	n := startNodeWith(t, vars)
	var lines []string
	for i := range 10 {
		lines = append(lines, fmt.Sprintf("IAMAT c%d +1+1 1", i))
	}
	send(t, n, lines...)
	stopNode(t, n)
	segs, _ := filepath.Glob(filepath.Join(dir, "wal-*.log"))
	b, _ := os.ReadFile(segs[0])
	b[bytes.Index(b, []byte("c3 "))] ^= 0x01
	os.WriteFile(segs[0], b, 0o644)
	before := dirListing(t, dir)
	_, err := newNode(t, vars)
	if err == nil || !strings.Contains(err.Error(), "herd journal repair "+dir) || !strings.Contains(err.Error(), "no neighbours") {
		t.Fatalf("New: %v", err)
	}
	if after := dirListing(t, dir); after != before {
		t.Errorf("the directory changed:\n%s\n%s", before, after)
	}
}

// TestFailedStartLeavesNoTrace: a node whose client port is taken fails
// to start, and its new data directory holds only LOCK and NAME; the
// lock is released.
func TestFailedStartLeavesNoTrace(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	taken := startNode(t, nil)
	n, err := newNode(t, map[string]string{"HERD_DATA_DIR": dir, "HERD_CLIENT_ADDR": taken.ClientAddr().String()})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Start: %v", err)
	}
	if got := dirListing(t, dir); got != "LOCK NAME" {
		t.Errorf("after a failed start the data directory holds %s", got)
	}
	startNodeWith(t, map[string]string{"HERD_DATA_DIR": dir}) // the lock was released
}

// dirListing names dir's files, with their sizes but for LOCK and NAME.
func dirListing(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		fi, _ := e.Info()
		if e.Name() == "LOCK" || e.Name() == "NAME" {
			out = append(out, e.Name())
		} else {
			out = append(out, fmt.Sprint(e.Name(), ":", fi.Size()))
		}
	}
	return strings.Join(out, " ")
}
