package journal

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// The files of a data directory. Segments and snapshots are numbered
// (fileKind); the others have fixed names.
const (
	// lockName is the file whose exclusive flock marks a data directory as
	// owned by one process. The lock goes with the process: a killed
	// process leaves the file, not the lock.
	lockName = "LOCK"
	// nameFile holds the name of the node the directory belongs to.
	nameFile = "NAME"
	// healingFile exists while a node that lost records has not yet got
	// them back from every neighbour; it holds what was lost.
	healingFile = "HEALING"
	// damagedSuffix ends the name of a file found damaged and renamed
	// aside for inspection; recovery ignores it.
	damagedSuffix = ".damaged"
	// tmpSuffix ends the name of a file being written whole (a snapshot,
	// a small file) until it is renamed into place; a start removes the
	// leftovers of an interrupted write.
	tmpSuffix = ".tmp"
)

// fileKind is the grammar of one kind of numbered file: its prefix, the
// index as 16 lower-case hexadecimal digits, and its suffix. It both
// formats and parses the names, so that the journal names and finds its
// files in one way.
type fileKind struct {
	prefix, suffix string
}

// indexDigits is the width of an index in a file name: every uint64,
// zero-padded, so that names sort as their indexes do.
const indexDigits = 16

var (
	// segmentFile names segments, wal-<index>.log: sequences of entries.
	segmentFile = fileKind{prefix: "wal-", suffix: ".log"}
	// snapshotFile names snapshots, snap-<index>.snap: everything
	// written before segment <index>.
	snapshotFile = fileKind{prefix: "snap-", suffix: ".snap"}
)

// name returns the name of the file of index i.
func (k fileKind) name(i uint64) string {
	return fmt.Sprintf("%s%0*x%s", k.prefix, indexDigits, i, k.suffix)
}

// parse returns the index a file name of this kind holds, and false for
// any other name: another kind, a file renamed aside or being written, or
// an index not spelled as name spells it.
func (k fileKind) parse(name string) (uint64, bool) {
	digits, ok := strings.CutPrefix(name, k.prefix)
	if !ok {
		return 0, false
	}
	if digits, ok = strings.CutSuffix(digits, k.suffix); !ok || len(digits) != indexDigits {
		return 0, false
	}
	for _, c := range []byte(digits) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return 0, false
		}
	}
	i, err := strconv.ParseUint(digits, 16, 64)
	return i, err == nil
}

// list returns the indexes of the files of this kind in dir, sorted.
func (k fileKind) list(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var idx []uint64
	for _, e := range entries {
		if i, ok := k.parse(e.Name()); ok {
			idx = append(idx, i)
		}
	}
	slices.Sort(idx)
	return idx, nil
}
