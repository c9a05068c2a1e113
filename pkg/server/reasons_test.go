package server

import (
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/herdkit/herd/pkg/metrics"
)

// helpListing returns the help text of the metric that vec's children
// belong to, once reasons has made one child each.
func helpListing(t *testing.T, m *metrics.Metrics, vec *prometheus.CounterVec, name string, reasons []string) string {
	t.Helper()
	for _, r := range reasons {
		vec.WithLabelValues(r)
	}
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return f.GetHelp()
		}
	}
	t.Fatalf("no metric %s", name)
	return ""
}

// TestReasonsInHelp: every reason a connection is closed or refused for
// is listed in its metric's help text, which is all a reader of /metrics
// sees.
func TestReasonsInHelp(t *testing.T) {
	m := metrics.New()
	for _, tt := range []struct {
		name       string
		vec        *prometheus.CounterVec
		reasons    []string
		precreated []string // the series that exist from the start
	}{
		{"herd_client_disconnects_total", m.ClientDisconnects, []string{closeEOF, closeIdle, closeLineTooLong,
			closeWriteError, closeWriteTimeout, closeReadError, closeShutdown, closeNotDurable}, metrics.ClientDisconnectReasons},
		{"herd_client_connections_refused_total", m.ClientRefused, []string{refuseMaxConns, refusePerIP, refuseShutdown},
			metrics.ClientRefusedReasons},
	} {
		help := helpListing(t, m, tt.vec, tt.name, tt.reasons)
		for _, r := range tt.reasons {
			if !strings.Contains(help, r) {
				t.Errorf("%s's help %q lacks the reason %s", tt.name, help, r)
			}
			if !slices.Contains(tt.precreated, r) {
				t.Errorf("%s: the reason %s has no series from the start (pkg/metrics/series.go)", tt.name, r)
			}
		}
	}
}
