package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

func TestNamesPassPromlint(t *testing.T) {
	m := New()
	m.NodeState(func() bool { return true }, fakeStore{}, func() time.Duration { return 0 })
	// Give every vector one child so that Gather returns its family.
	m.ClientRequests.WithLabelValues("IAMAT", "ok").Inc()
	m.ClientRequestDuration.WithLabelValues("IAMAT").Observe(0.001)
	m.ClientRefused.WithLabelValues("max_conns").Inc()
	m.ClientDisconnects.WithLabelValues("eof").Inc()
	m.StoreUpdates.WithLabelValues(SourceClient).Inc()
	m.StoreUpdatesDropped.WithLabelValues(SourceClient).Inc()
	m.PropagationDelay.WithLabelValues(SourceFlood).Observe(0.001)
	m.PeerUp.WithLabelValues("Hill").Set(1)
	m.PeerConnects.WithLabelValues("Hill").Inc()
	m.PeerDisconnects.WithLabelValues("Hill", "eof").Inc()
	m.PeerBacklog.WithLabelValues("Hill").Set(0)
	m.PeerRecordsSent.WithLabelValues("Hill", "flood").Inc()
	m.PeerRecordsReceived.WithLabelValues("Hill", "flood").Inc()
	m.PeerAnnounced.WithLabelValues("Hill").Inc()
	m.PeerAnnouncedReceived.WithLabelValues("Hill").Inc()
	m.PeerTreeChanges.WithLabelValues("Hill", "prune_sent").Inc()
	m.PeerWrites.WithLabelValues("Hill").Inc()
	m.PeerReconcileRemaining.WithLabelValues("Hill").Set(0)
	m.PeerHandshakeFailures.WithLabelValues("bad_secret").Inc()
	m.PeerDuplicateNames.WithLabelValues("Hill").Inc()
	m.PeerClockOffset.WithLabelValues("Hill").Set(0.001)
	m.PlacesRequests.WithLabelValues("offline", "OK").Inc()
	m.PlacesDuration.WithLabelValues("offline").Observe(0.001)
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		seen[mf.GetName()] = true
	}
	for _, n := range m.Names() {
		if !seen[n] {
			t.Errorf("%s is not gathered", n)
		}
		if !strings.HasPrefix(n, "herd_") {
			t.Errorf("%s lacks the herd_ prefix", n)
		}
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}
