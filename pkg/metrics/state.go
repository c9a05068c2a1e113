package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// StoreState is what the store's metrics read of a node's record store at
// every scrape (store.Store has these methods). An interface, so that
// this package does not import the store.
type StoreState interface {
	Len() int
	Limit() int
	Evictions() uint64
	Refused() uint64
}

// NodeState defines the metrics that are read from a node's state at
// every scrape rather than counted as things happen: herd_ready from
// ready (what /readyz answers), the record store's size, limit,
// evictions and refusals, and herd_log_blocked_seconds_total from
// logBlocked (logging.Log.Blocked). The wiring calls it once, with the
// node's final store.
func (m *Metrics) NodeState(ready func() bool, st StoreState, logBlocked func() time.Duration) {
	f := m.factory()
	f.gaugeFunc("herd_ready", "1 when /readyz answers ready, else 0.", func() float64 {
		if ready() {
			return 1
		}
		return 0
	})
	f.gaugeFunc("herd_store_records", "Clients whose record this server holds.",
		func() float64 { return float64(st.Len()) })
	f.gaugeFunc("herd_store_records_limit", "The most clients whose record this server holds (HERD_MAX_RECORDS).",
		func() float64 { return float64(st.Limit()) })
	f.counterFunc("herd_store_evictions_total",
		"Records evicted at HERD_MAX_RECORDS to make room for a new client's record that ranks higher.",
		func() float64 { return float64(st.Evictions()) })
	f.counterFunc("herd_store_refused_total",
		"Records of new clients not stored at HERD_MAX_RECORDS because they rank below every record held; also counted in herd_store_updates_dropped_total.",
		func() float64 { return float64(st.Refused()) })
	f.counterFunc("herd_log_blocked_seconds_total",
		"Time the process's log could not take records because its destination had not taken the earlier ones; client lines wait meanwhile.",
		func() float64 { return logBlocked().Seconds() })
}

func (f factory) gaugeFunc(name, help string, value func() float64) {
	f.register(name, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, value))
}

func (f factory) counterFunc(name, help string, value func() float64) {
	f.register(name, prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, value))
}
