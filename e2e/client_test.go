package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/protocol"
)

// pos is where every test client says it is: UCLA, which the offline
// places data knows.
const pos = "+34.068930-118.445127"

// parseAT reads an AT reply's line with the protocol's reader, and checks
// that the time difference has the nine decimals PROTOCOL.md asks for.
func parseAT(line []byte) (protocol.AT, bool) {
	at, ok := protocol.ParseAT(line)
	d := at.Diff
	return at, ok && len(d) >= 12 && d[len(d)-10] == '.'
}

// now returns the current POSIX time as an IAMAT time with nanoseconds.
func now() string {
	return clientTime(time.Now())
}

func clientTime(t time.Time) string {
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}

// send sends one line to addr, half-closes, and returns everything the
// server writes before it closes its side.
func send(t testing.TB, addr, line string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		t.Fatalf("%s: write: %v", addr, err)
	}
	c.(*net.TCPConn).CloseWrite()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("%s: reading the reply to %q: %v", addr, line, err)
	}
	return string(b)
}

// iamat tells a server that client id is at pos now, checks the AT reply
// and returns it (without its newline).
func (h *herd) iamat(t testing.TB, server, id string) string {
	t.Helper()
	return h.iamatAt(t, server, id, now())
}

// iamatAt is iamat with the client's time given.
func (h *herd) iamatAt(t testing.TB, server, id, when string) string {
	t.Helper()
	line := "IAMAT " + id + " " + pos + " " + when
	reply := send(t, h.node(t, server).clientAddr(t), line)
	at := checkAT(t, server, id, when, reply)
	h.sent(id, at, when)
	return at
}

// iamatMany sends one IAMAT per client, pipelined on one connection, and
// returns the AT lines by client id.
func (h *herd) iamatMany(t testing.TB, server string, ids []string) map[string]string {
	t.Helper()
	when := make([]string, len(ids))
	lines := make([]string, len(ids))
	for i, id := range ids {
		when[i] = now()
		lines[i] = "IAMAT " + id + " " + pos + " " + when[i]
	}
	ats := map[string]string{}
	pipeline(t, h.node(t, server).clientAddr(t), lines, func(i int, r protocol.Reply) error {
		ats[ids[i]] = checkAT(t, server, ids[i], when[i], string(r.Raw))
		h.sent(ids[i], ats[ids[i]], when[i])
		return nil
	})
	return ats
}

// iamatExec is iamatAt through `herd client` inside the server's
// container, for a server the host cannot reach.
func (h *herd) iamatExec(t testing.TB, server, id, when string) string {
	t.Helper()
	out, code := h.execClient(t, server, "IAMAT", id, pos, when)
	if code != 0 {
		t.Fatalf("%s: herd client IAMAT %s: exit %d: %s", server, id, code, out)
	}
	at := checkAT(t, server, id, when, out)
	h.sent(id, at, when)
	return at
}

// whatsatExec is whatsat through `herd client` inside the server's
// container.
func (h *herd) whatsatExec(t testing.TB, server, id string) string {
	t.Helper()
	out, code := h.execClient(t, server, "WHATSAT", id, "10", "1")
	switch {
	case code == 1 && out == "? WHATSAT "+id+" 10 1\n":
		return ""
	case code == 0:
		rs, err := testutil.ReadReplies(strings.NewReader(out), "WHATSAT "+id+" 10 1")
		if err == nil && rs[0].Kind == protocol.ReplyAT && string(rs[0].Raw) == out {
			if _, ok := parseAT(rs[0].Line); ok {
				return string(rs[0].Line)
			}
		}
	}
	t.Fatalf("%s: herd client WHATSAT %s: exit %d: %q", server, id, code, out)
	return ""
}

// forget drops a client from what the herd must hold: one whose record
// went to a server outside the herd.
func (h *herd) forget(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.records, id)
}

// checkAT checks that reply is the one AT line a server gives an IAMAT
// of client id at time when, and returns it without its newline.
func checkAT(t testing.TB, server, id, when, reply string) string {
	t.Helper()
	line := "IAMAT " + id + " " + pos + " " + when
	rs, err := testutil.ReadReplies(strings.NewReader(reply), line)
	var at protocol.AT
	ok := err == nil && string(rs[0].Raw) == reply
	if ok {
		at, ok = parseAT(rs[0].Line)
	}
	if !ok || string(at.Origin) != server || string(at.Client) != id || string(at.Pos) != pos || string(at.Time) != when {
		t.Fatalf("%s answered %s with %q, want one AT line from %s", server, line, reply, server)
	}
	return string(rs[0].Line)
}

// sent records what a client said last, as the herd must hold it.
func (h *herd) sent(id, at, when string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r, ok := h.records[id]; !ok || newer(when, r.time) {
		h.records[id] = record{at: at, time: when}
	}
}

// expected returns the AT lines the herd must hold, by client id.
func (h *herd) expected() map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := make(map[string]string, len(h.records))
	for id, r := range h.records {
		m[id] = r.at
	}
	return m
}

// newer reports whether client time a is after b (both digits.digits).
func newer(a, b string) bool {
	as, af, _ := strings.Cut(a, ".")
	bs, bf, _ := strings.Cut(b, ".")
	if len(as) != len(bs) {
		return len(as) > len(bs)
	}
	if as != bs {
		return as > bs
	}
	for len(af) < len(bf) {
		af += "0"
	}
	for len(bf) < len(af) {
		bf += "0"
	}
	return af > bf
}

// whatsat asks a server about a client and returns the AT line it
// answers with, or "" when the server does not know the client (a "? "
// reply). It checks the shape of the reply: the AT line, the places JSON,
// and the blank line that ends it.
func (h *herd) whatsat(t testing.TB, server, id string) string {
	t.Helper()
	line := "WHATSAT " + id + " 10 1"
	reply := send(t, h.node(t, server).clientAddr(t), line)
	if reply == "? "+line+"\n" {
		return ""
	}
	rs, err := testutil.ReadReplies(strings.NewReader(reply), line)
	var places struct {
		Results []json.RawMessage `json:"results"`
		Status  string            `json:"status"`
	}
	ok := err == nil && rs[0].Kind == protocol.ReplyAT && string(rs[0].Raw) == reply
	if ok {
		_, ok = parseAT(rs[0].Line)
	}
	if !ok || json.Unmarshal(rs[0].JSON, &places) != nil || places.Status == "" {
		t.Fatalf("%s answered %q with %q, want an AT line, the places JSON and a blank line", server, line, reply)
	}
	return string(rs[0].Line)
}

// whatsatMany asks a server about many clients, pipelined on one
// connection, and returns the AT lines it answers with by client id ("" for
// a client it does not know).
func (h *herd) whatsatMany(t testing.TB, server string, ids []string) map[string]string {
	t.Helper()
	lines := make([]string, len(ids))
	for i, id := range ids {
		lines[i] = "WHATSAT " + id + " 1 0"
	}
	ats := map[string]string{}
	pipeline(t, h.node(t, server).clientAddr(t), lines, func(i int, r protocol.Reply) error {
		if r.Kind == protocol.ReplyInvalid && string(r.Line) == "? "+lines[i] {
			ats[ids[i]] = ""
			return nil
		}
		if _, ok := parseAT(r.Line); !ok || r.Kind != protocol.ReplyAT {
			return fmt.Errorf("reply to %q is %q", lines[i], r.Raw)
		}
		ats[ids[i]] = string(r.Line)
		return nil
	})
	return ats
}

// pipeline writes lines on one connection while read takes the reply to
// each in turn, read with the protocol's reader.
func pipeline(t testing.TB, addr string, lines []string, read func(i int, r protocol.Reply) error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	werr := make(chan error, 1)
	go func() {
		bw := bufio.NewWriter(c)
		for _, l := range lines {
			bw.WriteString(l + "\n")
		}
		err := bw.Flush()
		c.(*net.TCPConn).CloseWrite()
		werr <- err
	}()
	rr := protocol.NewReplyReader(c)
	for i := range lines {
		r, err := rr.ReadReply(protocol.FormOf(lines[i]))
		if err == nil {
			err = read(i, r)
		}
		if err != nil {
			t.Fatalf("%s: reply %d of %d (to %q): %v", addr, i+1, len(lines), lines[i], err)
		}
	}
	if err := <-werr; err != nil {
		t.Fatalf("%s: writing: %v", addr, err)
	}
	if rest, _ := io.ReadAll(rr); len(rest) > 0 {
		t.Fatalf("%s: %q after the last reply", addr, rest)
	}
}

// waitKnows waits until a server answers WHATSAT about a client with
// exactly the AT line at.
func (h *herd) waitKnows(t testing.TB, server, id, at string) {
	t.Helper()
	h.waitKnowsWithin(t, converge, server, id, at)
}

func (h *herd) waitKnowsWithin(t testing.TB, d time.Duration, server, id, at string) {
	t.Helper()
	eventually(t, d, fmt.Sprintf("%s answers WHATSAT %s with %q", server, id, at), func() (bool, string) {
		got := h.whatsat(t, server, id)
		return got == at, fmt.Sprintf("%q", got)
	})
}

// waitAgree waits until every server named (all five by default) holds
// exactly the newest record of every client the test has sent, and no
// other: herd_store_records says how many it holds, WHATSAT what they
// are.
func (h *herd) waitAgree(t testing.TB, servers ...string) {
	t.Helper()
	if len(servers) == 0 {
		servers = h.names
	}
	want := h.expected()
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	for _, s := range servers {
		eventually(t, converge, fmt.Sprintf("%s holds the %d records sent", s, len(want)), func() (bool, string) {
			if n := h.metric(t, s, "herd_store_records", nil); n != float64(len(want)) {
				return false, fmt.Sprintf("herd_store_records %v", n)
			}
			got := h.whatsatMany(t, s, ids)
			for _, id := range ids {
				if got[id] != want[id] {
					return false, fmt.Sprintf("WHATSAT %s: %q, want %q", id, got[id], want[id])
				}
			}
			return true, ""
		})
	}
}

// labels selects metric samples: every label given must match.
type labels = map[string]string

// sample is one value of a scrape: a counter, a gauge, or one series of a
// histogram (name_bucket with le, name_count, name_sum).
type sample struct {
	name   string
	labels labels
	value  float64
}

// scrape is what a node's /metrics said at one moment.
type scrape []sample

// get returns the sum of the samples called name whose labels include
// those given; a series never set (a counter not yet incremented) is 0.
func (s scrape) get(name string, want labels) float64 {
	var v float64
	for _, x := range s {
		if x.name != name {
			continue
		}
		match := true
		for k, val := range want {
			if x.labels[k] != val {
				match = false
				break
			}
		}
		if match {
			v += x.value
		}
	}
	return v
}

// scrape reads a node's /metrics.
func (h *herd) scrape(t testing.TB, server string) scrape {
	t.Helper()
	return scrapeURL(t, "http://"+h.node(t, server).metricsAddr(t)+"/metrics")
}

// noReuse opens a connection per request. Host ports are ephemeral and
// come back: a connection kept idle from a container of an earlier test
// (or of this one before a restart) may point at a port that another
// container now publishes, and reusing it ends in "connection reset by
// peer" from docker-proxy rather than in a fresh dial.
var noReuse = &http.Transport{DisableKeepAlives: true}

func scrapeURL(t testing.TB, url string) scrape {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second, Transport: noReuse}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("scraping %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scraping %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	var s scrape
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			l := labels{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				s = append(s, sample{name, l, m.GetCounter().GetValue()})
			case dto.MetricType_GAUGE:
				s = append(s, sample{name, l, m.GetGauge().GetValue()})
			case dto.MetricType_UNTYPED:
				s = append(s, sample{name, l, m.GetUntyped().GetValue()})
			case dto.MetricType_HISTOGRAM:
				hg := m.GetHistogram()
				s = append(s, sample{name + "_count", l, float64(hg.GetSampleCount())},
					sample{name + "_sum", l, hg.GetSampleSum()})
				for _, b := range hg.GetBucket() {
					bl := labels{"le": strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64)}
					for k, v := range l {
						bl[k] = v
					}
					s = append(s, sample{name + "_bucket", bl, float64(b.GetCumulativeCount())})
				}
			case dto.MetricType_SUMMARY:
				sm := m.GetSummary()
				s = append(s, sample{name + "_count", l, float64(sm.GetSampleCount())},
					sample{name + "_sum", l, sm.GetSampleSum()})
			}
		}
	}
	return s
}

// metric scrapes a node and returns one metric (see scrape.get).
func (h *herd) metric(t testing.TB, server, name string, want labels) float64 {
	t.Helper()
	return h.scrape(t, server).get(name, want)
}

// waitMetric waits until a node's metric satisfies cond.
func (h *herd) waitMetric(t testing.TB, server, name string, want labels, what string, cond func(float64) bool) float64 {
	t.Helper()
	var v float64
	eventually(t, converge, fmt.Sprintf("%s: %s%v %s", server, name, want, what), func() (bool, string) {
		v = h.metric(t, server, name, want)
		return cond(v), strconv.FormatFloat(v, 'g', -1, 64)
	})
	return v
}

// atLeast and equal make waitMetric conditions.
func atLeast(x float64) func(float64) bool { return func(v float64) bool { return v >= x } }
func equal(x float64) func(float64) bool   { return func(v float64) bool { return v == x } }
