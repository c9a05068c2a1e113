package journal

import (
	"errors"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herdkit/herd/pkg/logging"
	"github.com/herdkit/herd/pkg/metrics"
	"github.com/herdkit/herd/pkg/rawio"
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

// failLogEvery is how often a failing write, rotation or sync is logged
// at most; the metrics count every one.
const failLogEvery = 10 * time.Second

// Journal appends a store's changes to segment files in a data directory,
// syncs them every FsyncInterval, and compacts them into snapshots. Its
// life has three phases: Open locks the directory and reads it back,
// writing nothing of the journal; Start writes what Open decided and then every change;
// Close writes the clean end and releases the directory.
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
	raw           *rawio.File                // f, for its writes (rawio: a write wakes no runtime thread)
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

	// mu guards advanced, fault, faultOp and closed. advanced is closed,
	// and replaced, when the fault changes or the journal closes, to wake
	// the Waits that sleep on a fault (the others queue for a lock).
	mu       sync.Mutex
	advanced chan struct{}
	waiters  atomic.Int32 // Waits that may be blocked
	fault    error        // the failing write, rotation or (with Always) sync, until one succeeds
	faultOp  string       // faultWrite or faultSync
	closed   bool         // Close finished: durableSeq moves no more

	failLog logging.Throttle // fail's log: a failing disk fails at every change, Every failLogEvery

	lock    *os.File  // holds the directory's flock until Close
	damaged *recovery // damage found by Open, for Start to heal; nil when whole

	running bool // Start succeeded: the loop runs until Close
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	err     error // what Close returns: the last write's or sync's error
}

// Start writes what Open decided and then, until Close, every change of
// st from now on (every change st holds already is in the journal), with
// watermarks (may be nil) read from the peer links. What Open decided
// comes first: after damage, the HEALING marker, a snapshot of what was
// kept under the new incarnation and the damaged files renamed aside (see
// heal); then the first new segment. Call it once, after whatever else
// may fail at start (binding listeners), so that a start that fails
// before it leaves the data directory as Open found it, but for LOCK and
// NAME. When it fails, nothing is written after the failure; Close
// releases the directory.
func (j *Journal) Start(st *store.Store, watermarks func() map[string]store.Watermark) error {
	if j.running {
		return errors.New("journal: started twice")
	}
	if err := j.healDamage(); err != nil {
		return err
	}
	if err := j.rotate(); err != nil {
		return err
	}
	j.running = true
	notify := st.Subscribe()
	j.st, j.watermarks = st, watermarks
	seq := st.Seq()
	j.writtenSeq.Store(seq)
	j.syncedSeq.Store(seq)
	j.advance(seq)
	go j.loop(notify)
	return nil
}

// Close writes what remains, marks the journal closed cleanly, syncs it
// and stops, then releases the directory. Call it after the store stopped
// changing. Without Start, or after one that failed, it only releases the
// directory.
func (j *Journal) Close() error {
	defer j.unlock()
	if !j.running {
		return nil // never started, or failed to: nothing is open but the lock
	}
	j.once.Do(func() { close(j.stop) })
	<-j.done
	return j.err
}

// stopping reports whether Close has begun.
func (j *Journal) stopping() bool {
	select {
	case <-j.stop:
		return true
	default:
		return false
	}
}
