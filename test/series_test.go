package test

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/herdkit/herd/internal/testutil"
)

// TestSeriesFromTheStart scrapes a node of the classic herd as soon as it
// has started, before any client, and checks that every herd_ metric the
// dashboard or an alerting rule reads already has a series: a panel is
// never empty and a rule never lacks data for want of a first event. The
// reasons listed in the metrics table of docs/metrics.md are exactly the
// reason labels of those series.
func TestSeriesFromTheStart(t *testing.T) {
	herd, _ := startLocalHerd(t)
	series := map[string][]string{} // name: the label sets of its samples
	for name, f := range testutil.Scrape(t, "http://"+herd[0].MetricsAddr().String()+"/metrics") {
		for _, s := range f.GetMetric() {
			var labels []string
			for _, l := range s.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			series[name] = append(series[name], strings.Join(labels, ","))
		}
	}

	used := map[string]string{} // metric name: where
	for _, expr := range dashboardExprs(t) {
		for _, name := range dashboardMetricNames(expr) {
			used[name] = "the dashboard"
		}
	}
	rules, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range dashboardMetricNames(string(rules)) {
		used[name] = "alerts.yml"
	}
	for name, where := range used {
		if !strings.HasPrefix(name, "herd_") {
			continue
		}
		family := name // a histogram's samples are in its family
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base := strings.TrimSuffix(name, suffix); base != name && series[base] != nil {
				family = base
			}
		}
		if len(series[family]) == 0 {
			t.Errorf("%s reads %s, which has no series at start", where, name)
		}
	}

	// | `name` | counter | reason | what: a, b, c |
	row := regexp.MustCompile("(?m)^\\| `(herd_[a-z_]+)` \\| counter \\| [^|]*\\breason\\b[^|]* \\| [^|:]*: ([a-z_, ]+) \\|$")
	rows := row.FindAllStringSubmatch(readDoc(t, metricsDoc), -1)
	if len(rows) < 3 {
		t.Fatalf("docs/metrics.md lists the reasons of %d counters; want those of the client refusals, client disconnects, peer disconnects and handshake failures", len(rows))
	}
	for _, m := range rows {
		name := m[1]
		var want []string
		for _, r := range strings.Split(m[2], ",") {
			want = append(want, strings.TrimSpace(r))
		}
		var got []string
		reason := regexp.MustCompile(`\breason="([^"]+)"`)
		for _, labels := range series[name] {
			if r := reason.FindStringSubmatch(labels); r != nil && !slices.Contains(got, r[1]) {
				got = append(got, r[1])
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: reasons at start %q; docs/metrics.md lists %q", name, got, want)
		}
	}
}
