package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/protocol"
)

func TestRESPReply(t *testing.T) {
	tests := []struct {
		name string
		in   string
		n    int // the reply's length; 0 incomplete, -1 malformed
		kind protocol.ReplyKind
	}{
		{"GEOADD added", ":1\r\n", 4, protocol.ReplyAT},
		{"GEOADD updated", ":0\r\n:1\r\n", 4, protocol.ReplyAT},
		{"status", "+OK\r\n", 5, protocol.ReplyAT},
		{"error", "-READONLY You can't write against a read only replica.\r\n", 56, protocol.ReplyInvalid},
		{"GEOPOS known", "*1\r\n*2\r\n$19\r\n-118.44512623548508\r\n$17\r\n34.06892945140063\r\n", 58, protocol.ReplyAT},
		{"GEOPOS unknown", "*1\r\n*-1\r\n", 9, protocol.ReplyInvalid},
		{"GEOPOS two, one known", "*2\r\n*-1\r\n*2\r\n$1\r\n1\r\n$1\r\n2\r\n", 27, protocol.ReplyAT},
		{"nil bulk", "$-1\r\n", 5, protocol.ReplyInvalid},
		{"empty bulk", "$0\r\n\r\n", 6, protocol.ReplyAT},
		{"empty array", "*0\r\n", 4, protocol.ReplyAT},
		{"nothing yet", "", 0, protocol.ReplyMalformed},
		{"half an integer", ":1", 0, protocol.ReplyMalformed},
		{"half a bulk", "$5\r\nab", 0, protocol.ReplyMalformed},
		{"half an array", "*1\r\n*2\r\n$1\r\n1\r\n", 0, protocol.ReplyMalformed},
		{"not RESP", "AT Hill +0.1 k +1+1 1\n", -1, protocol.ReplyMalformed},
		{"bad length", "$x\r\nab\r\n", -1, protocol.ReplyMalformed},
		{"bulk without its CRLF", "$2\r\nabcd", -1, protocol.ReplyMalformed},
		{"negative array", "*-2\r\n", -1, protocol.ReplyMalformed},
		{"too deep", strings.Repeat("*1\r\n", 20) + ":1\r\n", -1, protocol.ReplyMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, kind := respReply([]byte(tt.in))
			if n != tt.n || (n > 0 && kind != tt.kind) {
				t.Errorf("respReply(%q) = %d, %v; want %d, %v", tt.in, n, kind, tt.n, tt.kind)
			}
		})
	}
}

// FuzzRESPReply: whatever the bytes, respReply neither panics nor claims
// more than it was given, and a reply split anywhere reads as the whole
// one once the rest comes.
func FuzzRESPReply(f *testing.F) {
	for _, s := range []string{":1\r\n", "*1\r\n*-1\r\n", "*1\r\n*2\r\n$1\r\n1\r\n$1\r\n2\r\n", "-ERR x\r\n", "$3\r\nabc\r\n"} {
		f.Add([]byte(s), 2)
	}
	f.Fuzz(func(t *testing.T, b []byte, cut int) {
		n, kind := respReply(b)
		if n > len(b) {
			t.Fatalf("respReply(%q) = %d, beyond the input", b, n)
		}
		if n <= 0 {
			return
		}
		if cut = max(0, min(cut, n-1)); cut > 0 {
			if m, _ := respReply(b[:cut]); m != 0 && m != -1 {
				t.Fatalf("the first %d bytes of %q read as a reply of %d", cut, b[:n], m)
			}
		}
		if m, k := respReply(b[:n]); m != n || k != kind {
			t.Fatalf("%q alone reads as %d, %v; within more, %d, %v", b[:n], m, k, n, kind)
		}
	})
}

func TestRESPRequests(t *testing.T) {
	d := respDialect{}
	got := string(d.appendWrite(nil, []byte("kiwi"), 0, []byte("1.5")))
	lng, lat := respArgs(t, positions()[0])
	want := "*5\r\n$6\r\nGEOADD\r\n$14\r\nherd:positions\r\n" + respBulk(lng) + respBulk(lat) + "$4\r\nkiwi\r\n"
	if got != want {
		t.Errorf("GEOADD %q, want %q", got, want)
	}
	if got := string(d.appendRead(nil, []byte("kiwi"))); got != "*3\r\n$6\r\nGEOPOS\r\n$14\r\nherd:positions\r\n$4\r\nkiwi\r\n" {
		t.Errorf("GEOPOS %q", got)
	}
}

// respArgs splits a herd position into GEOADD's longitude and latitude.
func respArgs(t *testing.T, pos []byte) (lng, lat string) {
	t.Helper()
	i := strings.LastIndexAny(string(pos), "+-")
	lat, lng = strings.TrimPrefix(string(pos[:i]), "+"), strings.TrimPrefix(string(pos[i:]), "+")
	if _, err := strconv.ParseFloat(lat, 64); err != nil {
		t.Fatal(err)
	}
	return lng, lat
}

// startRedis starts Debian's redis-server on a free port of 127.0.0.1,
// without persistence, as a replica of primary when it is set, and
// returns its address. Without redis-server the test skips, or fails
// when CI is set (.ci/run installs it).
func startRedis(t *testing.T, primary string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and there is no redis-server: %v", err)
		}
		t.Skipf("no redis-server (apt-get install redis-server): %v", err)
	}
	addr := testutil.FreeLoopbackAddrs(t, 1)[0]
	host, port, _ := net.SplitHostPort(addr)
	args := []string{"--bind", host, "--port", port, "--save", "", "--appendonly", "no", "--dir", t.TempDir()}
	if primary != "" {
		ph, pp, _ := net.SplitHostPort(primary)
		args = append(args, "--replicaof", ph, pp)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = testutil.NewLogWriter(t), testutil.NewLogWriter(t)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	testutil.Eventually(t, 10*time.Second, func() error {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err
	})
	if primary != "" {
		testutil.Eventually(t, 10*time.Second, func() error {
			if info := redisInfo(t, addr, "replication"); !strings.Contains(info, "master_link_status:up") {
				return fmt.Errorf("replica %s not linked to %s: %s", addr, primary, info)
			}
			return nil
		})
	}
	return addr
}

func TestLoadRedis(t *testing.T) {
	addr := startRedis(t, "")
	s, err := Load(context.Background(), LoadConfig{
		Addrs: []string{addr}, Conns: 4, Pipeline: 8, N: 4000, Mix: 0.25, Protocol: ProtocolRESP,
		Prefix: "resp", Clients: 500,
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.Errors.Total != 0 || s.Received != 4000 || s.WHATSAT.Received < 500 {
		t.Fatalf("against Redis: %+v", *s)
	}
	// Every id written is in the sorted set.
	n := redisCommand(t, addr, "*2\r\n$5\r\nZCARD\r\n"+respBulk(RESPKey))
	if n != ":500" {
		t.Errorf("ZCARD %s, want :500 (the run's -clients)", n)
	}
}

func TestPropagationRedis(t *testing.T) {
	primary := startRedis(t, "")
	replicas := []string{startRedis(t, primary), startRedis(t, primary)}
	rep, err := Propagation(context.Background(), PropagationConfig{
		Addrs: append([]string{primary}, replicas...), N: 50, Protocol: ProtocolRESP, LoadRate: 500,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Since != SinceSend || rep.Complete != 50 || rep.Errors.Total != 0 || rep.Load.Errors.Total != 0 {
		t.Fatalf("propagation over Redis replication: %+v", rep)
	}
}

func TestPropagationRESPNeedsSinceSend(t *testing.T) {
	err := PropagationConfig{Addrs: []string{"a:1", "b:1"}, Protocol: ProtocolRESP, Since: SinceReceipt}.withDefaults().Validate()
	if err == nil || !strings.Contains(err.Error(), "use send") {
		t.Errorf("Validate = %v, want a refusal of receipt with RESP", err)
	}
}

// redisInfo returns a section of a Redis server's INFO.
func redisInfo(t *testing.T, addr, section string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("*2\r\n$4\r\nINFO\r\n" + respBulk(section))); err != nil {
		t.Fatal(err)
	}
	r := respReader{conn: c, timeout: 5 * time.Second, buf: make([]byte, 0, 4096)}
	for {
		if n, _ := respReply(r.buf); n > 0 {
			return string(r.buf[:n])
		}
		if err := r.fill(time.Now()); err != nil {
			t.Fatal(err)
		}
	}
}

// redisCommand sends one RESP command and returns the first line of the
// reply.
func redisCommand(t *testing.T, addr, cmd string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(cmd)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
	return line
}
