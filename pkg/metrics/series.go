package metrics

// The closed label sets of the labelled counters. Their series are created
// at zero, so that they exist from a node's start: a dashboard panel or an
// alerting rule that reads them has data before the first event, and a
// rate() sees the first event as an increase from 0 rather than the
// start of a new series. docs/metrics.md's table lists the same values,
// which a test in test/ checks against a fresh node's scrape.
var (
	// ClientRefusedReasons label herd_client_connections_refused_total.
	ClientRefusedReasons = []string{"max_conns", "per_ip", "shutdown"}
	// ClientDisconnectReasons label herd_client_disconnects_total.
	ClientDisconnectReasons = []string{"eof", "idle", "line_too_long", "write_timeout", "write_error", "read_error", "shutdown",
		"not_durable"}
	// PeerDisconnectReasons label herd_peer_disconnects_total.
	PeerDisconnectReasons = []string{"eof", "timeout", "error", "replaced", "shutdown"}
	// PeerHandshakeFailureReasons label herd_peer_handshake_failures_total.
	PeerHandshakeFailureReasons = []string{"bad_secret", "unknown_peer", "wrong_peer", "protocol", "timeout",
		"duplicate", "duplicate_name", "too_many_handshakes", "per_ip", "refused", "tls"}
	// PeerRecordKinds label herd_peer_records_sent_total and
	// herd_peer_records_received_total.
	PeerRecordKinds = []string{SourceFlood, SourceReconcile}
	// PeerTreeChanges label herd_peer_tree_changes_total.
	PeerTreeChanges = []string{"prune_sent", "prune_received", "graft_sent", "graft_received"}
	// PlacesStatuses label herd_places_requests_total: the statuses of
	// Google's legacy API, and OTHER for anything else.
	PlacesStatuses = []string{"OK", "ZERO_RESULTS", "INVALID_REQUEST", "OVER_QUERY_LIMIT", "REQUEST_DENIED", "UNKNOWN_ERROR", "OTHER"}
)

// precreate creates the series of the labelled counters whose labels do
// not depend on the configuration.
func (m *Metrics) precreate() {
	for _, r := range ClientRefusedReasons {
		m.ClientRefused.WithLabelValues(r)
	}
	for _, r := range ClientDisconnectReasons {
		m.ClientDisconnects.WithLabelValues(r)
	}
	for _, r := range PeerHandshakeFailureReasons {
		m.PeerHandshakeFailures.WithLabelValues(r)
	}
}

// Neighbour creates the series of a neighbour's labelled metrics at zero:
// its link state, connects, disconnects by reason, duplicate names,
// backlog and records by kind; and those of records stored from peers,
// by source. The wiring calls it once per configured neighbour.
func (m *Metrics) Neighbour(name string) {
	for _, k := range PeerRecordKinds {
		m.StoreUpdates.WithLabelValues(k)
		m.StoreUpdatesDropped.WithLabelValues(k)
		m.PropagationDelay.WithLabelValues(k)
	}
	m.PeerUp.WithLabelValues(name)
	m.PeerConnects.WithLabelValues(name)
	for _, r := range PeerDisconnectReasons {
		m.PeerDisconnects.WithLabelValues(name, r)
	}
	m.PeerDuplicateNames.WithLabelValues(name)
	m.PeerBacklog.WithLabelValues(name)
	m.PeerClockOffset.WithLabelValues(name) // 0 until the first timed ping is answered
	for _, k := range PeerRecordKinds {
		m.PeerRecordsSent.WithLabelValues(name, k)
		m.PeerRecordsReceived.WithLabelValues(name, k)
	}
	m.PeerAnnounced.WithLabelValues(name)
	m.PeerAnnouncedReceived.WithLabelValues(name)
	for _, c := range PeerTreeChanges {
		m.PeerTreeChanges.WithLabelValues(name, c)
	}
	m.PeerWrites.WithLabelValues(name)
	m.PeerReconcileRemaining.WithLabelValues(name)
}

// Provider creates the series of a places provider's requests, by status,
// and of its request durations at zero. The wiring calls it with the
// provider's name.
func (m *Metrics) Provider(name string) {
	for _, s := range PlacesStatuses {
		m.PlacesRequests.WithLabelValues(name, s)
	}
	m.PlacesDuration.WithLabelValues(name)
}
