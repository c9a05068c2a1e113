package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/protocol"
)

func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(context.Background(), args, strings.NewReader(""), &out, &errb)
	t.Logf("herd bench %q: status %d, stderr %q", args, code, errb.String())
	return out.String(), errb.String(), code
}

func TestRunLoadJSON(t *testing.T) {
	f := startFloor(t)
	out, _, code := run(t, "load", "-addr", f.Addr(), "-c", "4", "-n", "400", "-pipeline", "4", "-mix", "0.25", "-json")
	if code != ExitOK {
		t.Fatalf("status %d", code)
	}
	var rep LoadReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if rep.Mode != "load" || rep.Target == nil || rep.Floor != nil || rep.Ratio != nil {
		t.Fatalf("report %s", out)
	}
	checkExact(t, rep.Target, f.Counts().Lines())
	if rep.Target.Sent != 400 || rep.Target.Pipeline != 4 || rep.Target.WHATSAT.Sent == 0 {
		t.Errorf("target %+v", *rep.Target)
	}
	// The documented names are there.
	var top struct {
		Target map[string]json.RawMessage `json:"target"`
	}
	if err := json.Unmarshal([]byte(out), &top); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"target", "connections", "pipeline", "mix", "seconds", "sent", "received", "rate",
		"iamat", "whatsat", "errors", "latency", "warmup", "total_sent", "total_received"} {
		if _, ok := top.Target[k]; !ok {
			t.Errorf("no %q in the JSON summary", k)
		}
	}
	var lat map[string]int64
	json.Unmarshal(top.Target["latency"], &lat)
	for _, k := range []string{"count", "min_us", "p50_us", "p90_us", "p99_us", "p999_us", "max_us"} {
		if _, ok := lat[k]; !ok {
			t.Errorf("no %q in the latency summary", k)
		}
	}
}

func TestRunLoadHuman(t *testing.T) {
	f := startFloor(t)
	out, _, code := run(t, "load", "-addr", f.Addr()+","+f.Addr(), "-c", "2", "-d", "100ms", "-rate", "500")
	if code != ExitOK {
		t.Fatalf("status %d", code)
	}
	for _, want := range []string{"open loop at 500/s", "IAMAT", "WHATSAT", "errors     0", "p99.9"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
}

// TestRunLoadFloorChild runs -floor for real: the floor is a child process
// of this test binary, which acts as `herd` (see TestMain).
func TestRunLoadFloorChild(t *testing.T) {
	t.Setenv(childEnv, "1")
	f := startFloor(t) // the "target"
	out, _, code := run(t, "load", "-addr", f.Addr(), "-c", "3", "-n", "300", "-pipeline", "2", "-floor", "-json")
	if code != ExitOK {
		t.Fatalf("status %d", code)
	}
	var rep LoadReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if rep.Floor == nil || rep.Ratio == nil || rep.Floor.Target == f.Addr() {
		t.Fatalf("report %s", out)
	}
	if rep.Floor.Sent != 300 || rep.Floor.Received != 300 || rep.Target.Sent != 300 || rep.Ratio.Rate <= 0 {
		t.Errorf("floor %+v, target %+v, ratio %+v", *rep.Floor, *rep.Target, *rep.Ratio)
	}
	if got := f.Counts().Lines(); got != 300 {
		t.Errorf("the target handled %d lines, want 300: the floor run went elsewhere", got)
	}
}

func TestCompareWithFloorInProcess(t *testing.T) {
	for _, rounds := range []int{1, 2, 5} {
		t.Run(fmt.Sprint(rounds, " rounds"), func(t *testing.T) {
			f := startFloor(t)
			rep, err := CompareWithFloor(context.Background(), LoadConfig{Addrs: []string{f.Addr()}, Conns: 2, N: 100}, startFloorInProcess, rounds)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Floor.Received != 100 || rep.Target.Received != 100 || rep.Ratio == nil {
				t.Errorf("%+v", rep)
			}
			if f.Counts().Lines() != int64(100*rounds) {
				t.Errorf("the target answered %d lines in %d rounds of 100", f.Counts().Lines(), rounds)
			}
			var out bytes.Buffer
			rep.print(&out)
			if !strings.Contains(out.String(), "target/floor: rate") {
				t.Errorf("human summary:\n%s", out.String())
			}
			if rounds == 1 {
				if rep.Rounds != nil {
					t.Errorf("one round lists rounds: %+v", rep.Rounds)
				}
				return
			}
			// The report is the median round, the one with as many rounds
			// below it as above it.
			var below, above int
			for _, r := range rep.Rounds {
				if r.Ratio != r.Target/r.Floor {
					t.Errorf("round %+v: ratio is not target/floor", r)
				}
				switch {
				case r.Ratio < rep.Ratio.Rate:
					below++
				case r.Ratio > rep.Ratio.Rate:
					above++
				}
			}
			if len(rep.Rounds) != rounds || below > (rounds-1)/2 || above > rounds/2 {
				t.Errorf("report ratio %v is not the median of %+v", rep.Ratio.Rate, rep.Rounds)
			}
			if n := strings.Count(out.String(), "round "); n != rounds+1 {
				t.Errorf("human summary shows %d round lines:\n%s", n, out.String())
			}
		})
	}
	if _, err := CompareWithFloor(context.Background(), LoadConfig{}, startFloorInProcess, 0); err == nil {
		t.Error("0 rounds accepted")
	}
}

func TestStartFloorProcessFails(t *testing.T) {
	// Without the environment variable the test binary is no `herd`: it
	// runs its tests instead of a floor server and prints no address.
	if _, _, err := startFloorCommand(context.Background(), "false"); err == nil {
		t.Error("a child that prints no address started")
	}
	// What the child said on its standard error is in the error, read
	// after exec's copying goroutine has ended (the race detector checks).
	_, _, err := startFloorCommand(context.Background(), "sh", "-c", "echo cannot listen >&2")
	if err == nil || !strings.Contains(err.Error(), "printed no address: cannot listen") {
		t.Errorf("error %v, want the child's standard error in it", err)
	}
}

func TestRunUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"no mode", nil, ExitFailure},
		{"unknown mode", []string{"nonsense"}, ExitFailure},
		{"help", []string{"-h"}, ExitOK},
		{"load help", []string{"load", "-h"}, ExitOK},
		{"propagation help", []string{"propagation", "-h"}, ExitOK},
		{"floor help", []string{"floor", "-h"}, ExitOK},
		{"pipeline and rate", []string{"load", "-pipeline", "2", "-rate", "10"}, ExitFailure},
		{"rounds without floor", []string{"load", "-rounds", "3"}, ExitFailure},
		{"no rounds", []string{"load", "-floor", "-rounds", "0"}, ExitFailure},
		{"bad mix", []string{"load", "-mix", "2"}, ExitFailure},
		{"bad radius", []string{"load", "-radius", "51"}, ExitFailure},
		{"bad bound", []string{"load", "-bound", "21"}, ExitFailure},
		{"bad prefix", []string{"load", "-prefix", "a b"}, ExitFailure},
		{"stray argument", []string{"load", "extra"}, ExitFailure},
		{"bad from", []string{"propagation", "-from", "nowhere:1"}, ExitFailure},
		{"from out of range", []string{"propagation", "-from", "7"}, ExitFailure},
		{"one server", []string{"propagation", "-addrs", "127.0.0.1:1"}, ExitFailure},
		{"unreachable", []string{"load", "-addr", "127.0.0.1:1", "-n", "1", "-timeout", "1s"}, ExitFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, code := run(t, tt.args...); code != tt.code {
				t.Errorf("status %d, want %d", code, tt.code)
			}
		})
	}
}

func TestRunFloorStopsAtStdinEOF(t *testing.T) {
	var out, errb bytes.Buffer
	code := Run(context.Background(), []string{"floor", "-addr", "127.0.0.1:0", "-stdin-eof"}, strings.NewReader(""), &out, &errb)
	if code != ExitOK || !strings.HasPrefix(out.String(), "127.0.0.1:") || !strings.Contains(errb.String(), "answered 0 lines") {
		t.Errorf("status %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}

func TestRunFloorStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errb bytes.Buffer
	if code := Run(ctx, []string{"floor", "-addr", "127.0.0.1:0"}, nil, &out, &errb); code != ExitOK {
		t.Errorf("status %d, stderr %q", code, errb.String())
	}
}

// TestLoadCancel ends an endless run with its context.
func TestLoadCancel(t *testing.T) {
	for _, rate := range []float64{0, 1000} {
		f := startFloor(t)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan *LoadSummary)
		go func() {
			s, err := Load(ctx, LoadConfig{Addrs: []string{f.Addr()}, Conns: 3, Rate: rate})
			if err != nil {
				t.Error(err)
			}
			done <- s
		}()
		testutil.Eventually(t, 5*time.Second, func() error {
			if n := f.Counts().Lines(); n < 100 {
				return fmt.Errorf("the floor read %d lines, want 100", n)
			}
			return nil
		})
		cancel()
		s := <-done
		if s == nil {
			continue
		}
		checkExact(t, s, f.Counts().Lines())
		if s.Sent < 100 || s.Seconds <= 0 {
			t.Errorf("rate %v: %+v", rate, *s)
		}
	}
}

func TestGenerator(t *testing.T) {
	cfg := LoadConfig{Mix: 0.3, Clients: 7, Prefix: "p", Radius: "2.5", Bound: 3}
	d, err := newDialect(ProtocolHerd, cfg.Radius, cfg.Bound)
	if err != nil {
		t.Fatal(err)
	}
	g := newGenerator(2, 4, &cfg, d)
	g.setTime(1621464827959498503)
	if string(g.time) != "1621464827.959498503" {
		t.Errorf("time %q", g.time)
	}
	g.setTime(5_000_000_007)
	if string(g.time) != "5.000000007" {
		t.Errorf("time %q", g.time)
	}
	sent := map[string]bool{}
	whatsats := 0
	for k := int64(0); k < 1000; k++ {
		buf := g.appendRequest(nil, k)
		if buf[len(buf)-1] != '\n' || bytes.Count(buf, []byte("\n")) != 1 {
			t.Fatalf("request %q", buf)
		}
		c := protocol.Parse(buf[:len(buf)-1])
		switch c.Kind {
		case protocol.IAMAT:
			if g.kindOf(k) != kindIAMAT {
				t.Fatalf("request %d is an IAMAT, kindOf says otherwise", k)
			}
			sent[string(c.Client)] = true
		case protocol.WHATSAT:
			whatsats++
			if g.kindOf(k) != kindWHATSAT || !sent[string(c.Client)] || string(c.Radius) != "2.5" || c.Bound != 3 {
				t.Fatalf("request %d %q: kind %v, id sent before %v", k, buf, g.kindOf(k), sent[string(c.Client)])
			}
		default:
			t.Fatalf("request %d %q is %v: %s", k, buf, c.Kind, c.Reason)
		}
		if !strings.HasPrefix(string(c.Client), "p-") {
			t.Fatalf("client id %q", c.Client)
		}
	}
	if whatsats < 200 || whatsats > 400 {
		t.Errorf("%d WHATSAT in 1000 with mix 0.3", whatsats)
	}
	// Connection 2 of 4 with 7 clients takes ids 2, 6, 3, 0, 4, 1, 5, 2...
	if len(sent) != 7 {
		t.Errorf("%d distinct ids, want 7", len(sent))
	}
}

func TestLatencyOf(t *testing.T) {
	h := newHistogram()
	for i := int64(1); i <= 1000; i++ {
		record(h, i*1000) // 1 to 1000 µs
	}
	record(h, int64(time.Hour)) // clamped
	l := latencyOf(h)
	if l.Count != 1001 || l.MinUs != 1 || l.P50Us < 495 || l.P50Us > 505 || l.P99Us < 985 || l.P99Us > 1000 {
		t.Errorf("%+v", l)
	}
	if l.MaxUs < highestLatencyUs*999/1000 || l.MaxUs > highestLatencyUs*1001/1000 {
		t.Errorf("max %d, want about %d", l.MaxUs, highestLatencyUs)
	}
	if (latencyOf(newHistogram()) != Latency{}) {
		t.Error("empty histogram")
	}
}
