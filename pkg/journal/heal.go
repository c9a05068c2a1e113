package journal

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/herdkit/herd/pkg/metrics"
	"github.com/herdkit/herd/pkg/store"
)

// prepare reads a locked data directory back for Open: it checks the
// node's name, removes leftovers of interrupted writes, recovers, and
// decides what to do about damage. It writes nothing else: what healing
// writes waits for Create.
func prepare(cfg Config, log *slog.Logger, m *metrics.Metrics) (*recovery, State, uint64, error) {
	if err := checkName(cfg.Dir, cfg.Name); err != nil {
		return nil, State{}, 0, err
	}
	if err := removeLeftovers(cfg.Dir, log.Warn); err != nil {
		return nil, State{}, 0, err
	}
	r, err := recoverDir(cfg.Dir, cfg.MaxRecords, log, true)
	if err != nil {
		return nil, State{}, 0, err
	}
	healing, err := readSmall(cfg.Dir, healingFile)
	if err != nil {
		return nil, State{}, 0, err
	}
	st := r.state
	for _, d := range r.damage {
		if !d.Loss {
			log.Warn("journal: a damaged file is not needed, other files hold its records; it will be renamed aside",
				"file", d.File, "offset", d.Offset, "err", d.What)
		}
	}
	switch {
	case r.lost():
		for _, d := range r.damage {
			log.Error("journal: data lost", "file", d.File, "offset", d.Offset, "what", d.What)
		}
		st.Incarnation = store.NewIncarnation()
		st.Watermarks = map[string]store.Watermark{}
		st.Clean = false
		st.Damaged, st.Loss = true, r.loss()
		log.Error("journal: records were lost; kept every valid record, and starting a new incarnation with no "+
			"watermarks so that every neighbour sends everything", "records_kept", st.Records,
			"new_incarnation", fmt.Sprintf("%x", st.Incarnation))
		m.JournalDataLoss.Inc()
	case healing != "":
		st.Damaged, st.Loss = true, "still healing from an earlier loss: "+healing
		log.Warn("journal: the last run lost records and had not got them back from every neighbour", "loss", healing)
	}
	if st.Damaged {
		m.JournalDamaged.Set(1)
	}
	fresh := st.Incarnation == 0
	if fresh {
		st.Incarnation = store.NewIncarnation()
	}
	// After a crash the last changes may be lost while neighbours hold
	// their change numbers: jump past them (see seqJump). A new
	// incarnation starts a run of its own.
	next := r.maxSeq
	if !fresh && !st.Clean && !r.salvaged {
		next += seqJump
	}
	st.Store.Advance(next)
	return r, st, next, nil
}

// Create writes what Open decided, so that a start that fails before it
// (a port already in use) leaves the data directory as it found it, but
// for LOCK and NAME: after damage, the HEALING marker, a snapshot of what
// was kept under the new incarnation, the damaged files renamed aside;
// then the first new segment. Run calls it if the caller did not.
func (j *Journal) Create() error {
	if j.f != nil {
		return nil
	}
	if r := j.pending; r != nil {
		marker := ""
		if r.lost() {
			marker = r.loss() + "\n"
		}
		idx, size, err := heal(j.cfg.Dir, r, j.inc, marker, j.log)
		if err != nil {
			return err
		}
		if size > 0 {
			// rotate starts segment idx, which the snapshot precedes.
			j.seg, j.snapSize = idx-1, size
		}
		j.pending = nil
	}
	return j.rotate()
}

// Healed records that the node got back what it lost: every neighbour
// has sent everything. The next start is a normal one.
func (j *Journal) Healed() error {
	if err := os.Remove(filepath.Join(j.cfg.Dir, healingFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := syncDir(j.cfg.Dir); err != nil {
		return err
	}
	j.m.JournalDamaged.Set(0)
	j.log.Info("journal: healed, every neighbour has sent everything again")
	return nil
}

// unlock releases the data directory.
func (j *Journal) unlock() {
	if j.lock != nil {
		j.lock.Close()
		j.lock = nil
	}
}

// heal writes a recovery's records as a fresh snapshot under incarnation
// inc, with no watermarks, read back and verified, then renames the
// damaged files aside (<name>.damaged) and removes the rest, which the
// snapshot replaces. With marker set, the HEALING file is written first, so
// that a crash meanwhile still knows the node must heal. It returns the
// snapshot's index, after every file there, which the next segment takes,
// and its size, or 0 when there was nothing to rewrite (a damaged file
// that other files cover is only renamed aside).
func heal(dir string, r *recovery, inc uint64, marker string, log *slog.Logger) (uint64, int64, error) {
	if marker != "" {
		if err := writeAtomic(dir, healingFile, []byte(marker)); err != nil {
			return 0, 0, err
		}
	}
	aside := func(name string) error {
		if err := os.Rename(filepath.Join(dir, name), filepath.Join(dir, name+damagedSuffix)); err != nil &&
			!errors.Is(err, os.ErrNotExist) {
			return err
		}
		log.Warn("journal: damaged file renamed aside for inspection", "file", name+damagedSuffix)
		return nil
	}
	if !r.lost() {
		for _, d := range r.damage {
			if err := aside(d.File); err != nil {
				return 0, 0, err
			}
		}
		return 0, 0, syncDir(dir)
	}
	snaps, err := list(dir, "snap-", ".snap")
	if err != nil {
		return 0, 0, err
	}
	idx := r.last + 1
	if len(snaps) > 0 {
		idx = max(idx, snaps[len(snaps)-1]+1)
	}
	st := r.state.Store
	size, _, err := writeSnapshot(dir, idx, inc, st, max(r.maxSeq, st.Seq()), nil, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("writing the healed snapshot: %w", err)
	}
	damaged := map[string]bool{}
	for _, d := range r.damage {
		if d.Offset >= 0 {
			damaged[d.File] = true
		}
	}
	for _, kind := range []struct {
		prefix, suffix string
		name           func(uint64) string
	}{{"wal-", ".log", segmentName}, {"snap-", ".snap", snapshotName}} {
		idxs, err := list(dir, kind.prefix, kind.suffix)
		if err != nil {
			return 0, 0, err
		}
		for _, i := range idxs {
			name := kind.name(i)
			switch {
			case i >= idx:
			case damaged[name]:
				err = aside(name)
			default:
				err = os.Remove(filepath.Join(dir, name))
			}
			if err != nil {
				return 0, 0, err
			}
		}
	}
	if err := syncDir(dir); err != nil {
		return 0, 0, err
	}
	log.Warn("journal: wrote what was kept as a new snapshot", "file", snapshotName(idx), "records", r.state.Store.Len(),
		"bytes", size, "incarnation", fmt.Sprintf("%x", inc))
	return idx, size, nil
}
