package bench

import (
	"net"
	"testing"
	"time"

	"github.com/herdkit/herd/pkg/protocol"
)

// replayConn answers every read with the same whole replies, as a
// server's batched writes arrive, so that a benchmark measures reading
// replies and nothing of a network.
type replayConn struct {
	net.Conn
	chunk []byte
}

func (c *replayConn) Read(p []byte) (int, error)      { return copy(p, c.chunk), nil }
func (c *replayConn) SetReadDeadline(time.Time) error { return nil }

// replyChunk returns the replies to sixteen requests of the kinds of
// kindOf, of a real herd's size, and those kinds.
func replyChunk(whatsat bool) ([]byte, []kind) {
	var b []byte
	var kinds []kind
	for i := range 16 {
		b = append(b, "AT Smith +0.000123456 bench-1234567890-"...)
		b = append(b, byte('a'+i))
		b = append(b, " +34.068930-118.445127 1621464827.959498503\n"...)
		if whatsat && i == 15 {
			b = append(b, `{"html_attributions":[],"results":[],"status":"OK"}`+"\n\n"...)
			kinds = append(kinds, kindWHATSAT)
			continue
		}
		kinds = append(kinds, kindIAMAT)
	}
	return b, kinds
}

// BenchmarkReadReplies reads replies as the load workers do: fill once,
// then take every whole reply buffered. One op is one reply.
func BenchmarkReadReplies(b *testing.B) {
	for _, tc := range []struct {
		name    string
		whatsat bool
	}{{"IAMAT", false}, {"one WHATSAT in 16", true}} {
		b.Run(tc.name, func(b *testing.B) {
			chunk, kinds := replyChunk(tc.whatsat)
			lr := newReplyReader(&replayConn{chunk: chunk}, time.Minute)
			b.ReportAllocs()
			b.SetBytes(int64(len(chunk) / len(kinds)))
			b.ResetTimer()
			n := 0
			for n < b.N {
				if err := lr.fill(time.Now()); err != nil {
					b.Fatal(err)
				}
				for {
					r, _, ok := lr.next(kinds[n%len(kinds)])
					if !ok {
						break
					}
					if r != protocol.ReplyAT {
						b.Fatalf("reply %d: %v", n, r)
					}
					n++
				}
			}
		})
	}
}
