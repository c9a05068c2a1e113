package places

import (
	"fmt"
	"log/slog"

	"github.com/herdkit/herd/pkg/config"
	"github.com/herdkit/herd/pkg/metrics"
)

// New builds the provider a node uses, as cfg.Places chooses: auto (google
// when cfg.GoogleAPIKey is set, otherwise offline), offline, google or
// google-new. It is instrumented and, unless cfg.PlacesCacheTTL is 0,
// cached. New returns at once; Ready tells when it can answer without
// waiting for its data.
func New(cfg config.Config, m *metrics.Metrics, log *slog.Logger) (Provider, error) {
	kind := cfg.Places
	if kind == config.PlacesAuto || kind == "" {
		kind = config.PlacesOffline
		if cfg.GoogleAPIKey != "" {
			kind = config.PlacesGoogle
		}
	}
	gc := GoogleConfig{
		Key:           string(cfg.GoogleAPIKey),
		BaseURL:       cfg.GoogleBaseURL,
		Timeout:       cfg.PlacesTimeout,
		MaxConcurrent: cfg.PlacesMaxConcurrent,
		Metrics:       m,
	}
	var (
		p   Provider
		err error
	)
	switch kind {
	case config.PlacesOffline:
		p = NewOffline(log)
	case config.PlacesGoogle, config.PlacesGoogleNew:
		if gc.Key == "" {
			return nil, fmt.Errorf("places: HERD_GOOGLE_API_KEY must be set when HERD_PLACES is %s", kind)
		}
		if kind == config.PlacesGoogle {
			p, err = NewGoogle(gc)
		} else {
			p, err = NewGoogleNew(gc)
		}
	default:
		return nil, fmt.Errorf("places: HERD_PLACES %q is not one of auto, offline, google, google-new", cfg.Places)
	}
	if err != nil {
		return nil, err
	}
	return Wrap(p, cfg, m, log), nil
}

// closed is a channel that is always closed.
var closed = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// Ready returns a channel that is closed when p can answer without
// waiting for data to load: the offline provider's Ready, through any
// wrappers, and a closed channel for providers that never wait.
func Ready(p Provider) <-chan struct{} {
	if r, ok := p.(interface{ Ready() <-chan struct{} }); ok {
		return r.Ready()
	}
	return closed
}
