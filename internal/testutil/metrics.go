package testutil

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics is one scrape: the metric families by name.
type Metrics map[string]*dto.MetricFamily

// Gather reads every metric of g, a node's *prometheus.Registry.
func Gather(t testing.TB, g prometheus.Gatherer) Metrics {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	m := Metrics{}
	for _, f := range fams {
		m[f.GetName()] = f
	}
	return m
}

// Scrape reads the text exposition at url, such as
// "http://127.0.0.1:9100/metrics".
func Scrape(t testing.TB, url string) Metrics {
	t.Helper()
	m, err := Fetch(url)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Fetch reads the text exposition at url, for a caller to whom a failed
// scrape is no failure (a process that is still starting).
func Fetch(url string) (Metrics, error) {
	resp, err := scrapeClient.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	return fams, nil
}

// scrapeClient keeps no idle connection, whose goroutines goleak would
// count as leaked once the test ends.
var scrapeClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}

// Value returns the value of the first sample of family name whose labels
// include the given pairs (name, value, name, value...): a counter's or a
// gauge's value, a histogram's or a summary's count. It returns 0 when
// there is no such sample, as for a counter that has not been created yet.
func (m Metrics) Value(name string, labels ...string) float64 {
	for _, s := range m.samples(name, labels) {
		return value(s)
	}
	return 0
}

// Sum returns the sum of the values of family name's samples whose labels
// include the given pairs, and how many there are.
func (m Metrics) Sum(name string, labels ...string) (sum float64, n int) {
	for _, s := range m.samples(name, labels) {
		sum += value(s)
		n++
	}
	return sum, n
}

// Help returns family name's help text, "" if there is no such family.
func (m Metrics) Help(name string) string {
	return m[name].GetHelp()
}

// Text renders the families whose names begin with prefix in the text
// exposition format, for a failure message.
func (m Metrics) Text(prefix string) string {
	var names []string
	for n := range m {
		if strings.HasPrefix(n, prefix) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	var b bytes.Buffer
	for _, n := range names {
		expfmt.MetricFamilyToText(&b, m[n])
	}
	return b.String()
}

func (m Metrics) samples(name string, labels []string) []*dto.Metric {
	var out []*dto.Metric
next:
	for _, s := range m[name].GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			if !slices.ContainsFunc(s.GetLabel(), func(l *dto.LabelPair) bool {
				return l.GetName() == labels[i] && l.GetValue() == labels[i+1]
			}) {
				continue next
			}
		}
		out = append(out, s)
	}
	return out
}

func value(s *dto.Metric) float64 {
	switch {
	case s.Counter != nil:
		return s.Counter.GetValue()
	case s.Gauge != nil:
		return s.Gauge.GetValue()
	case s.Histogram != nil:
		return float64(s.Histogram.GetSampleCount())
	case s.Summary != nil:
		return float64(s.Summary.GetSampleCount())
	case s.Untyped != nil:
		return s.Untyped.GetValue()
	}
	return 0
}

// ValueIs returns a condition for Eventually that holds once the value of
// c, one counter or gauge (a vector's child), is want.
func ValueIs(c prometheus.Collector, want float64) func() error {
	return func() error {
		if got := promtest.ToFloat64(c); got != want {
			return fmt.Errorf("value %v, want %v", got, want)
		}
		return nil
	}
}

// AtLeast returns a condition for Eventually that holds once the value
// of c, one counter or gauge, is want or more.
func AtLeast(c prometheus.Collector, want float64) func() error {
	return func() error {
		if got := promtest.ToFloat64(c); got < want {
			return fmt.Errorf("value %v, want at least %v", got, want)
		}
		return nil
	}
}
