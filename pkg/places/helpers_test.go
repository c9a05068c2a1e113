package places

import (
	"go.uber.org/goleak"

	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

var discard = slog.New(slog.DiscardHandler)

func decodeJSON(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
}

var bg = context.Background()

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var ucla = Query{Pos: "+34.068930-118.445127", Lat: 34.06893, Lng: -118.445127, RadiusKm: 10}

// checkAnswer checks a response's status, result count and message.
func checkAnswer(t *testing.T, r *Response, status string, n int, message string) {
	t.Helper()
	if r.Status != status || r.Len() != n || !strings.Contains(r.ErrorMessage, message) {
		t.Fatalf("status %s, %d results, message %q; want %s, %d, %q", r.Status, r.Len(), r.ErrorMessage, status, n, message)
	}
}
