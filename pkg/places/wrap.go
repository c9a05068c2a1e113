package places

import (
	"log/slog"

	"github.com/herdkit/herd/pkg/config"
	"github.com/herdkit/herd/pkg/metrics"
)

// Wrap adds a node's instrumentation and, unless cfg.PlacesCacheTTL is 0,
// its cache to a provider, so that nodes sharing one provider (the five
// nodes of `herd local` share the offline data) each count and cache on
// their own.
func Wrap(p Provider, cfg config.Config, m *metrics.Metrics, log *slog.Logger) Provider {
	p = Instrument(p, m, log)
	if cfg.PlacesCacheTTL > 0 {
		p = NewCache(p, cfg.PlacesCacheTTL, cfg.PlacesCacheSize, m)
	}
	return p
}
