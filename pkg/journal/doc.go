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
// of every record before the current segment replaces them. One type,
// fileKind (names.go), formats and parses those names.
//
// A journal's life has three phases, each in its own files:
//
//   - Open (open.go) locks the directory (LOCK), checks that it is named
//     (NAME) for this node, and reads it back (recover.go, read.go): the
//     newest complete snapshot and the segments after it are replayed; a
//     torn tail is truncated with a log line. Anything else wrong is data
//     loss: logged, counted, and decided to heal under a new incarnation
//     with no watermarks, so that every neighbour sends everything; a read
//     error stops the start and changes nothing. After a crash the change
//     numbers jump ahead (seqJump), since neighbours may hold numbers whose
//     changes were lost. Open writes LOCK and NAME, cuts the torn tail
//     off and removes the leftovers of interrupted writes (*.tmp); nothing
//     else.
//   - Start (journal.go) writes what Open decided (heal.go: the HEALING
//     marker, a snapshot of what was kept, the damaged files renamed
//     aside) and the first segment, then writes every change (write.go),
//     compacts (snapshot.go), and makes changes durable for Wait
//     (commit.go). The node starts it once every listener is bound, so
//     that a start that fails earlier leaves the directory as it was.
//   - Close writes what remains and the end marker, syncs, and releases
//     the directory.
//
// Check and Repair (check.go) report on, and repair, a directory that no
// node holds, for `herd journal`.
package journal
