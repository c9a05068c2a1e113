package offline

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herdkit/herd/pkg/places"
	"github.com/herdkit/herd/pkg/places/placestest"
)

// The sanity figures of /work/shared/data/README.md.
func TestOfflineReadmeFigures(t *testing.T) {
	tab := embeddedTable(t)
	if got := len(tab.places); got != 135233 {
		t.Errorf("%d places, want 135233", got)
	}
	const lat, lng = 34.068930, -118.445127 // UCLA
	tests := []struct {
		km    float64
		count int
		names []string
	}{
		{10, 10, []string{"Beverly Hills", "Century City", "Culver City", "Marina del Rey", "Santa Monica",
			"Sherman Oaks", "Studio City", "Venice", "West Hollywood", "Westwood"}},
		{50, 151, nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.km, "km"), func(t *testing.T) {
			var names []string
			tab.search(lat, lng, tt.km, func(p *place, d float64) {
				if d > tt.km {
					t.Errorf("%s at %g km", tab.name(p), d)
				}
				names = append(names, tab.name(p))
			})
			if len(names) != tt.count {
				t.Errorf("%d places, want %d", len(names), tt.count)
			}
			if tt.names != nil {
				slices.Sort(names)
				if !slices.Equal(names, tt.names) {
					t.Errorf("places %q, want %q", names, tt.names)
				}
			}
		})
	}
}

func TestOfflineNearby(t *testing.T) {
	o := newTableProvider(embeddedTable(t))
	tests := []struct {
		name       string
		lat, lng   float64
		km         float64
		status     string
		n          int
		first      string
		want, not  []string
		wantVicin  string // vicinity of the first result
		wantTypes0 string // first type of the first result
	}{
		{name: "UCLA 10 km", lat: 34.068930, lng: -118.445127, km: 10, status: places.StatusOK, n: 10,
			first: "Santa Monica", want: []string{"Westwood", "Studio City"}, wantVicin: "California, US", wantTypes0: "locality"},
		{name: "UCLA 50 km is cut to 20", lat: 34.068930, lng: -118.445127, km: 50, status: places.StatusOK, n: 20,
			first: "Los Angeles", not: []string{"Westwood"}},
		{name: "Paris 50 km", lat: 48.8566, lng: 2.3522, km: 50, status: places.StatusOK, n: 20, first: "Paris",
			wantVicin: "Île-de-France, FR"},
		{name: "radius just short of Westwood", lat: 34.068930, lng: -118.445127, km: 1.95, status: places.StatusZeroResults},
		{name: "radius just past Westwood", lat: 34.068930, lng: -118.445127, km: 1.96, status: places.StatusOK, n: 1,
			first: "Westwood", wantTypes0: "sublocality"},
		{name: "open Pacific", lat: 0, lng: -140, km: 50, status: places.StatusZeroResults},
		{name: "across the antimeridian eastwards", lat: 66.32166, lng: 179.8, km: 50, status: places.StatusOK, n: 1,
			first: "Egvekinot"},
		{name: "across the antimeridian westwards", lat: 63.06101, lng: -179.95, km: 40, status: places.StatusOK, n: 1,
			first: "Beringovskiy"},
		{name: "at the antimeridian", lat: -16.4332, lng: 180, km: 50, status: places.StatusZeroResults},
		{name: "north pole", lat: 90, lng: 0, km: 50, status: places.StatusZeroResults},
		{name: "south pole", lat: -90, lng: 180, km: 50, status: places.StatusZeroResults},
		{name: "far north", lat: 78.5, lng: 15.6, km: 50, status: places.StatusOK, n: 1, first: "Longyearbyen"},
		{name: "no admin-1 name", lat: -77.846, lng: 166.676, km: 0.001, status: places.StatusOK, n: 1,
			first: "McMurdo Station", wantVicin: "AQ"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := o.Nearby(bg, places.Query{Lat: tt.lat, Lng: tt.lng, RadiusKm: tt.km})
			if r.Status != tt.status || r.Len() != tt.n {
				t.Fatalf("status %s with %d results, want %s with %d", r.Status, r.Len(), tt.status, tt.n)
			}
			var v struct {
				HTMLAttributions []string `json:"html_attributions"`
				Results          []struct {
					Name     string   `json:"name"`
					PlaceID  string   `json:"place_id"`
					Types    []string `json:"types"`
					Vicinity string   `json:"vicinity"`
				} `json:"results"`
				Status string `json:"status"`
			}
			placestest.DecodeJSON(t, r.AppendJSON(nil, places.MaxResults), &v)
			if len(v.HTMLAttributions) != 1 || !strings.Contains(v.HTMLAttributions[0], "GeoNames") {
				t.Errorf("html_attributions %q", v.HTMLAttributions)
			}
			names := placestest.ResultNames(t, r)
			if tt.n > 0 {
				if names[0] != tt.first {
					t.Errorf("first %q, want %q (all %q)", names[0], tt.first, names)
				}
				if !strings.HasPrefix(v.Results[0].PlaceID, "geonames:") {
					t.Errorf("place_id %q", v.Results[0].PlaceID)
				}
				if tt.wantVicin != "" && v.Results[0].Vicinity != tt.wantVicin {
					t.Errorf("vicinity %q, want %q", v.Results[0].Vicinity, tt.wantVicin)
				}
				if tt.wantTypes0 != "" && v.Results[0].Types[0] != tt.wantTypes0 {
					t.Errorf("types %q, want %q first", v.Results[0].Types, tt.wantTypes0)
				}
			}
			for _, n := range tt.want {
				if !slices.Contains(names, n) {
					t.Errorf("%q missing from %q", n, names)
				}
			}
			for _, n := range tt.not {
				if slices.Contains(names, n) {
					t.Errorf("%q in %q", n, names)
				}
			}
		})
	}
}

// TestOfflineRanking checks that results are ordered by population, then
// distance, then geonameid, and are the best of all the matches.
func TestOfflineRanking(t *testing.T) {
	tab := synthTable(t, `1	Small near	XX	01	PPL	100	0	0.01
2	Big far	XX	01	PPLA	5000	0	0.3
3	Tie near	XX	01	PPL	700	0	0.02
4	Tie far	XX	01	PPL	700	0	0.2
6	Tie same place b	XX	01	PPL	300	0	0.1
5	Tie same place a	XX	01	PPL	300	0	0.1
7	Outside	XX	01	PPL	99999	0	1`)
	r := tab.nearby(0, 0, 50)
	want := []string{"Big far", "Tie near", "Tie far", "Tie same place a", "Tie same place b", "Small near"}
	if got := placestest.ResultNames(t, r); !slices.Equal(got, want) {
		t.Errorf("order %q, want %q", got, want)
	}

	// With more matches than MaxResults, the top ones are kept.
	var rows strings.Builder
	for i := range 100 {
		fmt.Fprintf(&rows, "%d\tP%03d\tXX\t01\tPPL\t%d\t0.1\t0.1\n", i+1, i, i*10)
	}
	r = synthTable(t, rows.String()).nearby(0, 0, 50)
	got := placestest.ResultNames(t, r)
	if len(got) != places.MaxResults || got[0] != "P099" || got[places.MaxResults-1] != "P080" {
		t.Errorf("top %q", got)
	}
}

// TestOfflineRender checks the whole rendering of one result.
func TestOfflineRender(t *testing.T) {
	tab := synthTable(t, "42\tSan José & <Co>\tUS\tCA\tPPLC\t1000\t-0.5\t179.99999")
	got := string(tab.nearby(-0.5, 179.99999, 1).AppendJSON(nil, 1))
	want := `{
   "html_attributions" : [
      "Place data from <a href=\"https://www.geonames.org/\">GeoNames</a>, licensed under <a href=\"https://creativecommons.org/licenses/by/4.0/\">CC BY 4.0</a>."
   ],
   "results" : [
      {
         "geometry": {
            "location": {
               "lat": -0.5,
               "lng": 179.99999
            }
         },
         "name": "San José & <Co>",
         "place_id": "geonames:42",
         "types": [
            "locality",
            "political"
         ],
         "vicinity": "California, US"
      }
   ],
   "status" : "OK"
}`
	if got != want {
		t.Errorf("rendered\n%s\nwant\n%s", got, want)
	}
	got = string(tab.nearby(10, 10, 1).AppendJSON(nil, 5))
	if !strings.HasSuffix(got, "\"results\" : [],\n   \"status\" : \"ZERO_RESULTS\"\n}") {
		t.Errorf("zero results rendered as\n%s", got)
	}
}

func TestTypesFor(t *testing.T) {
	for code, want := range map[string]string{
		"PPLC": "locality", "PPLA": "locality", "PPLA2": "locality", "PPL": "locality", "PPLX": "sublocality",
		"PPLQ": "point_of_interest", "STLMT": "locality", "XYZ": "locality",
	} {
		if got := typesFor(code); got[0] != want {
			t.Errorf("typesFor(%s) = %q, want %s first", code, got, want)
		}
	}
}

// TestSearchMatchesBruteForce compares the index with a scan of every row,
// on a synthetic table dense at the poles and the antimeridian and on the
// embedded one.
func TestSearchMatchesBruteForce(t *testing.T) {
	var rows strings.Builder
	id := 0
	add := func(lat, lng float64) {
		id++
		fmt.Fprintf(&rows, "%d\tP%d\tXX\t01\tPPL\t%d\t%.5f\t%.5f\n", id, id, id%7, lat, lng)
	}
	for lat := 88.0; lat <= 90; lat += 0.1 {
		for lng := -180.0; lng <= 180; lng += 7.5 {
			add(lat, lng)
			add(-lat, lng)
		}
	}
	add(90, 0)
	add(-90, 0)
	for lat := -1.0; lat <= 1; lat += 0.1 {
		for d := 0.0; d <= 1; d += 0.05 {
			add(lat, 180-d)
			add(lat, -180+d)
		}
	}
	synth := synthTable(t, rows.String())
	queries := []struct{ lat, lng float64 }{
		{90, 0}, {89.9, 45}, {89.7, -170}, {88.2, 180}, {-90, 0}, {-89.95, -100},
		{0, 180}, {0, -180}, {0.05, 179.99}, {0, -179.99}, {0.5, 179.7}, {-0.7, -179.5},
	}
	for _, q := range queries {
		for _, km := range []float64{0.5, 5, 10, 25, 50} {
			compareBruteForce(t, synth, q.lat, q.lng, km)
		}
	}

	real := embeddedTable(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		// Random places of the table, moved a little, so the queries land
		// where there is something to find.
		p := real.places[rng.IntN(len(real.places))]
		lat := math.Max(-90, math.Min(90, float64(p.lat)/coordScale+rng.Float64()-0.5))
		lng := float64(p.lng)/coordScale + rng.Float64() - 0.5
		compareBruteForce(t, real, lat, lng, 1+rng.Float64()*49)
	}
}

func compareBruteForce(t *testing.T, tab *table, lat, lng, km float64) {
	t.Helper()
	var want, got []uint32
	for i := range tab.places {
		p := &tab.places[i]
		if distanceKm(lat, lng, float64(p.lat)/coordScale, float64(p.lng)/coordScale) <= km {
			want = append(want, p.id)
		}
	}
	tab.search(lat, lng, km, func(p *place, _ float64) { got = append(got, p.id) })
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("search(%g, %g, %g km) found %d places %v, a scan %d %v", lat, lng, km, len(got), got, len(want), want)
	}
}

// TestSearchRadiusEdge checks that a place exactly at the radius is in and
// one a hair beyond is out.
func TestSearchRadiusEdge(t *testing.T) {
	tab := synthTable(t, "1\tEast\tXX\t01\tPPL\t1\t0\t0.1\n2\tNorth\tXX\t01\tPPL\t1\t89.99\t-180\n3\tSame\tXX\t01\tPPL\t1\t10\t10")
	tests := []struct {
		name     string
		lat, lng float64
		to       [2]float64
		id       uint32
	}{
		{"along the equator", 0, 0, [2]float64{0, 0.1}, 1},
		{"over the pole", 89.99, 0, [2]float64{89.99, -180}, 2},
		{"zero distance", 10, 10, [2]float64{10, 10}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := distanceKm(tt.lat, tt.lng, tt.to[0], tt.to[1])
			for _, c := range []struct {
				km   float64
				want bool
			}{{d, true}, {math.Nextafter(d, math.Inf(1)), true}, {math.Nextafter(d, 0), false}} {
				if c.km < 0 || (d == 0 && !c.want) {
					continue
				}
				found := false
				tab.search(tt.lat, tt.lng, c.km, func(p *place, _ float64) { found = found || p.id == tt.id })
				if found != c.want {
					t.Errorf("radius %v (distance %v): found %v", c.km, d, found)
				}
			}
		})
	}
}

// TestSearchOddInputs checks that inputs a parsed position never has do
// no harm.
func TestSearchOddInputs(t *testing.T) {
	tab := embeddedTable(t)
	nan, inf := math.NaN(), math.Inf(1)
	tests := []struct {
		name         string
		lat, lng, km float64
		want         int
	}{
		{"NaN latitude", nan, 0, 10, 0},
		{"NaN longitude", 0, nan, 10, 0},
		{"NaN radius", 0, 0, nan, 0},
		{"negative radius", 0, 0, -1, 0},
		{"latitude beyond 90", 91, 0, 10, 0},
		{"longitude beyond 180", 0, 181, 10, 0},
		{"infinite radius", 0, 0, inf, len(tab.places)},
		{"radius beyond half the globe", 12, 34, 30000, len(tab.places)},
	}
	for _, tt := range tests {
		n := 0
		tab.search(tt.lat, tt.lng, tt.km, func(*place, float64) { n++ })
		if n != tt.want {
			t.Errorf("%s: %d places, want %d", tt.name, n, tt.want)
		}
	}
	if r := tab.nearby(0, 0, inf); r.Len() != places.MaxResults || placestest.ResultNames(t, r)[0] == "" {
		t.Errorf("the whole world: %d results", r.Len())
	}
}

func TestDistanceKm(t *testing.T) {
	tests := []struct {
		name                   string
		lat1, lng1, lat2, lng2 float64
		want                   float64
	}{
		{"one degree of the equator", 0, 0, 0, 1, 2 * math.Pi * earthRadiusKm / 360},
		{"pole to pole", 90, 0, -90, 0, math.Pi * earthRadiusKm},
		{"across the antimeridian", 0, 179.5, 0, -179.5, 2 * math.Pi * earthRadiusKm / 360},
		{"LAX to JFK on a sphere", 33.9425, -118.408056, 40.639722, -73.778889, 3974.2},
	}
	for _, tt := range tests {
		if got := distanceKm(tt.lat1, tt.lng1, tt.lat2, tt.lng2); math.Abs(got-tt.want) > 1 {
			t.Errorf("%s: %g km, want %g", tt.name, got, tt.want)
		}
	}
}

func TestCoordText(t *testing.T) {
	for _, s := range []string{"0", "1", "-1", "34.06893", "-118.44513", "0.00001", "-0.5", "90", "-180", "179.99999"} {
		v, err := parseCoord(s, 180)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(appendCoord(nil, v)); got != s {
			t.Errorf("%s reads back as %s", s, got)
		}
	}
	if got := string(appendCoord(nil, 3410)); got != "0.0341" {
		t.Errorf("3410 units as %s", got)
	}
	for _, s := range []string{"", "x", "90.00001", "NaN", "-Inf"} {
		if _, err := parseCoord(s, 90); err == nil {
			t.Errorf("parseCoord(%q) succeeded", s)
		}
	}
}

func TestLoadTableRejects(t *testing.T) {
	tests := []struct{ name, cities, admin1 string }{
		{"too few fields", "1\tA\tXX\t01\tPPL\t1\t0", ""},
		{"too many fields", "1\tA\tXX\t01\tPPL\t1\t0\t0\t0", ""},
		{"bad id", "x\tA\tXX\t01\tPPL\t1\t0\t0", ""},
		{"negative population", "1\tA\tXX\t01\tPPL\t-1\t0\t0", ""},
		{"latitude beyond 90", "1\tA\tXX\t01\tPPL\t1\t90.5\t0", ""},
		{"longitude beyond 180", "1\tA\tXX\t01\tPPL\t1\t0\t181", ""},
		{"bad admin1 row", "1\tA\tXX\t01\tPPL\t1\t0\t0", "XX.01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadTable(strings.NewReader(header+tt.cities), strings.NewReader("code\tname\n"+tt.admin1))
			if err == nil {
				t.Fatal("loaded")
			}
			t.Log(err)
		})
	}
	if _, err := loadTable(strings.NewReader(""), strings.NewReader("code\tname\n")); err == nil {
		t.Error("an empty cities table loaded")
	}
}

const header = "geonameid\tname\tcountry\tadmin1\tfeature_code\tpopulation\tlat\tlng\n"

// synthTable loads a table from cities rows (without the header), with
// one admin-1 name: XX.01 is "Region One", US.CA California.
func synthTable(t testing.TB, rows string) *table {
	t.Helper()
	tab, err := loadTable(strings.NewReader(header+rows), strings.NewReader("code\tname\nXX.01\tRegion One\nUS.CA\tCalifornia\n"))
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func TestNewOfflineReturnsAtOnce(t *testing.T) {
	start := time.Now()
	o := New(placestest.Discard)
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("New took %v", d)
	}
	if o.Name() != "offline" {
		t.Errorf("Name %q", o.Name())
	}
	ctx, cancel := context.WithTimeout(bg, time.Minute)
	defer cancel()
	// Nearby waits for the load.
	if r := o.Nearby(ctx, places.Query{Lat: 48.8566, Lng: 2.3522, RadiusKm: 10}); r.Status != places.StatusOK {
		t.Fatalf("status %s: %s", r.Status, r.AppendJSON(nil, 0))
	}
	select {
	case <-o.Ready():
	default:
		t.Error("not ready after answering")
	}
}

func TestOfflineNotLoaded(t *testing.T) {
	loading := &Provider{data: &loader{ready: make(chan struct{})}}
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if r := loading.Nearby(ctx, places.Query{RadiusKm: 1}); r.Status != places.StatusUnknownError || !strings.Contains(r.ErrorMessage, "cancelled") {
		t.Errorf("while loading: %s %q", r.Status, r.ErrorMessage)
	}
	failed := &loader{ready: make(chan struct{}), err: fmt.Errorf("boom")}
	close(failed.ready)
	if r := (&Provider{data: failed}).Nearby(bg, places.Query{RadiusKm: 1}); r.Status != places.StatusUnknownError || !strings.Contains(r.ErrorMessage, "boom") {
		t.Errorf("failed load: %s %q", r.Status, r.ErrorMessage)
	}
}
