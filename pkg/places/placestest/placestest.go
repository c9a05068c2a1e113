// Package placestest holds the test helpers that the places core and its
// providers (offline, google) share: checks of a Response's rendering and
// shape. Only tests import it.
package placestest

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herdkit/herd/pkg/places"
)

// UCLA is a query about a client at UCLA, within 10 km.
var UCLA = places.Query{Pos: "+34.068930-118.445127", Lat: 34.06893, Lng: -118.445127, RadiusKm: 10}

// Discard is a logger that writes nowhere.
var Discard = slog.New(slog.DiscardHandler)

// DecodeJSON unmarshals b into v or fails the test.
func DecodeJSON(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
}

// ResultNames returns the names of a rendered response's results.
func ResultNames(t testing.TB, r *places.Response) []string {
	t.Helper()
	var v struct {
		Results []struct {
			Name string `json:"name"`
		} `json:"results"`
	}
	DecodeJSON(t, r.AppendJSON(nil, places.MaxResults), &v)
	var out []string
	for _, x := range v.Results {
		out = append(out, x.Name)
	}
	return out
}

// CheckAnswer checks a response's status, result count and message, and
// that it renders as valid JSON of the legacy shape.
func CheckAnswer(t *testing.T, r *places.Response, status string, n int, message string) {
	t.Helper()
	if r.Status != status || r.Len() != n || !strings.Contains(r.ErrorMessage, message) {
		t.Fatalf("status %s, %d results, message %q; want %s, %d, %q", r.Status, r.Len(), r.ErrorMessage, status, n, message)
	}
	if message == "" && !r.Cacheable() && r.ErrorMessage != "" {
		t.Errorf("unexpected message %q", r.ErrorMessage)
	}
	var v struct {
		HTMLAttributions []string `json:"html_attributions"`
		Results          []any    `json:"results"`
		Status           string   `json:"status"`
		ErrorMessage     string   `json:"error_message"`
	}
	DecodeJSON(t, r.AppendJSON(nil, places.MaxResults), &v)
	if v.HTMLAttributions == nil || v.Results == nil || v.Status != status || len(v.Results) != n || v.ErrorMessage != r.ErrorMessage {
		t.Errorf("renders as %+v", v)
	}
}

// CheckRendering checks the properties of any Response: every bound
// renders valid JSON with no blank line and no trailing newline, holding
// min(bound, Len) results, and reads back to the same rendering.
func CheckRendering(t *testing.T, r *places.Response) {
	t.Helper()
	for _, bound := range []int{-1, 0, 1, r.Len(), r.Len() + 1} {
		out := r.AppendJSON(nil, bound)
		if !json.Valid(out) {
			t.Fatalf("bound %d: invalid JSON %q", bound, out)
		}
		if bytes.Contains(out, []byte("\n\n")) || bytes.HasSuffix(out, []byte("\n")) {
			t.Fatalf("bound %d: blank line or trailing newline in %q", bound, out)
		}
		again, err := places.Parse(out)
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

// Google returns a recorded Google response body from
// pkg/places/google/testdata; dir is the path from the test's package to
// pkg/places.
func Google(t testing.TB, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "google", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// AddGoogleSeeds seeds f with the recorded Google bodies whose names start
// with prefix; dir is the path from the test's package to pkg/places.
func AddGoogleSeeds(f *testing.F, dir, prefix string) {
	files, err := filepath.Glob(filepath.Join(dir, "google", "testdata", prefix+"*.json"))
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
