package protocol

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name   string
		line   string
		kind   Kind
		client string
		pos    string
		time   string
		radius string
		bound  int
	}{
		// IAMAT, valid.
		{name: "iamat spec example", line: "IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503",
			kind: IAMAT, client: "kiwi.cs.ucla.edu", pos: "+34.068930-118.445127", time: "1621464827.959498503"},
		{name: "iamat short fraction", line: "IAMAT k +34.06893-118.445127 1", kind: IAMAT, client: "k", pos: "+34.06893-118.445127", time: "1"},
		{name: "iamat integer position", line: "IAMAT k +12-118 1.5", kind: IAMAT, client: "k", pos: "+12-118", time: "1.5"},
		{name: "iamat extremes", line: "IAMAT k -90+180 0", kind: IAMAT, client: "k", pos: "-90+180", time: "0"},
		{name: "iamat extremes with zero fraction", line: "IAMAT k +90.000-180.0 0.0", kind: IAMAT, client: "k", pos: "+90.000-180.0", time: "0.0"},
		{name: "iamat three-digit latitude", line: "IAMAT k +089.5+001 1", kind: IAMAT, client: "k", pos: "+089.5+001", time: "1"},
		{name: "iamat long fraction", line: "IAMAT k +1.123456789012-2.5 1.123456789012345", kind: IAMAT, client: "k", pos: "+1.123456789012-2.5", time: "1.123456789012345"},
		{name: "iamat tabs and runs of space", line: "\t IAMAT \t k  +1+2\v\f3  ", kind: IAMAT, client: "k", pos: "+1+2", time: "3"},
		{name: "iamat trailing CR", line: "IAMAT k +1+2 3\r", kind: IAMAT, client: "k", pos: "+1+2", time: "3"},
		{name: "iamat odd client id", line: "IAMAT ☃é\x00\x7f +1+2 3", kind: IAMAT, client: "☃é\x00\x7f", pos: "+1+2", time: "3"},
		{name: "iamat client id IAMAT", line: "IAMAT IAMAT +1+2 3", kind: IAMAT, client: "IAMAT", pos: "+1+2", time: "3"},
		{name: "iamat 18 digit time", line: "IAMAT k +1+2 999999999999999999.999999999", kind: IAMAT, client: "k", pos: "+1+2", time: "999999999999999999.999999999"},
		{name: "iamat leading zeros in time", line: "IAMAT k +1+2 0000000000000000000001", kind: IAMAT, client: "k", pos: "+1+2", time: "0000000000000000000001"},

		// IAMAT, invalid.
		{name: "iamat too few fields", line: "IAMAT Clark +12-118", kind: Invalid},
		{name: "iamat too many fields", line: "IAMAT k +1+2 3 4", kind: Invalid},
		{name: "iamat alone", line: "IAMAT", kind: Invalid},
		{name: "iamat lower case", line: "iamat k +1+2 3", kind: Invalid},
		{name: "iamat unsigned latitude", line: "IAMAT k 34.0-118.0 1", kind: Invalid},
		{name: "iamat unsigned longitude", line: "IAMAT k +34.0118.0 1", kind: Invalid},
		{name: "iamat latitude over 90", line: "IAMAT k +90.000001+0 1", kind: Invalid},
		{name: "iamat latitude 91", line: "IAMAT k -91+0 1", kind: Invalid},
		{name: "iamat longitude over 180", line: "IAMAT k +0+180.5 1", kind: Invalid},
		{name: "iamat longitude 181", line: "IAMAT k +0-181 1", kind: Invalid},
		{name: "iamat four integer digits", line: "IAMAT k +0001+0 1", kind: Invalid},
		{name: "iamat empty fraction", line: "IAMAT k +1.-2 1", kind: Invalid},
		{name: "iamat fraction without digits", line: "IAMAT k +.5-2 1", kind: Invalid},
		{name: "iamat one coordinate", line: "IAMAT k +34.068930 1", kind: Invalid},
		{name: "iamat three coordinates", line: "IAMAT k +1+2+3 1", kind: Invalid},
		{name: "iamat double sign", line: "IAMAT k ++1+2 1", kind: Invalid},
		{name: "iamat exponent", line: "IAMAT k +1e1+2 1", kind: Invalid},
		{name: "iamat comma", line: "IAMAT k +1,5+2 1", kind: Invalid},
		{name: "iamat space inside position", line: "IAMAT k +1 +2 1", kind: Invalid},
		{name: "iamat negative time", line: "IAMAT k +1+2 -1", kind: Invalid},
		{name: "iamat signed time", line: "IAMAT k +1+2 +1", kind: Invalid},
		{name: "iamat time with empty fraction", line: "IAMAT k +1+2 1.", kind: Invalid},
		{name: "iamat time starting with point", line: "IAMAT k +1+2 .5", kind: Invalid},
		{name: "iamat time exponent", line: "IAMAT k +1+2 1e9", kind: Invalid},
		{name: "iamat time two points", line: "IAMAT k +1+2 1.2.3", kind: Invalid},
		{name: "iamat time 19 digits", line: "IAMAT k +1+2 1000000000000000000", kind: Invalid},
		{name: "iamat time letters", line: "IAMAT k +1+2 now", kind: Invalid},

		// WHATSAT, valid.
		{name: "whatsat spec example", line: "WHATSAT kiwi.cs.ucla.edu 10 5", kind: WHATSAT, client: "kiwi.cs.ucla.edu", radius: "10", bound: 5},
		{name: "whatsat max", line: "WHATSAT k 50 20", kind: WHATSAT, client: "k", radius: "50", bound: 20},
		{name: "whatsat 50 with zero fraction", line: "WHATSAT k 50.000 20", kind: WHATSAT, client: "k", radius: "50.000", bound: 20},
		{name: "whatsat fraction radius", line: "WHATSAT k 0.001 0", kind: WHATSAT, client: "k", radius: "0.001", bound: 0},
		{name: "whatsat point radius", line: "WHATSAT k .5 1", kind: WHATSAT, client: "k", radius: ".5", bound: 1},
		{name: "whatsat trailing point radius", line: "WHATSAT k 5. 1", kind: WHATSAT, client: "k", radius: "5.", bound: 1},
		{name: "whatsat leading zeros", line: "WHATSAT k 007 020", kind: WHATSAT, client: "k", radius: "007", bound: 20},
		{name: "whatsat whitespace", line: " WHATSAT\tk\v10\f5 \r", kind: WHATSAT, client: "k", radius: "10", bound: 5},

		// WHATSAT, invalid.
		{name: "whatsat radius zero", line: "WHATSAT k 0 5", kind: Invalid},
		{name: "whatsat radius zero fraction", line: "WHATSAT k 0.000 5", kind: Invalid},
		{name: "whatsat radius over 50", line: "WHATSAT k 51 5", kind: Invalid},
		{name: "whatsat radius just over 50", line: "WHATSAT k 50.0000000000000000001 5", kind: Invalid},
		{name: "whatsat radius 100", line: "WHATSAT k 100 5", kind: Invalid},
		{name: "whatsat negative radius", line: "WHATSAT k -1 5", kind: Invalid},
		{name: "whatsat signed radius", line: "WHATSAT k +1 5", kind: Invalid},
		{name: "whatsat radius exponent", line: "WHATSAT k 1e1 5", kind: Invalid},
		{name: "whatsat radius point only", line: "WHATSAT k . 5", kind: Invalid},
		{name: "whatsat radius letters", line: "WHATSAT k ten 5", kind: Invalid},
		{name: "whatsat bound over 20", line: "WHATSAT k 10 21", kind: Invalid},
		{name: "whatsat bound 100", line: "WHATSAT k 10 100", kind: Invalid},
		{name: "whatsat negative bound", line: "WHATSAT k 10 -1", kind: Invalid},
		{name: "whatsat fractional bound", line: "WHATSAT k 10 5.0", kind: Invalid},
		{name: "whatsat too few fields", line: "WHATSAT k 10", kind: Invalid},
		{name: "whatsat too many fields", line: "WHATSAT k 10 5 5", kind: Invalid},
		{name: "whatsat lower case", line: "whatsat k 10 5", kind: Invalid},

		// Others.
		{name: "empty", line: "", kind: Blank},
		{name: "only whitespace", line: " \t\r\v\f ", kind: Blank},
		{name: "unknown command", line: "HELLO", kind: Invalid},
		{name: "AT from a client", line: "AT Hill +0.263873386 kiwi +34.068930-118.445127 1621464827.959498503", kind: Invalid},
		{name: "garbage", line: "\x00\xff\xfe", kind: Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Parse([]byte(tt.line))
			if got.Kind != tt.kind {
				t.Fatalf("Parse(%q).Kind = %v (%s), want %v", tt.line, got.Kind, got.Reason, tt.kind)
			}
			if tt.kind == Invalid && got.Reason == "" {
				t.Errorf("Parse(%q) is invalid without a reason", tt.line)
			}
			if string(got.Client) != tt.client || string(got.Pos) != tt.pos || string(got.Time) != tt.time ||
				string(got.Radius) != tt.radius || got.Bound != tt.bound {
				t.Errorf("Parse(%q) = client %q pos %q time %q radius %q bound %d, want %q %q %q %q %d", tt.line,
					got.Client, got.Pos, got.Time, got.Radius, got.Bound, tt.client, tt.pos, tt.time, tt.radius, tt.bound)
			}
		})
	}
}

func TestText(t *testing.T) {
	c := Parse([]byte("IAMAT\tkiwi   +34.068930-118.445127 \v 1621464827.959498503"))
	if got, want := c.Text(), "kiwi +34.068930-118.445127 1621464827.959498503"; got != want {
		t.Errorf("Text() = %q, want %q", got, want)
	}
}

func TestRadiusKm(t *testing.T) {
	for _, tt := range []struct {
		line string
		km   float64
	}{{"WHATSAT k 10 5", 10}, {"WHATSAT k .5 5", 0.5}, {"WHATSAT k 5. 5", 5}, {"WHATSAT k 049.75 5", 49.75}} {
		if got := Parse([]byte(tt.line)).RadiusKm(); got != tt.km {
			t.Errorf("RadiusKm of %q = %v, want %v", tt.line, got, tt.km)
		}
	}
}

func TestParsePos(t *testing.T) {
	lat, lng, ok := ParsePos("+34.068930-118.445127")
	if !ok || lat != 34.06893 || lng != -118.445127 {
		t.Errorf("ParsePos = %v %v %v", lat, lng, ok)
	}
	if _, _, ok := ParsePos("+91+0"); ok {
		t.Error("ParsePos accepted latitude 91")
	}
}

func TestParseNeverAllocates(t *testing.T) {
	lines := [][]byte{
		[]byte("IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503"),
		[]byte("WHATSAT kiwi.cs.ucla.edu 10 5"),
		[]byte("IAMAT Clark +12-118"),
		[]byte("nonsense"),
	}
	for _, l := range lines {
		if n := testing.AllocsPerRun(100, func() { Parse(l) }); n != 0 {
			t.Errorf("Parse(%q) allocates %v times", l, n)
		}
	}
}

func TestIAMATParseAndReplyAllocatesOnce(t *testing.T) {
	line := []byte("IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503")
	buf := make([]byte, 0, 256)
	n := testing.AllocsPerRun(100, func() {
		c := Parse(line)
		buf = AppendATParsed(buf[:0], "Hill", 1621464828223371889, c.Sec, c.Nsec, c.Text())
	})
	if n > 1 {
		t.Errorf("parse and reply of an IAMAT allocates %v times, want at most 1", n)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503",
		"WHATSAT kiwi.cs.ucla.edu 10 5",
		"IAMAT k +90.000-180.0 0.0",
		"WHATSAT k 50.0000000000000000001 5",
		" \t\r", "", "\xff\x00", "IAMAT k +1+2 999999999999999999.999999999",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		c := Parse(line)
		switch c.Kind {
		case Blank:
			if strings.TrimLeft(string(line), " \t\r\v\f\n") != "" {
				t.Fatalf("non-blank line %q parsed as blank", line)
			}
		case IAMAT:
			text := c.Text()
			if strings.Count(text, " ") != 2 {
				t.Fatalf("IAMAT text %q does not have three fields", text)
			}
			if _, _, ok := ParsePos(string(c.Pos)); !ok {
				t.Fatalf("accepted position %q does not parse", c.Pos)
			}
			at := string(AppendAT(nil, "Hill", 1621464828223371889, text))
			if !strings.HasPrefix(at, "AT Hill ") || !strings.HasSuffix(at, " "+text) {
				t.Fatalf("bad AT line %q", at)
			}
			// The reply to the IAMAT, from its parsed time, is the AT line
			// that WHATSAT shows later, from the stored text.
			if reply := string(AppendATParsed(nil, "Hill", 1621464828223371889, c.Sec, c.Nsec, text)); reply != at {
				t.Fatalf("AT reply %q, stored AT line %q", reply, at)
			}
			// The reply must parse back: diff has a sign and nine decimals.
			diff := strings.Fields(at)[2]
			if (diff[0] != '+' && diff[0] != '-') || len(diff) < 12 || diff[len(diff)-10] != '.' {
				t.Fatalf("bad difference %q", diff)
			}
		case WHATSAT:
			if km := c.RadiusKm(); !(km > 0 && km <= MaxRadiusKm) {
				t.Fatalf("accepted radius %q = %v", c.Radius, km)
			}
			if c.Bound < 0 || c.Bound > MaxBound {
				t.Fatalf("accepted bound %d", c.Bound)
			}
		case Invalid:
			if c.Reason == "" {
				t.Fatal("invalid without a reason")
			}
		}
	})
}

func BenchmarkParseIAMAT(b *testing.B) {
	line := []byte("IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503")
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		Parse(line)
	}
}

// BenchmarkIAMATParseAndReply is the protocol's whole share of an IAMAT:
// parse, the record text (the one allocation), and the AT reply.
func BenchmarkIAMATParseAndReply(b *testing.B) {
	line := []byte("IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503")
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		c := Parse(line)
		buf = AppendATParsed(buf[:0], "Hill", 1621464828223371889, c.Sec, c.Nsec, c.Text())
	}
}

func BenchmarkParseWHATSAT(b *testing.B) {
	line := []byte("WHATSAT kiwi.cs.ucla.edu 10 5")
	b.ReportAllocs()
	for b.Loop() {
		Parse(line)
	}
}
