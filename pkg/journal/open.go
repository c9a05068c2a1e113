package journal

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/herdkit/herd/pkg/logging"
	"github.com/herdkit/herd/pkg/metrics"
	"github.com/herdkit/herd/pkg/store"
)

// The first phase of a journal's life: lock the data directory, check
// whose it is, and read it back (recover.go). Nothing is written but LOCK
// and NAME; what recovery decided waits for Start.

// Open locks a data directory, creating it if needed, recovers it and
// returns the journal, ready to Start, with what it recovered. It fails at
// once if another process holds the directory, if it belongs to a node of
// another name, or if a file cannot be read; it then changes nothing. A
// torn tail is truncated with a log line; records lost otherwise are
// logged at ERROR and reported in State.Damaged. Open writes nothing else
// (but LOCK and NAME): Start does, so that a start that fails before it
// leaves the directory as it found it.
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
	rec, err := readBack(cfg, log, m)
	if err != nil {
		lock.Close()
		return nil, State{}, fmt.Errorf("data directory %s: %w", cfg.Dir, err)
	}
	st := rec.state
	m.JournalRecovered.Set(float64(st.Records))
	m.JournalTruncations.Add(float64(rec.files.truncated))
	j := &Journal{
		cfg: cfg, log: log, m: m, inc: st.Incarnation, seg: rec.files.last, lock: lock,
		marks: map[string]store.Watermark{}, stop: make(chan struct{}), done: make(chan struct{}),
		advanced: make(chan struct{}), snapDone: make(chan snapshotEnd, 1),
		wlock: make(chan struct{}, 1), slock: make(chan struct{}, 1), failLog: logging.Throttle{Every: failLogEvery},
	}
	if len(rec.files.damage) > 0 {
		j.damaged = rec.files
	}
	for k, v := range st.Watermarks {
		j.marks[k] = v
	}
	log.Info("journal opened", "dir", cfg.Dir, "records", st.Records, "clean", st.Clean, "damaged", st.Damaged,
		"incarnation", fmt.Sprintf("%x", st.Incarnation), "next_change", rec.next+1)
	return j, st, nil
}

// readBack reads a locked data directory back for Open: it checks the
// node's name, removes leftovers of interrupted writes, and recovers.
func readBack(cfg Config, log *slog.Logger, m *metrics.Metrics) (recovered, error) {
	if err := checkName(cfg.Dir, cfg.Name); err != nil {
		return recovered{}, err
	}
	if err := removeLeftovers(cfg.Dir, log.Warn); err != nil {
		return recovered{}, err
	}
	return recoverState(cfg.Dir, cfg.MaxRecords, log, m)
}

// lockDir takes the exclusive lock of dir, without waiting. It fails at
// once, naming the directory, when another process (or another Open in
// this one) holds it. It reads and writes nothing else.
func lockDir(dir string) (*os.File, error) {
	name := filepath.Join(dir, lockName)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data directory %s is in use by another process (%s is locked); "+
				"one directory belongs to one node", dir, name)
		}
		return nil, fmt.Errorf("data directory %s: locking %s: %w", dir, name, err)
	}
	return f, nil
}

// unlock releases the data directory.
func (j *Journal) unlock() {
	if j.lock != nil {
		j.lock.Close()
		j.lock = nil
	}
}

// checkName makes sure dir belongs to the node called name, and records
// the name if the directory has none yet. An empty name (a tool, or a
// test) checks nothing.
func checkName(dir, name string) error {
	if name == "" {
		return nil
	}
	have, err := readSmall(dir, nameFile)
	if err != nil {
		return err
	}
	switch {
	case have == name:
		return nil
	case have != "":
		return fmt.Errorf("data directory %s belongs to the node %q, not to %q (HERD_NAME); "+
			"give each node its own directory", dir, have, name)
	}
	return writeAtomic(dir, nameFile, []byte(name+"\n"))
}

// removeLeftovers removes the temporary files of an interrupted snapshot
// or small-file write (*.tmp). The caller holds the lock, so no writer
// of them is running.
func removeLeftovers(dir string, log func(msg string, args ...any)) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), tmpSuffix) || e.IsDir() {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("removing the leftover %s: %w", filepath.Join(dir, e.Name()), err)
		}
		log("journal: removed the leftover of an interrupted write", "file", e.Name())
	}
	return nil
}
