package google

import (
	"encoding/json"
	"testing"

	"github.com/herdkit/herd/pkg/places"
	"github.com/herdkit/herd/pkg/places/placestest"
)

func FuzzConvertNew(f *testing.F) {
	placestest.AddGoogleSeeds(f, "..", "new-")
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := convertNew(body)
		if err != nil {
			return
		}
		if !r.Cacheable() || (r.Len() == 0) != (r.Status == places.StatusZeroResults) {
			t.Fatalf("status %s with %d results", r.Status, r.Len())
		}
		placestest.CheckRendering(t, r)
		var v struct {
			HTMLAttributions []string         `json:"html_attributions"`
			Results          []map[string]any `json:"results"`
		}
		if err := json.Unmarshal(r.AppendJSON(nil, places.MaxResults), &v); err != nil {
			t.Fatal(err)
		}
		if v.HTMLAttributions == nil || len(v.HTMLAttributions) != 0 {
			t.Fatalf("html_attributions %v", v.HTMLAttributions)
		}
	})
}
