// Package topology holds a herd's links: the classic five-server herd of
// PROTOCOL.md, written by hand (Classic), and the links a herd of N
// derives from its size alone, so that every server of it computes the
// same neighbour sets without a list written by hand (Neighbours).
//
// Server i of N is linked to i+3^k and i-3^k (mod N) for every k with
// 3^k < N: a circulant graph C_N(1, 3, 9, ...). A herd of four or fewer
// is complete. It is symmetric (j is a neighbour of i exactly when i is
// one of j's, since the offsets come in pairs ±d), so both ends of a link
// agree on it; a peer that is not in a server's set is refused in the
// handshake (unknown_peer). Its properties, checked for N = 1 to 64 by
// the tests:
//
//   - Degree: the number of distinct offsets ±3^k mod N other than 0, at
//     most 2⌈log3 N⌉ (9 servers: 4 links each; 64: 8), well inside the
//     2⌈log2 N⌉ a derived herd allows.
//   - Diameter: at most m hops, the least m with (3^m-1)/2 >= ⌊N/2⌋,
//     about log3 N, since every distance up to (3^m-1)/2 is a sum of
//     distinct ±3^k (balanced ternary), each one hop.
//   - Connected after any two servers fail, for N >= 5.
//
// Powers of three rather than of two: the diameter is about the same
// (log3 N against log2 N hops, with larger degree making the powers of
// two shorter only in hops, not in time), and flooding sends each record
// over every link direction but the one it came in on, about N·(degree-1)
// frames per record, so fewer links is less work for every record: 28
// frames for N = 9 instead of 46 (docs/topology.md).
//
// Scaling from N to N+k changes the offsets modulo the size, so links
// change; docs/topology.md says which, and why no record is lost.
package topology

import "slices"

// MaxServers is the largest herd the derivation accepts.
const MaxServers = 1024

// Neighbours returns the indexes of server i's neighbours in a herd of n,
// ascending. It returns nil for n < 2 or i outside 0 to n-1.
func Neighbours(i, n int) []int {
	if n < 2 || i < 0 || i >= n {
		return nil
	}
	var out []int
	if n <= 4 {
		for j := range n {
			if j != i {
				out = append(out, j)
			}
		}
		return out
	}
	for d := 1; d < n; d *= 3 {
		for _, j := range []int{(i + d) % n, (i - d%n + n) % n} {
			if j != i && !slices.Contains(out, j) {
				out = append(out, j)
			}
		}
	}
	slices.Sort(out)
	return out
}

// Peer is one neighbour of a server: its name and the host:port of its
// peer listener. HERD_PEERS lists them (package config), and the peer
// links dial them (package peer).
type Peer struct {
	Name string
	Addr string
}
