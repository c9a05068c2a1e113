package places

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// addTestdata seeds f with the realistic bodies of testdata/google whose
// names start with prefix; testdata/fuzz/<FuzzName> holds more seeds.
func addTestdata(f *testing.F, prefix string) {
	files, err := filepath.Glob(filepath.Join("testdata", "google", prefix+"*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds for %s: %v", prefix, err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// checkRendering checks the properties of any Response: every bound
// renders valid JSON with no blank line and no trailing newline, holding
// min(bound, Len) results, and reads back to the same rendering.
func checkRendering(t *testing.T, r *Response) {
	t.Helper()
	for _, bound := range []int{-1, 0, 1, r.Len(), r.Len() + 1} {
		out := r.AppendJSON(nil, bound)
		if !json.Valid(out) {
			t.Fatalf("bound %d: invalid JSON %q", bound, out)
		}
		if bytes.Contains(out, []byte("\n\n")) || bytes.HasSuffix(out, []byte("\n")) {
			t.Fatalf("bound %d: blank line or trailing newline in %q", bound, out)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("bound %d: the rendering does not parse: %v\n%s", bound, err, out)
		}
		if again.Status != r.Status || again.Len() != min(max(bound, 0), r.Len()) {
			t.Fatalf("bound %d: read back as %s with %d results, from %s with %d", bound, again.Status, again.Len(), r.Status, r.Len())
		}
		if back := again.AppendJSON(nil, bound); !bytes.Equal(back, out) {
			t.Fatalf("bound %d: renders as\n%s\nthen as\n%s", bound, out, back)
		}
	}
}

func FuzzParse(f *testing.F) {
	addTestdata(f, "legacy-")
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := Parse(body)
		sameAsReference(t, body, r, err)
		if err != nil {
			return
		}
		if r.Status == "" {
			t.Fatal("parsed without a status")
		}
		checkRendering(t, r)
	})
}

func FuzzConvertNew(f *testing.F) {
	addTestdata(f, "new-")
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := convertNew(body)
		if err != nil {
			return
		}
		if !r.Cacheable() || (r.Len() == 0) != (r.Status == StatusZeroResults) {
			t.Fatalf("status %s with %d results", r.Status, r.Len())
		}
		checkRendering(t, r)
		var v struct {
			HTMLAttributions []string         `json:"html_attributions"`
			Results          []map[string]any `json:"results"`
		}
		if err := json.Unmarshal(r.AppendJSON(nil, MaxResults), &v); err != nil {
			t.Fatal(err)
		}
		if v.HTMLAttributions == nil || len(v.HTMLAttributions) != 0 {
			t.Fatalf("html_attributions %v", v.HTMLAttributions)
		}
	})
}

// sameAsReference checks that Parse's result r, err for body is the
// reference parser's: the same failure, or the same rendering.
func sameAsReference(t *testing.T, body []byte, r *Response, err error) {
	t.Helper()
	ref, refErr := parseReference(body)
	if (err == nil) != (refErr == nil) {
		t.Fatalf("Parse(%q): error %v, the reference's %v", body, err, refErr)
	}
	if err != nil {
		return
	}
	if r.Status != ref.Status || r.ErrorMessage != ref.ErrorMessage || r.Len() != ref.Len() {
		t.Fatalf("Parse(%q): %s %q %d, the reference %s %q %d", body, r.Status, r.ErrorMessage, r.Len(), ref.Status, ref.ErrorMessage, ref.Len())
	}
	for bound := range r.Len() + 2 {
		if got, want := r.AppendJSON(nil, bound), ref.AppendJSON(nil, bound); !bytes.Equal(got, want) {
			t.Fatalf("Parse(%q) with bound %d renders\n%s\nthe reference\n%s", body, bound, got, want)
		}
	}
}

// TestParseMatchesReference holds Parse to the json.Decoder version on
// the corners of JSON syntax.
func TestParseMatchesReference(t *testing.T) {
	bodies := []string{
		`{}`, ` { } `, `{"status":"OK"}`, "\t\r\n{\"status\" \n: \"OK\" }\n",
		`{"status":"OK",}`, `{,"status":"OK"}`, `{"status":"OK" "a":1}`, `{"status":"OK"}}`, `{"status":"OK"`,
		`{"status":"OK","results":[]}`, `{"status":"OK","results":[ ]}`, `{"status":"OK","results":[1,]}`,
		`{"status":"OK","results":[,1]}`, `{"status":"OK","results":[1 2]}`, `{"status":"OK","results":[1}`,
		`{"status":"OK","results":[{"a":[1,{"b":"]}"}]},"x\"}",null,true,false,-1.5e-3,"s"]}`,
		`{"status":"OK","results":[{]}`, `{"status":"OK","results":[{"a":}]}`, `{"status":"OK","results":[tru]}`,
		`{"status":"OK","results":[01]}`, `{"status":"OK","results":["\u00"]}`, `{"status":"OK","results":["a\x"]}`,
		`{"status":"OK","results":[], "results":[]}`, `{"results":[],"status":"OK","status":"ZERO_RESULTS"}`,
		`{"\u0073tatus":"OK"}`, `{"st\u0061tus":1}`, `{"status":"O\u004b"}`, `{"status":""}`,
		`{"status":"OK","error_message":5}`, `{"error_message":"a\u0026b","status":"X"}`,
		`{1:"OK"}`, `{"status":OK}`, `{"status":"OK","a":[}`, `{"status":"OK","a":{]}`, `{"status":"OK","a":"\"}`,
		`{"status":"OK","a":-}`, `{"status":"OK","a":1.}`, `{"status":"OK","a":.5}`, `{"status":"OK","a":nul}`,
		"{\"status\":\"OK\",\"a\":\"\x01\"}", "{\"status\":\"OK\",\"\xff\":\"\xfe\"}", "{\"status\":\"OK\"}\x00",
		`{"status":"OK","results":{}}`, `{"status":"OK","results":"[]"}`, `{"status":"OK","results":[[[]]]}`,
		`{"status":"OK","next_page_token":"x","html_attributions":["<b>"]}`, `[]`, `"x"`, ``, ` `, `{`, `}`,
	}
	nested := func(depth int) string { return strings.Repeat("[", depth) + strings.Repeat("]", depth) }
	bodies = append(bodies, `{"status":"OK","a":`+nested(100)+`}`, `{"status":"OK","results":[`+nested(100)+`]}`)
	for _, b := range bodies {
		r, err := Parse([]byte(b))
		sameAsReference(t, []byte(b), r, err)
	}
}
