package google

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/herdkit/herd/pkg/places"
)

// NewBaseURL is Places API (New)'s scheme and host.
const NewBaseURL = "https://places.googleapis.com"

// searchNearbyPath is the Nearby Search (New) endpoint under the base.
const searchNearbyPath = "/v1/places:searchNearby"

// newFieldMask asks for the fields convertNew turns into legacy ones, and
// no others: Google bills by the fields asked for.
const newFieldMask = "places.id,places.displayName,places.location,places.viewport,places.types," +
	"places.shortFormattedAddress,places.rating,places.userRatingCount,places.businessStatus," +
	"places.plusCode,places.iconMaskBaseUri,places.iconBackgroundColor"

// GoogleNew asks Places API (New) and converts its answer to the legacy
// shape, field by field.
type PlacesNew struct {
	u *upstream
}

// NewPlacesNew returns the Places API (New) provider.
func NewPlacesNew(c Config) (*PlacesNew, error) {
	u, err := newUpstream("google-new", NewBaseURL, c)
	if err != nil {
		return nil, err
	}
	return &PlacesNew{u: u}, nil
}

// Name returns "google-new".
func (g *PlacesNew) Name() string { return "google-new" }

// searchNearbyRequest is the body of a Nearby Search (New) request.
type searchNearbyRequest struct {
	MaxResultCount      int `json:"maxResultCount"`
	LocationRestriction struct {
		Circle struct {
			Center struct {
				Latitude  float64 `json:"latitude"`
				Longitude float64 `json:"longitude"`
			} `json:"center"`
			Radius float64 `json:"radius"`
		} `json:"circle"`
	} `json:"locationRestriction"`
	RankPreference string `json:"rankPreference"`
}

// Nearby sends POST /v1/places:searchNearby with the key and field mask in
// headers, the most popular places first, and converts the answer. Google's
// errors become the legacy status that means the same.
func (g *PlacesNew) Nearby(ctx context.Context, q places.Query) *places.Response {
	var req searchNearbyRequest
	req.MaxResultCount = places.MaxResults
	req.LocationRestriction.Circle.Center.Latitude = q.Lat
	req.LocationRestriction.Circle.Center.Longitude = q.Lng
	req.LocationRestriction.Circle.Radius = radiusMeters(q.RadiusKm)
	req.RankPreference = "POPULARITY"
	reqBody, err := json.Marshal(req)
	if err != nil {
		return g.u.failure("building request: %v", err)
	}
	target := g.u.endpoint(searchNearbyPath, nil).String()
	body, code, fail := g.u.do(ctx, func(ctx context.Context) (*http.Request, error) {
		r, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(reqBody))
		if err != nil {
			return nil, err
		}
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-Goog-Api-Key", string(g.u.key))
		r.Header.Set("X-Goog-FieldMask", newFieldMask)
		return r, nil
	})
	if fail != nil {
		return fail
	}
	var e struct {
		Error *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
			Status  string `json:"status"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != nil {
		msg := e.Error.Message
		if msg == "" {
			msg = fmt.Sprintf("places: google-new answered %s (HTTP %d)", e.Error.Status, code)
		}
		return g.u.status(legacyStatus(e.Error.Status), msg)
	}
	if code != http.StatusOK {
		return g.u.httpFailure(code)
	}
	r, err := convertNew(body)
	if err != nil {
		return g.u.failure("sent a bad response: %s", strings.TrimPrefix(err.Error(), "places: "))
	}
	return r
}

// legacyStatus maps a Google API error status (google.rpc.Code) to the
// legacy status that means the same.
func legacyStatus(s string) string {
	switch s {
	case "PERMISSION_DENIED", "UNAUTHENTICATED":
		return places.StatusRequestDenied
	case "RESOURCE_EXHAUSTED":
		return places.StatusOverQueryLimit
	case "INVALID_ARGUMENT":
		return places.StatusInvalidRequest
	}
	return places.StatusUnknownError
}

// newLatLng is a google.type.LatLng; json.Number keeps Google's digits.
type newLatLng struct {
	Latitude  json.Number `json:"latitude"`
	Longitude json.Number `json:"longitude"`
}

func (p newLatLng) legacy() places.LatLng { return places.LatLng{Lat: p.Latitude, Lng: p.Longitude} }

// newPlace holds the fields of a Place that newFieldMask asks for.
type newPlace struct {
	ID          string `json:"id"`
	DisplayName *struct {
		Text string `json:"text"`
	} `json:"displayName"`
	Location *newLatLng `json:"location"`
	Viewport *struct {
		Low  newLatLng `json:"low"`
		High newLatLng `json:"high"`
	} `json:"viewport"`
	Types                 []string    `json:"types"`
	ShortFormattedAddress string      `json:"shortFormattedAddress"`
	Rating                json.Number `json:"rating"`
	UserRatingCount       json.Number `json:"userRatingCount"`
	BusinessStatus        string      `json:"businessStatus"`
	PlusCode              *struct {
		GlobalCode   string `json:"globalCode"`
		CompoundCode string `json:"compoundCode"`
	} `json:"plusCode"`
	IconMaskBaseURI     string `json:"iconMaskBaseUri"`
	IconBackgroundColor string `json:"iconBackgroundColor"`
}

// legacyAnswer is a legacy Nearby Search response, fields in Google's
// order.
type legacyAnswer struct {
	HTMLAttributions []string       `json:"html_attributions"`
	Results          []legacyResult `json:"results"`
	Status           string         `json:"status"`
}

// legacyResult is a legacy result, fields in Google's (alphabetical)
// order, each omitted when the new API did not send it.
type legacyResult struct {
	BusinessStatus      string          `json:"business_status,omitempty"`
	Geometry            *legacyGeometry `json:"geometry,omitempty"`
	IconBackgroundColor string          `json:"icon_background_color,omitempty"`
	IconMaskBaseURI     string          `json:"icon_mask_base_uri,omitempty"`
	Name                string          `json:"name,omitempty"`
	PlaceID             string          `json:"place_id,omitempty"`
	PlusCode            *legacyPlusCode `json:"plus_code,omitempty"`
	Rating              json.Number     `json:"rating,omitempty"`
	Reference           string          `json:"reference,omitempty"`
	Types               []string        `json:"types,omitempty"`
	UserRatingsTotal    json.Number     `json:"user_ratings_total,omitempty"`
	Vicinity            string          `json:"vicinity,omitempty"`
}

type legacyGeometry struct {
	Location *places.LatLng `json:"location,omitempty"`
	Viewport *struct {
		Northeast places.LatLng `json:"northeast"`
		Southwest places.LatLng `json:"southwest"`
	} `json:"viewport,omitempty"`
}

type legacyPlusCode struct {
	CompoundCode string `json:"compound_code,omitempty"`
	GlobalCode   string `json:"global_code,omitempty"`
}

// convertNew turns a Nearby Search (New) answer into a legacy one: OK with
// the places in the order Google ranked them, or ZERO_RESULTS for an empty
// answer ({}).
func convertNew(body []byte) (*places.Response, error) {
	if b := bytes.TrimLeft(body, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return nil, errors.New("places: Places API (New) response is not a JSON object")
	}
	var in struct {
		Places []newPlace `json:"places"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, fmt.Errorf("places: bad Places API (New) response: %w", err)
	}
	out := legacyAnswer{HTMLAttributions: []string{}, Results: make([]legacyResult, len(in.Places)), Status: places.StatusOK}
	if len(in.Places) == 0 {
		out.Status = places.StatusZeroResults
	}
	for i, p := range in.Places {
		r := &out.Results[i]
		r.BusinessStatus = p.BusinessStatus
		if p.Location != nil || p.Viewport != nil {
			r.Geometry = &legacyGeometry{}
			if p.Location != nil {
				loc := p.Location.legacy()
				r.Geometry.Location = &loc
			}
			if p.Viewport != nil {
				r.Geometry.Viewport = &struct {
					Northeast places.LatLng `json:"northeast"`
					Southwest places.LatLng `json:"southwest"`
				}{p.Viewport.High.legacy(), p.Viewport.Low.legacy()}
			}
		}
		r.IconBackgroundColor = p.IconBackgroundColor
		r.IconMaskBaseURI = p.IconMaskBaseURI
		if p.DisplayName != nil {
			r.Name = p.DisplayName.Text
		}
		r.PlaceID, r.Reference = p.ID, p.ID
		if p.PlusCode != nil && (p.PlusCode.GlobalCode != "" || p.PlusCode.CompoundCode != "") {
			r.PlusCode = &legacyPlusCode{CompoundCode: p.PlusCode.CompoundCode, GlobalCode: p.PlusCode.GlobalCode}
		}
		r.Rating = p.Rating
		r.Types = p.Types
		r.UserRatingsTotal = p.UserRatingCount
		r.Vicinity = p.ShortFormattedAddress
	}
	return places.Render(out)
}
