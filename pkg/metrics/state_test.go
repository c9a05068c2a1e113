package metrics

import (
	"testing"
	"time"

	"github.com/herdkit/herd/internal/testutil"
)

// fakeStore is a record store's counts, as NodeState reads them.
type fakeStore struct {
	len, limit         int
	evictions, refused uint64
}

func (s fakeStore) Len() int          { return s.len }
func (s fakeStore) Limit() int        { return s.limit }
func (s fakeStore) Evictions() uint64 { return s.evictions }
func (s fakeStore) Refused() uint64   { return s.refused }

// TestNodeState: each series of NodeState reads its part of the node's
// state at the scrape.
func TestNodeState(t *testing.T) {
	tests := []struct {
		name    string
		ready   bool
		store   fakeStore
		blocked time.Duration
		want    map[string]float64
	}{
		{"a new node", false, fakeStore{}, 0, map[string]float64{
			"herd_ready": 0, "herd_store_records": 0, "herd_store_records_limit": 0,
			"herd_store_evictions_total": 0, "herd_store_refused_total": 0, "herd_log_blocked_seconds_total": 0,
		}},
		{"a full store behind a slow log", true, fakeStore{len: 100, limit: 100, evictions: 7, refused: 3}, 1500 * time.Millisecond, map[string]float64{
			"herd_ready": 1, "herd_store_records": 100, "herd_store_records_limit": 100,
			"herd_store_evictions_total": 7, "herd_store_refused_total": 3, "herd_log_blocked_seconds_total": 1.5,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			var st fakeStore // read at the scrape, not when NodeState is called
			m.NodeState(func() bool { return tt.ready }, &st, func() time.Duration { return tt.blocked })
			st = tt.store
			fams := testutil.Gather(t, m.Registry)
			for name, want := range tt.want {
				if got := fams.Value(name); got != want {
					t.Errorf("%s = %v, want %v", name, got, want)
				}
			}
		})
	}
}
