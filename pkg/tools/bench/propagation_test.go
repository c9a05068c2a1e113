package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestPropagation(t *testing.T) {
	delays := []time.Duration{0, 20 * time.Millisecond, 40 * time.Millisecond}
	h, addrs := startFakeHerd(t, delays...)
	rep, err := Propagation(context.Background(), PropagationConfig{Addrs: addrs, N: 10, Interval: time.Millisecond, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", *rep)
	if rep.Samples != 10 || rep.Complete != 10 || rep.Errors.Total != 0 || rep.Origin != addrs[0] || len(rep.Servers) != 2 || rep.Since != SinceReceipt {
		t.Fatalf("report %+v", *rep)
	}
	if rep.IAMAT.Count != 10 {
		t.Errorf("IAMAT %+v", rep.IAMAT)
	}
	// A server's delay is at least its fake delay, and not much more on
	// an idle machine; the whole herd waits for the slowest.
	slack := int64(time.Second / time.Microsecond)
	for i, s := range rep.Servers {
		d := int64(delays[i+1] / time.Microsecond)
		if s.Addr != addrs[i+1] || s.Known != 10 || s.Missed != 0 || s.Polls < 10 || s.Latency.Count != 10 {
			t.Errorf("server %d: %+v", i+1, s)
		}
		if s.Latency.MinUs < d || s.Latency.MaxUs > d+slack {
			t.Errorf("server %d, delay %v: latency %+v", i+1, delays[i+1], s.Latency)
		}
		// Every poll's round trip is counted, and a delay holds at least
		// the round trip of the poll that saw the record.
		if s.Poll.Count != s.Polls || s.Poll.MinUs > s.Latency.MinUs {
			t.Errorf("server %d: %d polls, round trips %+v", i+1, s.Polls, s.Poll)
		}
	}
	if rep.Herd.Count != 10 || rep.Herd.MinUs < 40000 || rep.Herd.MinUs < rep.Servers[1].Latency.MinUs {
		t.Errorf("herd %+v", rep.Herd)
	}
	// Each poll is a line the server handled.
	if got, want := int64(h.handled(1)), rep.Servers[0].Polls; got != want {
		t.Errorf("server 1 handled %d lines, %d polls", got, want)
	}
}

func TestPropagationFromAddress(t *testing.T) {
	_, addrs := startFakeHerd(t, 0, 0, 5*time.Millisecond)
	out, _, code := run(t, "propagation", "-addrs", strings.Join(addrs, ","), "-from", addrs[2], "-n", "5", "-interval", "0s", "-json")
	if code != ExitOK {
		t.Fatalf("status %d", code)
	}
	var rep PropagationReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if rep.Mode != "propagation" || rep.Origin != addrs[2] || rep.Complete != 5 || len(rep.Servers) != 2 ||
		rep.Servers[0].Addr != addrs[0] || rep.Servers[1].Addr != addrs[1] || rep.Load != nil {
		t.Errorf("report %s", out)
	}
}

func TestPropagationMisses(t *testing.T) {
	// The third server learns nothing within the time-out.
	_, addrs := startFakeHerd(t, 0, 0, time.Hour)
	rep, err := Propagation(context.Background(), PropagationConfig{Addrs: addrs, N: 2, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Complete != 0 || rep.Errors.Missed != 2 || rep.Errors.Total != 2 || rep.Servers[0].Known != 2 || rep.Servers[1].Missed != 2 || rep.Herd.Count != 0 {
		t.Errorf("report %+v", *rep)
	}
	var out bytes.Buffer
	rep.print(&out)
	if !strings.Contains(out.String(), "missed 2") {
		t.Errorf("human summary:\n%s", out.String())
	}
}

func TestPropagationUnderLoad(t *testing.T) {
	h, addrs := startFakeHerd(t, 0, 2*time.Millisecond, 2*time.Millisecond)
	out, _, code := run(t, "propagation", "-addrs", strings.Join(addrs, ","), "-n", "20", "-interval", "5ms", "-load-rate", "2000", "-load-c", "3")
	if code != ExitOK {
		t.Fatalf("status %d", code)
	}
	if !strings.Contains(out, "background load") || !strings.Contains(out, "whole herd") {
		t.Errorf("summary:\n%s", out)
	}
	rep, err := Propagation(context.Background(), PropagationConfig{Addrs: addrs, N: 20, LoadRate: 2000, LoadConns: 3})
	if err != nil {
		t.Fatal(err)
	}
	l := rep.Load
	if l == nil || l.Sent == 0 || l.Sent != l.Received || l.Errors.Total != 0 || l.WHATSAT.Sent != 0 || rep.Complete != 20 {
		t.Fatalf("report %+v, load %+v", *rep, l)
	}
	// The load's ids are its own: every load IAMAT and every sample is a
	// record of its own in the fake.
	h.mu.Lock()
	n := len(h.recs)
	h.mu.Unlock()
	if n < 40 {
		t.Errorf("%d records", n)
	}
}

func TestPropagationSince(t *testing.T) {
	// Every IAMAT takes lag to reach the origin, and the other server
	// knows it at once: from the receipt, the delay leaves the lag out.
	const lag = 100 * time.Millisecond
	h, addrs := startFakeHerd(t, 0, 0)
	h.lag = lag
	for _, tc := range []struct {
		since    string
		min, max time.Duration
	}{
		{SinceReceipt, 0, lag / 2},
		{SinceSend, lag, time.Hour},
	} {
		rep, err := Propagation(context.Background(), PropagationConfig{Addrs: addrs, N: 3, Since: tc.since})
		if err != nil {
			t.Fatalf("%s: %v", tc.since, err)
		}
		l := rep.Servers[0].Latency
		if rep.Since != tc.since || rep.Complete != 3 || l.MinUs < tc.min.Microseconds() || l.MaxUs >= tc.max.Microseconds() {
			t.Errorf("%s: report %+v, latency %+v, want within [%v, %v)", tc.since, *rep, l, tc.min, tc.max)
		}
	}
}

func TestPropagationOtherClock(t *testing.T) {
	// A server whose clock is a second off puts the receipt outside the
	// round trip: the run fails, naming the way out, and -since send
	// works.
	for _, skew := range []time.Duration{-time.Second, time.Second} {
		h, addrs := startFakeHerd(t, 0, 0)
		h.skew = skew
		_, err := Propagation(context.Background(), PropagationConfig{Addrs: addrs, N: 2})
		if err == nil || !strings.Contains(err.Error(), "-since send") {
			t.Errorf("skew %v: error %v", skew, err)
		}
		rep, err := Propagation(context.Background(), PropagationConfig{Addrs: addrs, N: 2, Since: SinceSend})
		if err != nil || rep.Complete != 2 {
			t.Errorf("skew %v, since send: %v, %+v", skew, err, rep)
		}
	}
	if _, _, code := run(t, "propagation", "-addrs", "127.0.0.1:1,127.0.0.1:2", "-since", "now"); code != ExitFailure {
		t.Errorf("-since now: status %d", code)
	}
}

func TestATDiff(t *testing.T) {
	for _, tc := range []struct {
		line string
		want time.Duration
		ok   bool
	}{
		{"AT Hill +0.000596263 kiwi +34.068930-118.445127 1795661731.808317371", 596263 * time.Nanosecond, true},
		{"AT Hill -2.500000000 kiwi +1+2 3", -2500 * time.Millisecond, true},
		{"AT Hill +3 kiwi +1+2 3", 3 * time.Second, true},
		{"AT Hill +0.1", 0, false}, // not a whole AT line
		{"AT Hill +999999999999999999.0 kiwi +1+2 3", 0, false},
		{"AT Hill 0.1 kiwi +1+2 3", 0, false},
		{"AT Hill + kiwi", 0, false},
		{"AT Hill +0.x kiwi", 0, false},
		{"AT Hill", 0, false},
		{"AT Hill +999999999999999999.0 kiwi", 0, false},
	} {
		got, ok := atDiff([]byte(tc.line))
		if got != tc.want || ok != tc.ok {
			t.Errorf("atDiff(%q) = %v, %v; want %v, %v", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}
