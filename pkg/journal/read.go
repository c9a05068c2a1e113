package journal

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/herdkit/herd/pkg/store"
)

// Reading one file back: up to its first bad entry, or, salvaging, every
// valid entry around its bad regions.

// readMode says what read does at a bad entry.
type readMode uint8

const (
	// stopAtBad stops at the first bad entry, and only looks whether a
	// valid entry follows: recovery, which keeps what is in order.
	stopAtBad readMode = iota
	// skipBad skips every bad region and goes on with the valid entries
	// after it: salvage, which keeps every valid entry.
	skipBad
)

// badRegion is where a file stops being valid.
type badRegion struct {
	Damage
	torn bool // nothing valid follows
}

// read reads the file name, calling fn for each valid entry. With
// stopAtBad it stops at the first bad entry, and only looks whether a
// valid entry follows (bad.torn if none); with skipBad it skips every bad
// region and goes on with the valid entries after it. A failure to read
// the file is an error naming it: it says nothing about its content, and
// nothing may be deleted because of it.
func (r *recovery) read(name string, mode readMode, fn func(entry) error) (FileInfo, *badRegion, error) {
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
		if mode == stopAtBad {
			break
		}
		n, err := readEntries(bytes.NewReader(rest[at:]), count)
		off = at + n
		if err == nil {
			break
		}
	}
	bad.torn = resync(rest, 1) < 0
	if mode == stopAtBad {
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

// change is a record and its change number.
type change struct {
	seq    uint64
	record store.Record
}

// salvage replaces the state with every valid record of every snapshot
// and segment, the newest of each client by change number (one data
// directory numbers its changes in one increasing run), and describes
// each bad file's damage in full. The incarnation and watermarks are
// dropped: the caller starts a new incarnation.
func (r *recovery) salvage(snaps, segs []uint64) error {
	newest := map[string]change{}
	collect := func(e entry) error {
		if e.kind == entryRecord {
			r := e.record()
			if c, ok := newest[r.Client()]; !ok || e.seq > c.seq {
				newest[r.Client()] = change{e.seq, r}
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
		files = append(files, snapshotFile.name(i))
	}
	for _, i := range segs {
		files = append(files, segmentFile.name(i))
	}
	for _, name := range files {
		_, bad, err := r.read(name, skipBad, collect)
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
	changes := make([]change, 0, len(newest))
	for _, c := range newest {
		changes = append(changes, c)
	}
	slices.SortFunc(changes, func(a, b change) int { return cmp.Compare(a.seq, b.seq) })
	r.state = r.newState()
	r.maxSeq = 0
	for _, c := range changes {
		if err := r.load.Add(c.seq, []byte(c.record.Text), []byte(c.record.Origin), c.record.Recv, c.record.Hops); err != nil {
			return err
		}
		r.maxSeq = c.seq
	}
	r.finish()
	r.state.Records = len(changes)
	r.salvaged = true
	return nil
}
