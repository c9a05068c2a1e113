package protocol

import (
	"bytes"
	"testing"
)

func TestPackFields(t *testing.T) {
	tests := []struct {
		name      string
		pos, time string
		packs     bool
	}{
		{"spec example", "+34.068930-118.445127", "1621464827.959498503", true},
		{"no fractions", "+12-118", "1621464827", true},
		{"short fractions", "+34.06893-118.4", "1621464827.5", true},
		{"trailing zeros", "+34.000000-118.100000", "1621464827.500000000", true},
		{"leading zeros of a coordinate", "+034.5-008.25", "1", true},
		{"zero", "+0+0", "0", true},
		{"negative zero", "-0.0-0.0", "0.0", true},
		{"time of zero with decimals", "+1+1", "0.000000001", true},
		{"seven decimals", "+90.0000000-180.0000000", "1.1", true},
		{"the largest coordinates", "-90.0000000+180.0000000", "17179869183.999999999", true},
		{"eight decimals of latitude", "+34.06893012-118.4", "1", false},
		{"eight decimals of longitude", "+34.0-118.44512712", "1", false},
		{"ten decimals of time", "+1+1", "1621464827.9594985031", false},
		{"leading zeros of a time", "+1+1", "01621464827", false},
		{"a time of two zeros", "+1+1", "00", false},
		{"seconds at 2^34", "+1+1", "17179869184", false},
		{"a time of 19 digits", "+1+1", "9999999999999999999", false},
		{"three digits too many", "+999.9999999+1", "1", false},
		{"four integer digits", "+1234+1", "1", false},
		{"no sign", "34.0-118.0", "1", false},
		{"no longitude", "+34.0", "1", false},
		{"a point without decimals", "+34.-118", "1", false},
		{"a time ending in a point", "+1+1", "1.", false},
		{"a time with a sign", "+1+1", "+1", false},
		{"an empty time", "+1+1", "", false},
		{"something after", "+1+1x", "1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, ok := PackFields(tt.pos, tt.time)
			if ok != tt.packs {
				t.Fatalf("PackFields(%q, %q) packs: %t, want %t", tt.pos, tt.time, ok, tt.packs)
			}
			if !ok {
				return
			}
			checkRoundTrip(t, f, tt.pos, tt.time)
		})
	}
}

// checkRoundTrip checks that f, packed from pos and time, gives them back
// byte for byte, with the lengths and the seconds and nanoseconds of the
// time as ParseTime reads it.
func checkRoundTrip(t *testing.T, f Fields, pos, time string) {
	t.Helper()
	if got := string(f.Append([]byte("x"))); got != "x"+pos+" "+time {
		t.Errorf("Append = %q, want %q", got, "x"+pos+" "+time)
	}
	if got := string(f.AppendPos(nil)); got != pos || f.PosLen() != len(pos) {
		t.Errorf("AppendPos = %q (PosLen %d), want %q", got, f.PosLen(), pos)
	}
	if got := string(f.AppendTime(nil)); got != time || f.TimeLen() != len(time) {
		t.Errorf("AppendTime = %q (TimeLen %d), want %q", got, f.TimeLen(), time)
	}
	if f.Len() != len(pos)+1+len(time) {
		t.Errorf("Len = %d, want %d", f.Len(), len(pos)+1+len(time))
	}
	if f.Format == Unpacked {
		t.Errorf("Format is Unpacked")
	}
	sec, nsec, _ := ParseTime(time)
	if f.Sec() != sec || f.Nsec() != nsec {
		t.Errorf("Sec, Nsec = %d, %d, want %d, %d", f.Sec(), f.Nsec(), sec, nsec)
	}
}

// TestPackedTimeOrder checks that Fields.Time orders times as CompareTime
// does.
func TestPackedTimeOrder(t *testing.T) {
	times := []string{"0", "0.000000001", "0.5", "0.50", "1", "1.0", "1.000000001", "9", "10", "1621464827.959498503", "1621464827.96", "17179869183.999999999"}
	for _, a := range times {
		for _, b := range times {
			fa, _ := PackFields("+1+1", a)
			fb, _ := PackFields("+1+1", b)
			want := CompareTime(a, b)
			got := 0
			if fa.Time < fb.Time {
				got = -1
			} else if fa.Time > fb.Time {
				got = 1
			}
			if got != want {
				t.Errorf("%q against %q: packed %d, CompareTime %d", a, b, got, want)
			}
		}
	}
}

// TestAppendATFields checks that the AT line of packed fields is the one
// of the text.
func TestAppendATFields(t *testing.T) {
	f, _ := PackFields("+34.068930-118.445127", "1621464827.959498503")
	got := AppendATFields(nil, "Hill", 1621464828223371889, "kiwi.cs.ucla.edu", f)
	want := AppendAT(nil, "Hill", 1621464828223371889, "kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503")
	if !bytes.Equal(got, want) {
		t.Errorf("AppendATFields = %q, want %q", got, want)
	}
}

// FuzzFields packs any position and time: what packs must come back byte
// for byte, and every valid IAMAT's fields in the common forms (up to
// seven decimals of a coordinate, nine of a time, no leading zeros of a
// time) must pack.
func FuzzFields(f *testing.F) {
	f.Add("+34.068930-118.445127", "1621464827.959498503")
	f.Add("+12-118", "1")
	f.Add("-00.0000001+180", "0.1")
	f.Add("+1.12345678+1", "01")
	f.Fuzz(func(t *testing.T, pos, time string) {
		p, ok := PackFields(pos, time)
		if ok {
			checkRoundTrip(t, p, pos, time)
		}
		cmd := Parse([]byte("IAMAT c " + pos + " " + time))
		if cmd.Kind != IAMAT || string(cmd.Pos) != pos || string(cmd.Time) != time {
			return
		}
		if !ok && commonForm(pos, time) {
			t.Errorf("the valid IAMAT fields %q %q do not pack", pos, time)
		}
	})
}

// commonForm reports whether a valid position and time have the forms
// PackFields promises to pack.
func commonForm(pos, time string) bool {
	frac := 0
	for i := 0; i < len(pos); i++ {
		switch c := pos[i]; {
		case c == '.':
			frac = 0
		case c == '+' || c == '-':
			frac = -1
		case frac >= 0:
			if frac++; frac > maxPackedFrac {
				return false
			}
		}
	}
	sec, _, _ := ParseTime(time)
	whole, decimals := splitTime(time)
	return len(decimals) <= 9 && sec < 1<<34 && (len(whole) == 1 || whole[0] != '0')
}

func BenchmarkPackFields(b *testing.B) {
	pos, time := []byte("+34.068930-118.445127"), []byte("1621464827.959498503")
	b.ReportAllocs()
	for range b.N {
		PackFields(pos, time)
	}
}

func BenchmarkFieldsAppend(b *testing.B) {
	f, _ := PackFields("+34.068930-118.445127", "1621464827.959498503")
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for range b.N {
		buf = f.Append(buf[:0])
	}
}
