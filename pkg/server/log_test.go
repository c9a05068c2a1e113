package server

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herdkit/herd/pkg/protocol"
)

// record is one protocol log record as the server wrote it; an "iamat"
// record has no in.
type record struct {
	in, out, key string
	iamat        bool
}

// recorder keeps the protocol log's records in order.
type recorder struct {
	mu  sync.Mutex
	got []record
}

func (r *recorder) Line(_ time.Time, _ uint64, _ string, in, out []byte, key, _ string) {
	r.mu.Lock()
	r.got = append(r.got, record{string(in), string(out), key, false})
	r.mu.Unlock()
}

func (r *recorder) IAMATs(_ time.Time, _ uint64, _ string, out []byte) {
	r.mu.Lock()
	r.got = append(r.got, record{"", string(out), "", true})
	r.mu.Unlock()
}

func (r *recorder) records() []record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]record(nil), r.got...)
}

// TestProtocolLogRecords: the IAMATs of one read share a record, their
// lines joined by newlines and their replies in order, the lines left out
// when each is what its reply repeats; any other line has a record of its
// own; no line is missing and the records keep the connection's order.
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
		// Not what its reply repeats: two spaces, a tab.
		spaced = "IAMAT  b +34.068930-118.445127\t1621464827.959498503"
	)
	line := func(in, out, key string) record { return record{in, out, key, false} }
	iamats := func(out string) record { return record{"", out, "", true} }
	tests := []struct {
		name  string
		input string // sent in one write
		last  string // the start of the last reply, after which every record is written
		want  []record
	}{
		{"one IAMAT", a + "\n", first, []record{iamats(atA)}},
		{"IAMATs of one read", a + "\n" + b + "\r\n" + c + "\n", "AT Hill +0.263873386 c",
			[]record{iamats(atA + atB + atC)}},
		{"one IAMAT spaced its own way", spaced + "\n", "AT Hill +0.263873386 b", []record{line(spaced, atB, "")}},
		{"IAMATs of one read, one spaced its own way", a + "\n" + spaced + "\n" + c + "\n", "AT Hill +0.263873386 c",
			[]record{line(a+"\n"+spaced+"\n"+c, atA+atB+atC, "")}},
		{"IAMATs of one read, the last spaced its own way", a + "\n" + c + "\n" + spaced + "\n", "AT Hill +0.263873386 b",
			[]record{line(a+"\n"+c+"\n"+spaced, atA+atC+atB, "")}},
		{"an invalid line between IAMATs", a + "\n" + b + "\n" + bad + "\n" + c + "\n", "AT Hill +0.263873386 c",
			[]record{iamats(atA + atB), line(bad, "? "+bad+"\n", "reason"), iamats(atC)}},
		{"an IAMAT too far ahead between IAMATs", a + "\n" + far + "\n" + b + "\n", "AT Hill +0.263873386 b",
			[]record{iamats(atA), line(far, "? "+far+"\n", "reason"), iamats(atB)}},
		{"a blank line between IAMATs", a + "\n\n" + b + "\n", "AT Hill +0.263873386 b",
			[]record{iamats(atA), line("", "", ""), iamats(atB)}},
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
				t.Fatalf("records %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("record %d: %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}
