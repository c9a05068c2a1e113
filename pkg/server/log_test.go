package server

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herdkit/herd/pkg/protocol"
)

// record is one protocol log record as the server wrote it.
type record struct{ in, out, key string }

// recorder keeps the protocol log's records in order.
type recorder struct {
	mu  sync.Mutex
	got []record
}

func (r *recorder) Line(_ time.Time, _ uint64, _ string, in, out []byte, key, _ string) {
	r.mu.Lock()
	r.got = append(r.got, record{string(in), string(out), key})
	r.mu.Unlock()
}

func (r *recorder) records() []record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]record(nil), r.got...)
}

// TestProtocolLogRecords: the IAMATs of one read share a record, their
// lines joined by newlines and their replies in order; any other line has
// a record of its own; no line is missing and the records keep the
// connection's order.
func TestProtocolLogRecords(t *testing.T) {
	const (
		a     = "IAMAT a +34.068930-118.445127 1621464827.959498503"
		b     = "IAMAT b +34.068930-118.445127 1621464827.959498503"
		c     = "IAMAT c +34.068930-118.445127 1621464827.959498503"
		far   = "IAMAT x +34.068930-118.445127 9999999999.999999999"
		bad   = "HELLO there"
		atA   = "AT Hill +0.263873386 a +34.068930-118.445127 1621464827.959498503\n"
		atB   = "AT Hill +0.263873386 b +34.068930-118.445127 1621464827.959498503\n"
		atC   = "AT Hill +0.263873386 c +34.068930-118.445127 1621464827.959498503\n"
		first = "AT Hill +0.263873386 a"
	)
	tests := []struct {
		name  string
		input string // sent in one write
		last  string // the start of the last reply, after which every record is written
		want  []record
	}{
		{"one IAMAT", a + "\n", first, []record{{a, atA, ""}}},
		{"IAMATs of one read", a + "\n" + b + "\r\n" + c + "\n", "AT Hill +0.263873386 c",
			[]record{{a + "\n" + b + "\n" + c, atA + atB + atC, ""}}},
		{"an invalid line between IAMATs", a + "\n" + b + "\n" + bad + "\n" + c + "\n", "AT Hill +0.263873386 c",
			[]record{{a + "\n" + b, atA + atB, ""}, {bad, "? " + bad + "\n", "reason"}, {c, atC, ""}}},
		{"an IAMAT too far ahead between IAMATs", a + "\n" + far + "\n" + b + "\n", "AT Hill +0.263873386 b",
			[]record{{a, atA, ""}, {far, "? " + far + "\n", "reason"}, {b, atB, ""}}},
		{"a blank line between IAMATs", a + "\n\n" + b + "\n", "AT Hill +0.263873386 b",
			[]record{{a, atA, ""}, {"", "", ""}, {b, atB, ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := &recorder{}
			srv := newTestServerLines(t, Config{MaxConns: 10, MaxConnsPerIP: 10, MaxClockAhead: 24 * time.Hour},
				slog.LevelDebug, lines)
			cl := dial(t, srv.Addr())
			cl.send(tt.input)
			for {
				if line := string(cl.reply(protocol.LineReply).Line); strings.HasPrefix(line, tt.last) {
					break
				}
			}
			// Each record is written before the replies it holds go out.
			got := lines.records()
			if len(got) != len(tt.want) {
				t.Fatalf("records %q, want %q", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("record %d: %q, want %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}
