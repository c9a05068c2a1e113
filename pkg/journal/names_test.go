package journal

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestFileKindName(t *testing.T) {
	tests := []struct {
		name string
		kind fileKind
		i    uint64
		want string
	}{
		{"first segment", segmentFile, 1, "wal-0000000000000001.log"},
		{"segment past 9", segmentFile, 0xab, "wal-00000000000000ab.log"},
		{"snapshot", snapshotFile, 0x10, "snap-0000000000000010.snap"},
		{"zero", snapshotFile, 0, "snap-0000000000000000.snap"},
		{"largest", segmentFile, math.MaxUint64, "wal-ffffffffffffffff.log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.kind.name(tt.i)
			if got != tt.want {
				t.Fatalf("name(%d) = %q, want %q", tt.i, got, tt.want)
			}
			if i, ok := tt.kind.parse(got); !ok || i != tt.i {
				t.Errorf("parse(%q) = %d, %v; want %d, true", got, i, ok, tt.i)
			}
		})
	}
}

func TestFileKindParse(t *testing.T) {
	tests := []struct {
		name   string
		kind   fileKind
		file   string
		want   uint64
		parses bool
	}{
		{"segment", segmentFile, "wal-0000000000000001.log", 1, true},
		{"snapshot", snapshotFile, "snap-00000000000000ff.snap", 0xff, true},
		{"largest", snapshotFile, "snap-ffffffffffffffff.snap", math.MaxUint64, true},
		{"a snapshot is no segment", segmentFile, "snap-0000000000000001.snap", 0, false},
		{"a segment is no snapshot", snapshotFile, "wal-0000000000000001.log", 0, false},
		{"renamed aside", segmentFile, "wal-0000000000000001.log.damaged", 0, false},
		{"being written", snapshotFile, "snap-0000000000000001.snap.tmp", 0, false},
		{"short index", segmentFile, "wal-1.log", 0, false},
		{"long index", segmentFile, "wal-00000000000000001.log", 0, false},
		{"upper case", segmentFile, "wal-00000000000000AB.log", 0, false},
		{"sign", segmentFile, "wal-+000000000000001.log", 0, false},
		{"not hexadecimal", segmentFile, "wal-000000000000000g.log", 0, false},
		{"no index", segmentFile, "wal-.log", 0, false},
		{"prefix only", snapshotFile, "snap-", 0, false},
		{"other suffix", segmentFile, "wal-0000000000000001.snap", 0, false},
		{"small file", segmentFile, "LOCK", 0, false},
		{"empty", snapshotFile, "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i, ok := tt.kind.parse(tt.file)
			if i != tt.want || ok != tt.parses {
				t.Errorf("parse(%q) = %d, %v; want %d, %v", tt.file, i, ok, tt.want, tt.parses)
			}
		})
	}
}

// TestFileKindList lists a directory holding every kind of file: each
// kind finds its own, in order, and nothing else.
func TestFileKindList(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{
		"wal-0000000000000010.log", "wal-0000000000000002.log", "wal-0000000000000003.log.damaged",
		"snap-0000000000000002.snap", "snap-0000000000000004.snap.tmp", "wal-7.log", "LOCK", "NAME", "HEALING",
	} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		kind fileKind
		want []uint64
	}{
		{"segments", segmentFile, []uint64{2, 0x10}},
		{"snapshots", snapshotFile, []uint64{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.kind.list(dir)
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("list = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	if _, err := segmentFile.list(filepath.Join(dir, "missing")); err == nil {
		t.Error("listing a missing directory: no error")
	}
}
