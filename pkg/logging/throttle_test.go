package logging

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestThrottleAllow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	type event struct {
		at      time.Duration // after t0
		key     string
		logged  bool
		skipped int // the not_logged count on a line logged
	}
	tests := []struct {
		name   string
		events []event
	}{
		{"the first is logged", []event{{0, "", true, 0}}},
		{"repeats within Every are left out and counted", []event{
			{0, "", true, 0}, {100 * time.Millisecond, "", false, 0}, {900 * time.Millisecond, "", false, 0},
			{time.Second, "", true, 2}, {1500 * time.Millisecond, "", false, 0}, {3 * time.Second, "", true, 1},
		}},
		{"a new key is logged at once", []event{
			{0, "dial: refused", true, 0}, {10 * time.Millisecond, "dial: refused", false, 0},
			{20 * time.Millisecond, "dial: timeout", true, 1}, {30 * time.Millisecond, "dial: timeout", false, 0},
			{40 * time.Millisecond, "dial: refused", true, 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := Throttle{Every: time.Second}
			for i, e := range tt.events {
				var args []any
				got := th.allow(e.key, t0.Add(e.at), &args)
				if got != e.logged {
					t.Fatalf("event %d: logged %v, want %v", i, got, e.logged)
				}
				skipped := 0
				if len(args) == 2 && args[0] == "not_logged" {
					skipped = args[1].(int)
				}
				if got && skipped != e.skipped {
					t.Fatalf("event %d: not_logged %d, want %d (args %v)", i, skipped, e.skipped, args)
				}
			}
		})
	}
}

func TestThrottleLogConcurrent(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), nil))
	th := Throttle{Every: time.Hour}
	var wg sync.WaitGroup
	logged := make(chan bool, 800)
	for range 8 {
		wg.Go(func() {
			for range 100 {
				logged <- th.Log(log, slog.LevelWarn, "", "refused", "reason", "max")
			}
		})
	}
	wg.Wait()
	close(logged)
	n := 0
	for ok := range logged {
		if ok {
			n++
		}
	}
	if n != 1 || strings.Count(buf.String(), "refused") != 1 {
		t.Fatalf("%d lines logged of 800 within Every, want 1:\n%s", n, buf.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
