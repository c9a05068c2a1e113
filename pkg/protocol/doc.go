// Package protocol parses and formats the herd's client protocol: IAMAT,
// WHATSAT, their AT replies and the "? line" answer to anything invalid.
//
// Everything here is a pure function over bytes: no I/O, no clock, no
// state (LineBuffered looks at a bufio.Reader's buffer, and no further). Parsing never allocates; formatting appends to a caller's buffer.
// The rules are those of PROTOCOL.md; where it leaves a choice open, the
// choice is written down next to the code that makes it and in
// docs/protocol.md.
package protocol
