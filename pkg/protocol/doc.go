// Package protocol owns the herd's client protocol: the command table
// (commands.go), the parsing of IAMAT and WHATSAT lines (parse.go), and
// both sides of the replies, the AT line, a WHATSAT's places and the
// "? line" answer to anything invalid, formatted and read in one place
// (reply.go), so that the server, herd client, herd bench and the tests
// cannot disagree about them.
//
// Parsing and formatting are pure functions over bytes: no I/O, no clock,
// no state. Parsing never allocates; formatting appends to a caller's
// buffer. The two readers look no further than the input they are given:
// LineBuffered at a bufio.Reader's buffer, ReplyReader at the io.Reader it
// reads replies from, into a bounded buffer, without allocating per
// reply. The rules are those of PROTOCOL.md; where it leaves a choice
// open, the choice is written down next to the code that makes it and in
// docs/protocol-choices.md.
package protocol
