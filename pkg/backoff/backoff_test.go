package backoff

import (
	"testing"
	"time"
)

func TestNext(t *testing.T) {
	tests := []struct {
		name string
		b    Backoff
		want []time.Duration
	}{
		{"doubles to the cap", Backoff{Base: 5 * time.Millisecond, Max: time.Second},
			[]time.Duration{5e6, 10e6, 20e6, 40e6, 80e6, 160e6, 320e6, 640e6, 1e9, 1e9}},
		{"cap below base", Backoff{Base: time.Second, Max: 100 * time.Millisecond},
			[]time.Duration{100e6, 100e6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, want := range tt.want {
				if got := tt.b.Next(); got != want {
					t.Fatalf("wait %d = %v, want %v", i, got, want)
				}
			}
			if got := tt.b.Failures(); got != len(tt.want) {
				t.Fatalf("Failures() = %d, want %d", got, len(tt.want))
			}
			tt.b.Reset()
			if got := tt.b.Next(); got != tt.want[0] {
				t.Fatalf("after Reset, wait = %v, want %v", got, tt.want[0])
			}
		})
	}
}

func TestJitterStaysInUpperHalf(t *testing.T) {
	b := Backoff{Base: 50 * time.Millisecond, Max: 2 * time.Second, Jitter: true}
	seen := map[time.Duration]bool{}
	for failures := range 100 {
		full := min(b.Max, b.Base<<min(failures, 29))
		for range 20 {
			d := b.Wait(failures)
			if d < full/2 || d > full {
				t.Fatalf("Wait(%d) = %v, want within [%v, %v]", failures, d, full/2, full)
			}
			seen[d] = true
		}
	}
	if len(seen) < 100 {
		t.Fatalf("only %d distinct waits in 2000: not jittered", len(seen))
	}
}

func TestManyFailuresDoNotOverflow(t *testing.T) {
	b := Backoff{Base: time.Millisecond, Max: time.Minute}
	for range 200 {
		if d := b.Next(); d <= 0 || d > time.Minute {
			t.Fatalf("wait %v after %d failures", d, b.Failures())
		}
	}
}
