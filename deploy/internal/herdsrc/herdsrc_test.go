package herdsrc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTrack: Track finds the repository above deploy/, links deploy/.herd
// to it, and reads the server's sources through the link. (That go test
// then runs a cached test again when a server source changes was seen by
// hand: `touch pkg/store/store.go` makes `go test ./internal/herdsrc` in
// deploy/ run this test again rather than print "(cached)".)
func TestTrack(t *testing.T) {
	repo := Track(t)
	mod, err := os.ReadFile(filepath.Join(repo, "go.mod"))
	if err != nil || !strings.HasPrefix(string(mod), "module github.com/herdkit/herd\n") {
		t.Fatalf("%s is not the herd's repository: %v", repo, err)
	}
	target, err := os.Readlink(filepath.Join(repo, "deploy", ".herd"))
	if err != nil || target != ".." {
		t.Fatalf("deploy/.herd links to %q (%v), want ..", target, err)
	}
	src, _ := sources()
	if !strings.Contains(src.digest, "files, sha256") {
		t.Fatalf("digest %q", src.digest)
	}
}
