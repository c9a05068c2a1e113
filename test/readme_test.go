package test

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/herdkit/herd/pkg/config"
)

// TestReadmeListsEverything keeps the README true: every environment
// variable with its default, and every metric a node exports.
func TestReadmeListsEverything(t *testing.T) {
	b, err := os.ReadFile(root + "/README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	row := regexp.MustCompile("(?m)^\\| `(HERD_[A-Z0-9_]+)` \\| ([^|]+) \\|")
	documented := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(readme, -1) {
		documented[m[1]] = strings.TrimSpace(m[2])
	}
	typ := reflect.TypeFor[config.Config]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		got, ok := documented[name]
		if !ok {
			t.Errorf("README lacks %s", name)
			continue
		}
		if def, has := f.Tag.Lookup("envDefault"); has && got != "`"+def+"`" {
			t.Errorf("README gives %s the default %s, the code %q", name, got, def)
		}
		delete(documented, name)
	}
	for name := range documented {
		t.Errorf("README documents %s, which the code does not read", name)
	}
	n := startNode(t, nil) // any node: the metrics do not depend on its configuration
	for _, m := range n.Metrics().Names() {
		if !strings.Contains(readme, "| `"+m+"` |") {
			t.Errorf("README lacks the metric %s", m)
		}
	}
}
