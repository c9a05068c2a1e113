// Package rawio reads and writes sockets and files with system calls the
// Go scheduler is not told of, where a call cannot block for long: a
// socket of package net never blocks (a read or write that cannot go on
// returns EAGAIN, and the goroutine waits in the netpoller), and a small
// write to a regular file copies into the page cache.
//
// Why: net.Conn's Read and Write, and os.File's Write, enter the kernel as
// a call that may block would (syscall.Syscall). Entering one wakes the
// runtime's sysmon thread if it slept, and sysmon then polls every 20 µs
// for a millisecond or more, taking the P of a call that outlasts its tick
// and waking another thread to run what waits. A loopback write runs the
// receiver's side of TCP too; on the two-core virtual machines Herd is
// measured on it takes about 20 µs, and a sleep and a wake-up of a thread
// cost more than on bare metal. In the classic five under client load,
// with one P a process, sysmon was 15% of a busy server's CPU, and with
// every socket read and write and every journal write made raw it is 3%:
// the herd's CPU per write fell by a quarter (docs/benchmarks.md, "Raw
// system calls"). The calls that may block for long (fsync, opening and
// renaming files, large file writes, pipes) stay ordinary ones, so that
// the runtime runs other goroutines meanwhile.
//
// Under the race detector the same code makes ordinary calls
// (syscall.Read and syscall.Write), whose annotations tell the detector
// that what one goroutine wrote before a write to a socket happens before
// what another does after reading it; raw calls would hide that edge and
// report races between goroutines that synchronise over a socket.
package rawio
