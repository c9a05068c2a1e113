package bench

import (
	"fmt"
	"io"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds: microsecond resolution, three significant figures. A
// latency above highestLatencyUs is recorded as highestLatencyUs, which a
// time-out well below it makes rare.
const (
	lowestLatencyUs  = 1
	highestLatencyUs = int64(time.Minute / time.Microsecond)
	sigFigs          = 3
)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(lowestLatencyUs, highestLatencyUs, sigFigs)
}

// record adds a latency in nanoseconds to h, in microseconds.
func record(h *hdrhistogram.Histogram, ns int64) {
	us := ns / 1e3
	switch {
	case us < 0:
		us = 0
	case us > highestLatencyUs:
		us = highestLatencyUs
	}
	_ = h.RecordValue(us) // cannot fail: us is within the bounds
}

// Latency summarises a latency distribution, in microseconds. It is part
// of the JSON summaries; its field names are stable.
type Latency struct {
	Count  int64   `json:"count"`   // values recorded
	MinUs  int64   `json:"min_us"`  // smallest
	MeanUs float64 `json:"mean_us"` // arithmetic mean
	P50Us  int64   `json:"p50_us"`  // median
	P90Us  int64   `json:"p90_us"`  // 90th percentile
	P99Us  int64   `json:"p99_us"`  // 99th percentile
	P999Us int64   `json:"p999_us"` // 99.9th percentile
	MaxUs  int64   `json:"max_us"`  // largest
}

func latencyOf(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	p := h.ValueAtPercentiles([]float64{50, 90, 99, 99.9})
	return Latency{
		Count:  h.TotalCount(),
		MinUs:  h.Min(),
		MeanUs: h.Mean(),
		P50Us:  p[50],
		P90Us:  p[90],
		P99Us:  p[99],
		P999Us: p[99.9],
		MaxUs:  h.Max(),
	}
}

// Counts are the requests of one kind and what became of them.
type Counts struct {
	Sent     int64 `json:"sent"`     // requests written (or attempted, when the write failed)
	Received int64 `json:"received"` // complete replies, valid or not
	Invalid  int64 `json:"invalid"`  // replies that were "? ..."
}

func (c *Counts) add(o Counts) {
	c.Sent += o.Sent
	c.Received += o.Received
	c.Invalid += o.Invalid
}

// Errors counts what went wrong. Total is the sum of the others.
type Errors struct {
	Total       int64 `json:"total"`
	Invalid     int64 `json:"invalid"`     // "? ..." replies
	Malformed   int64 `json:"malformed"`   // replies of the wrong shape; the connection is dropped after one
	Unanswered  int64 `json:"unanswered"`  // requests without a reply when their connection ended
	Connections int64 `json:"connections"` // connections that failed: dial, read or write error, time-out, early close
}

func (e *Errors) sum() {
	e.Total = e.Invalid + e.Malformed + e.Unanswered + e.Connections
}

// LoadSummary is the result of one load run against one target. It is
// part of the JSON summary; its field names are stable.
type LoadSummary struct {
	Target      string  `json:"target"`                // the addresses, comma-separated
	Connections int     `json:"connections"`           // connections asked for
	Pipeline    int     `json:"pipeline,omitempty"`    // closed loop: requests outstanding per connection
	TargetRate  float64 `json:"target_rate,omitempty"` // open loop: the schedule's requests per second
	Mix         float64 `json:"mix"`                   // fraction of WHATSAT requests asked for
	Seconds     float64 `json:"seconds"`               // measured window: from the end of warm-up to the end of sending or the last measured reply, whichever is later
	Sent        int64   `json:"sent"`                  // measured requests: sent after warm-up
	Received    int64   `json:"received"`              // replies to measured requests
	Rate        float64 `json:"rate"`                  // received per second of the measured window
	IAMAT       Counts  `json:"iamat"`                 // measured IAMAT requests
	WHATSAT     Counts  `json:"whatsat"`               // measured WHATSAT requests
	Errors      Errors  `json:"errors"`                // over the whole run, warm-up included
	Latency     Latency `json:"latency"`               // valid replies to measured requests
	// SendLag, in the open loop, is how late the sender wrote measured
	// requests after their due time: the generator's own share of
	// Latency, mostly the Go runtime's timer resolution (about 1 ms on
	// an idle Linux process, less on a busy one).
	SendLag *Latency `json:"send_lag,omitempty"`
	Warmup  Counts   `json:"warmup"` // requests of the warm-up, both kinds
	// TotalSent and TotalReceived include the warm-up: they are what the
	// server saw, to compare with its metrics.
	TotalSent     int64 `json:"total_sent"`
	TotalReceived int64 `json:"total_received"`
}

// Ratio compares a target with the floor server: target divided by floor.
// A rate ratio of 0.4 means the target answered 40% as many requests per
// second; a latency ratio of 3 means three times as slow.
type Ratio struct {
	Rate float64 `json:"rate"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

func ratioOf(target, floor *LoadSummary) *Ratio {
	div := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	t, f := target.Latency, floor.Latency
	return &Ratio{
		Rate: div(target.Rate, floor.Rate),
		P50:  div(float64(t.P50Us), float64(f.P50Us)),
		P90:  div(float64(t.P90Us), float64(f.P90Us)),
		P99:  div(float64(t.P99Us), float64(f.P99Us)),
		P999: div(float64(t.P999Us), float64(f.P999Us)),
		Max:  div(float64(t.MaxUs), float64(f.MaxUs)),
	}
}

// LoadReport is the JSON summary of `herd bench load -json`.
type LoadReport struct {
	Mode   string       `json:"mode"`            // "load"
	Target *LoadSummary `json:"target"`          // the run against -addr
	Floor  *LoadSummary `json:"floor,omitempty"` // with -floor: the same load against the floor server
	Ratio  *Ratio       `json:"ratio,omitempty"` // with -floor: target / floor
	// Rounds, with -floor -rounds above 1, are every round's rates in
	// order; Target, Floor and Ratio are then the round whose rate ratio
	// is the median (the lower of the two middle ones for an even count).
	Rounds []Round `json:"rounds,omitempty"`
}

// Round is one round of a comparison with the floor.
type Round struct {
	Floor  float64 `json:"floor"`  // requests per second
	Target float64 `json:"target"` // requests per second
	Ratio  float64 `json:"ratio"`  // Target / Floor
}

// us formats microseconds as a duration: 850µs, 1.25ms, 2.5s.
func us(v int64) string {
	d := time.Duration(v) * time.Microsecond
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= 10*time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.String()
}

func printLatency(w io.Writer, label string, l Latency) {
	if l.Count == 0 {
		fmt.Fprintf(w, "  %-10s none\n", label)
		return
	}
	fmt.Fprintf(w, "  %-10s p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (mean %s, min %s, n %d)\n", label,
		us(l.P50Us), us(l.P90Us), us(l.P99Us), us(l.P999Us), us(l.MaxUs), us(int64(l.MeanUs)), us(l.MinUs), l.Count)
}

func printErrors(w io.Writer, e Errors) {
	fmt.Fprintf(w, "  %-10s %d (invalid %d, malformed %d, unanswered %d, connections %d)\n", "errors",
		e.Total, e.Invalid, e.Malformed, e.Unanswered, e.Connections)
}

// print writes the human summary of s under a title.
func (s *LoadSummary) print(w io.Writer, title string) {
	loop := fmt.Sprintf("pipeline %d", s.Pipeline)
	if s.TargetRate > 0 {
		loop = fmt.Sprintf("open loop at %.0f/s", s.TargetRate)
	}
	fmt.Fprintf(w, "%s %s: %d connections, %s, WHATSAT mix %g\n", title, s.Target, s.Connections, loop, s.Mix)
	fmt.Fprintf(w, "  %-10s sent %d  received %d in %.3fs: %.1f/s\n", "requests", s.Sent, s.Received, s.Seconds, s.Rate)
	fmt.Fprintf(w, "  %-10s sent %d  received %d  invalid %d\n", "IAMAT", s.IAMAT.Sent, s.IAMAT.Received, s.IAMAT.Invalid)
	fmt.Fprintf(w, "  %-10s sent %d  received %d  invalid %d\n", "WHATSAT", s.WHATSAT.Sent, s.WHATSAT.Received, s.WHATSAT.Invalid)
	if s.Warmup.Sent > 0 {
		fmt.Fprintf(w, "  %-10s sent %d  received %d (not measured)\n", "warm-up", s.Warmup.Sent, s.Warmup.Received)
	}
	printErrors(w, s.Errors)
	printLatency(w, "latency", s.Latency)
	if s.SendLag != nil {
		printLatency(w, "send lag", *s.SendLag)
	}
}

func (r *LoadReport) print(w io.Writer) {
	for i, round := range r.Rounds {
		fmt.Fprintf(w, "round %d: floor %.1f/s, target %.1f/s, rate ratio %.3f\n", i+1, round.Floor, round.Target, round.Ratio)
	}
	if len(r.Rounds) > 0 {
		fmt.Fprintf(w, "the median round of %d:\n", len(r.Rounds))
	}
	if r.Floor != nil {
		r.Floor.print(w, "floor")
	}
	r.Target.print(w, "load")
	if r.Ratio != nil {
		fmt.Fprintf(w, "target/floor: rate %.3f  p50 %.2fx  p90 %.2fx  p99 %.2fx  p99.9 %.2fx  max %.2fx\n",
			r.Ratio.Rate, r.Ratio.P50, r.Ratio.P90, r.Ratio.P99, r.Ratio.P999, r.Ratio.Max)
	}
}
