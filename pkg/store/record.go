package store

import (
	"cmp"
	"strings"

	"github.com/herdkit/herd/pkg/protocol"
)

// Record is the newest known position of one client.
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
func Newer(a, b Record) bool { return compare(a, b) > 0 }

// compare orders two records by Newer's keys: it returns +1 when a is
// newer than b, -1 when b is newer than a, and 0 when neither is (the same
// record, or records of two clients alike in every key).
func compare(a, b Record) int {
	at, bt := a.Time(), b.Time()
	if c := protocol.CompareTime(at, bt); c != 0 {
		return c
	}
	if c := strings.Compare(a.Origin, b.Origin); c != 0 {
		return c
	}
	if c := strings.Compare(a.Pos(), b.Pos()); c != 0 {
		return c
	}
	if a.Recv != b.Recv {
		return cmp.Compare(a.Recv, b.Recv)
	}
	return strings.Compare(at, bt)
}

// Rank orders records of any clients for the bound on records
// (SetLimit): Newer's order, then the client id, so that no two records
// of different clients are equal. It returns -1 when a ranks below b, 0
// when they are the same record, and +1 when a ranks above b.
func Rank(a, b Record) int {
	if c := compare(a, b); c != 0 {
		return c
	}
	return strings.Compare(a.Client(), b.Client())
}
