package peer

import (
	"slices"
	"strings"
	"testing"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/metrics"
)

// TestReasonsInHelp: every label value of a closed set that peer counts
// under (a reason a link goes down or a handshake fails, a kind of record
// sent or received) is listed in its metric's help text, which is all a
// reader of /metrics sees.
func TestReasonsInHelp(t *testing.T) {
	down := []string{downEOF, downTimeout, downError, downReplaced, downShutdown}
	handshake := []string{reasonBadSecret, reasonUnknownPeer, reasonWrongPeer, reasonProtocol, reasonTimeout,
		reasonDuplicate, reasonDuplicateName, reasonTooMany, reasonPerIP, reasonRefused, reasonTLS}
	kinds := kindSource[:]
	// A family is gathered, help and all, once it has a child.
	m := metrics.New()
	m.PeerDisconnects.WithLabelValues("B", downEOF)
	m.PeerHandshakeFailures.WithLabelValues(reasonBadSecret)
	m.PeerRecordsSent.WithLabelValues("B", kinds[0])
	m.PeerRecordsReceived.WithLabelValues("B", kinds[0])
	help := testutil.Gather(t, m.Registry)
	for name, values := range map[string][]string{
		"herd_peer_disconnects_total":        down,
		"herd_peer_handshake_failures_total": handshake,
		"herd_peer_records_sent_total":       kinds,
		"herd_peer_records_received_total":   kinds,
	} {
		for _, v := range values {
			if h := help.Help(name); !strings.Contains(h, v) {
				t.Errorf("%s's help %q lacks %s", name, h, v)
			}
		}
	}
	// Every reason has a series from the start (pkg/metrics/series.go).
	for set, want := range map[string][]string{"disconnect": down, "handshake": handshake} {
		have := map[string][]string{"disconnect": metrics.PeerDisconnectReasons, "handshake": metrics.PeerHandshakeFailureReasons}[set]
		for _, r := range want {
			if !slices.Contains(have, r) {
				t.Errorf("the %s reason %s has no series from the start", set, r)
			}
		}
	}
}
