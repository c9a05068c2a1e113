// Package store keeps the newest record of every client.
//
// A record replaces the stored one only when it is newer (Newer: the later
// client time, then a fixed tie-break), so that every server of a herd ends
// up holding the same record whatever order floods arrive in. Every change
// gets a change number from a counter that only grows; the live changes
// are kept in that order, which is what peer links stream to their
// neighbours, for flooding and for reconciliation alike.
//
// A record is held packed (Packed), in arrays with no pointer for the
// garbage collector to scan: the position and time as numbers that give
// the text back byte for byte (protocol.Fields), the client ids in one
// arena, the index, the change log and the bound's heap as small
// integers in pages that never move. About 80 bytes a client and the
// bytes of its id (TestMemoryPerRecord, docs/benchmarks.md). A store read
// back from disk is built at once by a Loader.
package store
