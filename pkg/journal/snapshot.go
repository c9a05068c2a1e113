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
	if j.snapping || j.sinceSnapshot <= max(j.cfg.SegmentSize, 2*j.snapSize) {
		return
	}
	j.snapping = true
	j.sinceSnapshot = j.size // what the snapshot does not cover
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
// in the segments before seg, with the watermarks written with them, as
// snapshot seg (see writeSnapshot), and only then deletes the segments and
// snapshots it replaces. A record changed meanwhile is left out: its newer
// change is in segment seg or later, which recovery replays after the
// snapshot. Appends go on while it runs.
func (j *Journal) snapshot(st *store.Store, cursor, seg uint64, marks map[string]store.Watermark) (int64, error) {
	n, records, err := writeSnapshot(j.cfg.Dir, seg, j.inc, st, cursor, marks, j.stop)
	if err != nil {
		return 0, err
	}
	for _, kind := range []fileKind{segmentFile, snapshotFile} {
		if idx, err := kind.list(j.cfg.Dir); err == nil {
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

// writeSnapshot writes snapshot idx of dir: the incarnation, every record
// of st up to change upTo, the watermarks and the end marker, to a
// temporary file that is synced, read back and checked, then renamed into
// place, and the directory synced. It returns the bytes and records
// written. A crash leaves a temporary file that Open removes. It gives up
// when stop (may be nil) is closed.
func writeSnapshot(dir string, idx, inc uint64, st *store.Store, upTo uint64, marks map[string]store.Watermark,
	stop <-chan struct{}) (int64, int, error) {
	tmp := filepath.Join(dir, snapshotFile.name(idx)+tmpSuffix)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(tmp) // a no-op after the rename
	n, records, err := appendSnapshot(f, inc, st, upTo, marks, stop)
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
		err = verifySnapshot(tmp, inc, records, upTo)
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, snapshotFile.name(idx)))
	}
	if err == nil {
		err = syncDir(dir)
	}
	return n, records, err
}

// appendSnapshot writes a snapshot's entries to f and returns the bytes
// and records written.
func appendSnapshot(f *os.File, inc uint64, st *store.Store, upTo uint64, marks map[string]store.Watermark,
	stop <-chan struct{}) (int64, int, error) {
	buf := appendIncarnation(nil, inc)
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
		case <-stop:
			return 0, 0, errAbandoned
		default:
		}
		batch, next = st.Changes(next, batchSize, batch[:0])
		for _, c := range batch {
			if c.Seq <= upTo {
				buf = appendRecord(buf, c.Seq, c.Record)
				records++
			}
		}
		if len(buf) > 1<<20 {
			if err := flush(); err != nil {
				return 0, 0, err
			}
		}
		if len(batch) < batchSize || next >= upTo {
			break
		}
	}
	for peer, w := range marks {
		buf = appendWatermark(buf, peer, w)
	}
	buf = appendEnd(buf, upTo)
	err := flush()
	return size, records, err
}

// verifySnapshot reads a snapshot back and checks that it is whole: every
// entry valid, its incarnation, the records counted, and the end marker
// last.
func verifySnapshot(name string, inc uint64, records int, upTo uint64) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	got, end, ended := 0, uint64(0), false
	if _, err := readEntries(f, func(e entry) error {
		switch {
		case ended:
			return errors.New("entry after the end marker")
		case e.kind == entryIncarnation && e.inc != inc:
			return errors.New("wrong incarnation")
		case e.kind == entryRecord:
			got++
		case e.kind == entryEnd:
			end, ended = e.seq, true
		}
		return nil
	}); err != nil {
		return fmt.Errorf("snapshot read back: %w", err)
	}
	if !ended || end != upTo || got != records {
		return fmt.Errorf("snapshot read back: %d records up to %d (ended %t), want %d up to %d", got, end, ended, records, upTo)
	}
	return nil
}
