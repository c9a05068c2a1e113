package places

import (
	"log/slog"
	"time"

	"github.com/herdkit/herd/pkg/metrics"
)

// Config is what the core of places needs of a node: how it caches. The
// providers take configurations of their own. The wiring (pkg/node) fills
// it from HERD_PLACES_CACHE_TTL and HERD_PLACES_CACHE_SIZE, whose defaults
// package config gives and checks.
type Config struct {
	// CacheTTL is how long an answer is reused for the same position and
	// radius; 0 turns the cache off.
	CacheTTL time.Duration
	// CacheSize bounds the number of answers cached (values below 1 count
	// as 1); a Google answer of 20 results takes about 20 KB.
	CacheSize int
}

// Wrap adds a node's instrumentation and, unless cfg.CacheTTL is 0, its
// cache to a provider, so that nodes sharing one provider (the five nodes
// of `herd local` share the offline data) each count and cache on their
// own.
func Wrap(p Provider, cfg Config, m *metrics.Metrics, log *slog.Logger) Provider {
	p = Instrument(p, m, log)
	if cfg.CacheTTL > 0 {
		p = NewCache(p, cfg.CacheTTL, cfg.CacheSize, m)
	}
	return p
}
