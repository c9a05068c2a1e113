package test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestLinksStayInside checks every Markdown link of README.md and docs/:
// a relative link names a file or directory of the repository (never one
// outside it, like ../shared), and its #anchor, if any, a heading of that
// file. A clone from GitHub then has no broken link.
func TestLinksStayInside(t *testing.T) {
	docs, err := filepath.Glob(root + "/docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files := append([]string{root + "/README.md"}, docs...)
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	checked := 0
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		text := regexp.MustCompile("(?s)```.*?```").ReplaceAllString(string(b), "")
		for _, m := range link.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			checked++
			path, anchor, _ := strings.Cut(target, "#")
			dest := file
			if path != "" {
				dest = filepath.Join(filepath.Dir(file), path)
			}
			full, err := filepath.Abs(dest)
			if err != nil {
				t.Fatal(err)
			}
			if rel, err := filepath.Rel(abs, full); err != nil || strings.HasPrefix(rel, "..") {
				t.Errorf("%s: the link %s points outside the repository", file, target)
				continue
			}
			if _, err := os.Stat(full); err != nil {
				t.Errorf("%s: the link %s: %v", file, target, err)
				continue
			}
			if anchor != "" && !hasAnchor(t, full, anchor) {
				t.Errorf("%s: the link %s: no heading #%s in %s", file, target, anchor, dest)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no relative links found: the link pattern is broken")
	}
	t.Logf("%d relative links in %d files", checked, len(files))
}

// hasAnchor reports whether a Markdown file has a heading whose GitHub
// anchor is anchor.
func hasAnchor(t *testing.T, file, anchor string) bool {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		heading, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " ")
		if !ok || !strings.HasPrefix(line, "#") {
			continue
		}
		slug := strings.Map(func(r rune) rune {
			switch {
			case r == ' ':
				return '-'
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
				return r
			}
			return -1
		}, strings.ToLower(heading))
		if slug == anchor {
			return true
		}
	}
	return false
}
