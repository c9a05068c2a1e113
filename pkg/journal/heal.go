package journal

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
)

// What healing writes: after damage, at Start (or by Repair), what was
// kept as a fresh snapshot and the damaged files renamed aside; once the
// neighbours sent back what was lost, Healed.

// healDamage writes what Open decided about damage, for Start: after a
// loss, the HEALING marker and a snapshot of what was kept under the new
// incarnation; the damaged files renamed aside. The next segment then
// follows the snapshot.
func (j *Journal) healDamage() error {
	r := j.damaged
	if r == nil {
		return nil
	}
	marker := ""
	if r.lost() {
		marker = r.loss() + "\n"
	}
	h, err := heal(j.cfg.Dir, r, j.inc, marker, j.log)
	if err != nil {
		return err
	}
	if h.size > 0 {
		// rotate starts segment h.snapshot, which the snapshot precedes.
		j.seg, j.snapSize = h.snapshot-1, h.size
	}
	j.damaged = nil
	return nil
}

// healed is what heal wrote.
type healed struct {
	snapshot uint64 // the snapshot's index, after every file there: the next segment's
	size     int64  // its size; 0 when there was nothing to rewrite
}

// heal writes a recovery's records as a fresh snapshot under incarnation
// inc, with no watermarks, read back and verified, then renames the
// damaged files aside (<name>.damaged) and removes the rest, which the
// snapshot replaces. With marker set, the HEALING file is written first, so
// that a crash meanwhile still knows the node must heal. When nothing was
// lost (a damaged file that other files cover) it only renames the
// damaged files aside, and writes no snapshot.
func heal(dir string, r *recovery, inc uint64, marker string, log *slog.Logger) (healed, error) {
	if marker != "" {
		if err := writeAtomic(dir, healingFile, []byte(marker)); err != nil {
			return healed{}, err
		}
	}
	if !r.lost() {
		for _, d := range r.damage {
			if err := setAside(dir, d.File, log); err != nil {
				return healed{}, err
			}
		}
		return healed{}, syncDir(dir)
	}
	snaps, err := snapshotFile.list(dir)
	if err != nil {
		return healed{}, err
	}
	h := healed{snapshot: r.last + 1}
	if len(snaps) > 0 {
		h.snapshot = max(h.snapshot, snaps[len(snaps)-1]+1)
	}
	st := r.state.Store
	if h.size, _, err = writeSnapshot(dir, h.snapshot, inc, st, max(r.maxSeq, st.Seq()), nil, nil); err != nil {
		return healed{}, fmt.Errorf("writing the healed snapshot: %w", err)
	}
	if err := replaceBefore(dir, h.snapshot, r, log); err != nil {
		return healed{}, err
	}
	log.Warn("journal: wrote what was kept as a new snapshot", "file", snapshotFile.name(h.snapshot),
		"records", st.Len(), "bytes", h.size, "incarnation", fmt.Sprintf("%x", inc))
	return h, nil
}

// replaceBefore leaves the healed snapshot idx in place of every segment
// and snapshot before it: the damaged ones renamed aside, the others
// removed.
func replaceBefore(dir string, idx uint64, r *recovery, log *slog.Logger) error {
	damaged := map[string]bool{}
	for _, d := range r.damage {
		if d.Offset >= 0 {
			damaged[d.File] = true
		}
	}
	for _, kind := range []fileKind{segmentFile, snapshotFile} {
		idxs, err := kind.list(dir)
		if err != nil {
			return err
		}
		for _, i := range idxs {
			name := kind.name(i)
			switch {
			case i >= idx:
			case damaged[name]:
				err = setAside(dir, name, log)
			default:
				err = os.Remove(filepath.Join(dir, name))
			}
			if err != nil {
				return err
			}
		}
	}
	return syncDir(dir)
}

// setAside renames the damaged file name to <name>.damaged, which
// recovery ignores and an operator may inspect.
func setAside(dir, name string, log *slog.Logger) error {
	if err := os.Rename(filepath.Join(dir, name), filepath.Join(dir, name+damagedSuffix)); err != nil &&
		!errors.Is(err, os.ErrNotExist) {
		return err
	}
	log.Warn("journal: damaged file renamed aside for inspection", "file", name+damagedSuffix)
	return nil
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
