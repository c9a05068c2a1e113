package rawio

import (
	"io"
	"net"
	"testing"

	"github.com/herdkit/herd/internal/testutil"
)

// BenchmarkPingPong sends a 100-byte request and its reply back and forth
// over one loopback connection, between two goroutines, with net's
// connections and with rawio's, and reports the process's CPU (user and
// system) a round trip besides the time (run it with -cpu 1, as the
// classic five run). In one process the two are even: what rawio saves
// shows where several processes share the cores, each waking its own
// sysmon (docs/benchmarks.md, "Raw system calls"). This benchmark keeps
// the raw path from costing more than net's, allocations included.
func BenchmarkPingPong(b *testing.B) {
	for _, bc := range []struct {
		name string
		wrap func(net.Conn) net.Conn
	}{
		{"net", func(nc net.Conn) net.Conn { return nc }},
		{"rawio", Wrap},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			go func() {
				nc, err := ln.Accept()
				if err != nil {
					return
				}
				c := bc.wrap(nc)
				defer c.Close()
				buf := make([]byte, 100)
				for {
					if _, err := io.ReadFull(c, buf); err != nil {
						return
					}
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			}()
			nc, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			c := bc.wrap(nc)
			defer c.Close()
			buf := make([]byte, 100)
			cpu := testutil.CPUTime()
			b.ResetTimer()
			for b.Loop() {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
			}
			testutil.ReportCPU(b, cpu)
		})
	}
}
