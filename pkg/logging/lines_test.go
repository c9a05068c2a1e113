package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/herdkit/herd/internal/testutil"
)

// slogReference writes the same record through slog's JSONHandler, as the
// server did before the fast path.
func slogReference(t time.Time, prefix []slog.Attr, conn uint64, remote string, in, out []byte, key, value string) []byte {
	var b bytes.Buffer
	h := slog.NewJSONHandler(&b, nil).WithAttrs(prefix)
	r := slog.NewRecord(t, slog.LevelInfo, "line", 0)
	r.AddAttrs(slog.String("component", "client"), slog.Uint64("conn", conn), slog.String("remote", remote),
		slog.String("in", string(in)), slog.String("out", string(out)))
	if key != "" {
		r.AddAttrs(slog.String(key, value))
	}
	h.Handle(context.Background(), r)
	return b.Bytes()
}

// iamatReference writes an "iamat" record through slog's JSONHandler:
// what slogLines writes, at time t.
func iamatReference(t time.Time, prefix []slog.Attr, conn uint64, remote string, out []byte) []byte {
	var b bytes.Buffer
	h := slog.NewJSONHandler(&b, nil).WithAttrs(prefix)
	r := slog.NewRecord(t, slog.LevelInfo, "iamat", 0)
	r.AddAttrs(slog.String("component", "client"), slog.Uint64("conn", conn), slog.String("remote", remote),
		slog.String("out", string(out)))
	h.Handle(context.Background(), r)
	return b.Bytes()
}

type capture struct{ bytes.Buffer }

func fast(prefix []byte) (*jsonLines, *capture) {
	c := &capture{}
	return &jsonLines{sinks: []io.Writer{c}, prefix: prefix}, c
}

func TestJSONLinesMatchSlog(t *testing.T) {
	when := time.Date(2026, 11, 25, 20, 38, 57, 821922205, time.UTC)
	tests := []struct {
		name     string
		in, out  string
		key, val string
	}{
		{"iamat", "IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503",
			"AT Hill +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503\n", "", ""},
		{"invalid with reason", "IAMAT Clark +12-118", "? IAMAT Clark +12-118\n", "reason", "bad position"},
		{"whatsat json", "WHATSAT k 10 1", "AT Hill +0.1 k +1+1 1\n{\n   \"status\" : \"OK\"\n}\n\n", "places_status", "OK"},
		{"control bytes", "\x00\x01\t\r\x1f\x7f", "? \x00\x01\t\r\x1f\x7f\n", "", ""},
		{"quotes and backslashes", `"\"`, `? "\"` + "\n", "", ""},
		{"utf-8", "IAMAT ☃é +1+1 1", "AT ☃é\n", "", ""},
		{"invalid utf-8", "IAMAT \xff\xfe\xc3 +1+1 1", "?\xe2\x82\n", "", ""},
		{"line separators", "\u2028\u2029", "\u2028", "", ""},
		{"html", "<a>&", "<b>", "", ""},
		{"blank", "   ", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, c := fast([]byte(`,"node":"Hill"`))
			j.Line(when, 17, "127.0.0.1:45678", []byte(tt.in), []byte(tt.out), tt.key, tt.val)
			want := slogReference(when, []slog.Attr{slog.String("node", "Hill")}, 17, "127.0.0.1:45678",
				[]byte(tt.in), []byte(tt.out), tt.key, tt.val)
			if got := c.Bytes(); !bytes.Equal(got, want) {
				t.Errorf("fast path\n%s\nslog\n%s", got, want)
			}
			c.Reset()
			j.IAMATs(when, 17, "127.0.0.1:45678", []byte(tt.out))
			want = iamatReference(when, []slog.Attr{slog.String("node", "Hill")}, 17, "127.0.0.1:45678", []byte(tt.out))
			if got := c.Bytes(); !bytes.Equal(got, want) {
				t.Errorf("iamat record, fast path\n%s\nslog\n%s", got, want)
			}
		})
	}
}

func TestAppendTime(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		paris = time.FixedZone("CET", 3600)
	}
	base := time.Date(2026, 3, 29, 0, 59, 59, 0, time.UTC)
	for _, tt := range []time.Time{
		base, base.Add(1), base.Add(10), base.Add(987_654_321), base.Add(999_999_999), base.Add(120_000_000), base.Add(time.Second),
		base.In(paris), base.Add(time.Hour + 1).In(paris), base.Add(1500 * time.Millisecond).In(time.FixedZone("", -5*3600-1800)),
		time.Now(), time.Now().UTC(),
	} {
		if got, want := string(appendTime(nil, tt)), tt.Format(time.RFC3339Nano); got != want {
			t.Errorf("appendTime = %s, want %s", got, want)
		}
	}
}

func FuzzJSONLinesMatchSlog(f *testing.F) {
	f.Add("IAMAT kiwi +1+1 1", "AT Hill +0.1 kiwi +1+1 1\n", "reason", "x")
	f.Add("\xff\u2028\"", "\x00", "", "")
	f.Fuzz(func(t *testing.T, in, out, key, value string) {
		when := time.Unix(1764098000, 123456789).UTC()
		j, c := fast(nil)
		j.Line(when, 1, "[::1]:1", []byte(in), []byte(out), key, value)
		want := slogReference(when, nil, 1, "[::1]:1", []byte(in), []byte(out), key, value)
		if !bytes.Equal(c.Bytes(), want) {
			t.Fatalf("fast path\n%q\nslog\n%q", c.Bytes(), want)
		}
		var v map[string]any
		if err := json.Unmarshal(c.Bytes(), &v); err != nil {
			t.Fatalf("not JSON: %v", err)
		}
	})
}

func TestOpenChoosesTheProtocolLog(t *testing.T) {
	var b strings.Builder
	for _, tt := range []struct {
		level  slog.Level
		format string
		want   string
	}{
		{slog.LevelInfo, "json", "*logging.jsonLines"},
		{slog.LevelInfo, "text", "logging.slogLines"},
		{slog.LevelWarn, "json", "logging.off"},
	} {
		l, closeLog, err := Open(Config{Level: tt.level, Format: tt.format}, &b)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%T", l.Lines); got != tt.want {
			t.Errorf("level %v format %s: %s, want %s", tt.level, tt.format, got, tt.want)
		}
		closeLog()
	}
}

func TestWithTagsBothLogs(t *testing.T) {
	var b testutil.Buffer
	l, closeLog, err := Open(Config{Level: slog.LevelInfo, Format: "json"}, &b)
	if err != nil {
		t.Fatal(err)
	}
	hill := l.With("node", "Hill")
	hill.Info("started")
	hill.Lines.Line(time.Now(), 1, "r", []byte("in"), []byte("out"), "", "")
	closeLog()
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if !strings.Contains(line, `"node":"Hill"`) {
			t.Errorf("untagged record %s", line)
		}
	}
}

func TestPlainRunAgreesWithTheTable(t *testing.T) {
	// Every byte value at every position of an otherwise plain word, and
	// pairs of values, which is where a borrow could cross bytes.
	for pos := range 8 {
		for v := range 256 {
			w := []byte("abcdefghij")
			w[pos] = byte(v)
			want := pos
			if plain[v] {
				want = len(w)
			}
			if got := plainRun(w, 0); got != want {
				t.Fatalf("byte %#x at %d: run ends at %d, want %d", v, pos, got, want)
			}
			for u := range 256 {
				w[pos+1] = byte(u)
				want := pos
				switch {
				case plain[v] && plain[u]:
					want = len(w)
				case plain[v]:
					want = pos + 1
				}
				if got := plainRun(string(w), 0); got != want {
					t.Fatalf("bytes %#x at %d and %#x after it: run ends at %d, want %d", v, pos, u, got, want)
				}
			}
		}
	}
}

func BenchmarkJSONLine(b *testing.B) {
	j := &jsonLines{sinks: []io.Writer{io.Discard}, prefix: []byte(`,"node":"Hill"`)}
	in := []byte("IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503")
	out := []byte("AT Hill +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503\n")
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		j.Line(now, 42, "127.0.0.1:50000", in, out, "", "")
	}
}
