// Package herdsrc builds the herd's image for deploy/'s end-to-end tests,
// and first makes go test's cache see the sources it is built from.
//
// go test runs a cached test again when a file the test opened has
// changed, but only a file inside the test's module: deploy/ is a module
// of its own, the herd's sources are in the module above it, and the
// image is built by docker/build-image, whose reads go test never sees. So
// a change to the server would leave `(cd deploy && go test ./...)`
// printing "(cached)" for tests that never ran it. Track reads every
// source of the image through deploy/.herd, a symbolic link to the
// repository that it makes (and git ignores): the paths are inside
// deploy/, and go test's check of them follows the link to the files.
package herdsrc

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// BuildImage builds the herd image from this tree with
// docker/build-image, tagged image, after Track.
func BuildImage(t testing.TB, image string) {
	t.Helper()
	repo := Track(t)
	if out, err := exec.Command(filepath.Join(repo, "docker", "build-image"), image).CombinedOutput(); err != nil {
		t.Fatalf("docker/build-image: %v\n%s", err, out)
	}
}

// Track reads every file the herd image is built from, as
// docker/image-sources lists them, through deploy/.herd, and returns the
// repository's root.
// It must run in a test, where go test logs what the test opens.
func Track(t testing.TB) (repo string) {
	t.Helper()
	src, err := sources()
	if err != nil {
		t.Fatalf("reading the sources of the herd image: %v", err)
	}
	t.Logf("sources of the herd image: %s", src.digest)
	return src.repo
}

// read is what sources read: the repository's root and a digest of the
// files.
type read struct{ repo, digest string }

var sources = sync.OnceValues(func() (read, error) {
	var none read
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return none, fmt.Errorf("go env GOMOD: %w", err)
	}
	deploy := filepath.Dir(strings.TrimSpace(string(out)))
	repo := filepath.Dir(deploy)
	link := filepath.Join(deploy, ".herd")
	if err := linkTo(link, ".."); err != nil {
		return none, err
	}
	if out, err = exec.Command(filepath.Join(repo, "docker", "image-sources")).Output(); err != nil {
		return none, fmt.Errorf("docker/image-sources: %w", err)
	}
	files := strings.Fields(string(out))
	if len(files) < 20 {
		return none, fmt.Errorf("docker/image-sources listed %d files", len(files))
	}
	h := sha256.New()
	for _, name := range files {
		if err := hashFile(h, link, name); err != nil {
			return none, err
		}
	}
	return read{repo, fmt.Sprintf("%d files, sha256 %x", len(files), h.Sum(nil)[:8])}, nil
})

// linkTo makes link a symbolic link to target, unless it is one; another
// test process may make it at the same time.
func linkTo(link, target string) error {
	if got, err := os.Readlink(link); err == nil && got == target {
		return nil
	}
	os.Remove(link)
	err := os.Symlink(target, link)
	if errors.Is(err, os.ErrExist) {
		if got, _ := os.Readlink(link); got == target {
			return nil
		}
	}
	return err
}

// hashFile writes name, a path relative to dir, and the file's contents
// to h.
func hashFile(h io.Writer, dir, name string) error {
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(h, "%s\n", name)
	_, err = io.Copy(h, f)
	return err
}
