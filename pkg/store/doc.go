// Package store keeps the newest record of every client.
//
// A record replaces the stored one only when it is newer (Newer: the later
// client time, then a fixed tie-break), so that every server of a herd ends
// up holding the same record whatever order floods arrive in. Every change
// gets a change number from a counter that only grows; the live changes
// are kept in that order, which is what peer links stream to their
// neighbours, for flooding and for reconciliation alike.
package store
