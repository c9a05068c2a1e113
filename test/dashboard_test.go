package test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// Paths of the monitoring files, relative to this package's directory.
const (
	dashboardFile = root + "/docker/grafana/dashboards/herd.json"
	// grafanaDatasourceUID is the uid of the datasource provisioned by
	// docker/grafana/provisioning/datasources/prometheus.yaml.
	grafanaDatasourceUID = "prometheus"
)

// grafanaDashboard is the part of a Grafana dashboard model the tests read.
type grafanaDashboard struct {
	UID           string         `json:"uid"`
	Title         string         `json:"title"`
	SchemaVersion int            `json:"schemaVersion"`
	Refresh       string         `json:"refresh"`
	Panels        []grafanaPanel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string             `json:"name"`
			Definition string             `json:"definition"`
			Datasource *grafanaDatasource `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type grafanaPanel struct {
	ID         int                `json:"id"`
	Type       string             `json:"type"`
	Title      string             `json:"title"`
	Datasource *grafanaDatasource `json:"datasource"`
	Targets    []struct {
		RefID      string             `json:"refId"`
		Expr       string             `json:"expr"`
		Datasource *grafanaDatasource `json:"datasource"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"` // the panels of a collapsed row
}

type grafanaDatasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// readDashboard parses the Grafana dashboard and returns it with its
// panels flattened (collapsed rows hold their panels inside).
func readDashboard(t *testing.T) (grafanaDashboard, []grafanaPanel) {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var flat []grafanaPanel
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			flat = append(flat, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return d, flat
}

// dashboardExprs returns the PromQL expression of every panel target.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	_, panels := readDashboard(t)
	var exprs []string
	for _, p := range panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	return exprs
}

var (
	// promStringLiteral matches PromQL string literals, whose contents
	// (label values, regular expressions) are not metric names.
	promStringLiteral = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	// promMetricName matches the metric names the dashboard may use.
	promMetricName = regexp.MustCompile(`\b(?:herd|go|process)_[a-zA-Z0-9_]*`)
)

// dashboardMetricNames returns the herd_, go_ and process_ names used in expr.
func dashboardMetricNames(expr string) []string {
	return promMetricName.FindAllString(promStringLiteral.ReplaceAllString(expr, `""`), -1)
}

// dashboardExported reports whether name is one of the metric families in names,
// allowing the series suffixes of histograms and summaries.
func dashboardExported(names map[string]bool, name string) bool {
	if names[name] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && names[base] {
			return true
		}
	}
	return false
}

// TestDashboardShape checks what provisioning relies on: a stable uid,
// and every query sent to the provisioned Prometheus datasource by uid.
func TestDashboardShape(t *testing.T) {
	d, panels := readDashboard(t)
	if d.UID != "herd" || d.Title != "Herd" {
		t.Errorf("uid %q, title %q; want herd, Herd", d.UID, d.Title)
	}
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d; want a dashboard model of Grafana 9 or later", d.SchemaVersion)
	}
	if d.Refresh == "" {
		t.Error("no refresh interval")
	}
	ids := map[int]string{}
	queries := 0
	for _, p := range panels {
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", prev, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != grafanaDatasourceUID {
			t.Errorf("panel %q: datasource %+v; want uid %q", p.Title, p.Datasource, grafanaDatasourceUID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no queries", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			queries++
			if tg.Datasource != nil && tg.Datasource.UID != grafanaDatasourceUID {
				t.Errorf("panel %q, query %s: datasource uid %q; want %q", p.Title, tg.RefID, tg.Datasource.UID, grafanaDatasourceUID)
			}
			if tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %q: refId %q is empty or repeated", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q, query %s: empty expression", p.Title, tg.RefID)
			}
		}
	}
	for _, v := range d.Templating.List {
		if v.Datasource != nil && v.Datasource.UID != grafanaDatasourceUID {
			t.Errorf("variable %q: datasource uid %q; want %q", v.Name, v.Datasource.UID, grafanaDatasourceUID)
		}
	}
	if queries == 0 {
		t.Fatal("the dashboard has no queries")
	}
}

// TestDashboardMetricsExist checks every metric name in the dashboard's
// queries against what a real node exports: the herd_ names its registry
// knows (whether or not they have a sample yet), and the go_ and process_
// families of a scrape of its /metrics. It also checks the converse for
// herd_ metrics, so that the dashboard keeps up with pkg/metrics.
func TestDashboardMetricsExist(t *testing.T) {
	n := startNode(t, nil)

	herd := map[string]bool{}
	for _, name := range n.Metrics().Names() {
		herd[name] = true
	}
	scraped := scrapeFamilies(t, n.MetricsAddr())

	d, panels := readDashboard(t)
	type use struct{ name, where string }
	var uses []use
	for _, p := range panels {
		for _, tg := range p.Targets {
			for _, name := range dashboardMetricNames(tg.Expr) {
				uses = append(uses, use{name, "panel " + p.Title})
			}
		}
	}
	for _, v := range d.Templating.List {
		for _, name := range dashboardMetricNames(v.Definition) {
			uses = append(uses, use{name, "variable " + v.Name})
		}
	}

	shown := map[string]bool{}
	for _, u := range uses {
		switch {
		case strings.HasPrefix(u.name, "herd_"):
			if !dashboardExported(herd, u.name) {
				t.Errorf("%s uses %s, which the node does not export", u.where, u.name)
			}
			shown[u.name] = true
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				shown[strings.TrimSuffix(u.name, suffix)] = true
			}
		default:
			if !dashboardExported(scraped, u.name) {
				t.Errorf("%s uses %s, which is not in a scrape of /metrics", u.where, u.name)
			}
		}
	}
	for name := range herd {
		if !shown[name] {
			t.Errorf("the dashboard shows no panel for %s", name)
		}
	}
}
