// Package peer floods records between the servers of a herd over
// persistent, authenticated links, and reconciles neighbours when a link
// comes up.
//
// Each configured neighbour has a supervisor goroutine that dials it with
// jittered exponential backoff while there is no link; both ends dial, and
// a fixed rule keeps one link when both succeed. A link is authenticated
// by an HMAC challenge-response over a shared secret (the secret never
// crosses the wire), then each end says what it holds of the other's
// changes (its watermark: the other's incarnation and last change number
// received) and streams its own store's change log from there: first what
// the other missed, then every change as it is stored. A server that
// restarted empty (a new incarnation) gets everything; one that was only
// cut off gets only what changed meanwhile. The change log doubles as the
// outgoing queue, so a slow neighbour costs no memory; a link whose writes
// block for the peer time-out is dropped and the next one resumes from its
// watermark.
//
// An inbound connection costs a small read buffer until it has proved the
// secret, and only so many may be in their handshake at once, overall and
// per source address (limits.go). A refusal decided at either end is sent
// to the other as ERR <reason>, so both count the same reason. Two live
// servers of one name are told apart by their incarnations, and the newer
// is refused (duplicate.go).
//
// The wire format is in docs/peer-protocol.md.
package peer
