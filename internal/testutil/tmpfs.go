package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// Tmpfs mounts a tmpfs of size (as mount's size option: "256k", "1m")
// on a directory of its own for the test and returns it; it is unmounted
// when the test ends. Mounting needs root: without it the test is
// skipped, or failed when CI is set, since CI runs as root.
func Tmpfs(t testing.TB, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mount tmpfs: %v: %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs here: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// ResizeTmpfs changes the size of a tmpfs that Tmpfs mounted.
func ResizeTmpfs(t testing.TB, dir, size string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,size="+size, dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s: %v: %s", dir, err, out)
	}
}
