package peer

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/herdkit/herd/pkg/topology"
)

// TestConfigHidesSecret: a peer Config printed with %v, %+v or %#v, or
// logged by slog as text or JSON, never shows the secret it holds.
func TestConfigHidesSecret(t *testing.T) {
	cfg := Config{Name: "Hill", Neighbours: []topology.Peer{{Name: "Jaquez", Addr: "127.0.0.1:1"}}, Secret: testSecret}
	var b bytes.Buffer
	slog.New(slog.NewTextHandler(&b, nil)).Info("peer", "config", cfg, "secret", cfg.Secret)
	slog.New(slog.NewJSONHandler(&b, nil)).Info("peer", "config", cfg, "secret", cfg.Secret)
	for _, s := range []string{fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), b.String()} {
		if strings.Contains(s, testSecret) {
			t.Errorf("secret shown: %s", s)
		}
	}
}
