package journal

import (
	"fmt"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herdkit/herd/pkg/metrics"
	"github.com/herdkit/herd/pkg/store"
)

// Config holds a journal's settings.
type Config struct {
	Dir           string        // the data directory, created if missing
	FsyncInterval time.Duration // batched fsync period: the durability promise
	SegmentSize   int64         // a segment this large is closed and a new one started
	// MaxRecords is the recovered store's limit (store.SetLimit), applied
	// while it is read back, as it was while it was written; 0 is none.
	MaxRecords int
}

// DefaultSegmentSize is the size at which segments rotate.
const DefaultSegmentSize = 64 << 20

// batchSize bounds the changes read from the store at a time.
const batchSize = 1024

// Journal appends a store's changes to segment files in a data directory,
// syncs them every FsyncInterval, and compacts them into snapshots.
type Journal struct {
	cfg Config
	log *slog.Logger
	m   *metrics.Metrics
	inc uint64

	f        *os.File                   // the current segment
	seg      uint64                     // its index
	size     int64                      // its size: everything before is written and valid
	sinceSnp int64                      // bytes in segments since the last snapshot
	snapSize int64                      // size of the last snapshot
	marks    map[string]store.Watermark // the watermarks last written
	batch    []store.Change             // reused by collect

	writtenSeq atomic.Uint64 // the last change number written to the file

	running bool // Run was called
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	err     error
}

// Written returns the last change number written to the journal; every
// change up to it survives the process being killed.
func (j *Journal) Written() uint64 { return j.writtenSeq.Load() }

// Open recovers a data directory, creating it if needed, and returns the
// journal, ready to Run, with what it recovered. A torn or corrupt tail is
// truncated with a log line.
func Open(cfg Config, log *slog.Logger, m *metrics.Metrics) (*Journal, State, error) {
	if cfg.SegmentSize <= 0 {
		cfg.SegmentSize = DefaultSegmentSize
	}
	log = log.With("component", "journal")
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, State{}, err
	}
	r, err := recoverDir(cfg.Dir, cfg.MaxRecords, log)
	if err != nil {
		return nil, State{}, err
	}
	st := r.state
	fresh := st.Incarnation == 0
	if fresh {
		st.Incarnation = store.NewIncarnation()
	}
	// After a crash the last changes may be lost while neighbours hold
	// their change numbers: jump past them (see seqJump).
	next := r.maxSeq
	if !fresh && !st.Clean {
		next += seqJump
	}
	st.Store.Advance(next)
	m.JournalRecovered.Set(float64(st.Records))
	m.JournalTruncations.Add(float64(r.truncated))
	j := &Journal{
		cfg: cfg, log: log, m: m, inc: st.Incarnation, seg: r.last,
		marks: map[string]store.Watermark{}, stop: make(chan struct{}), done: make(chan struct{}),
	}
	for k, v := range st.Watermarks {
		j.marks[k] = v
	}
	if err := j.rotate(); err != nil {
		return nil, State{}, err
	}
	log.Info("journal opened", "dir", cfg.Dir, "records", st.Records, "clean", st.Clean || fresh,
		"incarnation", fmt.Sprintf("%x", st.Incarnation), "next_change", next+1)
	return j, st, nil
}

// rotate closes the current segment, if any, and starts the next one.
func (j *Journal) rotate() error {
	if j.f != nil {
		if err := j.sync(); err != nil {
			return err
		}
		j.f.Close()
	}
	j.seg++
	f, err := os.OpenFile(filepath.Join(j.cfg.Dir, segmentName(j.seg)), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	j.f, j.size = f, 0
	if err := j.write(appendIncarnation(nil, j.inc)); err != nil {
		return err
	}
	if err := j.sync(); err != nil {
		return err
	}
	return syncDir(j.cfg.Dir)
}

// write appends b to the segment in one write. After a failed write the
// segment is cut back to its last whole entry, so that a retry does not
// leave a torn entry in the middle of the file.
func (j *Journal) write(b []byte) error {
	if _, err := j.f.Write(b); err != nil {
		j.f.Truncate(j.size)
		j.f.Seek(j.size, 0)
		return err
	}
	j.size += int64(len(b))
	j.sinceSnp += int64(len(b))
	j.m.JournalBytes.Add(float64(len(b)))
	return nil
}

func (j *Journal) sync() error {
	start := time.Now()
	err := j.f.Sync()
	j.m.JournalFsync.Observe(time.Since(start).Seconds())
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Run writes st's changes from now on, with watermarks (may be nil) read
// from the peer links, until Close.
func (j *Journal) Run(st *store.Store, watermarks func() map[string]store.Watermark) {
	notify := st.Subscribe()
	j.running = true
	go j.loop(st, notify, st.Seq(), watermarks)
}

func (j *Journal) loop(st *store.Store, notify <-chan struct{}, cursor uint64, watermarks func() map[string]store.Watermark) {
	defer close(j.done)
	defer st.Unsubscribe(notify)
	tick := time.NewTicker(j.cfg.FsyncInterval)
	defer tick.Stop()
	dirty := false
	var buf []byte
	var lastErr time.Time
	fail := func(what string, err error) {
		j.m.JournalErrors.Inc()
		if time.Since(lastErr) > 10*time.Second { // rate-limited
			j.log.Error("journal "+what+" failed", "err", err)
			lastErr = time.Now()
		}
	}
	for {
		var next uint64
		var marks map[string]store.Watermark
		var more bool
		buf, next, marks, more = j.collect(buf[:0], st, cursor, watermarks, 1<<20)
		if len(buf) > 0 {
			if err := j.write(buf); err != nil {
				fail("write", err)
			} else {
				cursor = next
				dirty = true
				maps.Copy(j.marks, marks)
			}
		} else {
			cursor = next
		}
		j.writtenSeq.Store(cursor)
		j.m.JournalLag.Set(float64(st.Seq() - cursor))
		if j.size >= j.cfg.SegmentSize {
			if err := j.rotate(); err != nil {
				fail("rotation", err)
			} else if j.sinceSnp > max(j.cfg.SegmentSize, 2*j.snapSize) {
				if err := j.snapshot(st, cursor); err != nil {
					fail("snapshot", err)
				}
			}
		}
		if more {
			continue
		}
		select {
		case <-notify:
		case <-tick.C:
			if dirty {
				if err := j.sync(); err != nil {
					fail("fsync", err)
				} else {
					dirty = false
				}
			}
		case <-j.stop:
			// A last pass, then the clean end.
			buf, _, _, _ = j.collect(buf[:0], st, cursor, watermarks, math.MaxInt)
			buf = appendEnd(buf, st.Seq())
			err := j.write(buf)
			if err == nil {
				err = j.sync()
			}
			j.f.Close()
			j.err = err
			return
		}
	}
}

// collect appends to buf the changes after cursor, until buf holds about
// limit bytes, then the watermarks that changed since they were last
// written. It returns the cursor after those changes, the watermarks read,
// and whether more changes wait. The watermarks are read before the
// changes, so each is written after every record it covers, and any
// prefix of the journal is consistent.
func (j *Journal) collect(buf []byte, st *store.Store, cursor uint64, watermarks func() map[string]store.Watermark,
	limit int) ([]byte, uint64, map[string]store.Watermark, bool) {
	var marks map[string]store.Watermark
	if watermarks != nil {
		marks = watermarks()
	}
	next := cursor
	for {
		j.batch, next = st.Changes(next, batchSize, j.batch[:0])
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

// Close writes what remains, marks the journal closed cleanly, syncs it
// and stops. Call it after the store stopped changing.
func (j *Journal) Close() error {
	if !j.running {
		return j.f.Close()
	}
	j.once.Do(func() { close(j.stop) })
	<-j.done
	return j.err
}

// snapshot writes every record stored up to cursor, whose changes are all
// in the segments before the current one, and the watermarks written
// with them, then deletes those segments and older snapshots.
func (j *Journal) snapshot(st *store.Store, cursor uint64) error {
	tmp := filepath.Join(j.cfg.Dir, "snap.tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	buf := appendIncarnation(nil, j.inc)
	var batch []store.Change
	size := int64(0)
	for next := uint64(0); ; {
		batch, next = st.Changes(next, batchSize, batch[:0])
		for _, c := range batch {
			// Changes after cursor are in the current segment; a record
			// superseded meanwhile is there too.
			if c.Seq <= cursor {
				buf = appendRecord(buf, c.Seq, c.Record)
			}
		}
		if len(buf) > 1<<20 || len(batch) < batchSize {
			n, err := f.Write(buf)
			size += int64(n)
			if err != nil {
				f.Close()
				return err
			}
			buf = buf[:0]
		}
		if len(batch) < batchSize {
			break
		}
	}
	for peer, w := range j.marks {
		buf = appendWatermark(buf, peer, w)
	}
	buf = appendEnd(buf, cursor)
	n, err := f.Write(buf)
	size += int64(n)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(j.cfg.Dir, snapshotName(j.seg))); err != nil {
		return err
	}
	if err := syncDir(j.cfg.Dir); err != nil {
		return err
	}
	j.sinceSnp, j.snapSize = j.size, size
	j.m.JournalSnapshots.Inc()
	// The snapshot holds everything before the current segment.
	if segs, err := list(j.cfg.Dir, "wal-", ".log"); err == nil {
		for _, i := range segs {
			if i < j.seg {
				os.Remove(filepath.Join(j.cfg.Dir, segmentName(i)))
			}
		}
	}
	if snaps, err := list(j.cfg.Dir, "snap-", ".snap"); err == nil {
		for _, i := range snaps {
			if i < j.seg {
				os.Remove(filepath.Join(j.cfg.Dir, snapshotName(i)))
			}
		}
	}
	j.log.Info("journal snapshot written", "records_up_to", cursor, "bytes", size)
	return nil
}
