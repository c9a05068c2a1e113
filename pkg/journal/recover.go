package journal

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/herdkit/herd/pkg/metrics"
	"github.com/herdkit/herd/pkg/store"
)

// The second phase of a journal's life: read the data directory back and
// decide what its damage means (recoverState). Reading one file's entries
// is in read.go; what healing writes, at Start, in heal.go.

// seqJump is how far the change numbers jump after a start that follows a
// crash. A crash can lose the last changes written before it, whose
// change numbers neighbours may already hold in their watermarks; new
// changes must never reuse them, or a neighbour asking for what came after
// its watermark would miss them. No server hands out 2^40 change numbers
// between two writes to its journal.
const seqJump = 1 << 40

// State is what a journal recovered at start.
type State struct {
	// Incarnation names this data directory's run of change numbers; it
	// survives restarts. After data loss it is a new one.
	Incarnation uint64
	// Store holds the recovered records; its change numbers continue after
	// the recovered ones.
	Store *store.Store
	// Watermarks are what this server held of each neighbour's changes;
	// none after data loss, so that every neighbour sends everything.
	Watermarks map[string]store.Watermark
	// Records is the number of records read back.
	Records int
	// Clean reports that the last run closed the journal, so no change
	// can have been lost.
	Clean bool
	// Damaged reports that records were lost (a bad or missing snapshot, a
	// missing segment, a corrupt entry before valid ones), or that a node
	// which lost records has not yet got them back from every neighbour.
	// The node must reconcile with every neighbour before it is ready,
	// and then call Journal.Healed.
	Damaged bool
	// Loss says what was lost, for the log and /readyz; "" when whole.
	Loss string
}

// recovered is what Open read back from a data directory and decided
// about it.
type recovered struct {
	// state is what the node starts from: after a loss, every valid
	// record kept, under a new incarnation with no watermarks.
	state State
	// files is what was read: every file, its damage, the last segment.
	// Start heals the damage it lists.
	files *recovery
	// next is the last change number taken, after any jump (seqJump): the
	// store's changes continue after it.
	next uint64
}

// recoverState reads dir back (recoverDir), cutting a torn tail off, and
// decides what its damage means (decide). It writes nothing else: what
// healing writes waits for Start.
func recoverState(dir string, limit int, log *slog.Logger, m *metrics.Metrics) (recovered, error) {
	r, err := recoverDir(dir, limit, log, truncateTornTail)
	if err != nil {
		return recovered{}, err
	}
	healing, err := readSmall(dir, healingFile)
	if err != nil {
		return recovered{}, err
	}
	st := r.decide(healing, log, m)
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
	return recovered{state: st, files: r, next: next}, nil
}

// decide returns the state a node starts from after what r read back,
// and logs and counts the damage. A loss (records may be missing) draws a
// new incarnation with no watermarks, so that every neighbour sends
// everything; so does a node still healing from an earlier one (healing,
// the HEALING marker's text), without a new incarnation. A damaged file
// whose records other files hold costs nothing: it will be renamed aside.
func (r *recovery) decide(healing string, log *slog.Logger, m *metrics.Metrics) State {
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
	return st
}

// Damage is one thing found wrong in a data directory.
type Damage struct {
	File   string // the file's name in the directory
	Offset int64  // where its valid data stops; -1 for a missing file
	What   string // what is wrong, and what it cost
	Loss   bool   // records may be lost (otherwise other files hold them)
}

func (d Damage) String() string {
	if d.Offset < 0 {
		return d.File + ": " + d.What
	}
	return fmt.Sprintf("%s at offset %d: %s", d.File, d.Offset, d.What)
}

// FileInfo describes one snapshot or segment.
type FileInfo struct {
	Name    string
	Size    int64
	Entries int // valid entries read
	Records int // record entries among them
}

// access says whether reading a data directory back may change it.
type access uint8

const (
	readOnly         access = iota // change nothing: a check
	truncateTornTail               // cut a torn tail off: a start, or a repair
)

// recovery reads a data directory back.
type recovery struct {
	dir    string
	limit  int // the store's limit on records, 0 for none
	log    *slog.Logger
	access access
	state  State
	// truncated counts the torn tails cut off.
	truncated int
	last      uint64 // the index of the last segment
	maxSeq    uint64

	snaps, segs []FileInfo
	damage      []Damage
	torn        *Damage // a torn tail: normal after a crash, not damage
	salvaged    bool    // state comes from salvage: every valid entry of every file
	// load takes the records read (apply), to build state's store once
	// they are all in (finish), faster than storing each (store.Loader).
	load *store.Loader
}

func (r *recovery) lost() bool {
	return slices.ContainsFunc(r.damage, func(d Damage) bool { return d.Loss })
}

// loss describes the damage in one line.
func (r *recovery) loss() string {
	var parts []string
	for _, d := range r.damage {
		if d.Loss {
			parts = append(parts, d.String())
		}
	}
	return strings.Join(parts, "; ")
}

// newState is an empty state, whose records apply gives to a
// store.Loader (with the journal's limit on records, applied as it was
// while they were written) until finish builds its store.
func (r *recovery) newState() State {
	r.load = store.NewLoader(r.limit)
	return State{Watermarks: map[string]store.Watermark{}}
}

// finish builds the state's store from the records read.
func (r *recovery) finish() {
	r.state.Store, r.load = r.load.Store(), nil
}

// recoverDir reads dir back: the newest complete snapshot, then the
// segments after it. A torn tail (a bad last entry of the last segment,
// with no valid entry after it) is cut off with truncateTornTail. A read
// error fails, naming the file, and changes nothing. Anything else wrong
// is damage; when it may have cost records, every valid entry of every
// file is read instead (salvage).
func recoverDir(dir string, limit int, log *slog.Logger, a access) (*recovery, error) {
	r := &recovery{dir: dir, limit: limit, log: log, access: a}
	snaps, err := snapshotFile.list(dir)
	if err != nil {
		return nil, err
	}
	segs, err := segmentFile.list(dir)
	if err != nil {
		return nil, err
	}
	var base uint64
	for _, i := range slices.Backward(snaps) {
		r.state = r.newState()
		_, bad, err := r.snapshot(i)
		if err != nil {
			return nil, err
		}
		if bad == nil {
			base = i
			break
		}
		r.damage = append(r.damage, *bad)
	}
	if base == 0 {
		r.state = r.newState()
	}
	// The segments from base on must all be there: the snapshot holds
	// what came before segment base (with no snapshot, segment 1 is the
	// first ever written).
	next := max(base, 1)
	var gaps []Damage
	for k, i := range segs {
		if i < base {
			continue // replaced by the snapshot; a leftover of an interrupted compaction
		}
		if i != next {
			gaps = append(gaps, missing(next, i-1))
		}
		next = i + 1
		r.last = i
		if err := r.segment(i, k == len(segs)-1); err != nil {
			return nil, err
		}
	}
	if len(segs) > 0 && segs[len(segs)-1] > r.last {
		r.last = segs[len(segs)-1]
	}
	if base > 0 {
		// The next segment comes after the snapshot, even with no segment
		// after it (a crash between a healed snapshot and its segment).
		r.last = max(r.last, base-1)
	}
	// A bad snapshot replaced the segments before it: unless they are
	// all here, it held records nothing else holds.
	for _, d := range r.damage {
		if i, ok := snapshotFile.parse(d.File); ok && i > next {
			gaps = append(gaps, missing(next, i-1))
			next = i
		}
	}
	if len(gaps) > 0 {
		// A bad snapshot newer than base was what held these records.
		for k := range r.damage {
			if _, ok := snapshotFile.parse(r.damage[k].File); ok {
				r.damage[k].Loss = true
			}
		}
		r.damage = append(r.damage, gaps...)
	}
	if !r.lost() {
		r.finish()
		return r, nil
	}
	return r, r.salvage(snaps, segs)
}

// missing describes segments from to to that should be there and are not.
func missing(from, to uint64) Damage {
	d := Damage{Offset: -1, Loss: true, File: segmentFile.name(from)}
	if from == to {
		d.What = "missing, with every record only it held"
	} else {
		d.File += " to " + segmentFile.name(to)
		d.What = fmt.Sprintf("%d segments missing, with every record only they held", to-from+1)
	}
	d.What += fmt.Sprintf(" (no valid snapshot %s replaces them)", snapshotFile.name(to+1))
	return d
}

// apply applies one recovered entry.
func (r *recovery) apply(e entry) error {
	s := &r.state
	if e.kind != entryEnd {
		s.Clean = false
	}
	switch e.kind {
	case entryIncarnation:
		if s.Incarnation != 0 && s.Incarnation != e.inc {
			return errors.New("two incarnations in one data directory")
		}
		s.Incarnation = e.inc
	case entryRecord:
		if err := r.load.Add(e.seq, e.text, e.origin, e.recv, e.hops); err != nil {
			return err
		}
		s.Records++
		r.maxSeq = e.seq
	case entryWatermark:
		s.Watermarks[e.peer] = e.mark
	case entryEnd:
		s.Clean = true
		r.maxSeq = max(r.maxSeq, e.seq)
	}
	return nil
}

// snapshot loads snapshot i. A snapshot that is not whole (bad, empty,
// incomplete) is returned as damage, not yet counted as a loss: the
// segments may still hold everything.
func (r *recovery) snapshot(i uint64) (FileInfo, *Damage, error) {
	name := snapshotFile.name(i)
	complete := false
	fi, bad, err := r.read(name, stopAtBad, func(e entry) error {
		complete = e.kind == entryEnd
		return r.apply(e)
	})
	if err != nil {
		return fi, nil, err
	}
	r.snaps = append(r.snaps, fi)
	switch {
	case bad != nil:
		bad.What = "bad snapshot: " + bad.What
		bad.Loss = false // until a gap shows the segments do not cover it
		return fi, &bad.Damage, nil
	case fi.Size == 0:
		return fi, &Damage{File: name, Offset: 0, What: "empty snapshot"}, nil
	case !complete:
		return fi, &Damage{File: name, Offset: fi.Size, What: "incomplete snapshot (no end entry)"}, nil
	}
	return fi, nil, nil
}

// segment replays segment i. A bad entry with nothing valid after it in
// the last segment is a torn tail, cut off; anywhere else it is a loss.
func (r *recovery) segment(i uint64, last bool) error {
	name := segmentFile.name(i)
	fi, bad, err := r.read(name, stopAtBad, r.apply)
	if err != nil {
		return err
	}
	r.segs = append(r.segs, fi)
	if bad == nil && !last && fi.Entries == 0 {
		// Every segment starts with its incarnation, written and synced
		// before the next one is created: only the last can be empty.
		bad = &badRegion{Damage: Damage{File: name, Offset: 0, What: "empty segment before the last", Loss: true}}
	}
	if bad == nil {
		return nil
	}
	if !last || !bad.torn {
		r.damage = append(r.damage, bad.Damage)
		return nil
	}
	r.torn = &bad.Damage
	r.state.Clean = false
	if r.access == readOnly {
		return nil
	}
	r.truncated++
	r.log.Warn("journal: torn tail truncated", "file", name, "offset", bad.Offset, "bytes", fi.Size-bad.Offset, "err", bad.What)
	if err := os.Truncate(filepath.Join(r.dir, name), bad.Offset); err != nil {
		return fmt.Errorf("truncating %s: %w", filepath.Join(r.dir, name), err)
	}
	return nil
}
