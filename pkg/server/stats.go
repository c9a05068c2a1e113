package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/herdkit/herd/pkg/metrics"
	"github.com/herdkit/herd/pkg/protocol"
)

// outcome is how a client request ended; its label is a metric label.
type outcome uint8

const (
	outcomeOK          outcome = iota
	outcomeInvalid             // answered "? line"
	outcomePlacesError         // a WHATSAT answered with a places failure
	numOutcomes
)

var outcomeLabels = [numOutcomes]string{"ok", "invalid", "places_error"}

// stats holds the per-request metric children, resolved once so that the
// hot path does no label lookups.
type stats struct {
	requests  [protocol.NumKinds][numOutcomes]prometheus.Counter
	durations [protocol.NumKinds]prometheus.Observer
	stored    prometheus.Counter
	dropped   prometheus.Counter
}

// commandLabel maps a command to its label: its word (IAMAT, WHATSAT),
// or other for a line that names no command.
func commandLabel(k protocol.Kind) string {
	if s, ok := protocol.Lookup(k); ok {
		return s.Word
	}
	return "other"
}

// outcomesOf returns the outcomes a command can have: answered or invalid,
// and for a command whose reply carries places, a places failure.
func outcomesOf(s protocol.Spec) []outcome {
	if s.Reply == protocol.PlacesReply {
		return []outcome{outcomeOK, outcomeInvalid, outcomePlacesError}
	}
	return []outcome{outcomeOK, outcomeInvalid}
}

func newStats(m *metrics.Metrics) stats {
	s := stats{
		stored:  m.StoreUpdates.WithLabelValues(metrics.SourceClient),
		dropped: m.StoreUpdatesDropped.WithLabelValues(metrics.SourceClient),
	}
	// Only the combinations that can happen, so that a scrape shows no
	// series that must stay 0.
	possible := map[protocol.Kind][]outcome{protocol.Invalid: {outcomeInvalid}}
	for _, c := range protocol.Commands() {
		possible[c.Kind] = outcomesOf(c)
	}
	for k, outs := range possible {
		label := commandLabel(k)
		for _, o := range outs {
			s.requests[k][o] = m.ClientRequests.WithLabelValues(label, outcomeLabels[o])
		}
		s.durations[k] = m.ClientRequestDuration.WithLabelValues(label)
	}
	return s
}

// done counts a request answered.
func (s *stats) done(k protocol.Kind, o outcome, start, end time.Time) {
	s.requests[k][o].Inc()
	s.durations[k].Observe(end.Sub(start).Seconds())
}

// iamats counts the IAMATs of a batch, received at start and answered
// at end: stored of them stored, the others dropped as not newer. The
// counters take one addition a batch rather than one a request: every
// connection adds to them, and on several cores each addition moves their
// cache line.
func (s *stats) iamats(stored, all int, start, end time.Time) {
	if stored > 0 {
		s.stored.Add(float64(stored))
	}
	if stored < all {
		s.dropped.Add(float64(all - stored))
	}
	s.requests[protocol.IAMAT][outcomeOK].Add(float64(all))
	d := end.Sub(start).Seconds()
	for range all {
		s.durations[protocol.IAMAT].Observe(d)
	}
}
