package node

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/protocol"
	"github.com/herdkit/herd/pkg/store"
)

// TestRecordLimitAcrossTheHerd: with HERD_MAX_RECORDS=10000, 30,000
// distinct ids sent to the five nodes of the classic herd at once leave
// 10,000 records on every node, the same set everywhere: the 10,000 that
// rank highest. Many ids share a time, so the order's tie-breaks decide
// too, and each node sees the records in its own order.
func TestRecordLimitAcrossTheHerd(t *testing.T) {
	if testing.Short() {
		t.Skip("floods 30,000 records through a herd")
	}
	const limit, ids = 10_000, 30_000
	nodes := startHerd(t, "HERD_MAX_RECORDS", fmt.Sprint(limit))
	testutil.Eventually(t, 20*time.Second, func() error {
		for _, n := range nodes {
			if !n.Peers().Reconciled() {
				return fmt.Errorf("%s has not reconciled", n.cfg.Name)
			}
		}
		return nil
	})

	// Id i goes to node i%5, with a time that three ids share and a
	// position of its own.
	lines := make([][]string, len(nodes))
	var sent []store.Record
	for i := range ids {
		k := i % len(nodes)
		text := fmt.Sprintf("id-%05d +34.%06d-118.445127 %d.5", i, i, 1621464000+(i*7919%ids)/3)
		lines[k] = append(lines[k], "IAMAT "+text)
		sent = append(sent, store.Record{Text: text, Origin: nodes[k].cfg.Name})
	}
	var wg sync.WaitGroup
	for k, n := range nodes {
		wg.Go(func() {
			rs, err := testutil.ReadReplies(strings.NewReader(send(t, n, lines[k]...)), lines[k]...)
			if err != nil || slices.ContainsFunc(rs, func(r protocol.Reply) bool { return r.Kind != protocol.ReplyAT }) {
				t.Errorf("%s answered %d of %d IAMATs: %v", n.cfg.Name, len(rs), len(lines[k]), err)
			}
		})
	}
	wg.Wait()

	// The receive times are the nodes', but positions differ, so the
	// rank never reaches them.
	slices.SortFunc(sent, func(a, b store.Record) int { return store.Rank(b, a) })
	var want []string
	for _, r := range sent[:limit] {
		want = append(want, r.Client())
	}
	slices.Sort(want)

	held := func(n *Node) []string {
		changes, _ := n.Store().Changes(0, 1<<30, nil)
		out := make([]string, len(changes))
		for i, c := range changes {
			out[i] = c.Record.Client()
		}
		slices.Sort(out)
		return out
	}
	testutil.Eventually(t, 30*time.Second, func() error {
		for _, n := range nodes {
			if l := n.Store().Len(); l > limit {
				t.Fatalf("%s holds %d records, over the limit %d", n.cfg.Name, l, limit)
			}
			got := held(n)
			if slices.Equal(got, want) {
				continue
			}
			missing := 0
			for _, id := range want {
				if _, ok := slices.BinarySearch(got, id); !ok {
					missing++
				}
			}
			return fmt.Errorf("%s holds %d records, %d of the highest %d missing", n.cfg.Name, len(got), missing, limit)
		}
		return nil
	})
	for _, n := range nodes {
		fams := scrape(t, n)
		if v := fams.Value("herd_store_records_limit"); v != limit {
			t.Errorf("%s: herd_store_records_limit = %v", n.cfg.Name, v)
		}
		ev, ref := fams.Value("herd_store_evictions_total"), fams.Value("herd_store_refused_total")
		// Each node took 10,000 records at first and then saw more of
		// the 30,000: it evicted some and refused others.
		if ev <= 0 || ref <= 0 {
			t.Errorf("%s: %v evictions and %v refusals, want some of each", n.cfg.Name, ev, ref)
		}
		t.Logf("%s: %v evictions, %v refusals", n.cfg.Name, ev, ref)
	}
}
