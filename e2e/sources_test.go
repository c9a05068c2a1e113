package e2e

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// imageInputs are the files besides the Go sources that the image and the
// compose run are built from, relative to the repository root.
var imageInputs = []string{"go.mod", "go.sum", "Dockerfile", ".dockerignore", "compose.yaml", "docker/build-image"}

// sourcesDigest reads every file the herd image is built from: the Go
// source and embedded files of every package of this module that
// services/herd imports, and imageInputs. It returns their number and a
// digest of their contents.
//
// Reading them is what matters. This test binary imports none of the
// server's packages, and the image is built by a separate go build and
// docker build, which go test's cache does not see; what it does see is
// every file within the module that the test process itself opens (and
// every variable it reads), and it runs a cached test again when one of
// those files has changed (size or modification time). So with this, a
// change to any source of the image makes `go test ./e2e` run again
// instead of printing "(cached)". It must run inside m.Run, where the
// testing package logs the opens; requireDocker calls it.
var sourcesDigest = sync.OnceValues(func() (string, error) {
	list := exec.Command("go", "list", "-deps", "-f",
		`{{if .Module}}{{if .Module.Main}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{end}}{{end}}`,
		"./services/herd")
	list.Dir = repoRoot
	out, err := list.Output()
	if err != nil {
		return "", fmt.Errorf("go list: %w", err)
	}
	files := strings.Fields(string(out))
	for _, f := range imageInputs {
		files = append(files, filepath.Join(repoRoot, f))
	}
	if len(files) < 20 {
		return "", fmt.Errorf("go list found %d source files of services/herd", len(files))
	}
	h := sha256.New()
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\n", filepath.Base(name))
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("%d files, sha256 %x", len(files), h.Sum(nil)[:8]), nil
})

// trackSources reads the sources of the image (sourcesDigest), so that go
// test's cache runs the end-to-end tests again whenever one changes.
func trackSources(t testing.TB) {
	t.Helper()
	digest, err := sourcesDigest()
	if err != nil {
		t.Fatalf("reading the sources of the image: %v", err)
	}
	t.Logf("sources of the image: %s", digest)
}
