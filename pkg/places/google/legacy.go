package google

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/herdkit/herd/pkg/places"
)

// LegacyBaseURL is the legacy Nearby Search's scheme and host.
const LegacyBaseURL = "https://maps.googleapis.com"

// nearbySearchPath is the legacy Nearby Search endpoint under the base.
const nearbySearchPath = "/maps/api/place/nearbysearch/json"

// Legacy asks Google's legacy Nearby Search, whose answer is already in the
// shape WHATSAT replies with: it is passed through, field order and values
// kept.
type Legacy struct {
	u *upstream
}

// NewLegacy returns the legacy Nearby Search provider.
func NewLegacy(c Config) (*Legacy, error) {
	u, err := newUpstream("google", LegacyBaseURL, c)
	if err != nil {
		return nil, err
	}
	return &Legacy{u: u}, nil
}

// Name returns "google".
func (g *Legacy) Name() string { return "google" }

// Nearby sends GET /maps/api/place/nearbysearch/json?location=LAT,LNG&
// radius=METERS&key=KEY. Google's OK and ZERO_RESULTS answers come back as
// they are; its other statuses with their error_message and no results;
// anything else that goes wrong as UNKNOWN_ERROR with a message saying
// what.
func (g *Legacy) Nearby(ctx context.Context, q places.Query) *places.Response {
	target := g.u.endpoint(nearbySearchPath, url.Values{
		"location": {formatDegrees(q.Lat) + "," + formatDegrees(q.Lng)},
		"radius":   {formatDegrees(radiusMeters(q.RadiusKm))},
		"key":      {string(g.u.key)},
	}).String()
	body, code, fail := g.u.do(ctx, func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	})
	if fail != nil {
		return fail
	}
	if code != http.StatusOK {
		return g.u.httpFailure(code)
	}
	r, err := places.Parse(body)
	if err != nil {
		return g.u.failure("sent a bad response: %s", strings.TrimPrefix(err.Error(), "places: "))
	}
	if r.Cacheable() {
		return r
	}
	// Rebuilt rather than passed on, so that a failure never carries
	// results, and its message is scrubbed like every other.
	return g.u.status(r.Status, r.ErrorMessage)
}
