package journal

import (
	"errors"
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
	// Always makes a change durable only once it is synced (group commit:
	// one fsync for every change written meanwhile); otherwise once it is
	// written, with a sync every FsyncInterval.
	Always bool
	Name   string // the node's name, recorded in the directory; "" checks none
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

	// The writer's lock is held by whoever writes: the loop, or a Wait
	// that writes for every waiter (group commit). It guards the fields
	// down to snapDone. The syncer's lock is held by whoever syncs, so
	// that a sync never holds back the next write: it is taken before the
	// writer's, never after. Each is a channel of one slot, so that a
	// Wait can give up waiting for it, and its release hands it to one
	// waiter rather than waking them all.
	wlock         chan struct{}
	slock         chan struct{}
	st            *store.Store
	watermarks    func() map[string]store.Watermark
	f             *os.File                   // the current segment
	seg           uint64                     // its index
	size          int64                      // its size: everything before is written and valid
	sinceSnapshot int64                      // bytes in segments since the last snapshot
	snapSize      int64                      // size of the last snapshot
	marks         map[string]store.Watermark // the watermarks last written
	batch         []store.Change             // reused by collect
	buf           []byte                     // reused by flush
	snapping      bool                       // a snapshot goroutine is running
	snapDone      chan snapshotEnd           // its result

	writtenSeq atomic.Uint64 // the last change number written to the file, or skipped: the cursor of collect
	syncedSeq  atomic.Uint64 // the last change number synced to the disk
	durableSeq atomic.Uint64 // the last change number Wait promises: written, or synced with Always
	lastLog    atomic.Int64  // when the last failure was logged, in Unix nanoseconds

	// mu guards advanced, fault, faultOp and closed. advanced is closed,
	// and replaced, when the fault changes or the journal closes, to wake
	// the Waits that sleep on a fault (the others queue for a lock).
	mu       sync.Mutex
	advanced chan struct{}
	waiters  atomic.Int32 // Waits that may be blocked
	fault    error        // the failing write, rotation or (with Always) sync, until one succeeds
	faultOp  string       // faultWrite or faultSync
	closed   bool         // Close finished: durableSeq moves no more

	lock    *os.File  // holds the directory's flock until Close
	pending *recovery // damage found by Open, for Create to deal with

	running bool // Run was called
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	err     error
}

// Written returns the last change number written to the journal; every
// change up to it survives the process being killed.
func (j *Journal) Written() uint64 { return j.writtenSeq.Load() }

// Open locks a data directory, creating it if needed, recovers it and
// returns the journal, ready to Run, with what it recovered. It fails at
// once if another process holds the directory, if it belongs to a node of
// another name, or if a file cannot be read; it then changes nothing. A
// torn tail is truncated with a log line; records lost otherwise are
// logged at ERROR and reported in State.Damaged. Open writes nothing else
// (but LOCK and NAME): Create, or Run, does.
func Open(cfg Config, log *slog.Logger, m *metrics.Metrics) (*Journal, State, error) {
	if cfg.SegmentSize <= 0 {
		cfg.SegmentSize = DefaultSegmentSize
	}
	log = log.With("component", "journal")
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, State{}, err
	}
	lock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, State{}, err
	}
	r, st, next, err := prepare(cfg, log, m)
	if err != nil {
		lock.Close()
		return nil, State{}, fmt.Errorf("data directory %s: %w", cfg.Dir, err)
	}
	m.JournalRecovered.Set(float64(st.Records))
	m.JournalTruncations.Add(float64(r.truncated))
	j := &Journal{
		cfg: cfg, log: log, m: m, inc: st.Incarnation, seg: r.last, lock: lock,
		marks: map[string]store.Watermark{}, stop: make(chan struct{}), done: make(chan struct{}),
		advanced: make(chan struct{}), snapDone: make(chan snapshotEnd, 1),
		wlock: make(chan struct{}, 1), slock: make(chan struct{}, 1),
	}
	if len(r.damage) > 0 {
		j.pending = r
	}
	for k, v := range st.Watermarks {
		j.marks[k] = v
	}
	log.Info("journal opened", "dir", cfg.Dir, "records", st.Records, "clean", st.Clean, "damaged", st.Damaged,
		"incarnation", fmt.Sprintf("%x", st.Incarnation), "next_change", next+1)
	return j, st, nil
}

// rotate starts the next segment and, once it is ready, syncs and closes
// the current one. When it fails, the current segment stays in use.
func (j *Journal) rotate() error {
	name := filepath.Join(j.cfg.Dir, segmentName(j.seg+1))
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	header := appendIncarnation(nil, j.inc)
	if _, err = f.Write(header); err == nil {
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
	j.f, j.size = f, int64(len(header))
	j.sinceSnapshot += j.size
	j.m.JournalBytes.Add(float64(len(header)))
	return nil
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
	j.sinceSnapshot += int64(len(b))
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
// from the peer links, until Close. Every change st holds already is in
// the journal.
func (j *Journal) Run(st *store.Store, watermarks func() map[string]store.Watermark) {
	j.running = true
	if err := j.Create(); err != nil {
		j.err = err
		close(j.done)
		return
	}
	notify := st.Subscribe()
	j.st, j.watermarks = st, watermarks
	seq := st.Seq()
	j.writtenSeq.Store(seq)
	j.syncedSeq.Store(seq)
	j.advance(seq)
	go j.loop(notify)
}

func (j *Journal) stopping() bool {
	select {
	case <-j.stop:
		return true
	default:
		return false
	}
}

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

// fail counts a failed write, rotation or sync and logs it (at most every
// 10 s). A failed write or rotation is the journal's fault; so is a failed
// sync with Always, where acknowledgements wait for syncs. Without Always,
// a failed sync is only counted and logged: records are acknowledged once
// written, and the next sync retries.
func (j *Journal) fail(op, what string, err error) {
	j.m.JournalErrors.Inc()
	if op == faultWrite || j.cfg.Always {
		j.setFault(op, fmt.Errorf("journal %s: %w", what, err))
	}
	if last := j.lastLog.Load(); time.Since(time.Unix(0, last)) > 10*time.Second && j.lastLog.CompareAndSwap(last, time.Now().UnixNano()) {
		j.log.Error("journal "+what+" failed", "err", err, "acknowledging", op == faultSync && !j.cfg.Always)
	}
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

// Close writes what remains, marks the journal closed cleanly, syncs it
// and stops. Call it after the store stopped changing.
func (j *Journal) Close() error {
	defer j.unlock()
	if !j.running {
		if j.f == nil {
			return nil
		}
		return j.f.Close()
	}
	j.once.Do(func() { close(j.stop) })
	<-j.done
	return j.err
}
