package places

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/herdkit/herd/pkg/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// Instrumented records every call to a provider: PlacesRequests by
// provider and status, PlacesDuration by provider, and a WARN log line
// (component=places) for each failure. Put it under the cache, so that it
// sees the calls that reach the provider.
type Instrumented struct {
	p   Provider
	m   *metrics.Metrics
	dur prometheus.Observer
	log *slog.Logger
}

// Instrument wraps p in an Instrumented.
func Instrument(p Provider, m *metrics.Metrics, log *slog.Logger) *Instrumented {
	return &Instrumented{
		p: p, m: m,
		dur: m.PlacesDuration.WithLabelValues(p.Name()),
		log: log.With("component", "places", "provider", p.Name()),
	}
}

// Name returns the wrapped provider's name.
func (i *Instrumented) Name() string { return i.p.Name() }

// Ready returns the wrapped provider's readiness.
func (i *Instrumented) Ready() <-chan struct{} { return Ready(i.p) }

// Nearby calls the provider and records the call. A failure is logged at
// WARN, or at DEBUG when the caller gave up, since that is no fault of the
// provider's. The message logged is the provider's error_message, which
// never holds a key.
func (i *Instrumented) Nearby(ctx context.Context, q Query) *Response {
	start := time.Now()
	r := i.p.Nearby(ctx, q)
	d := time.Since(start)
	i.dur.Observe(d.Seconds())
	i.m.PlacesRequests.WithLabelValues(i.p.Name(), statusLabel(r.Status)).Inc()
	if !r.Cacheable() {
		level := slog.LevelWarn
		if ctx.Err() != nil {
			level = slog.LevelDebug
		}
		i.log.Log(ctx, level, "places lookup failed",
			"status", r.Status, "error", r.ErrorMessage, "radius_km", q.RadiusKm, "duration", d)
	}
	return r
}

// statusOther is the status label of any status not in statusLabels.
const statusOther = "OTHER"

// statusLabels is the closed set of the status label: the legacy
// statuses, and OTHER.
var statusLabels = []string{StatusOK, StatusZeroResults, StatusInvalidRequest, StatusOverQueryLimit,
	StatusRequestDenied, StatusUnknownError, statusOther}

// statusLabel keeps the status label to statusLabels, whatever an
// upstream sends.
func statusLabel(s string) string {
	if slices.Contains(statusLabels, s) {
		return s
	}
	return statusOther
}
