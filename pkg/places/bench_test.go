package places

import (
	"fmt"
	"testing"
	"time"

	"github.com/herdkit/herd/pkg/metrics"
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
	o := newOfflineTable(embeddedTable(b))
	for _, d := range denseQueries {
		for _, km := range []float64{10, 50} {
			b.Run(fmt.Sprintf("%s/%gkm", d.name, km), func(b *testing.B) {
				q := Query{Lat: d.lat, Lng: d.lng, RadiusKm: km}
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

func BenchmarkCacheHit(b *testing.B) {
	c := NewCache(&fakeProvider{}, time.Hour, 1000, metrics.New())
	c.Nearby(bg, ucla)
	var buf []byte
	for b.Loop() {
		buf = c.Nearby(bg, ucla).AppendJSON(buf[:0], 5)
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	r, err := Parse([]byte(testdata(b, "legacy-ok.json")))
	if err != nil {
		b.Fatal(err)
	}
	var buf []byte
	for b.Loop() {
		buf = r.AppendJSON(buf[:0], 20)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkParse(b *testing.B) {
	body := []byte(testdata(b, "legacy-ok.json"))
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := Parse(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkConvertNew(b *testing.B) {
	body := []byte(testdata(b, "new-ok.json"))
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := convertNew(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseReference is the json.Decoder Parse that Parse replaced.
func BenchmarkParseReference(b *testing.B) {
	body := []byte(testdata(b, "legacy-ok.json"))
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := parseReference(body); err != nil {
			b.Fatal(err)
		}
	}
}
