package offline

import (
	"fmt"
	"testing"

	"github.com/herdkit/herd/pkg/places"
)

// denseQueries are dense places: the herd's home, and the densest part of
// Europe.
var denseQueries = []struct {
	name     string
	lat, lng float64
}{
	{"LosAngeles", 34.068930, -118.445127},
	{"Paris", 48.8566, 2.3522},
}

func BenchmarkOfflineNearby(b *testing.B) {
	o := newTableProvider(embeddedTable(b))
	for _, d := range denseQueries {
		for _, km := range []float64{10, 50} {
			b.Run(fmt.Sprintf("%s/%gkm", d.name, km), func(b *testing.B) {
				q := places.Query{Lat: d.lat, Lng: d.lng, RadiusKm: km}
				for b.Loop() {
					o.Nearby(bg, q)
				}
			})
		}
	}
}

// BenchmarkOfflineSearch is the index alone, without ranking and
// rendering.
func BenchmarkOfflineSearch(b *testing.B) {
	tab := embeddedTable(b)
	for _, d := range denseQueries {
		for _, km := range []float64{10, 50} {
			b.Run(fmt.Sprintf("%s/%gkm", d.name, km), func(b *testing.B) {
				n := 0
				for b.Loop() {
					tab.search(d.lat, d.lng, km, func(*place, float64) { n++ })
				}
				b.ReportMetric(float64(n)/float64(b.N), "places/op")
			})
		}
	}
}

func BenchmarkOfflineLoad(b *testing.B) {
	for b.Loop() {
		if _, err := loadEmbedded(); err != nil {
			b.Fatal(err)
		}
	}
}
