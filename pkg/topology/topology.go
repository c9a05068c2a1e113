// Package topology derives a herd's links from its size alone, so that
// every server of a herd of N computes the same neighbour sets without a
// list written by hand.
//
// Server i of N is linked to i+2^k and i-2^k (mod N) for every k with
// 2^k < N: a circulant graph C_N(1, 2, 4, ...). It is symmetric (j is a
// neighbour of i exactly when i is one of j's, since the offsets come in
// pairs ±d), so both ends of a link agree on it; a peer that is not in a
// server's set is refused in the handshake (unknown_peer). Its properties,
// checked for N = 1 to 64 by the tests:
//
//   - Degree: the number of distinct offsets ±2^k mod N other than 0,
//     at most 2⌈log2 N⌉ (9 servers: 6 links each; 64: 11).
//   - Diameter: at most ⌈log2 N⌉ hops, since any distance d < N is a sum
//     of distinct powers of two below N, each one hop.
//   - It contains the cycle C_N(1, 2), which is 4-connected for N >= 5:
//     the herd stays connected after any two servers fail.
//
// Scaling from N to N+k changes the offsets modulo the size, so links
// change; docs/topology.md says which, and why no record is lost.
package topology

import (
	"math/bits"
	"slices"
)

// MaxServers is the largest herd the derivation accepts.
const MaxServers = 1024

// Neighbours returns the indexes of server i's neighbours in a herd of n,
// ascending. It returns nil for n < 2 or i outside 0 to n-1.
func Neighbours(i, n int) []int {
	if n < 2 || i < 0 || i >= n {
		return nil
	}
	var out []int
	for d := 1; d < n; d *= 2 {
		for _, j := range []int{(i + d) % n, (i - d%n + n) % n} {
			if j != i && !slices.Contains(out, j) {
				out = append(out, j)
			}
		}
	}
	slices.Sort(out)
	return out
}

// CeilLog2 returns ⌈log2 n⌉ for n >= 1: the bound of the diameter, and
// half the bound of the degree.
func CeilLog2(n int) int {
	if n <= 1 {
		return 0
	}
	return bits.Len(uint(n - 1))
}
