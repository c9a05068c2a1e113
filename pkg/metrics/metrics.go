// Package metrics defines every Prometheus metric a node exports, on a
// registry of its own so that several nodes can live in one process.
//
// Names follow Prometheus conventions: a herd_ prefix, the subsystem, base
// units (seconds), _total on counters, and labels only from small closed
// sets (command, outcome, reason, source, neighbour name, provider,
// status), never a client id. docs/metrics.md lists them all; tests in
// test/ keep it, the Grafana dashboard and this file in step.
package metrics

import (
	"runtime"
	"runtime/debug"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Label values used by more than one package.
const (
	SourceClient    = "client"
	SourceFlood     = "flood"
	SourceReconcile = "reconcile"
)

// latencyBuckets run from 10µs to 10s in 1-2.5-5 steps: propagation on
// loopback takes tens of microseconds, a Google request hundreds of
// milliseconds, and a reconciliation after an outage seconds.
var latencyBuckets = []float64{
	10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
	1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3,
	1, 2.5, 5, 10,
}

// Metrics holds a node's collectors.
type Metrics struct {
	Registry *prometheus.Registry
	names    *[]string

	ClientRequests        *prometheus.CounterVec   // command, outcome
	ClientRequestDuration *prometheus.HistogramVec // command
	ClientConnections     prometheus.Gauge
	ClientAccepted        prometheus.Counter
	ClientRefused         *prometheus.CounterVec // reason
	ClientDisconnects     *prometheus.CounterVec // reason

	StoreUpdates        *prometheus.CounterVec // source
	StoreUpdatesDropped *prometheus.CounterVec // source

	PropagationDelay *prometheus.HistogramVec // source
	PropagationHops  prometheus.Histogram

	PeerUp                 *prometheus.GaugeVec   // peer
	PeerConnects           *prometheus.CounterVec // peer
	PeerDisconnects        *prometheus.CounterVec // peer, reason
	PeerBacklog            *prometheus.GaugeVec   // peer
	PeerRecordsSent        *prometheus.CounterVec // peer, kind
	PeerRecordsReceived    *prometheus.CounterVec // peer, kind
	PeerAnnounced          *prometheus.CounterVec // peer: announcements sent
	PeerAnnouncedReceived  *prometheus.CounterVec // peer
	PeerTreeChanges        *prometheus.CounterVec // peer, change
	PeerWrites             *prometheus.CounterVec // peer
	PeerReconcileRemaining *prometheus.GaugeVec   // peer
	PeerHandshakeFailures  *prometheus.CounterVec // reason
	PeerDuplicateNames     *prometheus.CounterVec // peer
	PeerClockOffset        *prometheus.GaugeVec   // peer

	JournalBytes       prometheus.Counter
	JournalFsync       prometheus.Histogram
	JournalLag         prometheus.Gauge
	JournalSnapshots   prometheus.Counter
	JournalRecovered   prometheus.Gauge
	JournalTruncations prometheus.Counter
	JournalErrors      prometheus.Counter
	JournalDataLoss    prometheus.Counter
	JournalDamaged     prometheus.Gauge

	PlacesRequests     *prometheus.CounterVec   // provider, status
	PlacesDuration     *prometheus.HistogramVec // provider
	PlacesCacheHits    prometheus.Counter
	PlacesCacheMisses  prometheus.Counter
	PlacesCacheShared  prometheus.Counter
	PlacesInflight     prometheus.Gauge
	PlacesCacheEntries prometheus.Gauge
	PlacesLimitWaits   prometheus.Counter
}

// New creates a registry with every metric, the Go runtime and process
// collectors, and herd_build_info.
func New() *Metrics {
	r := prometheus.NewRegistry()
	f := factory{r: r, names: new([]string)}
	m := &Metrics{
		Registry: r,
		names:    f.names,

		ClientRequests: f.counterVec("herd_client_requests_total",
			"Client lines answered, by command (IAMAT, WHATSAT, other) and outcome (ok, invalid, places_error).",
			"command", "outcome"),
		ClientRequestDuration: f.histogramVec("herd_client_request_duration_seconds",
			"Time from reading a client line to its reply being ready, by command.", latencyBuckets, "command"),
		ClientConnections: f.gauge("herd_client_connections", "Open client connections."),
		ClientAccepted:    f.counter("herd_client_connections_accepted_total", "Client connections accepted."),
		ClientRefused: f.counterVec("herd_client_connections_refused_total",
			"Client connections closed at once, by reason (max_conns, per_ip: a limit was reached; shutdown: the server is stopping).", "reason"),
		ClientDisconnects: f.counterVec("herd_client_disconnects_total",
			"Client connections closed, by reason (eof, idle, line_too_long, write_error, write_timeout, read_error, shutdown, not_durable).", "reason"),

		StoreUpdates: f.counterVec("herd_store_updates_total",
			"Records stored because they were newer, by source (client, flood, reconcile).", "source"),
		StoreUpdatesDropped: f.counterVec("herd_store_updates_dropped_total",
			"Records not stored, by source (client, flood, reconcile): not newer than the stored one, or a new client's below every record held at HERD_MAX_RECORDS (herd_store_refused_total).", "source"),

		PropagationDelay: f.histogramVec("herd_propagation_delay_seconds",
			"Time from the origin server receiving an IAMAT to this server storing the record, by source (flood, reconcile).",
			latencyBuckets, "source"),
		PropagationHops: f.histogram("herd_propagation_hops",
			"Peer links crossed by records stored from peers.", []float64{1, 2, 3, 4, 5, 6, 8, 10, 16}),

		PeerUp:       f.gaugeVec("herd_peer_up", "1 when the link to a neighbour is up and reconciled, else 0.", "peer"),
		PeerConnects: f.counterVec("herd_peer_connects_total", "Peer links established, by neighbour.", "peer"),
		PeerDisconnects: f.counterVec("herd_peer_disconnects_total",
			"Peer links lost, by neighbour and reason (eof, timeout, error, replaced, shutdown).", "peer", "reason"),
		PeerBacklog: f.gaugeVec("herd_peer_backlog_records",
			"Changes stored here and not yet sent to a neighbour (the outgoing queue).", "peer"),
		PeerRecordsSent: f.counterVec("herd_peer_records_sent_total",
			"Records sent to a neighbour, by kind (flood, reconcile).", "peer", "kind"),
		PeerRecordsReceived: f.counterVec("herd_peer_records_received_total",
			"Records received from a neighbour, by kind (flood, reconcile), newer or not.", "peer", "kind"),
		PeerAnnounced: f.counterVec("herd_peer_announcements_sent_total",
			"Changes announced to a neighbour instead of sent whole: the links of its broadcast trees it reaches another way (docs/topology.md).", "peer"),
		PeerAnnouncedReceived: f.counterVec("herd_peer_announcements_received_total",
			"Changes a neighbour announced instead of sending them whole.", "peer"),
		PeerTreeChanges: f.counterVec("herd_peer_tree_changes_total",
			"Changes of the broadcast trees on a neighbour's link, by change (prune_sent, prune_received: an origin's records to go lazily, as a copy came another way first; "+
				"graft_sent, graft_received: a missing record asked for, and its origin's records to go eagerly again).", "peer", "change"),
		PeerReconcileRemaining: f.gaugeVec("herd_peer_reconcile_remaining_changes",
			"Changes a neighbour still has to send in the reconciliation of its link, from the head it gave when the link came up; 0 once done. "+
				"A server that started empty is not ready until the neighbour it fills from is done (docs/reconciliation.md).", "peer"),
		PeerWrites: f.counterVec("herd_peer_writes_total",
			"Writes (messages) on a neighbour's link, each carrying any number of frames.", "peer"),
		PeerHandshakeFailures: f.counterVec("herd_peer_handshake_failures_total",
			"Peer connections refused during the handshake, by reason (bad_secret, unknown_peer, wrong_peer, protocol, timeout, "+
				"duplicate, duplicate_name, too_many_handshakes, per_ip, refused, tls); a refusal the other end explained counts under its reason.",
			"reason"),
		PeerClockOffset: f.gaugeVec("herd_peer_clock_offset_seconds",
			"A neighbour's clock minus this server's, estimated from timed heartbeats as NTP does (the sample of the smallest round trip of the last 8).", "peer"),
		PeerDuplicateNames: f.counterVec("herd_peer_duplicate_names_total",
			"Episodes of two live servers claiming a neighbour's name, by that name; the newer claimant is refused (duplicate_name).",
			"peer"),

		JournalBytes: f.counter("herd_journal_written_bytes_total", "Bytes appended to the journal (HERD_DATA_DIR)."),
		JournalFsync: f.histogram("herd_journal_fsync_duration_seconds",
			"Duration of the journal's batched fsyncs, one per HERD_FSYNC_INTERVAL with writes.", latencyBuckets),
		JournalLag: f.gauge("herd_journal_lag_records",
			"Changes stored and not yet written to the journal."),
		JournalSnapshots: f.counter("herd_journal_snapshots_total", "Snapshots written, each compacting the journal."),
		JournalRecovered: f.gauge("herd_journal_recovered_records", "Records read back from the journal at start."),
		JournalTruncations: f.counter("herd_journal_truncations_total",
			"Torn journal tails (a bad last entry with nothing valid after it) cut off at start."),
		JournalErrors: f.counter("herd_journal_errors_total", "Failed journal writes, syncs and snapshots."),
		JournalDataLoss: f.counter("herd_journal_data_loss_total",
			"Starts that found records lost from the journal (a bad or missing snapshot, a missing segment, a corrupt entry before valid ones)."),
		JournalDamaged: f.gauge("herd_journal_damaged",
			"1 from a start that found records lost until every neighbour has sent everything again, else 0."),

		PlacesRequests: f.counterVec("herd_places_requests_total",
			"Places lookups answered by the provider (cache misses), by provider and status (OK, ZERO_RESULTS, INVALID_REQUEST, "+
				"OVER_QUERY_LIMIT, REQUEST_DENIED, UNKNOWN_ERROR, or OTHER for any other).",
			"provider", "status"),
		PlacesDuration: f.histogramVec("herd_places_request_duration_seconds",
			"Duration of places lookups sent to the provider.", latencyBuckets, "provider"),
		PlacesCacheHits:   f.counter("herd_places_cache_hits_total", "WHATSAT lookups answered from the places cache."),
		PlacesCacheMisses: f.counter("herd_places_cache_misses_total", "WHATSAT lookups not in the places cache."),
		PlacesCacheShared: f.counter("herd_places_cache_shared_total",
			"Cache misses that joined an identical lookup already in flight instead of sending their own."),
		PlacesInflight:     f.gauge("herd_places_inflight_requests", "Places lookups in flight to the provider."),
		PlacesCacheEntries: f.gauge("herd_places_cache_entries", "Answers held in the places cache."),
		PlacesLimitWaits: f.counter("herd_places_limit_waits_total",
			"Places lookups that had to wait for a free slot under HERD_PLACES_MAX_CONCURRENT."),
	}
	m.precreate()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	version, revision := Build()
	f.gaugeVec("herd_build_info", "Always 1; the labels tell the build.", "version", "revision", "goversion").
		WithLabelValues(version, revision, runtime.Version()).Set(1)
	return m
}

// Version and Revision, when set at link time, name the build where Go's
// own stamping cannot: docker/build-image and the Dockerfile set them with
// -ldflags "-X github.com/herdkit/herd/pkg/metrics.Revision=..." from git,
// since a build from a copy of the sources (a Docker context has no .git)
// or with -buildvcs=false has no vcs.revision.
var Version, Revision string

// Build returns the version and VCS revision of the binary: the values
// set at link time, else those Go stamped, else "(devel)" and "unknown".
func Build() (version, revision string) {
	version, revision = "(devel)", "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		if info.Main.Version != "" {
			version = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	if Version != "" {
		version = Version
	}
	if Revision != "" {
		revision = Revision
	}
	return version, revision
}

func (m *Metrics) factory() factory { return factory{r: m.Registry, names: m.names} }

// Names returns the names of the herd_ metrics registered so far, whether
// or not they have a sample yet.
func (m *Metrics) Names() []string { return slices.Clone(*m.names) }

type factory struct {
	r     prometheus.Registerer
	names *[]string
}

func (f factory) register(name string, c prometheus.Collector) {
	f.r.MustRegister(c)
	*f.names = append(*f.names, name)
}

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	f.register(name, c)
	return c
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.register(name, c)
	return c
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	f.register(name, g)
	return g
}

func (f factory) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	f.register(name, g)
	return g
}

func (f factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	f.register(name, h)
	return h
}

func (f factory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	f.register(name, h)
	return h
}
