package peer

import (
	"time"

	"github.com/herdkit/herd/pkg/store"
)

// maxWaiting bounds the frames that wait for company: past it they go.
const maxWaiting = 64 << 10

// outbox is what a link's writer has told its neighbour of the change
// log, and composes each write: records whole, or announced for an origin
// the link sends lazily (tree.go), marks, and the end of reconciliation.
// Frames that need not go at once wait for company: a mark for skipped
// changes (markDelay), announcements (announceDelay), and on a long link
// records that come within linger of the last write of records, as
// Nagle's algorithm holds data while an earlier segment is in flight (a
// record on an idle link goes at once); any write that goes carries them.
type outbox struct {
	from        store.Source // the neighbour's: changes it flooded are not sent back
	cursor      uint64       // the last change number the neighbour is told of by the writes so far, or by what waits
	end         uint64       // changes up to end are reconciliation
	reconciling bool         // the D frame has not gone yet
	markWaits   bool         // changes after the last frame sent are told by nothing yet: a mark waits for company

	// lazy holds the origins whose records the link announces: none on a
	// link that floods.
	lazy      originSet
	waiting   []byte        // frames composed that wait for company
	since     time.Time     // when the first of them began to wait
	records   bool          // waiting holds records
	announce  bool          // waiting holds announcements
	linger    time.Duration // the least time between two writes of records; 0 sends them at once
	recordsAt time.Time     // when records were last written
	delay     time.Duration // how long announcements may wait
}

// counts are the frames a write carries, by kind.
type counts struct{ flood, reconcile, announced int }

// fill appends to buf, which holds a pong or nothing, what waits and the
// frames for batch, the changes after o.cursor up to next, and returns
// it, or buf as it was when all of that may wait, at now. A buf it returns
// with more than the pong tells the neighbour every change up to next,
// since writing it ends the wait: a mark follows frames that leave
// changes after them untold, and a pong alone while something waits. What
// may wait sets o.markWaits; the writer sends it at o.waitUntil() unless
// another write goes first.
func (o *outbox) fill(buf []byte, batch []store.Change, next uint64, now time.Time) (_ []byte, n counts) {
	start := len(buf)
	buf = append(buf, o.waiting...)
	records, announce, late := o.records, o.announce, false
	last := o.cursor // the last change number the neighbour will have been told of
	for _, c := range batch {
		inRange := c.Seq <= o.end
		// A flooded record is not sent back where it came from: this
		// link's neighbour holds it, or a newer one. Reconciliation sends
		// everything after the watermark, since a neighbour that
		// restarted may have lost what it sent on an earlier link.
		if c.From == o.from && !inRange {
			continue
		}
		switch {
		case inRange:
			buf = appendRecord(buf, frameReconcile, c.Seq, c.Record)
			n.reconcile++
			records = true
		case o.lazy.has(c.Record.OriginID):
			buf = appendAnnounce(buf, c.Seq, c.Record)
			n.announced++
			announce = true
		default:
			buf = appendRecord(buf, frameFlood, c.Seq, c.Record)
			n.flood++
			records = true
			late = late || c.Record.Hops >= lingerHops
		}
		last = c.Seq
	}
	write := start > 0 || len(buf)-start >= maxWaiting || n.reconcile > 0 || late ||
		records && (o.linger == 0 || now.Sub(o.recordsAt) >= o.linger)
	switch {
	case o.reconciling && next >= o.end:
		buf = appendSeq(buf, frameSynced, next)
		o.reconciling, write = false, true
	case write && (last < next || o.markWaits && last == o.cursor):
		buf = appendSeq(buf, frameMark, next)
	case !write && len(buf) > start, last < next:
		if !o.markWaits {
			o.since = now
		}
		o.markWaits = true
	}
	o.cursor = next
	if write {
		if records {
			o.recordsAt = now
		}
		o.waiting, o.records, o.announce, o.markWaits = o.waiting[:0], false, false, false
		return buf, n
	}
	o.waiting = append(o.waiting[:0], buf[start:]...)
	o.records, o.announce = records, announce
	return buf[:start], n
}

// flushWaiting appends to buf what waits, and the mark that tells the
// neighbour every change up to the cursor, at now.
func (o *outbox) flushWaiting(buf []byte, now time.Time) []byte {
	buf = append(buf, o.waiting...)
	buf = appendSeq(buf, frameMark, o.cursor)
	if o.records {
		o.recordsAt = now
	}
	o.waiting, o.records, o.announce, o.markWaits = o.waiting[:0], false, false, false
	return buf
}

// waitUntil returns until when what waits may wait: records until linger
// after the last write of records, announcements their delay, a mark
// markDelay.
func (o *outbox) waitUntil() time.Time {
	switch {
	case o.records:
		return o.recordsAt.Add(o.linger)
	case o.announce:
		return o.since.Add(o.delay)
	}
	return o.since.Add(markDelay)
}

// lingerHops is how many links a record may have crossed and still
// linger: one that has come further goes at once, so that the waits of a
// long way do not add up.
const lingerHops = 2

// originSet is a set of origins by the numbers the store gives them
// (store.Packed.OriginID): a link's writer asks it of every change, which
// a map by name made a tenth of a herd of 81's CPU.
type originSet []uint64

// has reports whether origin is in the set.
func (s originSet) has(origin uint16) bool {
	i := int(origin) >> 6
	return i < len(s) && s[i]&(1<<(origin&63)) != 0
}

// set puts origin in the set, or takes it out.
func (s *originSet) set(origin uint16, in bool) {
	i := int(origin) >> 6
	if i >= len(*s) {
		if !in {
			return
		}
		*s = append(*s, make([]uint64, i+1-len(*s))...)
	}
	if in {
		(*s)[i] |= 1 << (origin & 63)
	} else {
		(*s)[i] &^= 1 << (origin & 63)
	}
}
