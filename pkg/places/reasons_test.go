package places

import (
	"strings"
	"testing"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/metrics"
)

// TestReasonsInHelp: every status a lookup is counted under is listed in
// herd_places_requests_total's help text, which is all a reader of
// /metrics sees; and a status outside the set is counted as OTHER.
func TestReasonsInHelp(t *testing.T) {
	m := metrics.New()
	m.PlacesRequests.WithLabelValues("offline", StatusOK)
	help := testutil.Gather(t, m.Registry).Help("herd_places_requests_total")
	for _, s := range statusLabels {
		if !strings.Contains(help, s) {
			t.Errorf("herd_places_requests_total's help %q lacks %s", help, s)
		}
	}
	for status, want := range map[string]string{StatusOK: StatusOK, StatusUnknownError: StatusUnknownError,
		"NOT_FOUND": statusOther, "": statusOther, "OTHER": statusOther} {
		if got := statusLabel(status); got != want {
			t.Errorf("statusLabel(%q) = %s, want %s", status, got, want)
		}
	}
}
