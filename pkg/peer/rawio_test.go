package peer

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/rawio"
	"github.com/herdkit/herd/pkg/topology"
)

// TestLinksOverRawSockets: both ends of a link, the one that dialled and
// the one that accepted, read and write their socket through rawio, under
// TLS too (docs/benchmarks.md, "Raw system calls").
func TestLinksOverRawSockets(t *testing.T) {
	ca := newCA(t, "herd CA")
	for _, tt := range []struct {
		name string
		a, b Config
	}{
		{"plain TCP", fastTimings, fastTimings},
		{"TLS", withTLS(herdTLS(t, ca, "A")), withTLS(herdTLS(t, ca, "B"))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lnA, lnB := listen(t), listen(t)
			closed := listen(t)
			closed.Close() // A's address for B: every link is B's dial
			a := runNode(t, "A", lnA, []topology.Peer{{Name: "B", Addr: closed.Addr().String()}}, testSecret, tt.a, nil)
			b := runNode(t, "B", lnB, []topology.Peer{{Name: "A", Addr: lnA.Addr().String()}}, testSecret, tt.b, nil)
			testutil.Eventually(t, 10*time.Second, testutil.Holds("both ends up", func() bool {
				return a.mgr.Status()[0].Up && b.mgr.Status()[0].Up
			}))
			for _, n := range []*node{a, b} {
				nc := n.mgr.neighbours[0].current.Load().nc
				if tc, ok := nc.(*tls.Conn); ok {
					nc = tc.NetConn()
				}
				if _, ok := nc.(*rawio.Conn); !ok {
					t.Errorf("%s's link reads and writes through %T, not a rawio.Conn", n.name, nc)
				}
			}
		})
	}
}
