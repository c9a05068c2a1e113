package store

import (
	"crypto/rand"
	"encoding/binary"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/herdkit/herd/pkg/protocol"
)

// Source says which neighbour a record came from: the number the peer
// manager gave that neighbour, or Local for a record from a client of
// this server (or read back from disk). A link's writer never sends a
// neighbour the records that came from it.
type Source uint16

// Local is the source of records that did not come from a neighbour.
const Local Source = 0

// Watermark is what a server holds of another server's changes: every
// change up to Seq of that server's incarnation Incarnation.
type Watermark struct {
	Incarnation uint64
	Seq         uint64
}

// NewIncarnation draws a random, non-zero incarnation id: the name of one
// run of change numbers, from a process start (or, with a journal, from
// the first start on its data directory).
func NewIncarnation() uint64 {
	var b [8]byte
	for {
		rand.Read(b[:])
		if v := binary.LittleEndian.Uint64(b[:]); v != 0 {
			return v
		}
	}
}

// Change is one entry of the change log: the current record of a client
// and the change number under which this server stored it.
type Change struct {
	Seq    uint64
	Record Packed
	From   Source
}

// Store holds the newest record of every client, numbers every change, and
// keeps the live changes in order so that a peer can be sent everything
// after a change number in time proportional to what it missed.
//
// With a limit (SetLimit), it holds at most that many clients: the
// records that rank highest (see bound.go).
//
// Memory per client, with nothing in it the garbage collector must scan
// (see TestMemoryPerRecord and docs/benchmarks.md): one slot (48 bytes,
// the position and time packed as numbers), its id in the arena (the
// id's bytes and one more), one to two index words of 5 bytes, one to one
// and a half change-log entries of 8 bytes and, with a limit, a heap node
// of 12 bytes.
type Store struct {
	mu      sync.RWMutex
	index   index // client id -> slot
	slots   paged[slot]
	ids     arena         // each slot's client id, or its whole text when it does not pack
	free    []uint32      // slots emptied by evictions, reused first
	limit   int           // the most clients held; 0 is no limit
	low     lowest        // the heap of live slots, kept only with a limit
	log     changeLog     // in increasing seq; stale entries are skipped and compacted away
	stale   int           // entries of log that an update has superseded
	seq     uint64        // the last change number given out
	last    atomic.Uint64 // seq, for Seq without the lock
	origins origins
	subs    []*subscriber

	evicted uint64 // records evicted to make room (Evictions)
	refused uint64 // records of new clients not stored at the limit (Refused)
}

// slot is one client's record, packed: 48 bytes and no pointer.
type slot struct {
	seq    uint64 // 0 for a free slot
	recv   int64
	time   uint64 // protocol.Fields
	lat    uint32
	lng    uint32
	ref    uint32 // the client id in the arena, or the whole text when format is protocol.Unpacked
	heap   uint32 // the slot's node in the bound's heap
	format uint16
	origin uint16
	from   Source
	hops   uint8
}

func (sl *slot) fields() protocol.Fields {
	return protocol.Fields{Time: sl.time, Lat: sl.lat, Lng: sl.lng, Format: sl.format}
}

// minCompact is the smallest number of stale log entries worth a
// compaction; below it the log's slack costs less than the copying.
const minCompact = 4096

// New returns an empty store whose change numbers start at 1; Advance
// moves them on, for a store read back from disk.
func New() *Store {
	return &Store{index: newIndex(), origins: newOrigins()}
}

// ApplyAll stores each record of rs, in order, if it is newer than the
// client's current record (see Newer), under one lock and with one
// notification, and appends to applied whether each was stored. A record
// that is not newer is dropped: it changes nothing and must not be
// forwarded. from is where the records came from. The subscribers, woken
// once, find every change of the batch: a link's writer sends them in one
// write rather than waking for the first.
func (s *Store) ApplyAll(rs []Record, from Source, applied []bool) []bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	stored := false
	for i := range rs {
		_, ok := s.apply(&rs[i], from)
		applied = append(applied, ok)
		stored = stored || ok
	}
	if stored {
		s.notify()
	}
	return applied
}

// apply stores r if it is newer, and marks the subscribers it wakes.
// s.mu is held.
func (s *Store) apply(r *Record, from Source) (uint64, bool) {
	k := keysOf(*r)
	client := k.client()
	i, pos, exists := s.index.find(&s.slots, &s.ids, client)
	if exists && compare(k, s.keysOf(i)) <= 0 {
		return 0, false
	}
	origin, ok := s.origins.intern(r.Origin)
	if !ok {
		return 0, false
	}
	if !exists {
		if pos, ok = s.makeRoom(k, client, pos); !ok {
			return 0, false
		}
	}
	seq := s.seq + 1
	if !s.put(i, pos, exists, k, slot{recv: r.Recv, seq: seq, origin: origin, from: from, hops: r.Hops}) {
		return 0, false
	}
	s.seq = seq
	s.last.Store(s.seq)
	s.due(origin, from)
	return s.seq, true
}

// due marks the subscribers that a change of origin, from from, wakes:
// every one that listens, and one that holds only for an urgent change.
// s.mu is held.
func (s *Store) due(origin uint16, from Source) {
	for _, sub := range s.subs {
		if !sub.due && (sub.urgent == nil || !sub.holding.Load() || sub.urgent(origin, from)) {
			sub.due = true
		}
	}
}

// notify wakes every subscriber due that is not already due to wake.
// s.mu is held.
func (s *Store) notify() {
	for _, sub := range s.subs {
		if !sub.due {
			continue
		}
		sub.due = false
		select {
		case sub.c <- struct{}{}:
		default:
		}
	}
}

// put stores the record k, whose slot sl holds all but its fields and
// bytes, for a client found (or not) by index.find, and logs its change.
// It fails only when the arena is full. s.mu is held.
func (s *Store) put(i uint32, pos int, exists bool, k keys[string], sl slot) bool {
	f := k.f
	sl.time, sl.lat, sl.lng, sl.format = f.Time, f.Lat, f.Lng, f.Format
	if exists {
		sl.ref = s.slot(i).ref
		// The arena item changes with the form: an id alone, or a text.
		if k.packed() != (s.slot(i).format != protocol.Unpacked) || !k.packed() {
			ref, ok := s.addItem(k.text)
			if !ok {
				return false
			}
			s.ids.free(s.slot(i).ref)
			sl.ref = ref
		}
	} else {
		ref, ok := s.addItem(k.text)
		if !ok {
			return false
		}
		sl.ref = ref
	}
	switch {
	case exists:
		sl.heap = s.slot(i).heap
		*s.slot(i) = sl
		s.stale++
		if s.limit > 0 {
			s.raised(i)
		}
	case len(s.free) > 0:
		i = s.free[len(s.free)-1]
		s.free = s.free[:len(s.free)-1]
		*s.slot(i) = sl
		s.index.insert(&s.slots, &s.ids, pos, i)
	default:
		i = uint32(s.slots.len())
		s.slots.push(sl)
		s.index.insert(&s.slots, &s.ids, pos, i)
	}
	if !exists && s.limit > 0 {
		s.push(i)
	}
	s.log.add(sl.seq, i)
	if s.stale >= minCompact && 2*s.stale > s.slots.len() {
		s.compact()
	}
	return true
}

// addItem adds a record's bytes to the arena, compacting it first when
// that is worth it or the only way to make room.
func (s *Store) addItem(item string) (uint32, bool) {
	if s.ids.wasteful() {
		s.compactArena()
	}
	ref, ok := add(&s.ids, item)
	if !ok && s.ids.dead > 0 {
		s.compactArena()
		ref, ok = add(&s.ids, item)
	}
	return ref, ok
}

// compactArena copies the live items of the arena to a new buffer.
func (s *Store) compactArena() {
	s.ids.compact(func(yield func(*uint32) bool) {
		for i := range uint32(s.slots.len()) {
			if sl := s.slot(i); sl.seq != 0 && !yield(&sl.ref) {
				return
			}
		}
	})
}

// makeRoom reports whether a record r of a client not held may be
// stored, evicting the lowest record if the store is at its limit and r
// ranks above it; a record that may not is counted as refused. It returns
// the index position for client, which pos was before an eviction. s.mu
// is held.
func (s *Store) makeRoom(r keys[string], client string, pos int) (int, bool) {
	if s.limit == 0 || s.len() < s.limit {
		return pos, true
	}
	if !s.outranksLowest(r) {
		s.refused++
		return pos, false
	}
	s.evict()
	_, pos, _ = s.index.find(&s.slots, &s.ids, client) // the eviction may have moved entries
	return pos, true
}

// evict removes the lowest record. Its change-log entry becomes stale, and
// no trace of it is sent or written: every server evicts by the same
// rule. s.mu is held.
func (s *Store) evict() {
	s.clean()
	i := *s.low.node(0)
	s.index.remove(&s.slots, &s.ids, s.index.position(&s.slots, &s.ids, i))
	s.drop(i)
	s.ids.free(s.slot(i).ref)
	*s.slot(i) = slot{} // seq 0: free
	s.free = append(s.free, i)
	s.stale++
	s.evicted++
}

// SetLimit bounds the clients held to n, evicting the lowest records if
// there are more, and returns how many it evicted; 0 removes the bound.
// Every server of a herd must have the same limit for them to agree.
func (s *Store) SetLimit(n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n < 0 {
		n = 0
	}
	if n > 0 && s.limit == 0 {
		s.heapify()
	}
	s.limit = n
	if n == 0 {
		s.low = lowest{}
		return 0
	}
	evicted := 0
	for s.len() > n {
		s.evict()
		evicted++
	}
	return evicted
}

// Limit returns the most clients the store holds, 0 for no limit.
func (s *Store) Limit() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.limit
}

// Evictions returns the number of records evicted to make room for a
// record that ranks higher, or by SetLimit.
func (s *Store) Evictions() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.evicted
}

// Refused returns the number of records of new clients not stored because
// the store was at its limit and they ranked below every record held.
// ApplyAll reports them as not applied, like records that are
// not newer.
func (s *Store) Refused() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.refused
}

// Advance makes the next change number greater than seq, if it is not
// already.
func (s *Store) Advance(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq = max(s.seq, seq)
	s.last.Store(s.seq)
}

// compact drops the stale entries of the log; it keeps their order.
func (s *Store) compact() {
	s.log.compact(func(seq uint64, i uint32) (uint32, bool) { return i, s.slot(i).seq == seq })
	s.stale = 0
}

// slot returns slot i.
func (s *Store) slot(i uint32) *slot { return s.slots.at(int(i)) }

// keysOf returns the keys of slot i's record.
func (s *Store) keysOf(i uint32) keys[[]byte] {
	sl := s.slot(i)
	return keys[[]byte]{f: sl.fields(), text: s.ids.item(sl.ref), origin: s.origins.name(sl.origin), recv: sl.recv}
}

// packed returns slot i's record.
func (s *Store) packed(i uint32) Packed {
	sl := s.slot(i)
	return Packed{Origin: s.origins.name(sl.origin), OriginID: sl.origin, Recv: sl.recv, Hops: sl.hops, fields: sl.fields(), item: s.ids.item(sl.ref)}
}

// Get returns the current record of a client.
func (s *Store) Get(client string) (Packed, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, _, ok := s.index.find(&s.slots, &s.ids, client)
	if !ok {
		return Packed{}, false
	}
	return s.packed(i), true
}

// GetFrom returns the current record of a client, as Get does, and where
// it came from.
func (s *Store) GetFrom(client string) (Packed, Source, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, _, ok := s.index.find(&s.slots, &s.ids, client)
	if !ok {
		return Packed{}, Local, false
	}
	return s.packed(i), s.slot(i).from, true
}

// Len returns the number of clients known.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.len()
}

func (s *Store) len() int { return s.slots.len() - len(s.free) }

// Seq returns the last change number given out. It takes no lock: every
// connection asks it after each batch it stores.
func (s *Store) Seq() uint64 { return s.last.Load() }

// Changes appends to dst, in change-number order, up to max of the current
// records whose change number is greater than after, and returns them with
// the cursor to pass next time. Once every change up to the last one given
// out has been read, the cursor is that change number, so a reader that
// skipped some changes (because they came from its own peer) still
// advances. The cost is a binary search plus the entries read, and no
// allocation but dst's growth: each record's text is written by its
// reader (Packed.AppendText).
func (s *Store) Changes(after uint64, max int, dst []Change) ([]Change, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k := s.log.search(after)
	next := after
	for ; k < s.log.len() && len(dst) < max; k++ {
		seq, i := s.log.at(k)
		next = seq
		sl := s.slot(i)
		if sl.seq != seq {
			continue
		}
		dst = append(dst, Change{Seq: seq, Record: s.packed(i), From: sl.from})
	}
	if k == s.log.len() {
		next = s.seq
	}
	return dst, next
}

// Subscribe returns a channel that receives a value after changes are
// stored; several changes may share one value. Unsubscribe releases it.
func (s *Store) Subscribe() <-chan struct{} {
	return s.SubscribeUrgent(nil).C
}

// Urgency says whether a change of a record of origin (its number,
// Packed.OriginID), from from, should wake a subscriber that holds
// (Subscription.Hold) at once.
type Urgency func(origin uint16, from Source) bool

// OriginID returns the number the store gave the origin name, as
// Packed.OriginID does; false if it holds no record of that origin and
// never did. It numbers no name: a name a neighbour sends (a prune, say)
// must not use up the numbers the origins of records need (maxOrigins).
func (s *Store) OriginID(name string) (uint16, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, ok := s.origins.index[name]
	return i, ok
}

// Subscription is a subscriber of the store's changes that may hold: while
// it holds, only the changes its Urgency calls urgent wake it. A link's
// writer holds while announcements wait for a timer of its own: the
// changes it would only announce do not wake it for every one, as they
// would wake every writer of every link on every change.
type Subscription struct {
	// C receives a value after changes are stored that wake the
	// subscriber; several changes may share one value.
	C   <-chan struct{}
	sub *subscriber
}

// Hold makes only urgent changes wake the subscriber, until Listen.
func (s *Subscription) Hold() { s.sub.holding.Store(true) }

// Listen makes every change wake the subscriber again. Call it before
// reading the changes, so that none stored meanwhile goes unnoticed.
func (s *Subscription) Listen() { s.sub.holding.Store(false) }

type subscriber struct {
	c       chan struct{}
	urgent  Urgency // nil: every change is
	holding atomic.Bool
	due     bool // the changes stored under the lock wake it; s.mu is held
}

// SubscribeUrgent returns a subscription whose holds urgent calls urgent,
// or every change if urgent is nil; urgent runs under the store's lock
// and must not call the store. Unsubscribe(sub.C) releases it.
func (s *Store) SubscribeUrgent(urgent Urgency) *Subscription {
	sub := &subscriber{c: make(chan struct{}, 1), urgent: urgent}
	s.mu.Lock()
	s.subs = append(s.subs, sub)
	s.mu.Unlock()
	return &Subscription{C: sub.c, sub: sub}
}

// Unsubscribe stops the notifications of a channel from Subscribe or
// SubscribeUrgent.
func (s *Store) Unsubscribe(c <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, sub := range s.subs {
		if sub.c == c {
			s.subs = append(s.subs[:i], s.subs[i+1:]...)
			return
		}
	}
}

// origins interns the names of origin servers, which are few, so that a
// slot holds two bytes instead of a string.
type origins struct {
	names []string
	index map[string]uint16
	last  uint16 // the index of the name interned last
}

func newOrigins() origins { return origins{index: make(map[string]uint16)} }

// maxOrigins bounds the distinct origin names; a herd has a handful.
const maxOrigins = 1 << 16

func (o *origins) intern(name string) (uint16, bool) { return intern(o, name) }

// intern returns the number of an origin's name, given as a string or as
// bytes (which it copies only the first time).
func intern[T ~string | ~[]byte](o *origins, name T) (uint16, bool) {
	if len(o.names) > 0 && string(name) == o.names[o.last] {
		return o.last, true // a run of records from one origin, as a client's or a link's batch is
	}
	if i, ok := o.index[string(name)]; ok {
		o.last = i
		return i, true
	}
	if len(o.names) == maxOrigins {
		return 0, false
	}
	i := uint16(len(o.names))
	s := strings.Clone(string(name)) // a string given may be a part of a larger one
	o.names = append(o.names, s)
	o.index[s] = i
	o.last = i
	return i, true
}

func (o *origins) name(i uint16) string { return o.names[i] }
