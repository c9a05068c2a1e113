package testutil

import (
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
)

// FreeLoopbackAddrs returns k distinct 127.0.0.1 addresses that were free
// a moment ago, for a configuration that must name its addresses before
// it listens (a herd whose nodes list each other).
func FreeLoopbackAddrs(t testing.TB, k int) []string {
	t.Helper()
	addrs := make([]string, 0, k)
	for range k {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs
}

// Ports between which FreePortBase looks: below the kernel's ephemeral
// range (32768 and up on Linux), where the thousands of client sockets
// that some tests leave in TIME-WAIT cannot hold a port and no outgoing
// connection takes one meanwhile. Benchmarks run by hand use ports above
// 61000, out of the way of both.
const (
	portLow  = 10000
	portHigh = 32768
)

// FreePortBase returns the first of n consecutive free ports of
// 127.0.0.1, for a process such as `herd local` that takes its ports as a
// base and offsets.
func FreePortBase(t testing.TB, n int) int {
	t.Helper()
	for range 200 {
		base := portLow + rand.IntN(portHigh-portLow-n)
		if free(base, n) {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}

func free(base, n int) bool {
	for p := base; p < base+n; p++ {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			return false
		}
		ln.Close()
	}
	return true
}
