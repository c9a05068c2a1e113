// Package client is the herd's command-line client, `herd client`.
//
//	herd client [-timeout 10s] [ADDR] [COMMAND...]
//
// ADDR is a host:port (default 127.0.0.1:12200, Hill of the local herd).
// When the first argument is not host:port-like (IAMAT, WHATSAT or any
// other word) ADDR is taken as omitted.
//
// With command words, the client sends them as one line, half-closes the
// connection, prints the whole reply and exits: 0 for a valid reply (an AT
// line, and for WHATSAT the JSON, which may span lines, and the empty line
// that ends it), 1 when
// the server answered "? ...", 2 on a usage or connection error (including
// a reply cut short), with a message on standard error.
//
// Without command words it is interactive: every line read from standard
// input is sent as it comes, replies are printed as they arrive, and at the
// end of input the client half-closes and waits (at most -timeout) for the
// replies still owed. Standard output carries nothing but the server's
// replies; a prompt is written to standard error only when standard input
// is a terminal. The exit status is 0 when every reply was valid, 1 when
// any was "? ...", 2 on a connection error or when replies were missing.
//
// In both forms, an IAMAT whose time field is the word "now" gets the
// current POSIX time with nanoseconds instead (1621464827.959498503).
package client
