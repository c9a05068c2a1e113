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

// sourcesDigest reads every file the herd image is built from, as
// docker/image-sources lists them, and compose.yaml, which the compose run
// is built from. It returns their number and a digest of their contents.
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
	out, err := exec.Command(filepath.Join(repoRoot, "docker", "image-sources")).Output()
	if err != nil {
		return "", fmt.Errorf("docker/image-sources: %w", err)
	}
	files := append(strings.Fields(string(out)), "compose.yaml")
	if len(files) < 20 {
		return "", fmt.Errorf("docker/image-sources listed %d files", len(files))
	}
	h := sha256.New()
	for _, name := range files {
		f, err := os.Open(filepath.Join(repoRoot, name))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\n", name)
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
