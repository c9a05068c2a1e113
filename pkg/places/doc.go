// Package places answers "what is near this position" for WHATSAT. It is
// the core that every provider plugs into: the Provider interface, the
// Query and the Response (always in the shape of Google's legacy Nearby
// Search response, whatever the provider; a failure is an answer too, a
// status and an error_message), and what a node puts in front of any
// provider: instrumentation (Instrument) and a cache (NewCache) that
// answers identical queries from memory and lets concurrent identical
// misses share one upstream request, both added by Wrap.
//
// The providers live in folders of their own and see only this package:
// places/offline (the embedded GeoNames data, the default) and
// places/google (the legacy Nearby Search and Places API (New)). The
// wiring (pkg/node) chooses one. Results are cut to a WHATSAT's bound only
// when an answer is rendered (Response.AppendJSON), so one upstream answer
// serves every bound.
package places
