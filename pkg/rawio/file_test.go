package rawio

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/herdkit/herd/internal/testutil"
)

// TestFileWrite: writes small (raw) and large (through os.File) land in
// order at the file's offset.
func TestFileWrite(t *testing.T) {
	f, rf := newFile(t, t.TempDir())
	var want []byte
	for i, size := range []int{1, 100, maxFileWrite, maxFileWrite + 1, 3 << 20, 10} {
		b := bytes.Repeat([]byte{byte('a' + i)}, size)
		if n, err := rf.Write(b); n != size || err != nil {
			t.Fatalf("write of %d bytes: %d, %v", size, n, err)
		}
		want = append(want, b...)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("file holds %d bytes, not the %d written in order", len(got), len(want))
	}
}

// TestFileWriteFails: a write that fails says so as os.File's does:
// closed, or no space left.
func TestFileWriteFails(t *testing.T) {
	t.Run("closed", func(t *testing.T) {
		f, rf := newFile(t, t.TempDir())
		f.Close()
		if _, err := rf.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
			t.Fatalf("write to a closed file: %v, want os.ErrClosed", err)
		}
	})
	t.Run("no space", func(t *testing.T) {
		f, rf := newFile(t, testutil.Tmpfs(t, "64k"))
		b := make([]byte, 4096)
		var err error
		for i := 0; i < 64; i++ {
			if _, err = rf.Write(b); err != nil {
				break
			}
		}
		var pe *os.PathError
		if !errors.Is(err, syscall.ENOSPC) || !errors.As(err, &pe) || pe.Path != f.Name() {
			t.Fatalf("writing 256 KiB to a 64 KiB file system: %v, want ENOSPC naming the file", err)
		}
	})
}

// newFile creates the file f in dir, closed when the test ends, and
// returns it with its File.
func newFile(t *testing.T, dir string) (*os.File, *File) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	rf, err := NewFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return f, rf
}
