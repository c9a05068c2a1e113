package node

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herdkit/herd/internal/testcert"
	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/config"
	"github.com/herdkit/herd/pkg/logging"
)

// TestPeerTLS: two nodes given HERD_PEER_TLS_CERT, _KEY and _CA (one
// certificate for the whole herd, as a shared Kubernetes Secret would be)
// link and flood over mutual TLS.
func TestPeerTLS(t *testing.T) {
	ca, err := testcert.NewCA("herd CA")
	if err != nil {
		t.Fatal(err)
	}
	files, err := ca.WriteFiles(t.TempDir(), "herd")
	if err != nil {
		t.Fatal(err)
	}
	a, b := pair(t, files.Env())
	if got := send(t, a, "IAMAT tls-client +34.068930-118.445127 1700000000.5"); !strings.HasPrefix(got, "AT A ") {
		t.Fatalf("IAMAT: %q", got)
	}
	testutil.Eventually(t, 10*time.Second, testutil.Holds("the condition of line 30", func() bool { _, ok := b.Store().Get("tls-client"); return ok }))
}

// TestPeerTLSFilesNamed: a certificate that cannot be read stops the node
// before it starts, with the variables named.
func TestPeerTLSFilesNamed(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.FromMap(map[string]string{"HERD_NAME": "A", "HERD_PEERS": "B=127.0.0.1:1", "HERD_PEER_SECRET": "0123456789abcdef",
		"HERD_PEER_TLS_CERT": filepath.Join(dir, "none.crt"), "HERD_PEER_TLS_KEY": filepath.Join(dir, "none.key"),
		"HERD_PEER_TLS_CA": filepath.Join(dir, "ca.crt"), "HERD_DATA_DIR": filepath.Join(dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(cfg, logging.FromSlog(testutil.Logger(t, slog.LevelWarn)))
	if err == nil || !strings.Contains(err.Error(), "HERD_PEER_TLS_CERT") || !strings.Contains(err.Error(), "none.crt") {
		t.Errorf("New: %v, want an error naming HERD_PEER_TLS_CERT and the file", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); !os.IsNotExist(err) {
		t.Errorf("the data directory was touched: %v", err)
	}
}
