package journal

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/herdkit/herd/pkg/store"
)

// Report is what a data directory holds: `herd journal check`.
type Report struct {
	Dir         string
	Name        string // the node it belongs to ("" if none recorded)
	Incarnation uint64 // of the records kept; 0 after a loss (a new one is drawn at start)
	Snapshots   []FileInfo
	Segments    []FileInfo
	Records     int      // clients whose record the directory holds
	Damage      []Damage // what is wrong; empty when whole
	TornTail    *Damage  // an incomplete last entry, cut at the next start: normal after a crash
	Leftovers   []string // *.tmp files of an interrupted write, removed at the next start
	Aside       []string // *.damaged files renamed aside by an earlier start or repair
	Healing     string   // the loss a node is still healing from, if any
}

// Whole reports that nothing is damaged.
func (r Report) Whole() bool { return len(r.Damage) == 0 }

// Print writes the report for an operator.
func (r Report) Print(w io.Writer) {
	fmt.Fprintf(w, "data directory %s\n", r.Dir)
	name := r.Name
	if name == "" {
		name = "(none recorded)"
	}
	fmt.Fprintf(w, "node name      %s\n", name)
	if r.Incarnation != 0 {
		fmt.Fprintf(w, "incarnation    %x\n", r.Incarnation)
	}
	fmt.Fprintf(w, "records        %d\n", r.Records)
	for _, set := range []struct {
		what  string
		files []FileInfo
	}{{"snapshot", r.Snapshots}, {"segment", r.Segments}} {
		for _, f := range set.files {
			fmt.Fprintf(w, "%-14s %s  %d bytes, %d entries, %d records\n", set.what, f.Name, f.Size, f.Entries, f.Records)
		}
	}
	for _, f := range r.Leftovers {
		fmt.Fprintf(w, "leftover       %s (of an interrupted write; removed at the next start)\n", f)
	}
	for _, f := range r.Aside {
		fmt.Fprintf(w, "set aside      %s (damaged; kept for inspection, not read)\n", f)
	}
	if r.TornTail != nil {
		fmt.Fprintf(w, "torn tail      %s (normal after a crash; cut off at the next start)\n", r.TornTail)
	}
	if r.Healing != "" {
		fmt.Fprintf(w, "healing        the node lost records and has not yet got them back from every neighbour: %s\n", r.Healing)
	}
	if r.Whole() {
		fmt.Fprintln(w, "whole")
		return
	}
	for _, d := range r.Damage {
		loss := "records may be lost"
		if !d.Loss {
			loss = "other files hold its records"
		}
		fmt.Fprintf(w, "DAMAGE         %s (%s)\n", d, loss)
	}
	fmt.Fprintln(w, "damaged: a node with neighbours heals by itself at its next start; without, run `herd journal repair`")
}

// Check reads a data directory and reports what it holds, changing
// nothing. It takes the directory's lock, so it fails while a node runs.
func Check(dir string) (Report, error) {
	if _, err := os.Stat(dir); err != nil {
		return Report{}, err
	}
	lock, err := lockDir(dir)
	if err != nil {
		return Report{}, err
	}
	defer lock.Close()
	return inspect(dir, slog.New(slog.DiscardHandler))
}

// Repair keeps what is valid in a damaged data directory: every valid
// record becomes a fresh, verified snapshot under a new incarnation with
// no watermarks, and the damaged files are renamed aside. It also ends a
// pending healing: the operator accepts the loss. A node without
// neighbours can then start. It takes the directory's lock, so it fails
// while a node runs.
func Repair(dir string, log *slog.Logger) (Report, error) {
	if _, err := os.Stat(dir); err != nil {
		return Report{}, err
	}
	lock, err := lockDir(dir)
	if err != nil {
		return Report{}, err
	}
	defer lock.Close()
	if err := removeLeftovers(dir, log.Warn); err != nil {
		return Report{}, err
	}
	r, err := recoverDir(dir, 0, log, truncateTornTail)
	if err != nil {
		return Report{}, err
	}
	if len(r.damage) > 0 {
		if _, err := heal(dir, r, store.NewIncarnation(), "", log); err != nil {
			return Report{}, err
		}
	}
	if err := os.Remove(filepath.Join(dir, healingFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return Report{}, err
	}
	if err := syncDir(dir); err != nil {
		return Report{}, err
	}
	return inspect(dir, log)
}

// inspect reads dir, locked by the caller, into a report. It changes
// nothing: a torn tail is reported, not cut off.
func inspect(dir string, log *slog.Logger) (Report, error) {
	rep := Report{Dir: dir}
	var err error
	if rep.Name, err = readSmall(dir, nameFile); err != nil {
		return rep, err
	}
	if rep.Healing, err = readSmall(dir, healingFile); err != nil {
		return rep, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return rep, err
	}
	for _, e := range entries {
		switch {
		case strings.HasSuffix(e.Name(), tmpSuffix):
			rep.Leftovers = append(rep.Leftovers, e.Name())
		case strings.HasSuffix(e.Name(), damagedSuffix):
			rep.Aside = append(rep.Aside, e.Name())
		}
	}
	r, err := recoverDir(dir, 0, log, readOnly)
	if err != nil {
		return rep, err
	}
	rep.Snapshots, rep.Segments, rep.Damage, rep.TornTail = r.snaps, r.segs, r.damage, r.torn
	slices.SortFunc(rep.Snapshots, func(a, b FileInfo) int { return strings.Compare(a.Name, b.Name) })
	rep.Records = r.state.Store.Len()
	rep.Incarnation = r.state.Incarnation
	return rep, nil
}
