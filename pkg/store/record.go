package store

import (
	"bytes"
	"cmp"
	"strings"

	"github.com/herdkit/herd/pkg/protocol"
)

// Record is the newest known position of one client, as text: what a
// client or a neighbour sends, and what ApplyAll takes. The store holds
// it packed (Packed).
type Record struct {
	// Text is the client id, the position and the client's time exactly as
	// the client sent them, joined by single spaces (protocol.Command.Text).
	Text string
	// Origin is the name of the server that received the IAMAT from the
	// client.
	Origin string
	// Recv is the origin's receive time in Unix nanoseconds. With the
	// client's time it gives the AT line's time difference, and with the
	// local clock the propagation delay.
	Recv int64
	// Hops is the number of peer links the record crossed from its origin.
	Hops uint8
}

// Client returns the client id.
func (r Record) Client() string { return clientOf(r.Text) }

// Pos returns the position, e.g. +34.068930-118.445127.
func (r Record) Pos() string {
	rest := r.Text[strings.IndexByte(r.Text, ' ')+1:]
	return rest[:strings.IndexByte(rest, ' ')]
}

// Time returns the client's time as it sent it.
func (r Record) Time() string { return r.Text[strings.LastIndexByte(r.Text, ' ')+1:] }

// AppendAT appends the record's AT line, without a line end, exactly as
// its origin wrote it.
func (r Record) AppendAT(dst []byte) []byte {
	return protocol.AppendAT(dst, r.Origin, r.Recv, r.Text)
}

// Newer reports whether a should replace b, two records of the same
// client. The later client time wins. Equal times are broken by the origin
// server's name, then the position text, then the origin's receive time,
// then the time text (1.5 and 1.50 are the same instant), each compared
// the same way on every server, so that all servers keep the same record
// whatever order records arrive in. A record is never newer than itself.
func Newer(a, b Record) bool { return compare(keysOf(a), keysOf(b)) > 0 }

// Rank orders records of any clients for the bound on records
// (SetLimit): Newer's order, then the client id, so that no two records
// of different clients are equal. It returns -1 when a ranks below b, 0
// when they are the same record, and +1 when a ranks above b.
func Rank(a, b Record) int { return rank(keysOf(a), keysOf(b)) }

// Packed is a record as the store holds it, which Get and Changes return:
// the position and time packed into numbers (protocol.Fields), the client
// id in the store's arena. Its text is rebuilt exactly where it is needed,
// into a caller's buffer (AppendText, AppendAT), so that reading the
// change log allocates nothing per record. A Packed stays valid while the
// store changes: the bytes it shares with the store are never written
// again (it keeps them alive while it is held, so holders drop it soon).
type Packed struct {
	// Origin is the name of the server that received the IAMAT from the
	// client.
	Origin string
	// Recv is the origin's receive time in Unix nanoseconds.
	Recv int64
	// Hops is the number of peer links the record crossed from its origin.
	Hops uint8
	// OriginID is the store's number for Origin (Store.OriginID), the
	// same for every record of one origin in one store, and set on the
	// records a store returns (Get, Changes): a set of origins kept by
	// number is cheaper to look up than one kept by name.
	OriginID uint16
	fields   protocol.Fields // Format protocol.Unpacked: item is the whole text
	item     []byte          // the client id, or the whole text; see arena
}

// AppendText appends the record's text: the client id, the position and
// the client's time exactly as the client sent them, joined by single
// spaces (Record.Text).
func (p Packed) AppendText(dst []byte) []byte {
	dst = append(dst, p.item...)
	if p.fields.Format == protocol.Unpacked {
		return dst
	}
	dst = append(dst, ' ')
	return p.fields.Append(dst)
}

// TextLen returns the length of the text AppendText appends.
func (p Packed) TextLen() int {
	if p.fields.Format == protocol.Unpacked {
		return len(p.item)
	}
	return len(p.item) + 1 + p.fields.Len()
}

// AppendAT appends the record's AT line, without a line end, exactly as
// its origin wrote it.
func (p Packed) AppendAT(dst []byte) []byte {
	if p.fields.Format == protocol.Unpacked {
		sec, nsec, _ := protocol.ParseTime(p.item[lastIndexByte(p.item, ' ')+1:])
		return protocol.AppendATParsed(dst, p.Origin, p.Recv, sec, nsec, p.item)
	}
	return protocol.AppendATFields(dst, p.Origin, p.Recv, p.item, p.fields)
}

// Unpack returns the record as text.
func (p Packed) Unpack() Record {
	return Record{Text: p.Text(), Origin: p.Origin, Recv: p.Recv, Hops: p.Hops}
}

// Text returns the text AppendText appends, as a string of its own.
func (p Packed) Text() string { return string(p.AppendText(make([]byte, 0, p.TextLen()))) }

// Client returns the client id, as a string of its own.
func (p Packed) Client() string { return string(clientOf(p.item)) }

// ClientBytes returns the client id, sharing the store's bytes: valid
// while p is held, and never to be written.
func (p Packed) ClientBytes() []byte { return clientOf(p.item) }

// AppendTime appends the client's time as it sent it.
func (p Packed) AppendTime(dst []byte) []byte {
	return keys[[]byte]{f: p.fields, text: p.item}.appendTime(dst)
}

// Pos returns the position, as a string of its own.
func (p Packed) Pos() string { return string(keys[[]byte]{f: p.fields, text: p.item}.appendPos(nil)) }

// Time returns the client's time as it sent it, as a string of its own.
func (p Packed) Time() string { return string(keys[[]byte]{f: p.fields, text: p.item}.appendTime(nil)) }

// keys is what records are ordered by (compare, rank), alike for a record
// as text and one held packed: the packed fields, or with Format
// protocol.Unpacked the whole text, from which the position and time are
// read.
type keys[T ~string | ~[]byte] struct {
	f      protocol.Fields
	text   T // the client id, or the whole text when f.Format is protocol.Unpacked
	origin string
	recv   int64
}

// keysOf packs a record as text; a form PackFields cannot rebuild keeps
// its text.
func keysOf(r Record) keys[string] { return packText(r.Text, r.Origin, r.Recv) }

// packText packs a record's text, given as a string or as bytes.
func packText[T ~string | ~[]byte](text T, origin string, recv int64) keys[T] {
	k := keys[T]{origin: origin, recv: recv}
	sp1 := indexByte(text, ' ')
	sp2 := sp1 + 1 + indexByte(text[sp1+1:], ' ')
	var ok bool
	if sp1 >= 0 && sp2 > sp1 {
		k.f, ok = protocol.PackFields(text[sp1+1:sp2], text[sp2+1:])
	}
	if ok {
		k.text = text[:sp1]
	} else {
		k.f, k.text = protocol.Fields{Format: protocol.Unpacked}, text
	}
	return k
}

func (k keys[T]) packed() bool { return k.f.Format != protocol.Unpacked }

func (k keys[T]) client() T { return clientOf(k.text) }

// appendPos appends the position text.
func (k keys[T]) appendPos(dst []byte) []byte {
	if k.packed() {
		return k.f.AppendPos(dst)
	}
	rest := k.text[indexByte(k.text, ' ')+1:]
	return append(dst, rest[:indexByte(rest, ' ')]...)
}

// appendTime appends the client time's text.
func (k keys[T]) appendTime(dst []byte) []byte {
	if k.packed() {
		return k.f.AppendTime(dst)
	}
	return append(dst, k.text[lastIndexByte(k.text, ' ')+1:]...)
}

// compare orders two records by Newer's keys: it returns +1 when a is
// newer than b, -1 when b is newer than a, and 0 when neither is (the same
// record, or records of two clients alike in every key). Records whose
// fields both pack compare as numbers, which order as the texts do; the
// texts are rebuilt only for what numbers cannot decide.
func compare[A, B ~string | ~[]byte](a keys[A], b keys[B]) int {
	both := a.packed() && b.packed()
	if both {
		if a.f.Time != b.f.Time {
			return cmp.Compare(a.f.Time, b.f.Time)
		}
	} else if c := compareInstants(a, b); c != 0 {
		return c
	}
	if c := strings.Compare(a.origin, b.origin); c != 0 {
		return c
	}
	const posFormat = 0xffff &^ (1<<4 - 1) // the coordinates' bits of protocol.Fields.Format
	switch {
	case both && a.f.Format&posFormat == b.f.Format&posFormat:
		// The same signs and shapes: texts of the same length whose
		// digits order as the numbers do.
		if c := cmp.Compare(a.f.Lat, b.f.Lat); c != 0 {
			return c
		}
		if c := cmp.Compare(a.f.Lng, b.f.Lng); c != 0 {
			return c
		}
	default:
		if c := comparePos(a, b); c != 0 {
			return c
		}
	}
	if a.recv != b.recv {
		return cmp.Compare(a.recv, b.recv)
	}
	if both && a.f.Format == b.f.Format {
		return 0 // the same time, with the same decimals
	}
	return compareTimeTexts(a, b)
}

// compareInstants compares the client times as instants (CompareTime).
func compareInstants[A, B ~string | ~[]byte](a keys[A], b keys[B]) int {
	var ab, bb [48]byte
	return protocol.CompareTime(a.appendTime(ab[:0]), b.appendTime(bb[:0]))
}

// compareTimeTexts compares the client times as texts.
func compareTimeTexts[A, B ~string | ~[]byte](a keys[A], b keys[B]) int {
	var ab, bb [48]byte
	return bytes.Compare(a.appendTime(ab[:0]), b.appendTime(bb[:0]))
}

// comparePos compares the positions as texts.
func comparePos[A, B ~string | ~[]byte](a keys[A], b keys[B]) int {
	var ab, bb [48]byte
	return bytes.Compare(a.appendPos(ab[:0]), b.appendPos(bb[:0]))
}

// rank is Rank's order: compare's, then the client id.
func rank[A, B ~string | ~[]byte](a keys[A], b keys[B]) int {
	if c := compare(a, b); c != 0 {
		return c
	}
	return compareText(a.client(), b.client())
}

// compareText compares two texts byte by byte, as strings.Compare does.
func compareText[A, B ~string | ~[]byte](a A, b B) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return cmp.Compare(a[i], b[i])
		}
	}
	return cmp.Compare(len(a), len(b))
}

// clientOf returns the client id at the start of a record's text (or an
// arena item, which may be the id alone).
func clientOf[T ~string | ~[]byte](text T) T {
	if i := indexByte(text, ' '); i >= 0 {
		return text[:i]
	}
	return text
}

func indexByte[T ~string | ~[]byte](s T, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func lastIndexByte[T ~string | ~[]byte](s T, c byte) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// Pack packs a record as the store holds it, without a store: for a
// record as text where a Packed is wanted (tests, tools).
func Pack(r Record) Packed {
	k := keysOf(r)
	return Packed{Origin: r.Origin, Recv: r.Recv, Hops: r.Hops, fields: k.f, item: []byte(k.text)}
}
