package metrics

import (
	"strings"
	"testing"

	"github.com/herdkit/herd/internal/testutil"
)

// TestSourcesInHelp: every source a record is counted under is listed in
// the help text of each metric labelled by source, which is all a reader
// of /metrics sees.
func TestSourcesInHelp(t *testing.T) {
	m := New()
	m.StoreUpdates.WithLabelValues(SourceClient)
	m.StoreUpdatesDropped.WithLabelValues(SourceClient)
	m.PropagationDelay.WithLabelValues(SourceFlood)
	help := testutil.Gather(t, m.Registry)
	for name, sources := range map[string][]string{
		"herd_store_updates_total":         {SourceClient, SourceFlood, SourceReconcile},
		"herd_store_updates_dropped_total": {SourceClient, SourceFlood, SourceReconcile},
		// Only records from peers have a propagation delay.
		"herd_propagation_delay_seconds": {SourceFlood, SourceReconcile},
	} {
		for _, s := range sources {
			if h := help.Help(name); !strings.Contains(h, s) {
				t.Errorf("%s's help %q lacks %s", name, h, s)
			}
		}
	}
}
