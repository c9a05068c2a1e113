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
	if rep.Samples != 10 || rep.Complete != 10 || rep.Errors.Total != 0 || rep.Origin != addrs[0] || len(rep.Servers) != 2 {
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
