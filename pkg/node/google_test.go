package node

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/protocol"
)

const testKey = "AIzaSyTEST-node-key-0123456789"

// fakeGoogle answers the legacy Nearby Search endpoint with the recorded
// bodies of pkg/places/google/testdata, blocking the requests about
// latitude 1 until release is called.
func fakeGoogle(t *testing.T, body string) (*httptest.Server, func(), chan string) {
	t.Helper()
	b, err := os.ReadFile("../places/google/testdata/" + body)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	seen := make(chan string, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.URL.RawQuery
		if strings.HasPrefix(r.URL.Query().Get("location"), "1,") {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	}))
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(func() { free(); srv.Close() })
	return srv, free, seen
}

// TestWhatsatThroughGoogle sends WHATSATs through a running node whose
// places come from a fake Google: the answer comes through with the bound
// applied, and a failure status keeps the reply's shape.
func TestWhatsatThroughGoogle(t *testing.T) {
	for _, tt := range []struct {
		body, status string
		results      int
	}{
		{"legacy-ok.json", "OK", 2},
		{"legacy-request-denied.json", "REQUEST_DENIED", 0},
		{"legacy-over-query-limit.json", "OVER_QUERY_LIMIT", 0},
	} {
		t.Run(tt.status, func(t *testing.T) {
			srv, _, seen := fakeGoogle(t, tt.body)
			n := startNode(t, map[string]string{"HERD_PLACES": "google", "HERD_GOOGLE_API_KEY": testKey,
				"HERD_GOOGLE_BASE_URL": srv.URL})
			lines := []string{"IAMAT kiwi +34.068930-118.445127 1621464827.5", "WHATSAT kiwi 10 2"}
			out := send(t, n, lines...)
			rs, err := testutil.ReadReplies(strings.NewReader(out), lines...)
			if err != nil || rs[1].Kind != protocol.ReplyAT || !strings.HasPrefix(string(rs[1].Line), "AT Hill ") {
				t.Fatalf("reply %q: %v", out, err)
			}
			js := string(rs[1].JSON)
			if !strings.Contains(js, `"status" : "`+tt.status+`"`) || strings.Count(js, `"place_id"`) != tt.results {
				t.Errorf("JSON %s", js)
			}
			q := <-seen
			if !strings.Contains(q, "location=34.06893%2C-118.445127") || !strings.Contains(q, "radius=10000") {
				t.Errorf("query %s", q)
			}
			if strings.Contains(js, testKey) {
				t.Error("the key reached a reply")
			}
		})
	}
}

// TestSlowGoogleDelaysNobodyElse holds one client's upstream request and
// shows that other clients' IAMATs and WHATSATs are answered meanwhile.
func TestSlowGoogleDelaysNobodyElse(t *testing.T) {
	srv, release, seen := fakeGoogle(t, "legacy-ok.json")
	n := startNode(t, map[string]string{"HERD_PLACES": "google", "HERD_GOOGLE_API_KEY": testKey,
		"HERD_GOOGLE_BASE_URL": srv.URL})
	send(t, n, "IAMAT slow +1+1 1621464827.5", "IAMAT fast +2+2 1621464827.5")

	slow, err := net.Dial("tcp", n.ClientAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "WHATSAT slow 10 1\n")
	if q := <-seen; !strings.Contains(q, "location=1%2C1") {
		t.Fatalf("first upstream query %s", q)
	}
	// While the slow lookup is held, others are served.
	done := make(chan string, 1)
	go func() { done <- send(t, n, "IAMAT other +3+3 1621464827.5", "WHATSAT fast 10 1") }()
	select {
	case out := <-done:
		if !strings.HasPrefix(out, "AT Hill ") || !strings.Contains(out, `"status" : "OK"`) {
			t.Errorf("other client got %q", out)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("another client waited for the slow upstream")
	}
	release()
	slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	r, err := protocol.NewReplyReader(slow).ReadReply(protocol.PlacesReply)
	if err != nil || r.Kind != protocol.ReplyAT || !strings.HasPrefix(string(r.Line), "AT Hill ") {
		t.Errorf("slow client got %q, %v", r.Raw, err)
	}
}
