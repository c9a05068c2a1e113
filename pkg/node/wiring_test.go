package node

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herdkit/herd/pkg/config"
	"github.com/herdkit/herd/pkg/metrics"
	"github.com/herdkit/herd/pkg/places"
)

// TestPlacesChoice: HERD_PLACES and HERD_GOOGLE_API_KEY choose the
// provider, and a Google one gets the key, the base URL and the time-out
// and answers through them.
func TestPlacesChoice(t *testing.T) {
	legacy, err := os.ReadFile("../places/google/testdata/legacy-ok.json")
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := os.ReadFile("../places/google/testdata/new-ok.json")
	if err != nil {
		t.Fatal(err)
	}
	keys := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			keys <- r.Header.Get("X-Goog-Api-Key")
			w.Write(fresh)
			return
		}
		keys <- r.URL.Query().Get("key")
		w.Write(legacy)
	}))
	defer srv.Close()
	tests := []struct {
		name, places, key, want string
	}{
		{"auto without a key", config.PlacesAuto, "", "offline"},
		{"auto with a key", config.PlacesAuto, testKey, "google"},
		{"offline despite a key", config.PlacesOffline, testKey, "offline"},
		{"google", config.PlacesGoogle, testKey, "google"},
		{"google-new", config.PlacesGoogleNew, testKey, "google-new"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.FromMap(map[string]string{"HERD_NAME": "Hill", "HERD_PLACES": tt.places,
				"HERD_GOOGLE_API_KEY": tt.key, "HERD_GOOGLE_BASE_URL": srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			p, err := newPlaces(cfg, metrics.New(), slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			if p.Name() != tt.want {
				t.Fatalf("provider %q, want %q", p.Name(), tt.want)
			}
			if tt.want == "offline" {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			r := p.Nearby(ctx, places.Query{Lat: 34.06893, Lng: -118.445127, RadiusKm: 10})
			if r.Status != places.StatusOK || r.Len() == 0 {
				t.Errorf("answer %s %q with %d results", r.Status, r.ErrorMessage, r.Len())
			}
			if got := <-keys; got != tt.key {
				t.Errorf("Google got key %q, want %q", got, tt.key)
			}
		})
	}
}

// TestComponentConfigs: the wiring hands each component the settings of
// its variables, in the component's own units.
func TestComponentConfigs(t *testing.T) {
	cfg, err := config.FromMap(map[string]string{"HERD_NAME": "Hill", "HERD_LOG_FILE": "/tmp/herd.log",
		"HERD_LOG_FILE_MAX_SIZE": "2", "HERD_LOG_FILE_MAX_FILES": "5", "HERD_LOG_FORMAT": "text", "HERD_LOG_LEVEL": "warn",
		"HERD_PEERS": "Jaquez=127.0.0.1:1,Smith=127.0.0.1:2", "HERD_PEER_SECRET": "0123456789abcdef-wiring",
		"HERD_PLACES_CACHE_TTL": "0s", "HERD_PLACES_CACHE_SIZE": "7"})
	if err != nil {
		t.Fatal(err)
	}
	lc := LogConfig(cfg)
	if lc.FileMaxBytes != 2<<20 || lc.FileKeep != 5 || lc.File != "/tmp/herd.log" || lc.Format != "text" || lc.Level != slog.LevelWarn {
		t.Errorf("log config %+v", lc)
	}
	pc := peerConfig(cfg, 7, nil, nil)
	if len(pc.Neighbours) != 2 || pc.Neighbours[1].Name != "Smith" || pc.Neighbours[1].Addr != "127.0.0.1:2" ||
		string(pc.Secret) != "0123456789abcdef-wiring" || pc.Incarnation != 7 {
		t.Errorf("peer config %+v", pc)
	}
	if pl := placesConfig(cfg); pl.CacheTTL != 0 || pl.CacheSize != 7 {
		t.Errorf("places config %+v", pl)
	}
}

// TestOnlyTheWiringReadsConfig: no package but the wiring (this one and
// the command) and config itself depends on package config, so that a
// component takes its own Config and knows nothing of HERD_ variables.
func TestOnlyTheWiringReadsConfig(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Deps \" \"}}", "../../...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const module = "github.com/herdkit/herd/"
	wiring := []string{module + "pkg/config", module + "pkg/node", module + "services/herd"}
	for line := range strings.Lines(string(out)) {
		pkg, deps, _ := strings.Cut(strings.TrimSpace(line), " ")
		if slices.Contains(strings.Fields(deps), module+"pkg/config") && !slices.Contains(wiring, pkg) {
			t.Errorf("%s depends on pkg/config; only %v may", pkg, wiring)
		}
	}
}
