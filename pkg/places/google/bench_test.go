package google

import (
	"testing"

	"github.com/herdkit/herd/pkg/places/placestest"
)

func BenchmarkConvertNew(b *testing.B) {
	body := []byte(placestest.Google(b, "..", "new-ok.json"))
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := convertNew(body); err != nil {
			b.Fatal(err)
		}
	}
}
