// Package offline is the places provider that needs no network: it
// answers from GeoNames tables of populated places embedded in the binary
// (geonames/README.md), loaded in the background and shared by every node
// of a process, with a latitude-band index for the radius search.
package offline
