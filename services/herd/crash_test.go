package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/store"
	"github.com/herdkit/herd/pkg/topology"
)

// The crash test's settings. The defaults are the short run CI does; see
// docs/hardening.md for a long one.
var (
	crashRounds   = flag.Int("crash.rounds", 3, "crash test: rounds of load, kill, restart and check")
	crashMode     = flag.String("crash.mode", "whole", "crash test: what a round kills: whole (every node), single (one node) or mixed (either, at random)")
	crashFsync    = flag.String("crash.fsync", "interval", "crash test: the nodes' HERD_FSYNC, interval or always")
	crashClients  = flag.Int("crash.clients", 10, "crash test: client connections, spread over the five nodes")
	crashInflight = flag.Int("crash.inflight", 32, "crash test: requests in flight per connection")
	crashIDs      = flag.Int("crash.ids", 200, "crash test: client ids per connection, each sent newer records in turn")
	crashWindow   = flag.Duration("crash.window", 2*time.Second, "crash test: the longest load before a kill")
	crashSegment  = flag.Int("crash.segment", 256<<10, "crash test: the nodes' HERD_JOURNAL_SEGMENT_SIZE, small so that snapshots are frequent")
	crashSeed     = flag.Uint64("crash.seed", 0, "crash test: seed of the kill times and victims; 0 picks one (printed)")
)

// minLoad is the shortest load before a kill.
const minLoad = 300 * time.Millisecond

// TestCrash is the crash-test harness: rounds of pipelined IAMATs from
// several clients to the five classic nodes, each a `herd serve` process
// with a data directory, killed with SIGKILL (every node, or one) at a
// random moment or while a snapshot is written, restarted, left to
// converge, stopped cleanly and read back. It fails if an acknowledged
// IAMAT is not on every node, if the nodes disagree, or if a record
// appears that the clients never sent, and prints one line per round.
func TestCrash(t *testing.T) {
	if *crashMode != "whole" && *crashMode != "single" && *crashMode != "mixed" {
		t.Fatalf("-crash.mode=%s: want whole, single or mixed", *crashMode)
	}
	if *crashFsync != "interval" && *crashFsync != "always" {
		t.Fatalf("-crash.fsync=%s: want interval or always", *crashFsync)
	}
	if *crashRounds < 1 || *crashClients < 1 || *crashInflight < 1 || *crashIDs < 1 || *crashWindow < 2*minLoad {
		t.Fatalf("-crash.rounds, -crash.clients, -crash.inflight and -crash.ids must be positive, -crash.window at least %v", 2*minLoad)
	}
	seed := *crashSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	c := &crashRun{t: t, rng: rand.New(rand.NewPCG(seed, 0))}
	c.h = newHerdProcs(t, 100*time.Millisecond)
	c.h.env = map[string]string{"HERD_FSYNC": *crashFsync, "HERD_JOURNAL_SEGMENT_SIZE": strconv.Itoa(*crashSegment)}
	c.say("crash test: %d rounds, mode %s, fsync=%s, %d clients with %d in flight each, %d ids each, seed %d",
		*crashRounds, *crashMode, *crashFsync, *crashClients, *crashInflight, *crashIDs, seed)

	var lost, acked int64
	var rates []float64
	for r := 1; r <= *crashRounds; r++ {
		res := c.round(r)
		lost += res.lost + res.lostEarlier
		acked += res.acked
		rates = append(rates, res.rate)
	}
	c.say("crash test: %d rounds, %s acknowledged, %s lost, acknowledged rate %s/s at best",
		*crashRounds, commas(acked), commas(lost), commas(int64(maxOf(rates))))
}

func maxOf(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

// crashRun is the state of TestCrash across its rounds.
type crashRun struct {
	t        *testing.T
	rng      *rand.Rand
	h        *herdProcs
	sessions []*session // of every round so far
}

// say logs a line and prints it to standard output, so that a run without
// -v shows the summaries too.
func (c *crashRun) say(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	c.t.Log(line)
	fmt.Println(line)
}

// roundResult is what one round measured and found.
type roundResult struct {
	verdict
	sent, acked int64
	rate        float64 // acknowledged IAMATs per second of load
}

// round runs round r: start the herd from its data directories, load it,
// kill, restart, converge, stop cleanly, read back and check.
func (c *crashRun) round(r int) roundResult {
	t, h := c.t, c.h
	mode := *crashMode
	if mode == "mixed" {
		mode = []string{"whole", "single"}[c.rng.IntN(2)]
	}
	h.start()
	l := startLoad(r, *crashClients, len(topology.Classic), *crashInflight, int64(*crashIDs), h.clientAddr)
	began := time.Now()

	// Kill at a random moment, or in odd rounds as soon as a node writes a
	// snapshot (at the end of the window if none does); a single victim is
	// then that node.
	killAt := began.Add(minLoad + time.Duration(c.rng.Int64N(int64(*crashWindow-minLoad))))
	how, snapshotting := "at random", -1
	if r%2 == 1 {
		how, killAt = "at the end of the window (no snapshot seen)", began.Add(*crashWindow)
		time.Sleep(time.Until(began.Add(minLoad)))
		known := dirNames(h.dirs)
		for time.Now().Before(killAt) {
			if node, during, ok := snapshotSeen(h.dirs, known); ok {
				how, killAt, snapshotting = "after a snapshot on "+topology.Classic[node].Name, time.Now(), node
				if during {
					how = "during a snapshot on " + topology.Classic[node].Name
				}
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	time.Sleep(time.Until(killAt))
	killed := time.Now()
	victims := []int{0, 1, 2, 3, 4}
	if mode == "single" {
		victims = []int{c.rng.IntN(len(topology.Classic))}
		if snapshotting >= 0 {
			victims = []int{snapshotting}
		}
	}
	for _, i := range victims {
		h.procs[i].cmd.Process.Signal(syscall.SIGKILL)
	}
	for _, i := range victims {
		h.procs[i].wait()
	}
	var sessions []*session
	var loadErrs []error
	loadEnd := killed
	if mode == "whole" {
		sessions, loadErrs = l.stop()
		h.start()
	} else {
		// The load goes on while the node is down and after it is back,
		// until its clients have been answered again.
		i := victims[0]
		from := l.sessionCount()
		h.startNode(i)
		waitReady(t, h.metricsAddr(i))
		l.waitAcked(t, i, from)
		loadEnd = time.Now()
		sessions, loadErrs = l.stop()
	}
	for _, err := range loadErrs {
		t.Errorf("round %d: %v", r, err)
	}
	c.sessions = append(c.sessions, sessions...)
	if err := h.waitConverged(60 * time.Second); err != nil {
		t.Errorf("round %d: %v", r, err)
	}
	h.stop()
	nodes := make([]map[string]store.Record, len(topology.Classic))
	for i, dir := range h.dirs {
		var err error
		if nodes[i], err = readDataDir(dir); err != nil {
			t.Fatalf("round %d: %s: %v", r, topology.Classic[i].Name, err)
		}
	}

	res := roundResult{verdict: check(c.sessions, r, nodes, killed)}
	for _, s := range sessions {
		res.sent += s.sent.Load()
		res.acked += s.acked.Load()
	}
	res.rate = float64(res.acked) / loadEnd.Sub(began).Seconds()
	victim := "whole"
	if mode == "single" {
		victim = "single " + topology.Classic[victims[0]].Name
	}
	line := fmt.Sprintf("round %d/%d %s fsync=%s: sent %s acked %s rate %s/s killed at %.2fs %s lost %s disagree %d unknown %d",
		r, *crashRounds, victim, *crashFsync, commas(res.sent), commas(res.acked), commas(int64(res.rate)),
		killed.Sub(began).Seconds(), how, commas(res.lost), res.disagree, res.unknown)
	if res.lostEarlier > 0 {
		line += fmt.Sprintf(" (and %s of earlier rounds)", commas(res.lostEarlier))
	}
	if res.lost > 0 {
		var per []string
		for k, n := range res.lostOn {
			per = append(per, fmt.Sprintf("%s %s", topology.Classic[k].Name, commas(n)))
		}
		line += fmt.Sprintf("; lost per node: %s; the oldest acknowledged %v before the kill",
			strings.Join(per, ", "), res.oldestLost.Round(10*time.Microsecond))
	}
	c.say("%s", line)
	if res.lost+res.lostEarlier > 0 || res.disagree > 0 || res.unknown > 0 {
		t.Errorf("round %d: %s acknowledged IAMATs lost, %d clients disagree, %d records nobody sent; for example:\n  %s",
			r, commas(res.lost+res.lostEarlier), res.disagree, res.unknown, strings.Join(res.examples, "\n  "))
	}
	return res
}

// dirNames returns the file names in each directory.
func dirNames(dirs []string) []map[string]bool {
	names := make([]map[string]bool, len(dirs))
	for i, dir := range dirs {
		names[i] = map[string]bool{}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			names[i][e.Name()] = true
		}
	}
	return names
}

// snapshotSeen looks for a node writing a snapshot (a temporary file in
// its data directory) or one that wrote a snapshot (a snap- file not in
// known).
func snapshotSeen(dirs []string, known []map[string]bool) (node int, during, ok bool) {
	for i, dir := range dirs {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			name := e.Name()
			if strings.Contains(name, "tmp") {
				return i, true, true
			}
			if strings.HasPrefix(name, "snap") && !known[i][name] {
				return i, false, true
			}
		}
	}
	return 0, false, false
}

// sessionCount returns the number of sessions started so far.
func (l *load) sessionCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.started)
}

// waitAcked waits until a session to node, started after the first from
// sessions, has an acknowledged IAMAT.
func (l *load) waitAcked(t *testing.T, node, from int) {
	t.Helper()
	testutil.Eventually(t, 20*time.Second, func() error {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, s := range l.started[from:] {
			if s.node == node && s.acked.Load() > 0 {
				return nil
			}
		}
		return fmt.Errorf("no client of %s was answered after its restart", topology.Classic[node].Name)
	})
}

// stop stops every node with SIGTERM and waits for a clean exit.
func (h *herdProcs) stop() {
	for _, p := range h.procs {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for i, p := range h.procs {
		if err := p.wait(); err != nil {
			h.t.Errorf("%s after SIGTERM: %v", topology.Classic[i].Name, err)
		}
	}
}

// waitConverged waits until the herd, without clients, has settled: every
// peer link up and reconciled, nothing waiting to be sent to a neighbour
// or written to a journal, and no record stored between two looks 100 ms
// apart; with the same number of records on every node, or, if the counts
// differ, with nothing stored for 3 s (then no more will come, and the
// checker reports the disagreement).
func (h *herdProcs) waitConverged(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	prev, why := -1.0, ""
	var quietSince time.Time
	for time.Now().Before(deadline) {
		updates, settled, equal, reason := h.settled()
		if settled && updates == prev && (equal || time.Since(quietSince) > 3*time.Second) {
			return nil
		}
		why = reason
		if !settled || updates != prev {
			quietSince = time.Now()
		}
		prev = -1
		if settled {
			prev = updates
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("the herd did not converge within %v: %s", timeout, why)
}

// settled looks at every node's metrics once and returns the records
// stored so far, summed, whether the herd is quiet (or why not), and
// whether every node holds as many records.
func (h *herdProcs) settled() (updates float64, quiet, equal bool, why string) {
	records := -1.0
	equal = true
	for i, s := range topology.Classic {
		m, err := testutil.Fetch("http://" + h.metricsAddr(i) + "/metrics")
		if err != nil {
			return 0, false, false, err.Error()
		}
		up, links := m.Sum("herd_peer_up")
		backlog, _ := m.Sum("herd_peer_backlog_records")
		lag, _ := m.Sum("herd_journal_lag_records")
		n, _ := m.Sum("herd_store_records")
		u, _ := m.Sum("herd_store_updates_total")
		updates += u
		switch {
		case links != len(s.Neighbours) || up != float64(links):
			return 0, false, false, fmt.Sprintf("%s has %v of %d peer links up", s.Name, up, len(s.Neighbours))
		case backlog > 0:
			return 0, false, false, fmt.Sprintf("%s has %v records to send", s.Name, backlog)
		case lag > 0:
			return 0, false, false, fmt.Sprintf("%s has %v records to journal", s.Name, lag)
		case records >= 0 && n != records:
			equal = false
			why = fmt.Sprintf("%s holds %v records, %s %v", s.Name, n, topology.Classic[0].Name, records)
		}
		if i == 0 {
			records = n
		}
	}
	return updates, true, equal, why
}
