package places

import (
	"encoding/json"
	"strings"
	"testing"
)

const legacyBody = `{
   "html_attributions" : [],
   "next_page_token" : "Aap_uEA7vb0DDYVJWEaX3O",
   "results" : [
      {
         "geometry" : { "location" : { "lat" : 34.0736204, "lng" : -118.4003563 } },
         "name" : "Beverly Hills",
         "place_id" : "ChIJq7GnWPq7woAR4pBq2MFhwzA",
         "types" : [ "locality", "political" ],
         "vicinity" : "Beverly Hills"
      },
      {"name":"Westwood","place_id":"ChIJ2","types":["neighborhood","political"],"rating":4.5}
   ],
   "status" : "OK"
}`

func TestParseAndAppendJSON(t *testing.T) {
	r, err := Parse([]byte(legacyBody))
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != StatusOK || r.Len() != 2 || !r.Cacheable() {
		t.Fatalf("Status %q, Len %d", r.Status, r.Len())
	}
	for bound := 0; bound <= 3; bound++ {
		out := string(r.AppendJSON(nil, bound))
		if strings.Contains(out, "\n\n") || strings.HasSuffix(out, "\n") {
			t.Errorf("bound %d: blank line or trailing newline in %q", bound, out)
		}
		var v struct {
			HTMLAttributions []any            `json:"html_attributions"`
			NextPageToken    string           `json:"next_page_token"`
			Results          []map[string]any `json:"results"`
			Status           string           `json:"status"`
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("bound %d: %v in %s", bound, err, out)
		}
		if len(v.Results) != min(bound, 2) || v.Status != "OK" || v.NextPageToken != "Aap_uEA7vb0DDYVJWEaX3O" {
			t.Errorf("bound %d: %+v", bound, v)
		}
		// Field order is kept.
		if a, b, c := strings.Index(out, "html_attributions"), strings.Index(out, "next_page_token"), strings.Index(out, `"status"`); !(a < b && b < c) {
			t.Errorf("bound %d: field order lost in %s", bound, out)
		}
	}
	if got := string(r.AppendJSON(nil, 1)); !strings.Contains(got, "34.0736204") || strings.Contains(got, "Westwood") {
		t.Errorf("bound 1: %s", got)
	}
}

func TestParseRejects(t *testing.T) {
	for _, body := range []string{``, `[]`, `{"status":"OK"`, `{"results":{},"status":"OK"}`, `{"results":[]}`,
		`{"status":1}`, `{"status":"OK"} x`, `{"results":[1,`} {
		if _, err := Parse([]byte(body)); err == nil {
			t.Errorf("Parse(%q) succeeded", body)
		}
	}
}

func TestFailure(t *testing.T) {
	r := Failure(StatusUnknownError, "places: upstream timed out")
	out := string(r.AppendJSON(nil, 5))
	want := "{\n   \"error_message\" : \"places: upstream timed out\",\n   \"html_attributions\" : [],\n   \"results\" : [],\n   \"status\" : \"UNKNOWN_ERROR\"\n}"
	if out != want {
		t.Errorf("Failure renders\n%s\nwant\n%s", out, want)
	}
	if r.Cacheable() {
		t.Error("a failure is cacheable")
	}
}
