package bench

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// checkExact checks that every request was answered, without error, and
// that the server handled as many lines as the run sent.
func checkExact(t *testing.T, s *LoadSummary, serverLines int64) {
	t.Helper()
	if s.Errors.Total != 0 {
		t.Errorf("errors: %+v", s.Errors)
	}
	if s.Sent != s.Received || s.TotalSent != s.TotalReceived {
		t.Errorf("sent %d (in all %d), received %d (in all %d)", s.Sent, s.TotalSent, s.Received, s.TotalReceived)
	}
	if s.TotalSent != serverLines {
		t.Errorf("sent %d in all, the server handled %d lines", s.TotalSent, serverLines)
	}
	if s.IAMAT.Sent+s.WHATSAT.Sent != s.Sent || s.IAMAT.Received+s.WHATSAT.Received != s.Received {
		t.Errorf("kinds do not add up: %+v %+v, sent %d received %d", s.IAMAT, s.WHATSAT, s.Sent, s.Received)
	}
	if s.Latency.Count != s.Received-s.IAMAT.Invalid-s.WHATSAT.Invalid {
		t.Errorf("latency count %d, valid replies %d", s.Latency.Count, s.Received)
	}
	l := s.Latency
	if s.Received > 0 && !(l.MinUs <= l.P50Us && l.P50Us <= l.P90Us && l.P90Us <= l.P99Us && l.P99Us <= l.P999Us && l.P999Us <= l.MaxUs) {
		t.Errorf("percentiles out of order: %+v", l)
	}
}

func TestLoadAgainstFloor(t *testing.T) {
	tests := []struct {
		name string
		cfg  LoadConfig
		sent int64 // exact, when not 0
	}{
		{"closed loop n", LoadConfig{N: 1000, Conns: 7, Pipeline: 8}, 1000},
		{"closed loop n smaller than connections", LoadConfig{N: 3, Conns: 5}, 3},
		{"closed loop duration", LoadConfig{Duration: 300 * time.Millisecond, Conns: 4, Pipeline: 4}, 0},
		{"open loop n", LoadConfig{N: 600, Conns: 5, Rate: 3000}, 600},
		{"open loop duration", LoadConfig{Duration: 300 * time.Millisecond, Conns: 3, Rate: 1000}, 0},
		{"open loop deep batches", LoadConfig{N: 5000, Conns: 2, Rate: 1e6}, 5000},
		{"mix", LoadConfig{N: 2000, Conns: 4, Pipeline: 16, Mix: 0.5}, 2000},
		{"all WHATSAT but the first", LoadConfig{N: 50, Conns: 1, Mix: 1}, 50},
		{"warm-up", LoadConfig{N: 300, Conns: 3, Warmup: 100 * time.Millisecond}, 300},
		{"open loop warm-up", LoadConfig{N: 300, Conns: 3, Rate: 2000, Warmup: 50 * time.Millisecond}, 300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startFloor(t)
			cfg := tt.cfg
			cfg.Addrs = []string{f.Addr()}
			s, err := Load(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", *s)
			c := f.Counts()
			checkExact(t, s, c.Lines())
			if cfg.Warmup == 0 && (c.IAMAT != s.IAMAT.Sent || c.WHATSAT != s.WHATSAT.Sent || c.Invalid != 0) {
				t.Errorf("floor counts %+v, summary IAMAT %+v WHATSAT %+v", c, s.IAMAT, s.WHATSAT)
			}
			if tt.sent != 0 && s.Sent != tt.sent {
				t.Errorf("sent %d, want %d", s.Sent, tt.sent)
			}
			if s.Sent == 0 {
				t.Error("sent nothing")
			}
			if cfg.Mix == 0 && s.WHATSAT.Sent != 0 {
				t.Errorf("WHATSAT sent %d with mix 0", s.WHATSAT.Sent)
			}
			if cfg.Mix == 1 && s.IAMAT.Sent != 1 {
				t.Errorf("IAMAT sent %d with mix 1, want only the first", s.IAMAT.Sent)
			}
			if cfg.Mix == 0.5 && (s.WHATSAT.Sent < s.Sent/3 || s.IAMAT.Sent < s.Sent/3) {
				t.Errorf("mix 0.5 gave %d IAMAT and %d WHATSAT", s.IAMAT.Sent, s.WHATSAT.Sent)
			}
			if cfg.Warmup > 0 && s.Warmup.Sent == 0 {
				t.Error("nothing sent during the warm-up")
			}
			if cfg.Duration > 0 && (s.Seconds < cfg.Duration.Seconds() || s.Seconds > cfg.Duration.Seconds()+2) {
				t.Errorf("measured %.3fs for a run of %v", s.Seconds, cfg.Duration)
			}
			if cfg.Rate > 0 && cfg.Rate < 1e5 && cfg.Duration > 0 {
				if want := cfg.Rate * cfg.Duration.Seconds(); float64(s.Sent) < want*0.9 || float64(s.Sent) > want*1.1+1 {
					t.Errorf("open loop sent %d, the schedule has %.0f", s.Sent, want)
				}
			}
		})
	}
}

// TestLoadMixAsksAboutKnownIDs runs a mix against a server that knows only
// the ids it was told: no WHATSAT may be refused.
func TestLoadMixAsksAboutKnownIDs(t *testing.T) {
	h, addrs := startFakeHerd(t, 0, 0)
	s, err := Load(context.Background(), LoadConfig{Addrs: addrs, N: 2000, Conns: 6, Pipeline: 8, Mix: 0.7, Clients: 50})
	if err != nil {
		t.Fatal(err)
	}
	checkExact(t, s, int64(h.handled(0)+h.handled(1)))
	if s.WHATSAT.Received < 1000 || s.WHATSAT.Invalid != 0 {
		t.Errorf("WHATSAT %+v", s.WHATSAT)
	}
}

func TestLoadCountsErrors(t *testing.T) {
	tests := []struct {
		name   string
		answer func(line string) string
		mix    float64
		check  func(t *testing.T, s *LoadSummary)
	}{
		{
			name:   "invalid replies",
			answer: func(line string) string { return "? " + line + "\n" },
			check: func(t *testing.T, s *LoadSummary) {
				if s.Errors.Invalid != s.Sent || s.IAMAT.Invalid != s.Sent || s.Received != s.Sent || s.Latency.Count != 0 {
					t.Errorf("summary %+v", s)
				}
			},
		},
		{
			name:   "WHATSAT reply without JSON",
			answer: func(line string) string { return "AT x\n" },
			mix:    1,
			check: func(t *testing.T, s *LoadSummary) {
				// The IAMAT is fine; the WHATSAT's second line is not JSON.
				if s.Errors.Malformed != 4 || s.Errors.Connections != 4 || s.IAMAT.Received != 4 || s.Errors.Unanswered == 0 {
					t.Errorf("errors %+v, IAMAT %+v", s.Errors, s.IAMAT)
				}
			},
		},
		{
			name: "WHATSAT reply with JSON cut short",
			answer: func(line string) string {
				if strings.HasPrefix(line, "WHATSAT") {
					return "AT x\n{\n \"results\": [\n\n"
				}
				return "AT x\n"
			},
			mix: 1,
			check: func(t *testing.T, s *LoadSummary) {
				if s.Errors.Malformed != 4 {
					t.Errorf("errors %+v", s.Errors)
				}
			},
		},
		{
			name:   "not a reply",
			answer: func(line string) string { return "hello\n" },
			check: func(t *testing.T, s *LoadSummary) {
				if s.Errors.Malformed != 4 || s.Errors.Connections != 4 {
					t.Errorf("errors %+v", s.Errors)
				}
			},
		},
		{
			name: "server closes",
			check: func(t *testing.T, s *LoadSummary) {
				if s.Errors.Unanswered != s.Sent || s.Errors.Connections != 4 {
					t.Errorf("errors %+v", s.Errors)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var addr string
			if tt.name == "server closes" {
				addr = startClosingServer(t)
			} else {
				addr = startLineServer(t, tt.answer)
			}
			s, err := Load(context.Background(), LoadConfig{Addrs: []string{addr}, N: 40, Conns: 4, Pipeline: 2, Mix: tt.mix, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", *s)
			if s.Sent == 0 {
				t.Fatal("sent nothing")
			}
			if s.Errors.Total != s.Errors.Invalid+s.Errors.Malformed+s.Errors.Unanswered+s.Errors.Connections {
				t.Errorf("total %+v", s.Errors)
			}
			tt.check(t, s)
		})
	}
}

// startClosingServer accepts connections, reads once and closes them
// without a reply.
func startClosingServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				c.Read(make([]byte, 64<<10))
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}
