package google

import (
	"net/http"
	"testing"

	"github.com/herdkit/herd/pkg/metrics"
	"github.com/herdkit/herd/pkg/places/placestest"

	"github.com/herdkit/herd/pkg/places"
)

func TestGoogleNewRequest(t *testing.T) {
	f := newFakeGoogle(t)
	f.set(reply(http.StatusOK, "{}"))
	tests := []struct {
		name string
		base string
		q    places.Query
		path string
		body string
	}{
		{"UCLA", f.srv.URL, placestest.UCLA, "/v1/places:searchNearby",
			`{"maxResultCount":20,"locationRestriction":{"circle":{"center":{"latitude":34.06893,"longitude":-118.445127}` +
				`,"radius":10000}},"rankPreference":"POPULARITY"}`},
		{"path prefix", f.srv.URL + "/p/", places.Query{Lat: -90, Lng: 180, RadiusKm: 0.25}, "/p/v1/places:searchNearby",
			`{"maxResultCount":20,"locationRestriction":{"circle":{"center":{"latitude":-90,"longitude":180}` +
				`,"radius":250}},"rankPreference":"POPULARITY"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.config(metrics.New())
			c.BaseURL = tt.base
			g, err := NewPlacesNew(c)
			if err != nil {
				t.Fatal(err)
			}
			if r := g.Nearby(bg, tt.q); r.Status != places.StatusZeroResults {
				t.Fatalf("status %s %q", r.Status, r.ErrorMessage)
			}
			req := f.last(t)
			if req.method != http.MethodPost || req.path != tt.path || len(req.query) != 0 {
				t.Errorf("%s %s %v, want POST %s", req.method, req.path, req.query, tt.path)
			}
			for h, want := range map[string]string{
				"Content-Type":     "application/json",
				"X-Goog-Api-Key":   testKey,
				"X-Goog-FieldMask": newFieldMask,
			} {
				if got := req.header.Get(h); got != want {
					t.Errorf("%s: %q, want %q", h, got, want)
				}
			}
			if req.body != tt.body {
				t.Errorf("body\n%s\nwant\n%s", req.body, tt.body)
			}
		})
	}
}

// wantNewOK is testdata/new-ok.json in the legacy shape.
const wantNewOK = `{
   "html_attributions" : [],
   "results" : [
      {
         "business_status": "OPERATIONAL",
         "geometry": {
            "location": {
               "lat": 34.068921,
               "lng": -118.4451811
            },
            "viewport": {
               "northeast": {
                  "lat": 34.0776,
                  "lng": -118.4380
               },
               "southwest": {
                  "lat": 34.0614,
                  "lng": -118.4552
               }
            }
         },
         "icon_background_color": "#7B9EB0",
         "icon_mask_base_uri": "https://maps.gstatic.com/mapfiles/place_api/icons/v2/school_pinlet",
         "name": "University of California, Los Angeles",
         "place_id": "ChIJZQ9c8IW8woARN0gTXFiTqSU",
         "plus_code": {
            "compound_code": "3H9W+H2 Los Angeles, CA, USA",
            "global_code": "85633H9W+H2"
         },
         "rating": 4.6,
         "reference": "ChIJZQ9c8IW8woARN0gTXFiTqSU",
         "types": [
            "university",
            "point_of_interest",
            "establishment"
         ],
         "user_ratings_total": 4124,
         "vicinity": "Los Angeles"
      },
      {
         "geometry": {
            "location": {
               "lat": 34.0750887,
               "lng": -118.4424717
            }
         },
         "name": "Royce Hall & <Friends>",
         "place_id": "ChIJ7y7R4Ya8woARfX1mPZ0lXbk",
         "reference": "ChIJ7y7R4Ya8woARfX1mPZ0lXbk"
      }
   ],
   "status" : "OK"
}`

func TestGoogleNewAnswers(t *testing.T) {
	f := newFakeGoogle(t)
	g, err := NewPlacesNew(f.config(metrics.New()))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		status  string
		n       int
		message string
		want    string // the whole rendering, when set
	}{
		{name: "OK", handler: reply(200, testdata(t, "new-ok.json")), status: places.StatusOK, n: 2, want: wantNewOK},
		{name: "empty", handler: reply(200, testdata(t, "new-empty.json")), status: places.StatusZeroResults,
			want: "{\n   \"html_attributions\" : [],\n   \"results\" : [],\n   \"status\" : \"ZERO_RESULTS\"\n}"},
		{name: "empty list", handler: reply(200, `{"places":[]}`), status: places.StatusZeroResults},
		{name: "PERMISSION_DENIED", handler: reply(403, testdata(t, "new-permission-denied.json")), status: places.StatusRequestDenied,
			message: "Requests to this API places.googleapis.com method google.maps.places.v1.Places.SearchNearby are blocked."},
		{name: "UNAUTHENTICATED", handler: reply(401, testdata(t, "new-unauthenticated.json")), status: places.StatusRequestDenied,
			message: "Request is missing required authentication credential."},
		{name: "RESOURCE_EXHAUSTED", handler: reply(429, testdata(t, "new-resource-exhausted.json")), status: places.StatusOverQueryLimit,
			message: "Quota exceeded for quota metric"},
		{name: "INVALID_ARGUMENT", handler: reply(400, testdata(t, "new-invalid-argument.json")), status: places.StatusInvalidRequest,
			message: "API key not valid. Please pass a valid API key.",
			want: "{\n   \"error_message\" : \"API key not valid. Please pass a valid API key.\",\n   \"html_attributions\" : [],\n" +
				"   \"results\" : [],\n   \"status\" : \"INVALID_REQUEST\"\n}"},
		{name: "INTERNAL", handler: reply(500, testdata(t, "new-internal.json")), status: places.StatusUnknownError,
			message: "Internal error encountered."},
		{name: "error without a message", handler: reply(503, `{"error":{"code":503,"status":"UNAVAILABLE"}}`),
			status: places.StatusUnknownError, message: "places: google-new answered UNAVAILABLE (HTTP 503)"},
		{name: "HTTP 502 without an error", handler: reply(502, "<html>Bad Gateway</html>"), status: places.StatusUnknownError,
			message: "places: google-new answered HTTP 502 Bad Gateway"},
		{name: "connection cut mid-body", handler: truncate(testdata(t, "new-ok.json")), status: places.StatusUnknownError,
			message: "places: google-new response cut short (HTTP 200): unexpected EOF"},
		{name: "body cut mid-JSON", handler: reply(200, testdata(t, "new-ok.json")[:300]), status: places.StatusUnknownError,
			message: "places: google-new sent a bad response: bad Places API (New) response: unexpected end of JSON input"},
		{name: "not an object", handler: reply(200, `[]`), status: places.StatusUnknownError, message: "is not a JSON object"},
		{name: "wrong field type", handler: reply(200, `{"places":[{"rating":"high"}]}`), status: places.StatusUnknownError,
			message: "bad Places API (New) response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.set(tt.handler)
			r := g.Nearby(bg, placestest.UCLA)
			placestest.CheckAnswer(t, r, tt.status, tt.n, tt.message)
			if got := string(r.AppendJSON(nil, 20)); tt.want != "" && got != tt.want {
				t.Errorf("answer\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// TestConvertNewFields checks each field's conversion on its own, and
// that absent fields stay absent.
func TestConvertNewFields(t *testing.T) {
	tests := []struct {
		name, place, want string
	}{
		{"nothing", `{}`, `{}`},
		{"id", `{"id":"X1"}`, `{"place_id":"X1","reference":"X1"}`},
		{"displayName", `{"displayName":{"text":"Café","languageCode":"fr"}}`, `{"name":"Café"}`},
		{"location", `{"location":{"latitude":-33.8670522,"longitude":151.1957362}}`,
			`{"geometry":{"location":{"lat":-33.8670522,"lng":151.1957362}}}`},
		{"location at the equator", `{"location":{"longitude":10}}`, `{"geometry":{"location":{"lat":0,"lng":10}}}`},
		{"viewport", `{"viewport":{"low":{"latitude":1,"longitude":2},"high":{"latitude":3,"longitude":4}}}`,
			`{"geometry":{"viewport":{"northeast":{"lat":3,"lng":4},"southwest":{"lat":1,"lng":2}}}}`},
		{"types", `{"types":["cafe","food"]}`, `{"types":["cafe","food"]}`},
		{"shortFormattedAddress", `{"shortFormattedAddress":"1 Main St, Springfield"}`, `{"vicinity":"1 Main St, Springfield"}`},
		{"rating", `{"rating":4.25}`, `{"rating":4.25}`},
		{"userRatingCount", `{"userRatingCount":17}`, `{"user_ratings_total":17}`},
		{"businessStatus", `{"businessStatus":"CLOSED_TEMPORARILY"}`, `{"business_status":"CLOSED_TEMPORARILY"}`},
		{"plusCode", `{"plusCode":{"globalCode":"4RRH46J3+2M","compoundCode":"46J3+2M Sydney NSW"}}`,
			`{"plus_code":{"compound_code":"46J3+2M Sydney NSW","global_code":"4RRH46J3+2M"}}`},
		{"plusCode global only", `{"plusCode":{"globalCode":"849VCWC8+R9"}}`, `{"plus_code":{"global_code":"849VCWC8+R9"}}`},
		{"empty plusCode", `{"plusCode":{}}`, `{}`},
		{"iconMaskBaseUri", `{"iconMaskBaseUri":"https://maps.gstatic.com/x"}`, `{"icon_mask_base_uri":"https://maps.gstatic.com/x"}`},
		{"iconBackgroundColor", `{"iconBackgroundColor":"#FF9E67"}`, `{"icon_background_color":"#FF9E67"}`},
		{"unasked fields are dropped", `{"formattedAddress":"x","priceLevel":"PRICE_LEVEL_MODERATE"}`, `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := convertNew([]byte(`{"places":[` + tt.place + `]}`))
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != places.StatusOK || r.Len() != 1 {
				t.Fatalf("status %s, %d results", r.Status, r.Len())
			}
			want, err := places.Parse([]byte(`{"html_attributions":[],"results":[` + tt.want + `],"status":"OK"}`))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := r.AppendJSON(nil, 1), want.AppendJSON(nil, 1); string(got) != string(want) {
				t.Errorf("converted to\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestLegacyStatus(t *testing.T) {
	for in, want := range map[string]string{
		"PERMISSION_DENIED": places.StatusRequestDenied, "UNAUTHENTICATED": places.StatusRequestDenied,
		"RESOURCE_EXHAUSTED": places.StatusOverQueryLimit, "INVALID_ARGUMENT": places.StatusInvalidRequest,
		"INTERNAL": places.StatusUnknownError, "UNAVAILABLE": places.StatusUnknownError, "": places.StatusUnknownError,
		"DEADLINE_EXCEEDED": places.StatusUnknownError, "NOT_FOUND": places.StatusUnknownError,
	} {
		if got := legacyStatus(in); got != want {
			t.Errorf("legacyStatus(%q) = %s, want %s", in, got, want)
		}
	}
}
