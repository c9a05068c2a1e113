package peer

import (
	"strings"
	"testing"

	"github.com/herdkit/herd/pkg/metrics"
)

// TestReasonsInHelp: every reason a link goes down or a handshake fails
// is listed in its metric's help text, which is all a reader of /metrics
// sees.
func TestReasonsInHelp(t *testing.T) {
	m := metrics.New()
	down := []string{downEOF, downTimeout, downError, downReplaced, downShutdown}
	for _, r := range down {
		m.PeerDisconnects.WithLabelValues("B", r)
	}
	handshake := []string{reasonBadSecret, reasonUnknownPeer, reasonWrongPeer, reasonProtocol, reasonTimeout,
		reasonDuplicate, reasonDuplicateName, reasonTooMany, reasonPerIP, reasonRefused, reasonTLS}
	for _, r := range handshake {
		m.PeerHandshakeFailures.WithLabelValues(r)
	}
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	help := map[string]string{}
	for _, f := range fams {
		help[f.GetName()] = f.GetHelp()
	}
	for name, reasons := range map[string][]string{
		"herd_peer_disconnects_total":        down,
		"herd_peer_handshake_failures_total": handshake,
	} {
		for _, r := range reasons {
			if !strings.Contains(help[name], r) {
				t.Errorf("%s's help %q lacks the reason %s", name, help[name], r)
			}
		}
	}
}
