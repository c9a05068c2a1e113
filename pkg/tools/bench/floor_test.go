package bench

import (
	"regexp"

	"strings"
	"testing"

	"github.com/herdkit/herd/pkg/protocol"
)

func TestFloorFraming(t *testing.T) {
	s := startFloor(t)
	at := `AT Floor \+0\.\d{9} `
	tests := []struct {
		name   string
		send   []string // written one after the other
		expect []string // regular expressions, one per reply's first line; a WHATSAT's starts "W:"
		closed bool     // the server closes the connection after the replies
	}{
		{
			name: "pipelined in one write",
			send: []string{"IAMAT a +1+2 3\nWHATSAT a 10 5\nHELLO\n"},
			expect: []string{
				`AT Floor \+\d+\.\d{9} a \+1\+2 3`,
				"W:" + at + `a \+34\.068930-118\.445127 1621464827\.959498503`,
				`\? HELLO`,
			},
		},
		{
			name:   "split across writes, CR LF, blank lines",
			send:   []string{"IAMAT b +1+", "2 4\r\n\n \t\r\nWHAT", "SAT x 1 0\n"},
			expect: []string{`AT Floor \+\d+\.\d{9} b \+1\+2 4`, "W:" + at + `x \S+ \S+`},
		},
		{
			name:   "last line without LF at half-close",
			send:   []string{"IAMAT c +1+2 5\nIAMAT Clark +12-118"},
			expect: []string{`AT Floor \S+ c \+1\+2 5`, `\? IAMAT Clark \+12-118`},
			closed: true,
		},
		{
			name:   "line too long closes without echo",
			send:   []string{"IAMAT d +1+2 6\n" + strings.Repeat("x", 5000) + "\nIAMAT e +1+2 7\n"},
			expect: []string{`AT Floor \S+ d \+1\+2 6`},
			closed: true,
		},
		{
			name:   "endless line closes",
			send:   []string{strings.Repeat("y", 5000)},
			closed: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := dialTranscript(t, s.Addr())
			for _, chunk := range tt.send {
				tr.send(chunk)
			}
			if strings.Contains(tt.name, "half-close") {
				tr.c.CloseWrite()
			}
			for _, re := range tt.expect {
				form := protocol.LineReply
				if w, ok := strings.CutPrefix(re, "W:"); ok {
					form, re = protocol.PlacesReply, w
				}
				r := tr.reply(form)
				if got := string(r.Line); !regexp.MustCompile(`^` + re + `$`).MatchString(got) {
					t.Fatalf("got %q, want %q", got, re)
				}
				if form == protocol.PlacesReply && (r.Kind != protocol.ReplyAT || string(r.JSON) != floorJSON) {
					t.Fatalf("WHATSAT reply %q", r.Raw)
				}
			}
			if tt.closed {
				tr.expectClosed()
			}
		})
	}
}

// TestFloorReplySize checks that the floor's AT line to an IAMAT has the
// size of a real server's, for a name of the same length.
func TestFloorReplySize(t *testing.T) {
	s := startFloor(t)
	line := "IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503"
	tr := dialTranscript(t, s.Addr())
	tr.send(line + "\n")
	got := string(tr.reply(protocol.LineReply).Raw)
	// A real reply a few hours after the client's time.
	real := "AT Smith +12345.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503\n"
	if len(got) < len(real)-4 || len(got) > len(real)+6 {
		t.Errorf("floor reply %q has %d bytes, a real one %d", got, len(got), len(real))
	}
	if c := s.Counts(); c.IAMAT != 1 || c.Lines() != 1 {
		t.Errorf("counts %+v", c)
	}
}
