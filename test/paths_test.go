package test

import (
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestNoPathsDifferOnlyInCase fails when two paths that git tracks, or
// two of their directories, differ only in case: a clone on a
// case-insensitive file system (macOS, Windows) keeps one of them and
// shows the other as modified. Outside a git checkout it is skipped,
// unless CI is set: CI runs on a clone, where a failing git is a broken
// runner.
func TestNoPathsDifferOnlyInCase(t *testing.T) {
	cmd := exec.Command("git", "ls-files", "-z")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			err = &gitError{err, strings.TrimSpace(string(ee.Stderr))}
		}
		if os.Getenv("CI") != "" {
			t.Fatalf("git ls-files: %v; CI is set, so this must be a git checkout with git on PATH", err)
		}
		t.Skipf("not a git checkout, or no git on PATH (git ls-files: %v): the check that no two paths differ only in case lists the tracked paths with git", err)
	}
	paths := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	for _, clash := range caseClashes(paths) {
		t.Errorf("these paths differ only in case, and a case-insensitive file system keeps one: %s", strings.Join(clash, ", "))
	}
	// go test's cache does not see what git reads; it runs a cached test
	// again when a directory listing the test read has changed, so read
	// every tracked directory: a new path changes one of them.
	dirs := map[string]bool{".": true}
	for _, p := range paths {
		dirs[path.Dir(p)] = true
	}
	for d := range dirs {
		os.ReadDir(filepath.Join(root, filepath.FromSlash(d)))
	}
	t.Logf("%d tracked paths in %d directories", len(paths), len(dirs))
}

// gitError adds git's standard error to its exit status.
type gitError struct {
	err    error
	stderr string
}

func (e *gitError) Error() string { return e.err.Error() + ": " + e.stderr }

// caseClashes returns the groups of paths, and of the directories that
// hold them, that differ only in case, each sorted, in the order of
// their lower-case spelling.
func caseClashes(paths []string) [][]string {
	spellings := map[string][]string{} // lower case: the spellings seen
	for _, p := range paths {
		for q := p; q != "." && q != "/" && q != ""; q = path.Dir(q) {
			key := strings.ToLower(q)
			if !slices.Contains(spellings[key], q) {
				spellings[key] = append(spellings[key], q)
			}
		}
	}
	var keys []string
	for key, s := range spellings {
		if len(s) > 1 {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	var clashes [][]string
	for _, key := range keys {
		s := spellings[key]
		slices.Sort(s)
		clashes = append(clashes, s)
	}
	return clashes
}

// TestCaseClashes checks what TestNoPathsDifferOnlyInCase reports, on
// made-up paths: files and directories whose spellings differ only in case.
func TestCaseClashes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		paths []string
		want  [][]string
	}{
		{"none", []string{"README.md", "docs/PROTOCOL.md", "docs/protocol-choices.md"}, nil},
		{"two files", []string{"docs/PROTOCOL.md", "docs/protocol.md"}, [][]string{{"docs/PROTOCOL.md", "docs/protocol.md"}}},
		{"two directories", []string{"Docs/a.md", "docs/b.md"}, [][]string{{"Docs", "docs"}}},
		{"a file and a directory", []string{"test", "Test/x_test.go"}, [][]string{{"Test", "test"}}},
		{"three spellings", []string{"a/Readme", "a/README", "a/readme"}, [][]string{{"a/README", "a/Readme", "a/readme"}}},
		{"two clashes, in order", []string{"b/X", "b/x", "a/Y", "a/y"}, [][]string{{"a/Y", "a/y"}, {"b/X", "b/x"}}},
		{"the same path twice", []string{"go.mod", "go.mod"}, nil},
		{"no paths", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := caseClashes(tc.paths); !slices.EqualFunc(got, tc.want, slices.Equal) {
				t.Errorf("caseClashes(%q) = %q; want %q", tc.paths, got, tc.want)
			}
		})
	}
}
