package test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herdkit/herd/pkg/config"
	"github.com/herdkit/herd/pkg/tools/client"
	"github.com/herdkit/herd/pkg/topology"
)

// readmeExample is one command of the README's "Talk to it" block and the
// output the README shows for it.
type readmeExample struct {
	args []string // after "go run ./services/herd"
	want string
}

// readmeExamples returns the commands of the README's example block: the
// indented lines from the first "$ go run ./services/herd client" on,
// each "$ " line a command and the lines up to the next its output.
func readmeExamples(t *testing.T) []readmeExample {
	t.Helper()
	b, err := os.ReadFile(root + "/README.md")
	if err != nil {
		t.Fatal(err)
	}
	const prompt = "    $ go run ./services/herd "
	lines := strings.Split(string(b), "\n")
	start := -1
	for i, l := range lines {
		if strings.HasPrefix(l, prompt+"client ") {
			start = i
			break
		}
	}
	if start < 0 {
		t.Fatal("README.md has no example block (a line \"$ go run ./services/herd client ...\")")
	}
	var ex []readmeExample
	var out []string
	flush := func() {
		if len(ex) > 0 {
			ex[len(ex)-1].want = strings.Join(out, "\n") + "\n"
		}
		out = nil
	}
	for _, l := range lines[start:] {
		if l != "" && !strings.HasPrefix(l, "    ") {
			break
		}
		if cmd, ok := strings.CutPrefix(l, prompt); ok {
			flush()
			ex = append(ex, readmeExample{args: strings.Fields(cmd)})
			continue
		}
		out = append(out, strings.TrimPrefix(l, "    "))
	}
	for len(out) > 0 && out[len(out)-1] == "" { // the blank lines after the block
		out = out[:len(out)-1]
	}
	flush()
	return ex
}

// TestReadmeExamples runs the README's examples against the herd of
// `herd local` (on free ports rather than 12200 and 9200) and compares
// what each prints with what the README shows, byte for byte but for
// what changes from run to run: the time difference and the time in an
// AT line.
func TestReadmeExamples(t *testing.T) {
	examples := readmeExamples(t)
	if len(examples) < 3 {
		t.Fatalf("%d examples in the README; want at least IAMAT, WHATSAT and an invalid line", len(examples))
	}
	_, ports := startLocalHerd(t)
	// 127.0.0.1:12200+i and :9200+i are server i's ports in the README.
	port := regexp.MustCompile(`^(http://)?127\.0\.0\.1:(\d+)$`)
	local := func(addr string) string {
		m := port.FindStringSubmatch(addr)
		if m == nil {
			t.Fatalf("README example address %q is not 127.0.0.1:PORT", addr)
		}
		p, _ := strconv.Atoi(m[2])
		switch {
		case p >= config.ClassicClientPort && p < config.ClassicClientPort+len(topology.Classic):
			p += ports.Client - config.ClassicClientPort
		case p >= config.ClassicMetricsPort && p < config.ClassicMetricsPort+len(topology.Classic):
			p += ports.Metrics - config.ClassicMetricsPort
		default:
			t.Fatalf("README example address %q is no port of the classic herd", addr)
		}
		return fmt.Sprintf("%s127.0.0.1:%d", m[1], p)
	}
	at := regexp.MustCompile(`(?m)^AT (\S+) [+-]\d+\.\d{9} (\S+) (\S+) \d+(\.\d+)?$`)
	normal := func(s string) string { return at.ReplaceAllString(s, "AT $1 DIFF $2 $3 TIME") }

	for _, ex := range examples {
		t.Run(strings.Join(ex.args, " "), func(t *testing.T) {
			var got string
			switch ex.args[0] {
			case "client":
				args := append([]string{local(ex.args[1])}, ex.args[2:]...)
				// A WHATSAT at another server waits for the flood.
				deadline := time.Now().Add(10 * time.Second)
				for {
					var out, errOut strings.Builder
					client.Run(context.Background(), args, strings.NewReader(""), &out, &errOut)
					got = out.String()
					if normal(got) == normal(ex.want) || time.Now().After(deadline) {
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
			case "health": // herd health BASE_URL asks its /readyz and prints the answer
				resp, err := http.Get(local(ex.args[1]) + "/readyz")
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				got = string(b)
			default:
				t.Fatalf("no way to run the README example %q", ex.args)
			}
			if normal(got) != normal(ex.want) {
				t.Errorf("the README shows\n%s\na real run prints\n%s", ex.want, got)
			}
		})
	}
}
