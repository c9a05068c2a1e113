package offline

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/herdkit/herd/pkg/places"
)

// Provider answers from the embedded GeoNames tables (populated places of
// about 1,000 people or more): every one within the radius, the most
// populous first.
type Provider struct {
	data *loader
}

// loader holds tables being loaded; tab and err are set before ready is
// closed and never change after.
type loader struct {
	ready chan struct{}
	tab   *table
	err   error
}

// embedded is the one copy of the embedded tables, shared by every Provider
// in the process: the one-process herd runs five nodes, and the tables
// never change.
var (
	embeddedOnce sync.Once
	embedded     *loader
)

// New returns the offline provider at once; the embedded tables
// (about 5 MB in memory) load in the background, and Nearby waits for
// them. The first call in a process starts the load; later calls share it.
func New(log *slog.Logger) *Provider {
	embeddedOnce.Do(func() {
		embedded = &loader{ready: make(chan struct{})}
		go func() {
			start := time.Now()
			embedded.tab, embedded.err = loadEmbedded()
			if embedded.err != nil {
				log.Error("offline places data failed to load", "component", "places", "error", embedded.err)
			} else {
				log.Debug("offline places data loaded", "component", "places",
					"places", len(embedded.tab.places), "duration", time.Since(start))
			}
			close(embedded.ready)
		}()
	})
	return &Provider{data: embedded}
}

// newTableProvider returns a Provider answering from t, for tests.
func newTableProvider(t *table) *Provider {
	l := &loader{ready: make(chan struct{}), tab: t}
	close(l.ready)
	return &Provider{data: l}
}

// Name returns "offline".
func (o *Provider) Name() string { return "offline" }

// Ready returns a channel that is closed once the tables are loaded (or
// failed to load), when Nearby no longer waits.
func (o *Provider) Ready() <-chan struct{} { return o.data.ready }

// Nearby returns the places within q.RadiusKm of q's position, ranked by
// population (then distance, then geonameid), at most MaxResults.
func (o *Provider) Nearby(ctx context.Context, q places.Query) *places.Response {
	select {
	case <-o.data.ready:
	case <-ctx.Done():
		return places.Failure(places.StatusUnknownError, "places: request cancelled while the offline data was loading")
	}
	if o.data.err != nil {
		return places.Failure(places.StatusUnknownError, "places: offline data unavailable: "+o.data.err.Error())
	}
	return o.data.tab.nearby(q.Lat, q.Lng, q.RadiusKm)
}

// match is a place found by a search.
type match struct {
	p  *place
	km float64
}

// before reports whether a ranks before b: more populous, then nearer,
// then the smaller geonameid, so that the order is total.
func (a match) before(b match) bool {
	if a.p.pop != b.p.pop {
		return a.p.pop > b.p.pop
	}
	if a.km != b.km {
		return a.km < b.km
	}
	return a.p.id < b.p.id
}

// nearby finds the top MaxResults places and renders them.
func (t *table) nearby(lat, lng, km float64) *places.Response {
	var top [places.MaxResults]match
	n := 0
	t.search(lat, lng, km, func(p *place, d float64) {
		m := match{p, d}
		if n == len(top) {
			if !m.before(top[n-1]) {
				return
			}
			n--
		}
		// Insertion into the sorted top: most rows lose at the first
		// comparison above, so this stays linear in the rows found.
		i := n
		for i > 0 && m.before(top[i-1]) {
			top[i] = top[i-1]
			i--
		}
		top[i] = m
		n++
	})
	return t.render(top[:n])
}

// offlineAnswer is the legacy Nearby Search response, fields in Google's
// order.
type offlineAnswer struct {
	HTMLAttributions []string        `json:"html_attributions"`
	Results          []offlineResult `json:"results"`
	Status           string          `json:"status"`
}

type offlineResult struct {
	Geometry struct {
		Location places.LatLng `json:"location"`
	} `json:"geometry"`
	Name     string   `json:"name"`
	PlaceID  string   `json:"place_id"`
	Types    []string `json:"types"`
	Vicinity string   `json:"vicinity"`
}

// render builds the answer with encoding/json and reads it back with Parse,
// so that it has the layout of every other answer.
func (t *table) render(found []match) *places.Response {
	a := offlineAnswer{
		HTMLAttributions: []string{attributionHTML},
		Results:          make([]offlineResult, len(found)),
		Status:           places.StatusOK,
	}
	if len(found) == 0 {
		a.Status = places.StatusZeroResults
	}
	var num []byte
	for i, m := range found {
		r := &a.Results[i]
		num = appendCoord(num[:0], m.p.lat)
		r.Geometry.Location.Lat = json.Number(num)
		num = appendCoord(num[:0], m.p.lng)
		r.Geometry.Location.Lng = json.Number(num)
		r.Name = t.name(m.p)
		r.PlaceID = "geonames:" + strconv.FormatUint(uint64(m.p.id), 10)
		r.Types = typesFor(t.codes[m.p.code])
		r.Vicinity = t.vicinities[m.p.vicinity]
	}
	r, err := places.Render(a)
	if err != nil {
		return places.Failure(places.StatusUnknownError, "places: rendering offline answer: "+err.Error())
	}
	return r
}

// Google place types for GeoNames feature codes.
var (
	typesLocality    = []string{"locality", "political"}
	typesSublocality = []string{"sublocality", "political"}
	typesPOI         = []string{"point_of_interest"}
)

// typesFor returns the Google place types for a GeoNames feature code:
// capitals, seats and other populated places are localities, sections of
// a populated place (PPLX) sublocalities, and the abandoned, destroyed or
// historical places (PPLQ, PPLW, PPLH) points of interest, since they are
// not political units any more.
func typesFor(code string) []string {
	switch code {
	case "PPLX":
		return typesSublocality
	case "PPLQ", "PPLW", "PPLH":
		return typesPOI
	}
	return typesLocality
}
