package journal

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/herdkit/herd/pkg/store"
)

// seqJump is how far the change numbers jump after a start that follows a
// crash. A crash can lose the last changes written before it, whose
// change numbers neighbours may already hold in their watermarks; new
// changes must never reuse them, or a neighbour asking for what came after
// its watermark would miss them. No server hands out 2^40 change numbers
// between two writes to its journal.
const seqJump = 1 << 40

// State is what a journal recovered at start.
type State struct {
	// Incarnation names this data directory's run of change numbers; it
	// survives restarts.
	Incarnation uint64
	// Store holds the recovered records; its change numbers continue after
	// the recovered ones.
	Store *store.Store
	// Watermarks are what this server held of each neighbour's changes.
	Watermarks map[string]store.Watermark
	// Records is the number of records read back.
	Records int
	// Clean reports that the last run closed the journal, so no change
	// can have been lost.
	Clean bool
}

// File names: segments wal-<index>.log, and snapshots snap-<index>.snap
// holding everything written before segment <index>.
func segmentName(i uint64) string  { return fmt.Sprintf("wal-%016x.log", i) }
func snapshotName(i uint64) string { return fmt.Sprintf("snap-%016x.snap", i) }

// list returns the indexes of the files matching prefix and suffix, sorted.
func list(dir, prefix, suffix string) ([]uint64, error) {
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var idx []uint64
	for _, e := range names {
		n := e.Name()
		if !strings.HasPrefix(n, prefix) || !strings.HasSuffix(n, suffix) {
			continue
		}
		if i, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(n, prefix), suffix), 16, 64); err == nil {
			idx = append(idx, i)
		}
	}
	slices.Sort(idx)
	return idx, nil
}

// recovery reads a data directory back.
type recovery struct {
	dir   string
	log   *slog.Logger
	state State
	// truncated counts the torn or corrupt tails cut off.
	truncated int
	last      uint64 // the index of the last segment
	maxSeq    uint64
}

func recoverDir(dir string, limit int, log *slog.Logger) (*recovery, error) {
	empty := func() State {
		st := store.New(0)
		st.SetLimit(limit)
		return State{Store: st, Watermarks: map[string]store.Watermark{}}
	}
	r := &recovery{dir: dir, log: log, state: empty()}
	snaps, err := list(dir, "snap-", ".snap")
	if err != nil {
		return nil, err
	}
	segs, err := list(dir, "wal-", ".log")
	if err != nil {
		return nil, err
	}
	var base uint64
	for _, i := range slices.Backward(snaps) {
		if err := r.loadSnapshot(i); err != nil {
			log.Warn("journal: ignoring a bad snapshot", "file", snapshotName(i), "err", err)
			r.state = empty()
			continue
		}
		base = i
		break
	}
	for k, i := range segs {
		if i < base {
			continue
		}
		r.last = i
		if err := r.replaySegment(i); err != nil {
			// Everything after a bad entry is cut off, later segments too:
			// what remains is a prefix of what was written.
			for _, later := range segs[k+1:] {
				os.Remove(filepath.Join(dir, segmentName(later)))
				log.Warn("journal: removed a segment after a corrupt one", "file", segmentName(later))
			}
			break
		}
	}
	if len(segs) > 0 && segs[len(segs)-1] > r.last {
		r.last = segs[len(segs)-1]
	}
	return r, nil
}

// apply applies one recovered entry.
func (r *recovery) apply(e entry) error {
	s := &r.state
	if e.kind != entryEnd {
		s.Clean = false
	}
	switch e.kind {
	case entryIncarnation:
		if s.Incarnation != 0 && s.Incarnation != e.inc {
			return errors.New("two incarnations in one data directory")
		}
		s.Incarnation = e.inc
	case entryRecord:
		if err := s.Store.Restore(store.Change{Seq: e.seq, Record: e.record}); err != nil {
			return err
		}
		s.Records++
		r.maxSeq = e.seq
	case entryWatermark:
		s.Watermarks[e.peer] = e.mark
	case entryEnd:
		s.Clean = true
		r.maxSeq = max(r.maxSeq, e.seq)
	}
	return nil
}

func (r *recovery) loadSnapshot(i uint64) error {
	f, err := os.Open(filepath.Join(r.dir, snapshotName(i)))
	if err != nil {
		return err
	}
	defer f.Close()
	complete := false
	_, err = readEntries(f, func(e entry) error {
		complete = e.kind == entryEnd
		return r.apply(e)
	})
	if err == nil && !complete {
		err = errors.New("snapshot is incomplete")
	}
	return err
}

// replaySegment applies a segment; a torn or corrupt tail is truncated
// with a log line, and reported so that later segments are dropped.
func (r *recovery) replaySegment(i uint64) error {
	name := filepath.Join(r.dir, segmentName(i))
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	good, rerr := readEntries(f, r.apply)
	f.Close()
	if rerr == nil {
		return nil
	}
	r.truncated++
	r.log.Warn("journal: torn or corrupt tail truncated", "file", segmentName(i), "offset", good, "err", rerr)
	if err := os.Truncate(name, good); err != nil {
		return fmt.Errorf("truncating %s: %w", name, err)
	}
	r.state.Clean = false
	return rerr
}
