package journal

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/herdkit/herd/pkg/store"
)

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

// File names: segments wal-<index>.log, and snapshots snap-<index>.snap
// holding everything written before segment <index>. A file found damaged
// is renamed <name>.damaged, which recovery ignores.
func segmentName(i uint64) string  { return fmt.Sprintf("wal-%016x.log", i) }
func snapshotName(i uint64) string { return fmt.Sprintf("snap-%016x.snap", i) }

const damagedSuffix = ".damaged"

// list returns the indexes of the files matching prefix and suffix, sorted.
func list(dir, prefix, suffix string) ([]uint64, error) {
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var idx []uint64
	for _, e := range names {
		n := e.Name()
		if !strings.HasPrefix(n, prefix) || !strings.HasSuffix(n, suffix) {
			continue
		}
		if i, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(n, prefix), suffix), 16, 64); err == nil {
			idx = append(idx, i)
		}
	}
	slices.Sort(idx)
	return idx, nil
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

// recovery reads a data directory back.
type recovery struct {
	dir   string
	limit int // the store's limit on records, 0 for none
	log   *slog.Logger
	write bool // truncate a torn tail; false for a read-only check
	state State
	// truncated counts the torn tails cut off.
	truncated int
	last      uint64 // the index of the last segment
	maxSeq    uint64

	snaps, segs []FileInfo
	damage      []Damage
	torn        *Damage // a torn tail: normal after a crash, not damage
	salvaged    bool    // state comes from salvage: every valid entry of every file
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

// newState is an empty state whose store has the journal's limit on
// records (store.SetLimit), applied while the records are read back as
// it was while they were written.
func (r *recovery) newState() State {
	st := store.New()
	st.SetLimit(r.limit)
	return State{Store: st, Watermarks: map[string]store.Watermark{}}
}

// recoverDir reads dir back: the newest complete snapshot, then the
// segments after it. A torn tail (a bad last entry of the last segment,
// with no valid entry after it) is cut off when write is set. A read
// error fails, naming the file, and changes nothing. Anything else wrong
// is damage; when it may have cost records, every valid entry of every
// file is read instead (salvage).
func recoverDir(dir string, limit int, log *slog.Logger, write bool) (*recovery, error) {
	r := &recovery{dir: dir, limit: limit, log: log, write: write}
	r.state = r.newState()
	snaps, err := list(dir, "snap-", ".snap")
	if err != nil {
		return nil, err
	}
	segs, err := list(dir, "wal-", ".log")
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
		var i uint64
		if _, err := fmt.Sscanf(d.File, "snap-%016x.snap", &i); err == nil && i > next {
			gaps = append(gaps, missing(next, i-1))
			next = i
		}
	}
	if len(gaps) > 0 {
		// A bad snapshot newer than base was what held these records.
		for k := range r.damage {
			if strings.HasPrefix(r.damage[k].File, "snap-") {
				r.damage[k].Loss = true
			}
		}
		r.damage = append(r.damage, gaps...)
	}
	if !r.lost() {
		return r, nil
	}
	return r, r.salvage(snaps, segs)
}

// missing describes segments from to to that should be there and are not.
func missing(from, to uint64) Damage {
	d := Damage{Offset: -1, Loss: true, File: segmentName(from)}
	if from == to {
		d.What = "missing, with every record only it held"
	} else {
		d.File += " to " + segmentName(to)
		d.What = fmt.Sprintf("%d segments missing, with every record only they held", to-from+1)
	}
	d.What += fmt.Sprintf(" (no valid snapshot %s replaces them)", snapshotName(to+1))
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
		if err := s.Store.Restore(store.Change{Seq: e.seq, Record: e.record}); err != nil {
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
	name := snapshotName(i)
	complete := false
	fi, bad, err := r.read(name, false, func(e entry) error {
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
	name := segmentName(i)
	fi, bad, err := r.read(name, false, r.apply)
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
	if !r.write {
		return nil
	}
	r.truncated++
	r.log.Warn("journal: torn tail truncated", "file", name, "offset", bad.Offset, "bytes", fi.Size-bad.Offset, "err", bad.What)
	if err := os.Truncate(filepath.Join(r.dir, name), bad.Offset); err != nil {
		return fmt.Errorf("truncating %s: %w", filepath.Join(r.dir, name), err)
	}
	return nil
}

// badRegion is where a file stops being valid.
type badRegion struct {
	Damage
	torn bool // nothing valid follows
}

// read reads the file name, calling fn for each valid entry. Without
// salvage it stops at the first bad entry, and only looks whether a valid
// entry follows (bad.torn if none); with salvage it skips every bad region
// and goes on with the valid entries after it. A failure to read the file
// is an error naming it: it says nothing about its content, and nothing
// may be deleted because of it.
func (r *recovery) read(name string, salvage bool, fn func(entry) error) (FileInfo, *badRegion, error) {
	path := filepath.Join(r.dir, name)
	fi := FileInfo{Name: name}
	count := func(e entry) error {
		if err := fn(e); err != nil {
			return err
		}
		fi.Entries++
		if e.kind == entryRecord {
			fi.Records++
		}
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fi, nil, fmt.Errorf("reading %s: %w (not treated as corruption: nothing was changed)", path, err)
	}
	defer f.Close()
	readErr := func(err error) error {
		return fmt.Errorf("reading %s: %w (not treated as corruption: nothing was changed)", path, err)
	}
	good, cerr := readEntries(f, count)
	if st, err := f.Stat(); err == nil {
		fi.Size = st.Size()
	}
	var re *readError
	if errors.As(cerr, &re) {
		return fi, nil, readErr(re.err)
	}
	if cerr == nil {
		return fi, nil, nil
	}
	// Past the bad entry: read the rest, to see whether valid entries
	// follow (then it is not a torn tail) and, salvaging, to keep them.
	rest := make([]byte, max(fi.Size-good, 0))
	if _, err := f.ReadAt(rest, good); err != nil && !errors.Is(err, io.EOF) {
		return fi, nil, readErr(err)
	}
	bad := &badRegion{Damage: Damage{File: name, Offset: good, Loss: true}}
	off := int64(0) // in rest
	skipped := int64(0)
	for {
		at := resync(rest, off+1)
		if at < 0 {
			skipped += int64(len(rest)) - off
			break
		}
		skipped += at - off
		if !salvage {
			break
		}
		n, err := readEntries(bytes.NewReader(rest[at:]), count)
		off = at + n
		if err == nil {
			break
		}
	}
	bad.torn = resync(rest, 1) < 0
	if !salvage {
		bad.What = fmt.Sprintf("%v; %d entries read before it", cerr, fi.Entries)
		if !bad.torn {
			bad.What += "; valid entries follow"
		}
	} else {
		bad.What = fmt.Sprintf("%v; %d bytes skipped, %d entries read", cerr, skipped, fi.Entries)
	}
	return fi, bad, nil
}

// resync returns the first offset at or after from where a whole, valid
// entry starts in b, or -1. After a corrupt entry the framing is lost;
// a checksum match on a plausible length is how entries are found again
// (a false match has odds of 1 in 2^32 per offset).
func resync(b []byte, from int64) int64 {
	for off := from; off+headerSize < int64(len(b)); off++ {
		n := int64(binary.LittleEndian.Uint32(b[off+4:]))
		if n == 0 || n > maxPayload || off+headerSize+n > int64(len(b)) {
			continue
		}
		p := b[off+headerSize : off+headerSize+n]
		if crc32.Checksum(p, castagnoli) != binary.LittleEndian.Uint32(b[off:]) {
			continue
		}
		if _, err := decode(p); err == nil {
			return off
		}
	}
	return -1
}

// salvage replaces the state with every valid record of every snapshot
// and segment, the newest of each client by change number (one data
// directory numbers its changes in one increasing run), and describes
// each bad file's damage in full. The incarnation and watermarks are
// dropped: the caller starts a new incarnation.
func (r *recovery) salvage(snaps, segs []uint64) error {
	newest := map[string]store.Change{}
	collect := func(e entry) error {
		if e.kind == entryRecord {
			if c, ok := newest[e.record.Client()]; !ok || e.seq > c.Seq {
				newest[e.record.Client()] = store.Change{Seq: e.seq, Record: e.record}
			}
		}
		return nil
	}
	var damage []Damage
	for _, d := range r.damage {
		if d.Offset < 0 {
			damage = append(damage, d) // missing files
		}
	}
	files := make([]string, 0, len(snaps)+len(segs))
	for _, i := range snaps {
		files = append(files, snapshotName(i))
	}
	for _, i := range segs {
		files = append(files, segmentName(i))
	}
	for _, name := range files {
		_, bad, err := r.read(name, true, collect)
		if err != nil {
			return err
		}
		if bad != nil && !(r.torn != nil && r.torn.File == name && bad.torn) {
			damage = append(damage, bad.Damage)
		}
	}
	for _, d := range r.damage { // empty and incomplete snapshots
		if d.Offset >= 0 && !slices.ContainsFunc(damage, func(x Damage) bool { return x.File == d.File }) {
			damage = append(damage, d)
		}
	}
	r.damage = damage
	changes := make([]store.Change, 0, len(newest))
	for _, c := range newest {
		changes = append(changes, c)
	}
	slices.SortFunc(changes, func(a, b store.Change) int { return cmp.Compare(a.Seq, b.Seq) })
	r.state = r.newState()
	r.maxSeq = 0
	for _, c := range changes {
		if err := r.state.Store.Restore(c); err != nil {
			return err
		}
		r.maxSeq = c.Seq
	}
	r.state.Records = len(changes)
	r.salvaged = true
	return nil
}
