package protocol

import (
	"math/big"
	"testing"
)

func TestAppendDiff(t *testing.T) {
	tests := []struct {
		name string
		recv int64
		time string
		want string
	}{
		{"spec example", 1621464828223371889, "1621464827.959498503", "+0.263873386"},
		{"zero", 1621464827959498503, "1621464827.959498503", "+0.000000000"},
		{"client ahead", 1621464825459498503, "1621464827.959498503", "-2.500000000"},
		{"client ahead by less than a second", 1621464827959498000, "1621464827.959498503", "-0.000000503"},
		{"microseconds", 1621464827959621959, "1621464827.959498503", "+0.000123456"},
		{"whole seconds", 1700000000000000000, "1600000000", "+100000000.000000000"},
		{"short fraction", 1000000000, "0.5", "+0.500000000"},
		{"truncated tenth decimal", 2000000000, "1.0000000019", "+0.999999999"},
		{"time zero", 1, "0", "+0.000000001"},
		{"far future client", 1700000000000000000, "999999999999999999.999999999", "-999999998299999999.999999999"},
		{"leading zeros", 1700000000000000000, "0001700000000", "+0.000000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sec, nsec, ok := ParseTime(tt.time)
			if !ok {
				t.Fatalf("ParseTime(%q) failed", tt.time)
			}
			if got := string(AppendDiff(nil, tt.recv, sec, nsec)); got != tt.want {
				t.Errorf("AppendDiff(%d, %q) = %q, want %q", tt.recv, tt.time, got, tt.want)
			}
		})
	}
}

// TestAppendDiffMatchesBigArithmetic checks the seconds-and-nanoseconds
// arithmetic against exact rational arithmetic over many values.
func TestAppendDiffMatchesBigArithmetic(t *testing.T) {
	recvs := []int64{0, 1, 999999999, 1e9, 1621464828223371889, 1<<62 + 12345}
	times := []string{"0", "0.000000001", "1.999999999", "1621464827.959498503", "4611686018.427387904", "999999999999999999.5", "12.3"}
	for _, r := range recvs {
		for _, ts := range times {
			sec, nsec, _ := ParseTime(ts)
			want := new(big.Rat).SetFrac(big.NewInt(r), big.NewInt(1e9))
			ct, _ := new(big.Rat).SetString(ts)
			want.Sub(want, ct)
			w := want.FloatString(9)
			if want.Sign() >= 0 {
				w = "+" + w
			}
			if got := string(AppendDiff(nil, r, sec, nsec)); got != w {
				t.Errorf("AppendDiff(%d, %q) = %q, want %q", r, ts, got, w)
			}
		}
	}
}

func TestCompareTime(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1", "1", 0},
		{"1", "2", -1},
		{"10", "9", 1},
		{"01", "1", 0},
		{"1.5", "1.50", 0},
		{"1.5", "1.49999999999999", 1},
		{"1.0000000001", "1.0000000002", -1},
		{"1.0000000001", "1", 1},
		{"1621464827.959498503", "1621464827.959498504", -1},
		{"999999999999999999", "1000000000", 1},
		{"0", "0.000", 0},
	}
	for _, tt := range tests {
		if got := CompareTime(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareTime(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := CompareTime([]byte(tt.b), []byte(tt.a)); got != -tt.want {
			t.Errorf("CompareTime(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}
