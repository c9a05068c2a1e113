package node

import (
	"fmt"
	"log/slog"

	"github.com/herdkit/herd/pkg/config"
	"github.com/herdkit/herd/pkg/journal"
	"github.com/herdkit/herd/pkg/logging"
	"github.com/herdkit/herd/pkg/metrics"
	"github.com/herdkit/herd/pkg/peer"
	"github.com/herdkit/herd/pkg/places"
	"github.com/herdkit/herd/pkg/places/google"
	"github.com/herdkit/herd/pkg/places/offline"
	"github.com/herdkit/herd/pkg/server"
	"github.com/herdkit/herd/pkg/store"
)

// This file is the one place where the environment, read and checked by
// package config, becomes each component's own Config. A component knows
// nothing of HERD_ variables; a new variable is a field of config.Config,
// a row of docs/configuration.md, a field of the one component that uses
// it, and a line here.

// LogConfig returns the log's settings.
func LogConfig(c config.Config) logging.Config {
	return logging.Config{
		Level: c.LogLevel, Format: c.LogFormat, File: c.LogFile,
		FileMaxBytes: int64(c.LogFileMaxSize) << 20, FileKeep: c.LogFileMaxFiles,
	}
}

func serverConfig(c config.Config) server.Config {
	return server.Config{
		Name: c.Name, Addr: c.ClientAddr, MaxLine: c.MaxLine, MaxConns: c.MaxConns,
		MaxConnsPerIP: c.MaxConnsPerIP, MaxInflight: c.MaxInflight,
		IdleTimeout: c.IdleTimeout, WriteTimeout: c.WriteTimeout, MaxClockAhead: c.MaxClockAhead,
	}
}

func journalConfig(c config.Config) journal.Config {
	return journal.Config{
		Dir: c.DataDir, FsyncInterval: c.FsyncInterval, Always: c.Fsync == config.FsyncAlways,
		SegmentSize: c.JournalSegmentSize, Name: c.Name, MaxRecords: c.MaxRecords,
	}
}

// peerTLS reads the peer links' certificates when HERD_PEER_TLS_CERT,
// HERD_PEER_TLS_KEY and HERD_PEER_TLS_CA are set (config has checked that
// they go together), and nil otherwise.
func peerTLS(c config.Config) (*peer.TLS, error) {
	if !c.PeerTLS() {
		return nil, nil
	}
	t, err := peer.LoadTLS(c.PeerTLSCert, c.PeerTLSKey, c.PeerTLSCA)
	if err != nil {
		return nil, fmt.Errorf("HERD_PEER_TLS_CERT, HERD_PEER_TLS_KEY, HERD_PEER_TLS_CA: %w", err)
	}
	return t, nil
}

func peerConfig(c config.Config, incarnation uint64, known map[string]store.Watermark, tls *peer.TLS) peer.Config {
	return peer.Config{
		Name: c.Name, Incarnation: incarnation, Neighbours: c.Peers, Secret: c.PeerSecret,
		Heartbeat: c.PeerHeartbeat, Timeout: c.PeerTimeout, BackoffMax: c.PeerBackoffMax, Known: known, TLS: tls,
	}
}

func placesConfig(c config.Config) places.Config {
	return places.Config{CacheTTL: c.PlacesCacheTTL, CacheSize: c.PlacesCacheSize}
}

// placesKind resolves HERD_PLACES: auto is google when an API key is set,
// and offline otherwise.
func placesKind(c config.Config) string {
	if c.Places != config.PlacesAuto && c.Places != "" {
		return c.Places
	}
	if c.GoogleAPIKey != "" {
		return config.PlacesGoogle
	}
	return config.PlacesOffline
}

// newPlaces builds the provider HERD_PLACES chooses, unwrapped; config has
// checked the choice and that Google has a key.
func newPlaces(c config.Config, m *metrics.Metrics, log *slog.Logger) (places.Provider, error) {
	gc := google.Config{
		Key: c.GoogleAPIKey, BaseURL: c.GoogleBaseURL,
		Timeout: c.PlacesTimeout, MaxConcurrent: c.PlacesMaxConcurrent, Metrics: m,
	}
	switch placesKind(c) {
	case config.PlacesGoogle:
		return google.NewLegacy(gc)
	case config.PlacesGoogleNew:
		return google.NewPlacesNew(gc)
	}
	return offline.New(log), nil
}
