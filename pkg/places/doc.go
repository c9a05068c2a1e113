// Package places answers "what is near this position" for WHATSAT, from
// providers behind one interface: the embedded GeoNames data (offline, the
// default), Google's legacy Nearby Search, and Places API (New). Answers
// always have the shape of the legacy Nearby Search response, whatever the
// provider, and failures are answers too: a status and an error_message.
//
// A node's provider is New's: the chosen provider, wrapped in
// instrumentation (Instrument) and a cache (NewCache) that answers
// identical queries from memory and lets concurrent identical misses share
// one upstream request. Results are cut to a WHATSAT's bound only when an
// answer is rendered (Response.AppendJSON), so one upstream answer serves
// every bound.
package places
