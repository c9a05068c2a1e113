// Package google holds the places providers that ask Google: Legacy, the
// legacy Nearby Search, whose answer is passed through as it came, and
// PlacesNew, Places API (New), whose answer is converted field by field
// into the legacy shape. Both share an upstream: one HTTP client, a bound
// on requests in flight (herd_places_inflight_requests,
// herd_places_limit_waits_total), a time-out per lookup, and the
// scrubbing of the API key from every message.
package google
