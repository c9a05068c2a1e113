package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/herdkit/herd/pkg/config"
	"github.com/herdkit/herd/pkg/topology"
)

// The Prometheus files, relative to this package's directory.
const (
	composeConfigFile = root + "/docker/prometheus/prometheus.yml"
	hostConfigFile    = root + "/docker/prometheus/host.yml"
	alertsFile        = root + "/docker/prometheus/alerts.yml"
	alertsTestFile    = root + "/docker/prometheus/alerts_test.yml"
)

// TestPromtoolCheckConfig validates both Prometheus configurations with
// promtool (which checks the rule files they load too), and checks that
// each scrapes every server of the classic herd with its name in the node
// label and loads alerts.yml: prometheus.yml the compose services on
// their container port, host.yml the ports published on 127.0.0.1.
func TestPromtoolCheckConfig(t *testing.T) {
	promtool := prometheusTool(t, "promtool")
	for _, tc := range []struct {
		file   string
		target func(i int, s topology.Server) string
	}{
		{composeConfigFile, func(_ int, s topology.Server) string { return strings.ToLower(s.Name) + ":9100" }},
		{hostConfigFile, func(i int, _ topology.Server) string { return fmt.Sprintf("127.0.0.1:%d", config.ClassicMetricsPort+i) }},
	} {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			// Read here, not only by promtool: go test's cache tracks the
			// files a test opens, and promtool's opens are not the test's.
			b, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.ReadFile(alertsFile); err != nil {
				t.Fatal(err)
			}
			text := string(b)
			for i, s := range topology.Classic {
				target := `"` + tc.target(i, s) + `"`
				if !strings.Contains(text, target) {
					t.Errorf("no target %s", target)
				}
				if !regexp.MustCompile(`\bnode:\s*"?` + s.Name + `\b`).MatchString(text) {
					t.Errorf("no node label %s", s.Name)
				}
			}
			if !regexp.MustCompile(`(?m)^rule_files:\s*\[\s*alerts\.yml\s*\]`).MatchString(text) {
				t.Error("does not load alerts.yml (rule_files: [alerts.yml])")
			}
			out, err := exec.Command(promtool, "check", "config", tc.file).CombinedOutput()
			if err != nil {
				t.Fatalf("promtool check config: %v\n%s", err, out)
			}
			t.Logf("%s", out)
		})
	}
}

// alertNames returns the names of the alerts in alerts.yml.
func alertNames(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^\s*- alert:\s*(\S+)`).FindAllStringSubmatch(string(b), -1) {
		names = append(names, m[1])
	}
	if len(names) == 0 {
		t.Fatalf("%s: no alerts", alertsFile)
	}
	return names
}

// TestAlertRules runs the unit tests of the alerting rules with `promtool
// test rules`, and checks that each alert has a test that expects it to
// fire and one that expects it quiet.
func TestAlertRules(t *testing.T) {
	promtool := prometheusTool(t, "promtool")
	names := alertNames(t)
	b, err := os.ReadFile(alertsTestFile)
	if err != nil {
		t.Fatal(err)
	}
	// Each alert_rule_test item: its alertname, then exp_alerts: [] when
	// it expects none.
	fires, quiet := map[string]bool{}, map[string]bool{}
	item := regexp.MustCompile(`(?m)^\s*alertname:\s*(\S+)\n\s*exp_alerts:(\s*\[\])?`)
	for _, m := range item.FindAllStringSubmatch(string(b), -1) {
		if m[2] != "" {
			quiet[m[1]] = true
		} else {
			fires[m[1]] = true
		}
	}
	for _, name := range names {
		if !fires[name] || !quiet[name] {
			t.Errorf("%s: alerts_test.yml has a firing case: %v, a quiet case: %v; want both", name, fires[name], quiet[name])
		}
	}
	for name := range fires {
		if !slices.Contains(names, name) {
			t.Errorf("alerts_test.yml tests %s, which alerts.yml does not define", name)
		}
	}
	cmd := exec.Command(promtool, "test", "rules", filepath.Base(alertsTestFile))
	cmd.Dir = filepath.Dir(alertsTestFile)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
	t.Logf("promtool test rules: %d alerts\n%s", len(names), out)
}
