package places

import (
	"testing"
	"time"

	"github.com/herdkit/herd/pkg/metrics"
)

func BenchmarkCacheHit(b *testing.B) {
	c := NewCache(&fakeProvider{}, time.Hour, 1000, metrics.New())
	c.Nearby(bg, ucla)
	var buf []byte
	for b.Loop() {
		buf = c.Nearby(bg, ucla).AppendJSON(buf[:0], 5)
	}
}
