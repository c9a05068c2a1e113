package server

import (
	"slices"
	"strings"
	"testing"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/metrics"
	"github.com/herdkit/herd/pkg/protocol"
)

// TestReasonsInHelp: every label value of a closed set the server counts
// under (a reason a connection is closed or refused for, a command, an
// outcome) is listed in its metric's help text, which is all a reader of
// /metrics sees.
func TestReasonsInHelp(t *testing.T) {
	commands := []string{commandLabel(protocol.Invalid)}
	for _, c := range protocol.Commands() {
		commands = append(commands, commandLabel(c.Kind))
	}
	closes := []string{closeEOF, closeIdle, closeLineTooLong, closeWriteError, closeWriteTimeout,
		closeReadError, closeShutdown, closeNotDurable}
	refusals := []string{refuseMaxConns, refusePerIP, refuseShutdown}
	// A family is gathered, help and all, once it has a child.
	m := metrics.New()
	newStats(m)
	m.ClientDisconnects.WithLabelValues(closeEOF)
	m.ClientRefused.WithLabelValues(refuseMaxConns)
	help := testutil.Gather(t, m.Registry)
	for _, tt := range []struct {
		name       string
		values     []string
		precreated []string // the series that exist from the start; nil: not checked here
	}{
		{"herd_client_disconnects_total", closes, metrics.ClientDisconnectReasons},
		{"herd_client_connections_refused_total", refusals, metrics.ClientRefusedReasons},
		{"herd_client_requests_total", append(commands, outcomeLabels[:]...), nil},
	} {
		for _, v := range tt.values {
			if h := help.Help(tt.name); !strings.Contains(h, v) {
				t.Errorf("%s's help %q lacks %s", tt.name, h, v)
			}
			if tt.precreated != nil && !slices.Contains(tt.precreated, v) {
				t.Errorf("%s: %s has no series from the start (pkg/metrics/series.go)", tt.name, v)
			}
		}
	}
}
