package node

import (
	"net/http"
	"testing"
)

// TestPprofSetting: Go's profiles are on the metrics port only when
// HERD_PPROF is true.
func TestPprofSetting(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
		want int
	}{
		{"off by default", nil, http.StatusNotFound},
		{"off when false", map[string]string{"HERD_PPROF": "false"}, http.StatusNotFound},
		{"on when true", map[string]string{"HERD_PPROF": "true"}, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := startNode(t, tt.vars)
			for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/heap?debug=1"} {
				resp, err := http.Get("http://" + n.MetricsAddr().String() + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tt.want {
					t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, tt.want)
				}
			}
		})
	}
}
