package places_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/herdkit/herd/pkg/places"
	"github.com/herdkit/herd/pkg/places/placestest"
)

func FuzzParse(f *testing.F) {
	placestest.AddGoogleSeeds(f, ".", "legacy-")
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := places.Parse(body)
		sameAsReference(t, body, r, err)
		if err != nil {
			return
		}
		if r.Status == "" {
			t.Fatal("parsed without a status")
		}
		placestest.CheckRendering(t, r)
	})
}

// sameAsReference checks that Parse's result r, err for body is the
// reference parser's: the same failure, or the same rendering.
func sameAsReference(t *testing.T, body []byte, r *places.Response, err error) {
	t.Helper()
	ref, refErr := places.ParseReference(body)
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
		r, err := places.Parse([]byte(b))
		sameAsReference(t, []byte(b), r, err)
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	r, err := places.Parse([]byte(placestest.Google(b, ".", "legacy-ok.json")))
	if err != nil {
		b.Fatal(err)
	}
	var buf []byte
	for b.Loop() {
		buf = r.AppendJSON(buf[:0], 20)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkParse(b *testing.B) {
	body := []byte(placestest.Google(b, ".", "legacy-ok.json"))
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := places.Parse(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseReference is the json.Decoder Parse that Parse replaced.
func BenchmarkParseReference(b *testing.B) {
	body := []byte(placestest.Google(b, ".", "legacy-ok.json"))
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := places.ParseReference(body); err != nil {
			b.Fatal(err)
		}
	}
}
