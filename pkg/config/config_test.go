package config

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	c, err := FromMap(map[string]string{"HERD_NAME": "Hill"})
	if err != nil {
		t.Fatal(err)
	}
	if c.ClientAddr != ":12200" || c.PeerAddr != ":12300" || c.MetricsAddr != ":9100" || c.Places != PlacesAuto ||
		c.MaxLine != 4096 || c.PlacesTimeout != 5*time.Second || c.LogLevel != slog.LevelInfo || len(c.Peers) != 0 ||
		c.JournalSegmentSize != 64<<20 {
		t.Errorf("defaults: %+v", c)
	}
}

func TestPeers(t *testing.T) {
	c, err := FromMap(map[string]string{
		"HERD_NAME": "Hill", "HERD_PEERS": " Jaquez=jaquez:12300, Smith=10.0.0.3:12300 ,",
		"HERD_PEER_SECRET": "0123456789abcdef",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Peers{{"Jaquez", "jaquez:12300"}, {"Smith", "10.0.0.3:12300"}}
	if fmt.Sprint(c.Peers) != fmt.Sprint(want) || c.Peers.String() != "Jaquez=jaquez:12300,Smith=10.0.0.3:12300" {
		t.Errorf("Peers = %v", c.Peers)
	}
}

func TestErrorsNameTheVariable(t *testing.T) {
	tests := []struct {
		name     string
		vars     map[string]string
		variable string
	}{
		{"no name", map[string]string{}, "HERD_NAME"},
		{"empty name", map[string]string{"HERD_NAME": ""}, "HERD_NAME"},
		{"name with space", map[string]string{"HERD_NAME": "Hill Top"}, "HERD_NAME"},
		{"bad client address", map[string]string{"HERD_NAME": "Hill", "HERD_CLIENT_ADDR": "12200"}, "HERD_CLIENT_ADDR"},
		{"bad port", map[string]string{"HERD_NAME": "Hill", "HERD_PEER_ADDR": ":99999"}, "HERD_PEER_ADDR"},
		{"bad metrics address", map[string]string{"HERD_NAME": "Hill", "HERD_METRICS_ADDR": "x"}, "HERD_METRICS_ADDR"},
		{"peer without address", map[string]string{"HERD_NAME": "Hill", "HERD_PEERS": "Jaquez"}, "HERD_PEERS"},
		{"peer twice", map[string]string{"HERD_NAME": "Hill", "HERD_PEERS": "J=a:1,J=b:2", "HERD_PEER_SECRET": "0123456789abcdef"}, "HERD_PEERS"},
		{"peer is self", map[string]string{"HERD_NAME": "Hill", "HERD_PEERS": "Hill=a:1", "HERD_PEER_SECRET": "0123456789abcdef"}, "HERD_PEERS"},
		{"peers without secret", map[string]string{"HERD_NAME": "Hill", "HERD_PEERS": "J=a:1"}, "HERD_PEER_SECRET"},
		{"short secret", map[string]string{"HERD_NAME": "Hill", "HERD_PEERS": "J=a:1", "HERD_PEER_SECRET": "short"}, "HERD_PEER_SECRET"},
		{"bad duration", map[string]string{"HERD_NAME": "Hill", "HERD_PLACES_TIMEOUT": "soon"}, "HERD_PLACES_TIMEOUT"},
		{"negative duration", map[string]string{"HERD_NAME": "Hill", "HERD_IDLE_TIMEOUT": "-1s"}, "HERD_IDLE_TIMEOUT"},
		{"peer timeout below two heartbeats", map[string]string{"HERD_NAME": "Hill", "HERD_PEER_TIMEOUT": "600ms"}, "HERD_PEER_TIMEOUT"},
		{"bad number", map[string]string{"HERD_NAME": "Hill", "HERD_MAX_LINE": "lots"}, "HERD_MAX_LINE"},
		{"line limit too small", map[string]string{"HERD_NAME": "Hill", "HERD_MAX_LINE": "10"}, "HERD_MAX_LINE"},
		{"no connections", map[string]string{"HERD_NAME": "Hill", "HERD_MAX_CONNS": "0"}, "HERD_MAX_CONNS"},
		{"unknown provider", map[string]string{"HERD_NAME": "Hill", "HERD_PLACES": "bing"}, "HERD_PLACES"},
		{"google without key", map[string]string{"HERD_NAME": "Hill", "HERD_PLACES": "google"}, "HERD_GOOGLE_API_KEY"},
		{"bad base URL", map[string]string{"HERD_NAME": "Hill", "HERD_GOOGLE_BASE_URL": "ftp://x"}, "HERD_GOOGLE_BASE_URL"},
		{"bad log level", map[string]string{"HERD_NAME": "Hill", "HERD_LOG_LEVEL": "loud"}, "HERD_LOG_LEVEL"},
		{"segment size not a number", map[string]string{"HERD_NAME": "Hill", "HERD_JOURNAL_SEGMENT_SIZE": "64k"}, "HERD_JOURNAL_SEGMENT_SIZE"},
		{"segment size too small", map[string]string{"HERD_NAME": "Hill", "HERD_JOURNAL_SEGMENT_SIZE": "65535"}, "HERD_JOURNAL_SEGMENT_SIZE"},
		{"segment size too large", map[string]string{"HERD_NAME": "Hill", "HERD_JOURNAL_SEGMENT_SIZE": "1073741825"}, "HERD_JOURNAL_SEGMENT_SIZE"},
		{"bad log format", map[string]string{"HERD_NAME": "Hill", "HERD_LOG_FORMAT": "xml"}, "HERD_LOG_FORMAT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FromMap(tt.vars)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.variable) {
				t.Errorf("error %q does not name %s", err, tt.variable)
			}
		})
	}
}

func TestSecretNeverPrints(t *testing.T) {
	c, err := FromMap(map[string]string{
		"HERD_NAME": "Hill", "HERD_PEERS": "J=a:1", "HERD_PEER_SECRET": "super-secret-value",
		"HERD_GOOGLE_API_KEY": "AIzaSecretKey",
	})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	slog.New(slog.NewJSONHandler(&b, nil)).Info("config", "secret", c.PeerSecret, "key", c.GoogleAPIKey)
	for _, s := range []string{fmt.Sprintf("%v %+v %#v %s", c, c, c, c.PeerSecret), b.String()} {
		if strings.Contains(s, "super-secret-value") || strings.Contains(s, "AIzaSecretKey") {
			t.Errorf("a secret shows in %q", s)
		}
	}
}
