package test

import (
	"strings"
	"testing"
)

// The README's two test commands: every test, as CI runs them, and the
// fast loop.
const (
	everyTest = "go test -race -timeout 30m ./... && (cd deploy && go test -race -timeout 20m ./...)"
	fastLoop  = "go test -short ./..."
)

// maxReadmeLines is how long the README may grow: what Herd is, how to
// run it, test it and talk to it, the layout and links; the reference
// (every variable, metric and alert) is in docs/.
const maxReadmeLines = 120

// TestReadmeIsShort keeps the README one a newcomer reads in two minutes.
func TestReadmeIsShort(t *testing.T) {
	readme := readDoc(t, root+"/README.md")
	if n := strings.Count(readme, "\n"); n > maxReadmeLines {
		t.Errorf("README.md has %d lines; at most %d: move reference material to docs/", n, maxReadmeLines)
	}
}

// TestCICommands checks that the README gives both test commands, and
// that CI (.ci/run and the GitHub workflow) runs the README's every-test
// command, with -count=1 so that no result comes from go test's cache,
// and never -short: the fast loop is for editing, CI runs everything.
func TestCICommands(t *testing.T) {
	readme := readDoc(t, root+"/README.md")
	for _, cmd := range []string{everyTest, fastLoop} {
		if !strings.Contains(readme, "\n    "+cmd+"\n") {
			t.Errorf("README.md does not give the command %q", cmd)
		}
	}
	module, deploy, _ := strings.Cut(everyTest, " && ")
	uncached := strings.Replace(module, "go test ", "go test -count=1 ", 1)
	deployTest := strings.TrimSuffix(strings.TrimPrefix(deploy, "(cd deploy && "), ")")
	for file, want := range map[string][]string{
		root + "/.ci/run":                  {"\n" + strings.Replace(uncached, "-count=1 -race", "-race -count=1", 1) + "\n", "\n" + deploy + "\n"},
		root + "/.github/workflows/ci.yml": {"run: " + strings.Replace(uncached, "-count=1 -race", "-race -count=1", 1) + "\n", deployTest + "\n"},
	} {
		text := readDoc(t, file)
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Errorf("%s does not run %q", file, strings.TrimSpace(w))
			}
		}
		if strings.Contains(text, "-short") {
			t.Errorf("%s uses -short: CI runs every test", file)
		}
	}
}
