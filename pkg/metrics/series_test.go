package metrics

import (
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// TestSeriesExistAtZero checks that the labelled counters have a series
// for every value of their closed label sets from the start, at zero:
// those of New, and those of Neighbour and Provider.
func TestSeriesExistAtZero(t *testing.T) {
	m := New()
	m.Neighbour("Jaquez")
	m.Provider("offline")
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][][]string{} // family: label values of each series
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			var values []string
			for _, l := range s.GetLabel() {
				values = append(values, l.GetName()+"="+l.GetValue())
			}
			got[mf.GetName()] = append(got[mf.GetName()], values)
			if v := value(s); v != 0 && strings.HasPrefix(mf.GetName(), "herd_") && mf.GetType() == dto.MetricType_COUNTER {
				t.Errorf("%s%v = %v at start, want 0", mf.GetName(), values, v)
			}
		}
	}
	for _, tc := range []struct {
		family string
		label  string   // the label whose values are listed
		values []string // every one must have a series
		fixed  []string // other labels of those series, name=value
	}{
		{"herd_client_connections_refused_total", "reason", ClientRefusedReasons, nil},
		{"herd_client_disconnects_total", "reason", ClientDisconnectReasons, nil},
		{"herd_peer_handshake_failures_total", "reason", PeerHandshakeFailureReasons, nil},
		{"herd_peer_disconnects_total", "reason", PeerDisconnectReasons, []string{"peer=Jaquez"}},
		{"herd_peer_records_sent_total", "kind", PeerRecordKinds, []string{"peer=Jaquez"}},
		{"herd_peer_records_received_total", "kind", PeerRecordKinds, []string{"peer=Jaquez"}},
		{"herd_peer_connects_total", "peer", []string{"Jaquez"}, nil},
		{"herd_peer_duplicate_names_total", "peer", []string{"Jaquez"}, nil},
		{"herd_peer_up", "peer", []string{"Jaquez"}, nil},
		{"herd_peer_backlog_records", "peer", []string{"Jaquez"}, nil},
		{"herd_propagation_delay_seconds", "source", PeerRecordKinds, nil},
		{"herd_store_updates_total", "source", PeerRecordKinds, nil},
		{"herd_places_requests_total", "status", PlacesStatuses, []string{"provider=offline"}},
		{"herd_places_request_duration_seconds", "provider", []string{"offline"}, nil},
	} {
		t.Run(tc.family, func(t *testing.T) {
			for _, v := range tc.values {
				want := append([]string{tc.label + "=" + v}, tc.fixed...)
				found := slices.ContainsFunc(got[tc.family], func(labels []string) bool {
					for _, w := range want {
						if !slices.Contains(labels, w) {
							return false
						}
					}
					return true
				})
				if !found {
					t.Errorf("no series %v at start; have %v", want, got[tc.family])
				}
			}
		})
	}
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

// TestBuildStamped: the version and revision set at link time (-ldflags
// -X, as docker/build-image does) win over Go's stamping, and
// herd_build_info carries them.
func TestBuildStamped(t *testing.T) {
	for _, tc := range []struct{ version, revision, wantVersion, wantRevision string }{
		{"", "", "(devel)", "unknown"}, // go test stamps no VCS information
		{"v1.2.3", "0123abcd", "v1.2.3", "0123abcd"},
	} {
		Version, Revision = tc.version, tc.revision
		v, r := Build()
		if v != tc.wantVersion || r != tc.wantRevision {
			t.Errorf("with -X %q %q: Build() = %q, %q; want %q, %q", tc.version, tc.revision, v, r, tc.wantVersion, tc.wantRevision)
		}
		mfs, err := New().Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "herd_build_info" {
				continue
			}
			got := map[string]string{}
			for _, l := range mf.GetMetric()[0].GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if got["version"] != tc.wantVersion || got["revision"] != tc.wantRevision {
				t.Errorf("herd_build_info %v; want version %q, revision %q", got, tc.wantVersion, tc.wantRevision)
			}
		}
	}
	Version, Revision = "", ""
}
