package journal

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/herdkit/herd/pkg/rawio"
	"github.com/herdkit/herd/pkg/store"
)

// The writing phase, from Start to Close: the loop, the batches it and
// Wait write, the segments' rotation, syncs and failures.

// loop writes the changes nobody waits for (floods, reconciliation),
// syncs every FsyncInterval, and retries what failed: until a failed
// write, rotation or (with Always) sync succeeds, nothing more becomes
// durable, so nothing more is acknowledged.
func (j *Journal) loop(notify <-chan struct{}) {
	defer close(j.done)
	defer j.st.Unsubscribe(notify)
	tick := time.NewTicker(j.cfg.FsyncInterval)
	defer tick.Stop()
	for {
		changed := notify
		if j.Fault() != nil {
			changed = nil // retry on the tick, not at every change
		}
		select {
		case <-changed:
			// Under client load the waiters write (Wait); a change that
			// none of them wrote is written here next time, or at the tick.
			if j.waiters.Load() == 0 && j.tryLock(j.wlock) {
				for j.writeBatch(1 << 20) {
				}
				j.unlockWriter()
			}
		case end := <-j.snapDone:
			j.wlock <- struct{}{}
			j.snapped(end)
			j.unlockWriter()
		case <-tick.C:
			j.wlock <- struct{}{}
			for j.writeBatch(1 << 20) {
			}
			j.unlockWriter()
			j.slock <- struct{}{}
			j.syncWritten()
			j.unlockSyncer()
		case <-j.stop:
			j.slock <- struct{}{}
			j.wlock <- struct{}{}
			j.close()
			j.unlockWriter()
			j.unlockSyncer()
			return
		}
	}
}

// close writes what remains and the clean end, and syncs; a snapshot under
// way is abandoned. Both locks are held.
func (j *Journal) close() {
	var next uint64
	j.buf, next, _, _ = j.collect(j.buf[:0], j.writtenSeq.Load(), math.MaxInt)
	j.buf = appendEnd(j.buf, j.st.Seq())
	err := j.write(j.buf)
	if err == nil {
		err = j.sync()
	}
	if err == nil {
		j.writtenSeq.Store(next)
		j.markSynced(next)
		j.advance(next)
	}
	if j.snapping {
		j.snapped(<-j.snapDone)
	}
	j.f.Close()
	j.err = err
	j.wake(func() { j.closed = true })
}

// writeBatch writes the changes after writtenSeq, about limit bytes of
// them, in one write, and rotates the segment when it is full. Without
// Always they are durable once written. It reports whether more changes
// wait. The writer's lock is held.
func (j *Journal) writeBatch(limit int) (more bool) {
	var next uint64
	var marks map[string]store.Watermark
	j.buf, next, marks, more = j.collect(j.buf[:0], j.writtenSeq.Load(), limit)
	if len(j.buf) > 0 {
		if err := j.write(j.buf); err != nil {
			j.fail(faultWrite, "write", err)
			return false
		}
		maps.Copy(j.marks, marks)
	}
	j.writtenSeq.Store(next) // the cursor: written, or skipped
	j.clearFault(faultWrite)
	if !j.cfg.Always {
		j.advance(next)
	}
	if j.size >= j.cfg.SegmentSize {
		if err := j.rotate(); err != nil {
			j.fail(faultWrite, "rotation", err)
			return false
		}
		j.markSynced(next) // rotate synced everything before the new segment
		j.maybeSnapshot(j.st, next)
	}
	j.m.JournalLag.Set(float64(j.st.Seq() - j.Durable()))
	return more
}

// syncWritten syncs what is written, once for everything written since the
// last sync; with Always that makes it durable. Writes go on meanwhile.
// The syncer's lock is held.
func (j *Journal) syncWritten() {
	j.wlock <- struct{}{}
	f, written := j.f, j.writtenSeq.Load()
	j.unlockWriter()
	if written <= j.syncedSeq.Load() {
		return
	}
	start := time.Now()
	err := f.Sync()
	j.m.JournalFsync.Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, os.ErrClosed) { // closed: rotate synced it first
		j.fail(faultSync, "fsync", err)
		return
	}
	j.markSynced(written)
}

// markSynced records that every change up to seq is synced; with Always,
// that makes it durable.
func (j *Journal) markSynced(seq uint64) {
	for {
		old := j.syncedSeq.Load()
		if old >= seq || j.syncedSeq.CompareAndSwap(old, seq) {
			break
		}
	}
	if j.cfg.Always {
		j.clearFault(faultSync)
		j.advance(seq)
	}
}

// What a fault is of: writing (and rotating), or syncing.
const (
	faultWrite = "write"
	faultSync  = "sync"
)

// fail counts a failed write, rotation or sync and logs it, at most every
// failLogEvery whatever failed (one key: a disk that fails writes often
// fails syncs too, and alternating keys would log both every time). A
// failed write or rotation is the journal's fault; so is a failed sync
// with Always, where acknowledgements wait for syncs. Without Always, a
// failed sync is only counted and logged: records are acknowledged once
// written, and the next sync retries.
func (j *Journal) fail(op, what string, err error) {
	j.m.JournalErrors.Inc()
	if op == faultWrite || j.cfg.Always {
		j.setFault(op, fmt.Errorf("journal %s: %w", what, err))
	}
	j.failLog.Log(j.log, slog.LevelError, "", "journal "+what+" failed",
		"err", err, "acknowledging", op == faultSync && !j.cfg.Always)
}

// collect appends to buf the changes after cursor, until buf holds about
// limit bytes, then the watermarks that changed since they were last
// written. It returns the cursor after those changes, the watermarks read,
// and whether more changes wait. The watermarks are read before the
// changes, so each is written after every record it covers, and any
// prefix of the journal is consistent.
func (j *Journal) collect(buf []byte, cursor uint64, limit int) ([]byte, uint64, map[string]store.Watermark, bool) {
	var marks map[string]store.Watermark
	if j.watermarks != nil {
		marks = j.watermarks()
	}
	next := cursor
	for {
		j.batch, next = j.st.Changes(next, batchSize, j.batch[:0])
		for _, c := range j.batch {
			buf = appendRecord(buf, c.Seq, c.Record)
		}
		if len(j.batch) < batchSize || len(buf) > limit {
			break
		}
	}
	for peer, w := range marks {
		if j.marks[peer] != w {
			buf = appendWatermark(buf, peer, w)
		}
	}
	return buf, next, marks, len(j.batch) == batchSize
}

// rotate starts the next segment and, once it is ready, syncs and closes
// the current one. When it fails, the current segment stays in use.
func (j *Journal) rotate() error {
	name := filepath.Join(j.cfg.Dir, segmentFile.name(j.seg+1))
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	raw, err := rawio.NewFile(f)
	header := appendIncarnation(nil, j.inc)
	if err == nil {
		_, err = f.Write(header)
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil && j.f != nil {
		// Everything before the new segment is synced before anything is
		// written to it.
		err = j.sync()
	}
	if err == nil {
		err = syncDir(j.cfg.Dir)
	}
	if err != nil {
		f.Close()
		os.Remove(name)
		return err
	}
	if j.f != nil {
		j.f.Close()
	}
	j.seg++
	j.f, j.raw, j.size = f, raw, int64(len(header))
	j.sinceSnapshot += j.size
	j.m.JournalBytes.Add(float64(len(header)))
	return nil
}

// write appends b to the segment in one write. After a failed write the
// segment is cut back to its last whole entry, so that a retry does not
// leave a torn entry in the middle of the file.
func (j *Journal) write(b []byte) error {
	if _, err := j.raw.Write(b); err != nil {
		j.f.Truncate(j.size)
		j.f.Seek(j.size, 0)
		return err
	}
	j.size += int64(len(b))
	j.sinceSnapshot += int64(len(b))
	j.m.JournalBytes.Add(float64(len(b)))
	return nil
}

// sync syncs the current segment, timed.
func (j *Journal) sync() error {
	start := time.Now()
	err := j.f.Sync()
	j.m.JournalFsync.Observe(time.Since(start).Seconds())
	return err
}
