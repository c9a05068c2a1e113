package test

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/config"
)

// The reference documents these checks keep true, relative to this
// package's directory.
const (
	configurationDoc = root + "/docs/configuration.md"
	metricsDoc       = root + "/docs/metrics.md"
)

// readDoc returns the text of a file of the repository.
func readDoc(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestConfigurationListsEveryVariable keeps docs/configuration.md true:
// a row for every environment variable the code reads, with its default,
// and no row for one it does not read.
func TestConfigurationListsEveryVariable(t *testing.T) {
	doc := readDoc(t, configurationDoc)
	row := regexp.MustCompile("(?m)^\\| `(HERD_[A-Z0-9_]+)` \\| ([^|]+) \\|")
	documented := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(doc, -1) {
		documented[m[1]] = strings.TrimSpace(m[2])
	}
	typ := reflect.TypeFor[config.Config]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		got, ok := documented[name]
		if !ok {
			t.Errorf("docs/configuration.md lacks %s", name)
			continue
		}
		if def, has := f.Tag.Lookup("envDefault"); has && got != "`"+def+"`" {
			t.Errorf("docs/configuration.md gives %s the default %s, the code %q", name, got, def)
		}
		delete(documented, name)
	}
	for name := range documented {
		t.Errorf("docs/configuration.md documents %s, which the code does not read", name)
	}
}

// metricRow is a row of the metrics table of docs/metrics.md.
type metricRow struct {
	typ    string   // counter, gauge, histogram
	labels []string // sorted
}

// metricRows returns the rows of the metrics table of docs/metrics.md by
// metric name.
func metricRows(t *testing.T) map[string]metricRow {
	t.Helper()
	// | `name` | type | label, label | meaning |
	row := regexp.MustCompile("(?m)^\\| `(herd_[a-z0-9_]+)` \\| ([a-z]+) \\|([a-z_, ]*)\\|")
	rows := map[string]metricRow{}
	for _, m := range row.FindAllStringSubmatch(readDoc(t, metricsDoc), -1) {
		var labels []string
		for _, l := range strings.Split(m[3], ",") {
			if l = strings.TrimSpace(l); l != "" {
				labels = append(labels, l)
			}
		}
		slices.Sort(labels)
		if _, dup := rows[m[1]]; dup {
			t.Errorf("docs/metrics.md has two rows for %s", m[1])
		}
		rows[m[1]] = metricRow{m[2], labels}
	}
	if len(rows) == 0 {
		t.Fatal("docs/metrics.md: no rows found; the row pattern is broken")
	}
	return rows
}

// TestMetricsListsEveryMetric keeps docs/metrics.md true: a row for every
// metric a node exports and no row for one it does not, and, for each
// metric that has series when a node of the classic herd has started
// (a vector's series appear with its first labels), the row's type and
// labels are those of the series.
func TestMetricsListsEveryMetric(t *testing.T) {
	rows := metricRows(t)
	herd, _ := startLocalHerd(t) // with neighbours, so that the peer series exist
	names := herd[0].Metrics().Names()
	for _, name := range names {
		if _, ok := rows[name]; !ok {
			t.Errorf("docs/metrics.md lacks the metric %s", name)
		}
	}
	for name := range rows {
		if !slices.Contains(names, name) {
			t.Errorf("docs/metrics.md documents %s, which a node does not export", name)
		}
	}
	types := map[dto.MetricType]string{dto.MetricType_COUNTER: "counter", dto.MetricType_GAUGE: "gauge", dto.MetricType_HISTOGRAM: "histogram"}
	checked := 0
	for name, f := range testutil.Scrape(t, "http://"+herd[0].MetricsAddr().String()+"/metrics") {
		row, ok := rows[name]
		if !ok || len(f.GetMetric()) == 0 {
			continue
		}
		checked++
		if typ := types[f.GetType()]; typ != row.typ {
			t.Errorf("docs/metrics.md: %s is a %s; the row says %s", name, strings.ToLower(f.GetType().String()), row.typ)
		}
		var labels []string
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if !slices.Contains(labels, l.GetName()) {
					labels = append(labels, l.GetName())
				}
			}
		}
		slices.Sort(labels)
		if !slices.Equal(labels, row.labels) {
			t.Errorf("docs/metrics.md: %s has the labels %q; the row says %q", name, labels, row.labels)
		}
	}
	t.Logf("%d metrics, the type and labels of %d checked against their series", len(names), checked)
}

// TestAlertsListed keeps the alerts table of docs/metrics.md true: a row
// for every alert of alerts.yml, and no row for one it does not define.
func TestAlertsListed(t *testing.T) {
	names := alertNames(t)
	row := regexp.MustCompile("(?m)^\\| `(Herd[A-Za-z0-9]+)` \\|")
	var documented []string
	for _, m := range row.FindAllStringSubmatch(readDoc(t, metricsDoc), -1) {
		documented = append(documented, m[1])
		if !slices.Contains(names, m[1]) {
			t.Errorf("docs/metrics.md lists the alert %s, which alerts.yml does not define", m[1])
		}
	}
	for _, name := range names {
		if !slices.Contains(documented, name) {
			t.Errorf("docs/metrics.md lacks the alert %s", name)
		}
	}
}
