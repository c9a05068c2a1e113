// Package journal makes a node's records durable: with HERD_DATA_DIR set,
// every change the store makes is appended to a log in that directory, and
// read back at start, so that a restarted server holds what it held, keeps
// its incarnation and its change numbers, and reconciles with its
// neighbours by sending only what they missed.
//
// The writer is one more reader of the store's change log, like a peer
// link: it appends changes as they are stored, in one write per batch, and
// fsyncs every FsyncInterval. A record acknowledged to a client is on disk
// (written, so a killed process keeps it) within a millisecond or so, and
// synced (so a power failure keeps it) within FsyncInterval plus the time
// of one fsync.
//
// Segments (wal-<index>.log) are sequences of entries, each a CRC-32C, a
// length and a payload: the incarnation, a record with its change number,
// a neighbour's watermark, or the end marker of a clean close. When the
// segments outgrow twice the last snapshot, a snapshot (snap-<index>.snap)
// of every record before the current segment replaces them. At start the
// newest complete snapshot and the segments after it are replayed; a torn
// tail is truncated with a log line. Anything else wrong is data loss
// (recover.go): logged, counted, and healed under a new incarnation with
// no watermarks, so that every neighbour sends everything; a read error
// stops the start and changes nothing. The directory is locked (LOCK)
// and named (NAME) for one node. After a crash the change numbers jump ahead
// (seqJump), since neighbours may hold numbers whose changes were lost.
package journal
