package main

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herdkit/herd/pkg/journal"
	"github.com/herdkit/herd/pkg/metrics"
	"github.com/herdkit/herd/pkg/store"
	"github.com/herdkit/herd/pkg/topology"
)

// readDataDir returns the records of a stopped node's data directory. It
// opens a copy, since journal.Open writes (its LOCK and NAME files, and it
// cuts a torn tail), and the node runs again from the original.
func readDataDir(dir string) (map[string]store.Record, error) {
	cp, err := os.MkdirTemp("", "herd-crash-read")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(cp)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			if err := copyFile(filepath.Join(dir, e.Name()), filepath.Join(cp, e.Name())); err != nil {
				return nil, err
			}
		}
	}
	j, st, err := journal.Open(journal.Config{Dir: cp}, slog.New(slog.DiscardHandler), metrics.New())
	if err != nil {
		return nil, fmt.Errorf("reading %s back: %w", dir, err)
	}
	defer j.Close()
	changes, _ := st.Store.Changes(0, math.MaxInt, nil)
	recs := make(map[string]store.Record, len(changes))
	for _, c := range changes {
		recs[c.Record.Client()] = c.Record.Unpack()
	}
	return recs, nil
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// verdict is what the checker found after a round.
type verdict struct {
	// lost counts the acknowledged IAMATs of this round's sessions that
	// are not on every node: a node holds an older record of the client,
	// or none. lostEarlier counts those of earlier rounds' sessions lost
	// since the last check.
	lost, lostEarlier int64
	lostOn            []int64       // lost, per node
	oldestLost        time.Duration // longest time from a lost IAMAT's reply to the kill
	disagree          int           // clients whose record is not the same on every node
	unknown           int           // records nobody sent, summed over the nodes
	examples          []string
	kinds             map[string]int // examples kept per kind
}

// example keeps the first three examples of each kind of fault.
func (v *verdict) example(kind, format string, args ...any) {
	if v.kinds == nil {
		v.kinds = map[string]int{}
	}
	if v.kinds[kind]++; v.kinds[kind] <= 3 {
		v.examples = append(v.examples, fmt.Sprintf(format, args...))
	}
}

// check compares what every node holds (nodes, in topology.Classic order)
// with what the sessions sent and had acknowledged. round is the current
// round; sessions holds every round's sessions.
func check(sessions []*session, round int, nodes []map[string]store.Record, killed time.Time) verdict {
	v := verdict{lostOn: make([]int64, len(nodes))}
	byTag := make(map[string]*session, len(sessions))
	for _, s := range sessions {
		byTag[s.tag] = s
	}
	// held returns the request number of node k's record of id, or -1 for
	// none.
	held := func(k int, id string) int64 {
		rec, ok := nodes[k][id]
		if !ok {
			return -1
		}
		_, n, ok := requestOf(byTag, rec)
		if !ok {
			return -1
		}
		return n
	}

	// (3) Every record was sent by the harness.
	for k, recs := range nodes {
		for _, rec := range recs {
			if _, _, ok := requestOf(byTag, rec); !ok {
				v.unknown++
				v.example("unknown", "%s holds a record nobody sent: %q from %s", topology.Classic[k].Name, rec.Text, rec.Origin)
			}
		}
	}

	// (1) Every acknowledged IAMAT is on every node: its client's record
	// there is the same request or a later one. Request n of id j is
	// covered by a record of a request m >= n; the acknowledged requests
	// of j are j, j+ids, ..., the last one below acked.
	for _, s := range sessions {
		acked := s.acked.Load()
		var lostNow int64
		lostOn := make([]int64, len(nodes))
		var examples []string
		for j := range min(s.ids, acked) {
			id := s.id(j)
			last := j + (acked-1-j)/s.ids*s.ids
			worst, worstNode, worstHeld := int64(0), 0, int64(0)
			for k := range nodes {
				h := held(k, id)
				if h >= last {
					continue
				}
				lost := (last-j)/s.ids + 1 // every acknowledged request of id
				if h >= 0 {
					lost = (last - h) / s.ids
				}
				lostOn[k] += lost
				if lost > worst {
					worst, worstNode, worstHeld = lost, k, h
				}
			}
			if worst == 0 {
				continue
			}
			lostNow += worst
			first := last - (worst-1)*s.ids // the oldest acknowledged request lost
			at := s.ackedAt(first)
			before := killed.Sub(at)
			if s.round == round && !at.IsZero() {
				v.oldestLost = max(v.oldestLost, before)
			}
			if len(examples) < 2 {
				when := fmt.Sprintf("%v before the kill", before.Round(10*time.Microsecond))
				switch {
				case at.IsZero():
					when = "at an unknown time"
				case before < 0:
					when = fmt.Sprintf("%v after the kill signals began", -before.Round(10*time.Microsecond))
				}
				examples = append(examples, fmt.Sprintf("client %s: request %d (acknowledged by %s %s) and %d later acknowledged ones missing on %s, which holds request %d",
					id, first, topology.Classic[s.node].Name, when, worst-1, topology.Classic[worstNode].Name, worstHeld))
			}
		}
		newly := lostNow
		if s.round != round {
			newly = max(0, lostNow-s.lost)
			v.lostEarlier += newly
		} else {
			v.lost += lostNow
		}
		s.lost = lostNow
		if newly > 0 {
			for k, n := range lostOn {
				v.lostOn[k] += n
			}
			for _, e := range examples {
				v.example("lost", "%s", e)
			}
		}
	}

	// (2) All nodes agree: the same record of every client.
	same := func(a, b store.Record) bool { return a.Text == b.Text && a.Origin == b.Origin && a.Recv == b.Recv }
	describe := func(k int, id string) string {
		if rec, ok := nodes[k][id]; ok {
			return fmt.Sprintf("%s holds %q from %s", topology.Classic[k].Name, rec.Text, rec.Origin)
		}
		return topology.Classic[k].Name + " holds none"
	}
	seen := map[string]bool{}
	for _, recs := range nodes {
		for id := range recs {
			if seen[id] {
				continue
			}
			seen[id] = true
			first, ok0 := nodes[0][id]
			for k := range nodes {
				rec, ok := nodes[k][id]
				if ok != ok0 || !same(rec, first) {
					v.disagree++
					v.example("disagree", "client %s: %s, %s", id, describe(0, id), describe(k, id))
					break
				}
			}
		}
	}
	return v
}

// requestOf returns the session and request number of a record, or false
// if no session sent it: the client id must name a session and a slot of
// it, and the position and time must be those of a request of that slot
// that the session sent.
func requestOf(byTag map[string]*session, rec store.Record) (*session, int64, bool) {
	tag, slot, ok := cutLast(rec.Client(), "-")
	s := byTag[tag]
	if !ok || s == nil {
		return nil, 0, false
	}
	j, err := strconv.ParseInt(slot, 10, 64)
	if err != nil {
		return nil, 0, false
	}
	sec, frac, ok := strings.Cut(rec.Time(), ".")
	secs, err1 := strconv.ParseInt(sec, 10, 64)
	nanos, err2 := strconv.ParseInt(frac, 10, 64)
	if !ok || err1 != nil || err2 != nil || len(frac) != 9 {
		return nil, 0, false
	}
	n := (secs-timeBase)*1e9 + nanos
	if n < 0 || n >= s.sent.Load() || n%s.ids != j || rec.Pos() != string(appendPos(nil, n)) ||
		rec.Time() != string(appendTime(nil, n)) {
		return nil, 0, false
	}
	return s, n, true
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// commas formats n with thousands separators.
func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// TestCrashChecker feeds the crash test's checker what five nodes might
// hold after a round of one session with two ids, six requests sent and
// the first four acknowledged: ids 0 and 1 last acknowledged at requests
// 2 and 3, and request 4 (id 0) sent but not answered.
func TestCrashChecker(t *testing.T) {
	newSession := func(round int) *session {
		s := &session{tag: "r1c0s0", round: round, ids: 2}
		s.sent.Store(6)
		s.acked.Store(4)
		return s
	}
	rec := func(s *session, n int64) store.Record {
		return store.Record{Text: s.id(n) + " " + string(appendPos(nil, n)) + " " + string(appendTime(nil, n)), Origin: "Hill", Recv: 1}
	}
	tests := []struct {
		name        string
		round       int // the session's; the check is of round 2
		change      func(s *session, nodes []map[string]store.Record)
		lost        int64
		lostEarlier int64
		lostOn2     int64 // lost on node 2
		disagree    int
		unknown     int
	}{
		{name: "everything held", change: func(*session, []map[string]store.Record) {}},
		{name: "an older record on one node", change: func(s *session, nodes []map[string]store.Record) {
			nodes[2][s.id(1)] = rec(s, 1)
		}, lost: 1, lostOn2: 1, disagree: 1},
		{name: "no record on one node", change: func(s *session, nodes []map[string]store.Record) {
			delete(nodes[2], s.id(0))
		}, lost: 2, lostOn2: 2, disagree: 1},
		{name: "lost on every node", change: func(s *session, nodes []map[string]store.Record) {
			for _, m := range nodes {
				m[s.id(1)] = rec(s, 1)
			}
		}, lost: 1, lostOn2: 1},
		{name: "lost in an earlier round", round: 1, change: func(s *session, nodes []map[string]store.Record) {
			for _, m := range nodes {
				m[s.id(1)] = rec(s, 1)
			}
		}, lostEarlier: 1, lostOn2: 1},
		{name: "a request never sent", change: func(s *session, nodes []map[string]store.Record) {
			for _, m := range nodes {
				m[s.id(0)] = rec(s, 6)
			}
		}, lost: 2, lostOn2: 2, unknown: 5},
		{name: "a position never sent", change: func(s *session, nodes []map[string]store.Record) {
			r := rec(s, 4)
			r.Text = s.id(4) + " +1+1 " + string(appendTime(nil, 4))
			nodes[0][s.id(0)] = r
		}, lost: 2, disagree: 1, unknown: 1},
		{name: "a client nobody sent", change: func(s *session, nodes []map[string]store.Record) {
			nodes[3]["stranger"] = store.Record{Text: "stranger +1+1 1", Origin: "Smith", Recv: 1}
		}, disagree: 1, unknown: 1},
		{name: "another origin", change: func(s *session, nodes []map[string]store.Record) {
			r := rec(s, 4)
			r.Origin = "Jaquez"
			nodes[4][s.id(0)] = r
		}, disagree: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSession(2)
			if tt.round != 0 {
				s.round = tt.round
			}
			nodes := make([]map[string]store.Record, len(topology.Classic))
			for k := range nodes {
				nodes[k] = map[string]store.Record{s.id(0): rec(s, 4), s.id(1): rec(s, 3)}
			}
			tt.change(s, nodes)
			v := check([]*session{s}, 2, nodes, time.Now())
			if v.lost != tt.lost || v.lostEarlier != tt.lostEarlier || v.lostOn[2] != tt.lostOn2 ||
				v.disagree != tt.disagree || v.unknown != tt.unknown {
				t.Errorf("lost %d, earlier %d, on node 2 %d, disagree %d, unknown %d; want %d, %d, %d, %d, %d\n%s",
					v.lost, v.lostEarlier, v.lostOn[2], v.disagree, v.unknown,
					tt.lost, tt.lostEarlier, tt.lostOn2, tt.disagree, tt.unknown, strings.Join(v.examples, "\n"))
			}
			// A second check finds nothing newly lost in earlier rounds.
			if again := check([]*session{s}, 3, nodes, time.Now()); again.lostEarlier != 0 {
				t.Errorf("the second check found %d newly lost", again.lostEarlier)
			}
		})
	}
}
