package protocol

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

const (
	kiwiAT   = "AT Hill +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503"
	kiwiJSON = "{\n   \"results\" : [ {\n      \"name\" : \"x\"\n   } ],\n   \"status\" : \"OK\"\n}"
)

func TestAppendAT(t *testing.T) {
	got := string(AppendAT(nil, "Hill", 1621464828223371889, "kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503"))
	if got != kiwiAT {
		t.Errorf("AppendAT = %q, want %q", got, kiwiAT)
	}
}

func TestAppendInvalid(t *testing.T) {
	if got := string(AppendInvalid(nil, []byte("IAMAT Clark +12-118"))); got != "? IAMAT Clark +12-118\n" {
		t.Errorf("AppendInvalid = %q", got)
	}
}

func TestAppendPlacesReply(t *testing.T) {
	at := func(b []byte) []byte { return append(b, kiwiAT...) }
	js := func(b []byte) []byte { return append(b, kiwiJSON...) }
	if got := string(AppendPlacesReply(nil, at, js)); got != kiwiAT+"\n"+kiwiJSON+"\n\n" {
		t.Errorf("AppendPlacesReply = %q", got)
	}
	buf := make([]byte, 0, 512)
	if n := testing.AllocsPerRun(100, func() { buf = AppendPlacesReply(buf[:0], at, js) }); n != 0 {
		t.Errorf("AppendPlacesReply allocates %v times", n)
	}
}

// TestRepliesReadBack: what the formatting side writes, the reading side
// reads back, field for field.
func TestRepliesReadBack(t *testing.T) {
	line := []byte("IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503")
	c := Parse(line)
	var out []byte
	out = append(AppendATParsed(out, "Hill", 1621464828223371889, c.Sec, c.Nsec, c.AppendText(nil)), '\n')
	out = AppendPlacesReply(out,
		func(b []byte) []byte { return AppendAT(b, "Hill", 1621464828223371889, c.Text()) },
		func(b []byte) []byte { return append(b, kiwiJSON...) })
	out = AppendInvalid(out, []byte("WHATSAT nobody 1 1"))

	rr := NewReplyReader(bytes.NewReader(out))
	for i, want := range []struct {
		form ReplyForm
		kind ReplyKind
		line string
		json string
	}{
		{LineReply, ReplyAT, kiwiAT, ""},
		{PlacesReply, ReplyAT, kiwiAT, kiwiJSON},
		{PlacesReply, ReplyInvalid, "? WHATSAT nobody 1 1", ""},
	} {
		r, err := rr.ReadReply(want.form)
		if err != nil || r.Kind != want.kind || string(r.Line) != want.line || string(r.JSON) != want.json {
			t.Fatalf("reply %d: %v %q %q %v", i, r.Kind, r.Line, r.JSON, err)
		}
		if c := r.Clone(); string(c.Raw) != string(r.Raw) || string(c.Line) != string(r.Line) || string(c.JSON) != string(r.JSON) || &c.Raw[0] == &r.Raw[0] {
			t.Fatalf("reply %d: Clone = %q %q %q", i, c.Raw, c.Line, c.JSON)
		}
		if r.Kind == ReplyAT {
			at, ok := ParseAT(r.Line)
			if !ok || string(at.Origin) != "Hill" || string(at.Diff) != "+0.263873386" || string(at.Client) != string(c.Client) ||
				string(at.Pos) != string(c.Pos) || string(at.Time) != string(c.Time) {
				t.Fatalf("reply %d: ParseAT = %q, %v", i, at, ok)
			}
		}
	}
	if _, err := rr.ReadReply(LineReply); err != io.EOF {
		t.Fatalf("after the last reply: %v, want EOF", err)
	}
}

type wantReply struct {
	kind ReplyKind
	raw  string
	json string
}

func TestReplyReader(t *testing.T) {
	const at = "AT Hill +0.1 k +1+2 3"
	tests := []struct {
		name    string
		input   string
		forms   []ReplyForm // one per reply, LineReply if missing
		want    []wantReply
		wantErr error // of the read after the replies
	}{
		{"IAMAT", at + "\n", nil, []wantReply{{ReplyAT, at + "\n", ""}}, io.EOF},
		{"CR before LF dropped", at + "\r\n", nil, []wantReply{{ReplyAT, at + "\r\n", ""}}, io.EOF},
		{"invalid", "? IAMAT k\n", nil, []wantReply{{ReplyInvalid, "? IAMAT k\n", ""}}, io.EOF},
		{"invalid to a WHATSAT is one line", "? WHATSAT k 1 1\n" + at + "\n", []ReplyForm{PlacesReply},
			[]wantReply{{ReplyInvalid, "? WHATSAT k 1 1\n", ""}, {ReplyAT, at + "\n", ""}}, io.EOF},
		{"garbage", "hello\n", nil, []wantReply{{ReplyMalformed, "hello\n", ""}}, io.EOF},
		{"empty line", "\n", nil, []wantReply{{ReplyMalformed, "\n", ""}}, io.EOF},
		{"AT without its space", "AT\n", nil, []wantReply{{ReplyMalformed, "AT\n", ""}}, io.EOF},
		{"WHATSAT", at + "\n{\"results\":[]}\n\n", []ReplyForm{PlacesReply},
			[]wantReply{{ReplyAT, at + "\n{\"results\":[]}\n\n", `{"results":[]}`}}, io.EOF},
		{"WHATSAT, JSON on lines", at + "\n" + kiwiJSON + "\n\n", []ReplyForm{PlacesReply},
			[]wantReply{{ReplyAT, at + "\n" + kiwiJSON + "\n\n", kiwiJSON}}, io.EOF},
		{"WHATSAT with CRs", at + "\r\n{}\r\n\r\n", []ReplyForm{PlacesReply},
			[]wantReply{{ReplyAT, at + "\r\n{}\r\n\r\n", "{}"}}, io.EOF},
		{"WHATSAT JSON indented", at + "\n  {}  \n\n", []ReplyForm{PlacesReply},
			[]wantReply{{ReplyAT, at + "\n  {}  \n\n", "  {}  "}}, io.EOF},
		{"WHATSAT JSON not closed", at + "\n{\n\"results\" : [ {\n\n", []ReplyForm{PlacesReply},
			[]wantReply{{ReplyMalformed, at + "\n{\n\"results\" : [ {\n\n", ""}}, io.EOF},
		{"WHATSAT without JSON", at + "\n\n", []ReplyForm{PlacesReply},
			[]wantReply{{ReplyMalformed, at + "\n\n", ""}}, io.EOF},
		{"WHATSAT, another AT line for JSON", at + "\nAT x\n", []ReplyForm{PlacesReply},
			[]wantReply{{ReplyMalformed, at + "\nAT x\n", ""}}, io.EOF},
		{"WHATSAT with no empty line after the JSON", at + "\n{}\nAT x\n\n", []ReplyForm{PlacesReply},
			[]wantReply{{ReplyMalformed, at + "\n{}\nAT x\n\n", ""}}, io.EOF},
		{"pipelined", at + "\n" + at + "\n{}\n\n? x\n", []ReplyForm{LineReply, PlacesReply, LineReply},
			[]wantReply{{ReplyAT, at + "\n", ""}, {ReplyAT, at + "\n{}\n\n", "{}"}, {ReplyInvalid, "? x\n", ""}}, io.EOF},
		{"cut in the first line", "AT Hi", nil, nil, ErrIncompleteReply},
		{"cut in the JSON", at + "\n{\"a\":", []ReplyForm{PlacesReply}, nil, ErrIncompleteReply},
		{"cut before the empty line", at + "\n{}\n", []ReplyForm{PlacesReply}, nil, ErrIncompleteReply},
		{"nothing", "", nil, nil, io.EOF},
	}
	readers := map[string]func(string) io.Reader{
		"whole":       func(s string) io.Reader { return strings.NewReader(s) },
		"byte a read": func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
		"data with EOF": func(s string) io.Reader {
			return iotest.DataErrReader(strings.NewReader(s))
		},
	}
	for _, tt := range tests {
		for rname, reader := range readers {
			t.Run(tt.name+"/"+rname, func(t *testing.T) {
				rr := NewReplyReaderSize(reader(tt.input), 16, 1<<10)
				form := func(i int) ReplyForm {
					if i < len(tt.forms) {
						return tt.forms[i]
					}
					return LineReply
				}
				for i, want := range tt.want {
					r, err := rr.ReadReply(form(i))
					if err != nil {
						t.Fatalf("reply %d: %v", i, err)
					}
					if r.Kind != want.kind || string(r.Raw) != want.raw || string(r.JSON) != want.json {
						t.Fatalf("reply %d: %v %q JSON %q, want %v %q JSON %q", i, r.Kind, r.Raw, r.JSON, want.kind, want.raw, want.json)
					}
					if wantLine, _, _ := strings.Cut(want.raw, "\n"); string(r.Line) != strings.TrimSuffix(wantLine, "\r") {
						t.Fatalf("reply %d: line %q", i, r.Line)
					}
				}
				r, err := rr.ReadReply(form(len(tt.want)))
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("after the replies: %v, want %v", err, tt.wantErr)
				}
				if err == ErrIncompleteReply && (r.Kind != ReplyMalformed || len(r.Raw) == 0) {
					t.Fatalf("an incomplete reply gives %v %q", r.Kind, r.Raw)
				}
			})
		}
	}
}

// TestReplyReaderBound: a reply longer than the bound is an error, not an
// unbounded buffer; one that fits the bound exactly is read.
func TestReplyReaderBound(t *testing.T) {
	const limit = 64
	fits := "? " + strings.Repeat("x", limit-3) + "\n"
	rr := NewReplyReaderSize(strings.NewReader(fits+fits+"? "+strings.Repeat("y", limit)+"\n"), 16, limit)
	for i := range 2 {
		if r, err := rr.ReadReply(LineReply); err != nil || string(r.Raw) != fits {
			t.Fatalf("reply %d of the bound's length: %q %v", i, r.Raw, err)
		}
	}
	if _, err := rr.ReadReply(LineReply); err != ErrReplyTooLong {
		t.Fatalf("a reply over the bound: %v, want ErrReplyTooLong", err)
	}
	if len(rr.buf) > limit {
		t.Errorf("buffer grew to %d bytes, over the bound %d", len(rr.buf), limit)
	}
}

// TestReplyReaderNoProgress: a reader that returns nothing, for ever, is
// an error rather than a spin.
func TestReplyReaderNoProgress(t *testing.T) {
	rr := NewReplyReader(emptyReader{})
	if _, err := rr.ReadReply(LineReply); err != io.ErrNoProgress {
		t.Fatalf("got %v, want io.ErrNoProgress", err)
	}
}

type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }

// TestReplyReaderReadsTheRest: after the replies, Read hands out what
// follows them, buffered or not.
func TestReplyReaderReadsTheRest(t *testing.T) {
	rr := NewReplyReaderSize(strings.NewReader("? a\nrest of it"), 16, 64)
	if r, err := rr.ReadReply(LineReply); err != nil || r.Kind != ReplyInvalid {
		t.Fatalf("%v %v", r.Kind, err)
	}
	rest, err := io.ReadAll(rr)
	if err != nil || string(rest) != "rest of it" {
		t.Fatalf("rest %q %v", rest, err)
	}
}

func TestReplyReaderAllocations(t *testing.T) {
	chunk, forms := replyChunk()
	rr := NewReplyReader(&repeatReader{chunk: chunk})
	k := 0
	n := testing.AllocsPerRun(1000, func() {
		if _, ok := rr.Next(forms[k%len(forms)]); ok {
			k++
			return
		}
		if err := rr.Fill(); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("reading replies allocates %v times a call", n)
	}
}

func TestParseAT(t *testing.T) {
	tests := []struct {
		line string
		ok   bool
	}{
		{kiwiAT, true},
		{"AT Hill -2.500000000 k +1+1 1", true},
		{"AT  Hill\t+0.1 k +1+1 1 ", true},
		{"AT Hill 0.1 k +1+1 1", false},
		{"AT Hill +0.1 k +1+1", false},
		{"AT Hill +0.1 k +1+1 1 x", false},
		{"AT Hill +0.1 k +91+1 1", false},
		{"AT Hill +0.1 k +1+1 1e9", false},
		{"at Hill +0.1 k +1+1 1", false},
		{"? IAMAT k +1+1 1", false},
		{"", false},
	}
	for _, tt := range tests {
		if _, ok := ParseAT([]byte(tt.line)); ok != tt.ok {
			t.Errorf("ParseAT(%q) ok = %v, want %v", tt.line, ok, tt.ok)
		}
	}
}

func TestParseDiff(t *testing.T) {
	tests := []struct {
		in        string
		sec, nsec int64
		ok        bool
	}{
		{"+0.263873386", 0, 263873386, true},
		{"-2.500000000", -2, -500000000, true},
		{"+0.000000000", 0, 0, true},
		{"+12", 12, 0, true},
		{"0.1", 0, 0, false},
		{"+", 0, 0, false},
		{"-x", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tt := range tests {
		sec, nsec, ok := ParseDiff(tt.in)
		if sec != tt.sec || nsec != tt.nsec || ok != tt.ok {
			t.Errorf("ParseDiff(%q) = %d, %d, %v", tt.in, sec, nsec, ok)
		}
		if !tt.ok {
			continue
		}
		// What AppendDiff writes, ParseDiff reads back.
		if s2, n2, _ := ParseDiff(AppendDiff(nil, sec*1e9+nsec, 0, 0)); s2 != sec || n2 != nsec {
			t.Errorf("AppendDiff then ParseDiff of %q = %d, %d", tt.in, s2, n2)
		}
	}
}

// repeatReader answers every read with the same whole replies, as a
// server's batched writes arrive.
type repeatReader struct{ chunk []byte }

func (r *repeatReader) Read(p []byte) (int, error) { return copy(p, r.chunk), nil }

// replyChunk returns the replies to sixteen pipelined requests of a real
// herd's size, the last a WHATSAT, and their forms.
func replyChunk() ([]byte, []ReplyForm) {
	var b []byte
	var forms []ReplyForm
	for i := range 16 {
		b = append(b, "AT Smith +0.000123456 bench-1234567890-"...)
		b = append(b, byte('a'+i))
		b = append(b, " +34.068930-118.445127 1621464827.959498503\n"...)
		if i == 15 {
			b = append(b, `{"html_attributions":[],"results":[],"status":"OK"}`+"\n\n"...)
			forms = append(forms, PlacesReply)
			continue
		}
		forms = append(forms, LineReply)
	}
	return b, forms
}

// BenchmarkReadReplies reads replies as a load generator does: fill once,
// then take every whole reply buffered. One op is one reply.
func BenchmarkReadReplies(b *testing.B) {
	chunk, forms := replyChunk()
	rr := NewReplyReader(&repeatReader{chunk: chunk})
	b.ReportAllocs()
	b.SetBytes(int64(len(chunk) / len(forms)))
	n := 0
	for n < b.N {
		if err := rr.Fill(); err != nil {
			b.Fatal(err)
		}
		for {
			r, ok := rr.Next(forms[n%len(forms)])
			if !ok {
				break
			}
			if r.Kind != ReplyAT {
				b.Fatalf("reply %d: %v", n, r.Kind)
			}
			n++
		}
	}
}

// FuzzReadReplies reads any input, delivered in two reads split anywhere,
// as replies of any forms, and checks that the reader never loses or
// invents a byte, respects its bound, and reads the same whatever the
// split.
func FuzzReadReplies(f *testing.F) {
	for _, s := range []string{
		kiwiAT + "\n",
		kiwiAT + "\n" + kiwiJSON + "\n\n",
		"? WHATSAT k 1 1\n" + kiwiAT + "\r\n{}\r\n\r\n",
		kiwiAT + "\n{\n\n", "hello\n", "\n\n\n", "AT", "AT x\n{}\nAT y\n\n? z\n",
	} {
		f.Add([]byte(s), uint16(0xaaaa), uint16(7))
	}
	f.Fuzz(func(t *testing.T, input []byte, forms, cut uint16) {
		const limit = 256
		form := func(i int) ReplyForm { return ReplyForm(forms >> (i % 16) & 1) }
		split := int(cut) % (len(input) + 1)
		read := func(rd io.Reader) (replies []string, kinds []ReplyKind, err error) {
			rr := NewReplyReaderSize(rd, 16, limit)
			for i := 0; ; i++ {
				r, err := rr.ReadReply(form(i))
				if err != nil {
					return replies, kinds, err
				}
				if len(r.Raw) > limit {
					t.Fatalf("a reply of %d bytes, over the bound %d", len(r.Raw), limit)
				}
				if !bytes.HasPrefix(r.Raw, r.Line) || r.Raw[len(r.Raw)-1] != '\n' {
					t.Fatalf("reply %q, line %q", r.Raw, r.Line)
				}
				switch {
				case r.Kind == ReplyAT && !bytes.HasPrefix(r.Line, []byte("AT ")),
					r.Kind == ReplyInvalid && !bytes.HasPrefix(r.Line, []byte("? ")),
					r.Kind == ReplyAT && form(i) == PlacesReply && (len(r.JSON) == 0 || !bytes.HasSuffix(r.Raw, []byte("\n\n")) && !bytes.HasSuffix(r.Raw, []byte("\r\n"))),
					r.Kind != ReplyAT && len(r.JSON) > 0:
					t.Fatalf("%v reply %q to form %d, JSON %q", r.Kind, r.Raw, form(i), r.JSON)
				}
				replies = append(replies, string(r.Raw))
				kinds = append(kinds, r.Kind)
				if r.Kind == ReplyMalformed {
					return replies, kinds, nil
				}
			}
		}
		whole, wholeKinds, wholeErr := read(bytes.NewReader(input))
		parts, partKinds, partErr := read(io.MultiReader(bytes.NewReader(input[:split]), bytes.NewReader(input[split:])))
		bytewise, _, _ := read(iotest.OneByteReader(bytes.NewReader(input)))
		if strings.Join(whole, "|") != strings.Join(parts, "|") || strings.Join(whole, "|") != strings.Join(bytewise, "|") ||
			wholeErr != partErr || len(wholeKinds) != len(partKinds) {
			t.Fatalf("whole %q %v, split at %d %q %v, a byte at a time %q", whole, wholeErr, split, parts, partErr, bytewise)
		}
		if got := strings.Join(whole, ""); !strings.HasPrefix(string(input), got) {
			t.Fatalf("replies %q are not the input %q", got, input)
		}
	})
}
