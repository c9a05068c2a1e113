package logging

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// logFiles returns the log's files oldest first (name.N .. name.1, name)
// and their total size.
func logFiles(t *testing.T, name string) ([]string, int64) {
	t.Helper()
	backups, err := filepath.Glob(name + ".*")
	if err != nil {
		t.Fatal(err)
	}
	number := func(f string) int { n, _ := strconv.Atoi(strings.TrimPrefix(f, name+".")); return n }
	slices.SortFunc(backups, func(a, b string) int { return number(b) - number(a) })
	files := append(backups, name)
	var total int64
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			total += fi.Size()
		}
	}
	return files, total
}

// numbered returns records "%08d " plus filler to size bytes with the
// newline, from first on, concatenated up to n bytes.
func numbered(first, size, n int) ([]byte, int) {
	var b []byte
	i := first
	for len(b)+size <= n {
		head := fmt.Sprintf("%08d ", i)
		b = append(b, head+strings.Repeat("x", size-len(head)-1)+"\n"...)
		i++
	}
	return b, i
}

// checkRecords checks that the files hold records numbered one after the
// other, starting at first when first >= 0, ending just before end, and
// that none is larger than a file may be.
func checkRecords(t *testing.T, files []string, first, end, maxSize int) {
	t.Helper()
	var all []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > maxSize {
			t.Errorf("%s: %d bytes, more than %d", f, len(b), maxSize)
		}
		all = append(all, b...)
	}
	next := first
	for line := range bytes.Lines(all) {
		var i int
		if _, err := fmt.Sscanf(string(line), "%08d ", &i); err != nil {
			t.Fatalf("%.40q is not a record", line)
		}
		if next >= 0 && i != next {
			t.Fatalf("record %d after %d: lost or reordered", i, next-1)
		}
		next = i + 1
	}
	if next != end {
		t.Fatalf("the last record is %d, want %d", next-1, end-1)
	}
}

// TestRotatingFileKeepsEveryRecordInOrder: the rotated files together hold
// every record in order, none above the size, a buffer larger than a whole
// file and a record larger than a file included.
func TestRotatingFileKeepsEveryRecordInOrder(t *testing.T) {
	const size = 64 << 10
	name := filepath.Join(t.TempDir(), "herd.log")
	r, err := openRotating(name, size, 1000)
	if err != nil {
		t.Fatal(err)
	}
	next := 0
	for i := range 100 {
		var b []byte
		switch i {
		case 20: // a buffer grown past two files, in 100-byte records
			b, next = numbered(next, 100, 5*size/2)
		case 30: // one record longer than a file, which goes in two
			b, next = numbered(next, 3*size/2, 3*size/2)
		default:
			b, next = numbered(next, 100, 10<<10)
		}
		if n, err := r.Write(b); err != nil || n != len(b) {
			t.Fatalf("write %d: %d of %d bytes: %v", i, n, len(b), err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := logFiles(t, name)
	if len(files) < 20 {
		t.Fatalf("%d files for 1.2 MB at 64 KB a file: no rotation", len(files))
	}
	checkRecords(t, files, 0, next, size)
}

// TestRotatingFileKeepsTheNewestFiles: past its size the log keeps the
// current file and keep renamed ones, the newest records in order, and
// never more than size × (keep + 1) bytes, even between two writes.
func TestRotatingFileKeepsTheNewestFiles(t *testing.T) {
	const size = 64 << 10
	tests := []struct {
		name        string
		keep        int
		recordBytes int
		bufferBytes int
	}{
		{"one kept, small records", 1, 100, 4 << 10},
		{"three kept, small records", 3, 100, 4 << 10},
		{"three kept, buffers of a whole file", 3, 200, size},
		{"two kept, records of a third of a file", 2, size / 3, size},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := filepath.Join(t.TempDir(), "herd.log")
			r, err := openRotating(name, size, tt.keep)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			bound := int64(tt.keep+1) * size
			next := 0
			for range 10 * (tt.keep + 1) * size / tt.bufferBytes {
				var b []byte
				b, next = numbered(next, tt.recordBytes, tt.bufferBytes)
				if _, err := r.Write(b); err != nil {
					t.Fatal(err)
				}
				if files, total := logFiles(t, name); len(files) > tt.keep+1 || total > bound {
					t.Fatalf("%d files, %d bytes; want at most %d files, %d bytes", len(files), total, tt.keep+1, bound)
				}
			}
			files, _ := logFiles(t, name)
			if len(files) != tt.keep+1 {
				t.Fatalf("%d files, want %d", len(files), tt.keep+1)
			}
			checkRecords(t, files, -1, next, size)
		})
	}
}

// TestRotatingFileAppends: a restarted node appends to its file, and
// rotates it when full.
func TestRotatingFileAppends(t *testing.T) {
	name := filepath.Join(t.TempDir(), "herd.log")
	if err := os.WriteFile(name, []byte("00000000 before the restart\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := openRotating(name, 100, 1)
	if err != nil {
		t.Fatal(err)
	}
	r.Write([]byte("00000001 after\n"))
	r.Write([]byte("00000002 " + strings.Repeat("x", 80) + "\n"))
	r.Close()
	files, _ := logFiles(t, name)
	checkRecords(t, files, 0, 3, 100)
	if len(files) != 2 {
		t.Errorf("files %v, want the old one rotated", files)
	}
}

// TestRotatingFileLeavesAPipeAlone: a file that is not a regular one, a
// pipe to a collector, is written and never renamed.
func TestRotatingFileLeavesAPipeAlone(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "herd.log")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("no FIFO here:", err)
	}
	reader, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0) // so that opening to write does not wait
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	r, err := openRotating(fifo, 10, 1)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if n, err := r.Write([]byte("0123456789\n")); n != 11 || err != nil {
			t.Fatalf("write: %d, %v", n, err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if files, _ := logFiles(t, fifo); len(files) != 1 {
		t.Fatalf("files %v: the pipe was renamed", files)
	}
	got, _ := io.ReadAll(reader)
	if want := strings.Repeat("0123456789\n", 3); string(got) != want {
		t.Errorf("the pipe carried %q, want %q", got, want)
	}
}

func TestOpenRotatingRejects(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name     string
		file     string
		maxBytes int64
		keep     int
	}{
		{"no such directory", filepath.Join(dir, "none", "herd.log"), 1, 1},
		{"a directory", dir, 1, 1},
		{"zero size", filepath.Join(dir, "herd.log"), 0, 1},
		{"no file kept", filepath.Join(dir, "herd.log"), 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r, err := openRotating(tt.file, tt.maxBytes, tt.keep); err == nil {
				r.Close()
				t.Fatal("accepted")
			}
		})
	}
}
