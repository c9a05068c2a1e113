package journal

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"

	"github.com/herdkit/herd/pkg/store"
)

// snapshotEnd is what a snapshot goroutine reports to the loop.
type snapshotEnd struct {
	seg   uint64 // the segment it starts before
	bytes int64
	err   error
}

// snapshotWritten, when set by a test, runs after a snapshot's temporary
// file is written and closed, before it is read back.
var snapshotWritten func(tmp string)

// errAbandoned ends a snapshot that Close interrupted.
var errAbandoned = errors.New("snapshot abandoned: the journal is closing")

// maybeSnapshot starts a snapshot of everything before the segment just
// started when the segments since the last one outgrew it, unless one is
// running. It runs beside the loop, which goes on writing.
func (j *Journal) maybeSnapshot(st *store.Store, cursor uint64) {
	if j.snapping || j.sinceSnp <= max(j.cfg.SegmentSize, 2*j.snapSize) {
		return
	}
	j.snapping = true
	j.sinceSnp = j.size // what the snapshot does not cover
	seg, marks := j.seg, maps.Clone(j.marks)
	go func() {
		n, err := j.snapshot(st, cursor, seg, marks)
		j.snapDone <- snapshotEnd{seg: seg, bytes: n, err: err}
	}()
}

// snapped takes a snapshot goroutine's result, in the loop.
func (j *Journal) snapped(end snapshotEnd) {
	j.snapping = false
	switch {
	case end.err == nil:
		j.snapSize = end.bytes
		j.m.JournalSnapshots.Inc()
	case errors.Is(end.err, errAbandoned):
	default:
		j.m.JournalErrors.Inc()
		j.log.Error("journal snapshot failed; the segments it would replace are kept", "err", end.err)
	}
}

// snapshot writes every record stored up to cursor, whose changes are all
// in the segments before seg, with the watermarks written with them, to a
// temporary file; syncs it, reads it back and checks it, renames it into
// place and only then deletes the segments and snapshots it replaces. A
// record changed meanwhile is left out: its newer change is in segment seg
// or later, which recovery replays after the snapshot. Appends go on while
// it runs; a crash leaves a temporary file that Open removes.
func (j *Journal) snapshot(st *store.Store, cursor, seg uint64, marks map[string]store.Watermark) (int64, error) {
	tmp := filepath.Join(j.cfg.Dir, snapshotName(seg)+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp) // a no-op after the rename
	n, records, err := j.writeSnapshot(f, st, cursor, marks)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && snapshotWritten != nil {
		snapshotWritten(tmp)
	}
	if err == nil {
		err = verifySnapshot(tmp, records, cursor)
	}
	if err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, filepath.Join(j.cfg.Dir, snapshotName(seg))); err != nil {
		return 0, err
	}
	if err := syncDir(j.cfg.Dir); err != nil {
		return 0, err
	}
	// The snapshot holds everything before segment seg.
	for _, kind := range []struct {
		prefix, suffix string
		name           func(uint64) string
	}{{"wal-", ".log", segmentName}, {"snap-", ".snap", snapshotName}} {
		if idx, err := list(j.cfg.Dir, kind.prefix, kind.suffix); err == nil {
			for _, i := range idx {
				if i < seg {
					os.Remove(filepath.Join(j.cfg.Dir, kind.name(i)))
				}
			}
		}
	}
	j.log.Info("journal snapshot written", "records", records, "records_up_to", cursor, "bytes", n)
	return n, nil
}

// writeSnapshot writes the snapshot's entries to f and returns the bytes
// and records written.
func (j *Journal) writeSnapshot(f *os.File, st *store.Store, cursor uint64, marks map[string]store.Watermark) (int64, int, error) {
	buf := appendIncarnation(nil, j.inc)
	var batch []store.Change
	size, records := int64(0), 0
	flush := func() error {
		n, err := f.Write(buf)
		size += int64(n)
		buf = buf[:0]
		return err
	}
	for next := uint64(0); ; {
		select {
		case <-j.stop:
			return 0, 0, errAbandoned
		default:
		}
		batch, next = st.Changes(next, batchSize, batch[:0])
		for _, c := range batch {
			if c.Seq <= cursor {
				buf = appendRecord(buf, c.Seq, c.Record)
				records++
			}
		}
		if len(buf) > 1<<20 {
			if err := flush(); err != nil {
				return 0, 0, err
			}
		}
		if len(batch) < batchSize || next >= cursor {
			break
		}
	}
	for peer, w := range marks {
		buf = appendWatermark(buf, peer, w)
	}
	buf = appendEnd(buf, cursor)
	return size + int64(len(buf)), records, flush()
}

// verifySnapshot reads a snapshot back and checks that it is whole: every
// entry valid, the records counted, and the end marker last.
func verifySnapshot(name string, records int, cursor uint64) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	got, end, ended := 0, uint64(0), false
	if _, err := readEntries(f, func(e entry) error {
		if ended {
			return errors.New("entry after the end marker")
		}
		switch e.kind {
		case entryRecord:
			got++
		case entryEnd:
			end, ended = e.seq, true
		}
		return nil
	}); err != nil {
		return fmt.Errorf("snapshot read back: %w", err)
	}
	if !ended || end != cursor || got != records {
		return fmt.Errorf("snapshot read back: %d records up to %d (ended %t), want %d up to %d", got, end, ended, records, cursor)
	}
	return nil
}
