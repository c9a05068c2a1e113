package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/protocol"
)

// herdBin is the herd binary, built once for these tests.
var herdBin string

func TestMain(m *testing.M) {
	if flag.Parse(); testing.Short() {
		fmt.Println("skipping services/herd: its tests build the herd binary and run it as processes; run without -short")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "herd-test")
	if err != nil {
		panic(err)
	}
	herdBin = filepath.Join(dir, "herd")
	if out, err := exec.Command("go", "build", "-o", herdBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building herd: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	// The goroutines that read a child's standard error end with it.
	if err := goleak.Find(); code == 0 && err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// proc is a running herd process whose JSON log is collected.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	mu     sync.Mutex
	logs   []map[string]any
	exited chan error
}

// start runs herd with args and exactly the given environment.
func start(t *testing.T, env map[string]string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(herdBin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, exited: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			t.Log(sc.Text())
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil {
				p.mu.Lock()
				p.logs = append(p.logs, rec)
				p.mu.Unlock()
			}
		}
		p.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		p.wait()
	})
	return p
}

func (p *proc) wait() error {
	select {
	case err := <-p.exited:
		p.exited <- err
		return err
	case <-time.After(15 * time.Second):
		p.t.Fatal("herd did not exit")
		return nil
	}
}

// logged waits for a log record with the given message and returns it.
func (p *proc) logged(msg string) map[string]any {
	p.t.Helper()
	var found map[string]any
	testutil.Eventually(p.t, 10*time.Second, func() error {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, rec := range p.logs {
			if rec["msg"] == msg {
				found = rec
				return nil
			}
		}
		return fmt.Errorf("no %q in the log", msg)
	})
	return found
}

func serveEnv(extra ...string) map[string]string {
	env := map[string]string{
		"HERD_NAME": "Hill", "HERD_CLIENT_ADDR": "127.0.0.1:0", "HERD_METRICS_ADDR": "127.0.0.1:0",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	return env
}

// serve starts `herd serve` and returns it with its client address.
func serve(t *testing.T, env map[string]string) (*proc, string) {
	t.Helper()
	p := start(t, env, "serve")
	return p, p.logged("herd node started")["client"].(string)
}

// exchange sends input, half-closes, and reads everything until the
// server closes: the way course graders talk to a server.
func exchange(t *testing.T, addr, input string) string {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(nc, input); err != nil {
		t.Fatal(err)
	}
	nc.(*net.TCPConn).CloseWrite()
	out, err := io.ReadAll(nc)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

const kiwi = "IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503"

// TestServe drives a real `herd serve` over TCP.
func TestServe(t *testing.T) {
	_, addr := serve(t, serveEnv("HERD_MAX_LINE", "256"))

	t.Run("grader exchange", func(t *testing.T) {
		out := exchange(t, addr, kiwi+"\n")
		if !strings.HasPrefix(out, "AT Hill +") || !strings.HasSuffix(out, " kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503\n") ||
			strings.Count(out, "\n") != 1 {
			t.Errorf("got %q", out)
		}
	})
	t.Run("pipelined with whitespace variants", func(t *testing.T) {
		out := exchange(t, addr, "IAMAT a +1+1 1\r\n\t IAMAT\tb  +2-2 2 \n\nBOGUS\nIAMAT c +3+3 3")
		rs, err := testutil.ReadReplies(strings.NewReader(out), "IAMAT a", "IAMAT b", "", "BOGUS", "IAMAT c", "IAMAT extra")
		if err != io.EOF || len(rs) != 4 || !strings.HasSuffix(string(rs[0].Line), " a +1+1 1") || !strings.HasSuffix(string(rs[1].Line), " b +2-2 2") ||
			string(rs[2].Line) != "? BOGUS" || !strings.HasSuffix(string(rs[3].Line), " c +3+3 3") {
			t.Errorf("got %q", out)
		}
	})
	t.Run("over-long line", func(t *testing.T) {
		out := exchange(t, addr, "IAMAT d +1+1 1\n"+strings.Repeat("x", 300)+"\nIAMAT e +1+1 1\n")
		if !strings.HasSuffix(out, " d +1+1 1\n") || strings.Contains(out, "xxx") || strings.Contains(out, " e ") {
			t.Errorf("got %q", out)
		}
	})
	t.Run("whatsat from the offline data", func(t *testing.T) {
		out := exchange(t, addr, kiwi+"\nWHATSAT kiwi.cs.ucla.edu 10 3\n")
		rs, err := testutil.ReadReplies(strings.NewReader(out), kiwi, "WHATSAT kiwi.cs.ucla.edu 10 3")
		if err != nil || !strings.HasPrefix(string(rs[0].Line), "AT Hill ") {
			t.Fatalf("got %q, %v", out, err)
		}
		if rs[1].Kind != protocol.ReplyAT || len(rs[0].Raw)+len(rs[1].Raw) != len(out) {
			t.Fatalf("WHATSAT reply is not the AT line, the JSON and a blank line: %q", rs[1].Raw)
		}
		if string(rs[1].Line) != string(rs[0].Line) {
			t.Errorf("WHATSAT AT line %q, want %q", rs[1].Line, rs[0].Line)
		}
		js := rs[1].JSON
		var v struct {
			Results []struct {
				Name     string `json:"name"`
				Vicinity string `json:"vicinity"`
			} `json:"results"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal(js, &v); err != nil {
			t.Fatalf("%v in %q", err, js)
		}
		if v.Status != "OK" || len(v.Results) != 3 || v.Results[0].Vicinity != "California, US" {
			t.Errorf("got %+v", v)
		}
		// The most prominent places within 10 km of UCLA, by population.
		for _, r := range v.Results {
			if !strings.Contains("Santa Monica Culver City West Hollywood Beverly Hills Westwood Venice Sherman Oaks Studio City Marina del Rey Century City", r.Name) {
				t.Errorf("unexpected place %q", r.Name)
			}
		}
	})
	t.Run("whatsat far from anything", func(t *testing.T) {
		out := exchange(t, addr, "IAMAT sea +0+-150 1\nIAMAT sea +0-150 1\nWHATSAT sea 50 5\n")
		if !strings.Contains(out, `"status" : "ZERO_RESULTS"`) || !strings.HasPrefix(out, "? IAMAT sea +0+-150 1\n") {
			t.Errorf("got %q", out)
		}
	})
}

func TestConfigErrorOutput(t *testing.T) {
	cmd := exec.Command(herdBin, "serve")
	cmd.Env = []string{"HERD_CLIENT_ADDR=nonsense", "HERD_PEERS=Jaquez=x:1"}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("herd serve without HERD_NAME: %v, want exit status 2", err)
	}
	for _, v := range []string{"HERD_NAME", "HERD_CLIENT_ADDR", "HERD_PEER_SECRET"} {
		if !bytes.Contains(out, []byte(v)) {
			t.Errorf("the error does not name %s:\n%s", v, out)
		}
	}
}

// TestSIGTERM: a node stops cleanly on SIGTERM, with status 0.
func TestSIGTERM(t *testing.T) {
	p, addr := serve(t, serveEnv())
	exchange(t, addr, kiwi+"\n")
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	p.logged("herd node stopped")
}

// TestLogFile: with HERD_LOG_FILE the protocol log goes to the file too,
// and no secret reaches it.
func TestLogFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "herd.log")
	p, addr := serve(t, serveEnv("HERD_LOG_FILE", file, "HERD_PEERS", "Jaquez=127.0.0.1:1", "HERD_PEER_ADDR", "127.0.0.1:0",
		"HERD_PEER_SECRET", "very-secret-peer-secret", "HERD_GOOGLE_API_KEY", "AIzaVerySecretKey", "HERD_PLACES", "offline"))
	exchange(t, addr, kiwi+"\n")
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	log := string(b)
	// kiwi is what its reply repeats: an "iamat" record, the reply only.
	if !strings.Contains(log, `"msg":"iamat"`) || !strings.Contains(log, `"out":"AT Hill `) ||
		!strings.Contains(log, strings.TrimPrefix(kiwi, "IAMAT ")) {
		t.Errorf("the log file lacks the protocol log:\n%s", log)
	}
	for _, secret := range []string{"very-secret-peer-secret", "AIzaVerySecretKey"} {
		if strings.Contains(log, secret) {
			t.Errorf("a secret reached the log file")
		}
	}
}

// TestLocal runs `herd local` on free ports and sends a record around the
// herd.
func TestLocal(t *testing.T) {
	base := testutil.FreePortBase(t, 25)
	p := start(t, map[string]string{"HERD_LOG_LEVEL": "warn"}, "local",
		"-client-port", fmt.Sprint(base), "-peer-port", fmt.Sprint(base+10), "-metrics-port", fmt.Sprint(base+20))
	hill, campbell := fmt.Sprintf("127.0.0.1:%d", base), fmt.Sprintf("127.0.0.1:%d", base+3)
	waitDial(t, hill)
	waitDial(t, campbell)
	at := exchange(t, hill, kiwi+"\n")
	testutil.Eventually(t, 10*time.Second, func() error {
		if out := exchange(t, campbell, "WHATSAT kiwi.cs.ucla.edu 5 0\n"); !strings.HasPrefix(out, at) {
			return fmt.Errorf("Campbell has not learnt the record: %q", out)
		}
		return nil
	})
	p.cmd.Process.Signal(syscall.SIGINT)
	if err := p.wait(); err != nil {
		t.Fatalf("herd local exit: %v", err)
	}
}

func waitDial(t *testing.T, addr string) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, func() error {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		return nc.Close()
	})
}

// BenchmarkServeStartup measures the time from starting `herd serve` to
// its first accepted connection (target: well under 100 ms).
func BenchmarkServeStartup(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var total time.Duration
	for range b.N {
		cmd := exec.Command(herdBin, "serve")
		cmd.Env = []string{"HERD_NAME=Hill", "HERD_CLIENT_ADDR=" + addr, "HERD_METRICS_ADDR=127.0.0.1:0", "HERD_LOG_LEVEL=warn"}
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		for {
			nc, err := net.Dial("tcp", addr)
			if err == nil {
				nc.Close()
				break
			}
			if time.Since(start) > 10*time.Second {
				b.Fatal(err)
			}
		}
		total += time.Since(start)
		cmd.Process.Kill()
		cmd.Wait()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms-to-accept")
}
