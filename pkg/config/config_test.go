package config

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
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
		c.MaxRecords != 1_000_000 || c.MaxClockAhead != 24*time.Hour ||
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
	want := Peers{{Name: "Jaquez", Addr: "jaquez:12300"}, {Name: "Smith", Addr: "10.0.0.3:12300"}}
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
		{"base URL with a query", map[string]string{"HERD_NAME": "Hill", "HERD_GOOGLE_BASE_URL": "http://x/?a=b"}, "HERD_GOOGLE_BASE_URL"},
		{"base URL with a user", map[string]string{"HERD_NAME": "Hill", "HERD_GOOGLE_BASE_URL": "http://u:p@x"}, "HERD_GOOGLE_BASE_URL"},
		{"no records", map[string]string{"HERD_NAME": "Hill", "HERD_MAX_RECORDS": "0"}, "HERD_MAX_RECORDS"},
		{"too many records", map[string]string{"HERD_NAME": "Hill", "HERD_MAX_RECORDS": "100000001"}, "HERD_MAX_RECORDS"},
		{"clock ahead below a second", map[string]string{"HERD_NAME": "Hill", "HERD_MAX_CLOCK_AHEAD": "999ms"}, "HERD_MAX_CLOCK_AHEAD"},
		{"clock ahead over a day", map[string]string{"HERD_NAME": "Hill", "HERD_MAX_CLOCK_AHEAD": "24h1s"}, "HERD_MAX_CLOCK_AHEAD"},
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

// TestBounds tries every duration and size at and just past each end of
// its range: the ends are accepted, past them is an error naming the
// variable and its range.
func TestBounds(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string // besides HERD_NAME
		bad  string            // the variable named in the error; "" when accepted
	}{
		// The two holes of issue 15: an overflowing product, a hot loop.
		{"heartbeat whose double overflows", map[string]string{"HERD_PEER_HEARTBEAT": "1500000h"}, "HERD_PEER_HEARTBEAT"},
		{"time-out and heartbeat both huge", map[string]string{"HERD_PEER_HEARTBEAT": "1500000h", "HERD_PEER_TIMEOUT": "2000000h"}, "HERD_PEER_TIMEOUT"},
		{"backoff of a nanosecond", map[string]string{"HERD_PEER_BACKOFF_MAX": "1ns"}, "HERD_PEER_BACKOFF_MAX"},
		{"duration past int64", map[string]string{"HERD_PEER_HEARTBEAT": "3000000h"}, "HERD_PEER_HEARTBEAT"},
		{"number past int64", map[string]string{"HERD_MAX_LINE": "99999999999999999999"}, "HERD_MAX_LINE"},

		{"heartbeat at its minimum", map[string]string{"HERD_PEER_HEARTBEAT": "10ms"}, ""},
		{"heartbeat below", map[string]string{"HERD_PEER_HEARTBEAT": "9ms"}, "HERD_PEER_HEARTBEAT"},
		{"heartbeat at its maximum", map[string]string{"HERD_PEER_HEARTBEAT": "1m", "HERD_PEER_TIMEOUT": "2m"}, ""},
		{"heartbeat above", map[string]string{"HERD_PEER_HEARTBEAT": "61s", "HERD_PEER_TIMEOUT": "10m"}, "HERD_PEER_HEARTBEAT"},
		{"negative heartbeat", map[string]string{"HERD_PEER_HEARTBEAT": "-1s"}, "HERD_PEER_HEARTBEAT"},
		{"time-out twice the heartbeat", map[string]string{"HERD_PEER_HEARTBEAT": "500ms", "HERD_PEER_TIMEOUT": "1s"}, ""},
		{"time-out a nanosecond short", map[string]string{"HERD_PEER_HEARTBEAT": "500ms", "HERD_PEER_TIMEOUT": "999999999ns"}, "HERD_PEER_TIMEOUT"},
		{"time-out at its maximum", map[string]string{"HERD_PEER_TIMEOUT": "10m"}, ""},
		{"time-out above", map[string]string{"HERD_PEER_TIMEOUT": "601s"}, "HERD_PEER_TIMEOUT"},
		{"negative time-out", map[string]string{"HERD_PEER_TIMEOUT": "-3s"}, "HERD_PEER_TIMEOUT"},
		{"backoff at its minimum", map[string]string{"HERD_PEER_BACKOFF_MAX": "10ms"}, ""},
		{"backoff below", map[string]string{"HERD_PEER_BACKOFF_MAX": "9ms"}, "HERD_PEER_BACKOFF_MAX"},
		{"backoff at its maximum", map[string]string{"HERD_PEER_BACKOFF_MAX": "10m"}, ""},
		{"backoff above", map[string]string{"HERD_PEER_BACKOFF_MAX": "11m"}, "HERD_PEER_BACKOFF_MAX"},
		{"ready grace at its minimum", map[string]string{"HERD_READY_GRACE": "10ms"}, ""},
		{"ready grace zero", map[string]string{"HERD_READY_GRACE": "0"}, "HERD_READY_GRACE"},
		{"ready grace above", map[string]string{"HERD_READY_GRACE": "61m"}, "HERD_READY_GRACE"},
		{"places time-out at its minimum", map[string]string{"HERD_PLACES_TIMEOUT": "100ms"}, ""},
		{"places time-out below", map[string]string{"HERD_PLACES_TIMEOUT": "99ms"}, "HERD_PLACES_TIMEOUT"},
		{"places time-out above", map[string]string{"HERD_PLACES_TIMEOUT": "301s"}, "HERD_PLACES_TIMEOUT"},
		{"cache off", map[string]string{"HERD_PLACES_CACHE_TTL": "0"}, ""},
		{"cache of a nanosecond", map[string]string{"HERD_PLACES_CACHE_TTL": "1ns"}, "HERD_PLACES_CACHE_TTL"},
		{"cache for a day", map[string]string{"HERD_PLACES_CACHE_TTL": "24h"}, ""},
		{"cache past a day", map[string]string{"HERD_PLACES_CACHE_TTL": "25h"}, "HERD_PLACES_CACHE_TTL"},
		{"negative cache", map[string]string{"HERD_PLACES_CACHE_TTL": "-1s"}, "HERD_PLACES_CACHE_TTL"},
		{"idle time-out at its minimum", map[string]string{"HERD_IDLE_TIMEOUT": "1s"}, ""},
		{"idle time-out below", map[string]string{"HERD_IDLE_TIMEOUT": "999ms"}, "HERD_IDLE_TIMEOUT"},
		{"idle time-out above", map[string]string{"HERD_IDLE_TIMEOUT": "25h"}, "HERD_IDLE_TIMEOUT"},
		{"write time-out at its minimum", map[string]string{"HERD_WRITE_TIMEOUT": "100ms"}, ""},
		{"write time-out below", map[string]string{"HERD_WRITE_TIMEOUT": "99ms"}, "HERD_WRITE_TIMEOUT"},
		{"write time-out above", map[string]string{"HERD_WRITE_TIMEOUT": "11m"}, "HERD_WRITE_TIMEOUT"},
		{"shutdown time-out below", map[string]string{"HERD_SHUTDOWN_TIMEOUT": "0"}, "HERD_SHUTDOWN_TIMEOUT"},
		{"shutdown time-out above", map[string]string{"HERD_SHUTDOWN_TIMEOUT": "11m"}, "HERD_SHUTDOWN_TIMEOUT"},
		{"fsync at its minimum", map[string]string{"HERD_FSYNC_INTERVAL": "1ms"}, ""},
		{"fsync below", map[string]string{"HERD_FSYNC_INTERVAL": "999us"}, "HERD_FSYNC_INTERVAL"},
		{"fsync above", map[string]string{"HERD_FSYNC_INTERVAL": "61s"}, "HERD_FSYNC_INTERVAL"},

		{"max line at its minimum", map[string]string{"HERD_MAX_LINE": "64"}, ""},
		{"max line above", map[string]string{"HERD_MAX_LINE": "1048577"}, "HERD_MAX_LINE"},
		{"negative max line", map[string]string{"HERD_MAX_LINE": "-1"}, "HERD_MAX_LINE"},
		{"conns at their maximum", map[string]string{"HERD_MAX_CONNS": "1048576"}, ""},
		{"conns above", map[string]string{"HERD_MAX_CONNS": "1048577"}, "HERD_MAX_CONNS"},
		{"conns per address below", map[string]string{"HERD_MAX_CONNS_PER_IP": "0"}, "HERD_MAX_CONNS_PER_IP"},
		{"conns per address above", map[string]string{"HERD_MAX_CONNS_PER_IP": "1048577"}, "HERD_MAX_CONNS_PER_IP"},
		{"inflight at its maximum", map[string]string{"HERD_MAX_INFLIGHT": "4096"}, ""},
		{"inflight below", map[string]string{"HERD_MAX_INFLIGHT": "0"}, "HERD_MAX_INFLIGHT"},
		{"inflight above", map[string]string{"HERD_MAX_INFLIGHT": "4097"}, "HERD_MAX_INFLIGHT"},
		{"places concurrency below", map[string]string{"HERD_PLACES_MAX_CONCURRENT": "0"}, "HERD_PLACES_MAX_CONCURRENT"},
		{"places concurrency above", map[string]string{"HERD_PLACES_MAX_CONCURRENT": "10001"}, "HERD_PLACES_MAX_CONCURRENT"},
		{"cache size below", map[string]string{"HERD_PLACES_CACHE_SIZE": "0"}, "HERD_PLACES_CACHE_SIZE"},
		{"cache size above", map[string]string{"HERD_PLACES_CACHE_SIZE": "10000001"}, "HERD_PLACES_CACHE_SIZE"},
		{"log file of 1 MB", map[string]string{"HERD_LOG_FILE_MAX_SIZE": "1"}, ""},
		{"log file of 0 MB", map[string]string{"HERD_LOG_FILE_MAX_SIZE": "0"}, "HERD_LOG_FILE_MAX_SIZE"},
		{"log file at its maximum", map[string]string{"HERD_LOG_FILE_MAX_SIZE": "102400"}, ""},
		{"log file above", map[string]string{"HERD_LOG_FILE_MAX_SIZE": "102401"}, "HERD_LOG_FILE_MAX_SIZE"},
		{"one log file kept", map[string]string{"HERD_LOG_FILE_MAX_FILES": "1"}, ""},
		{"no log file kept", map[string]string{"HERD_LOG_FILE_MAX_FILES": "0"}, "HERD_LOG_FILE_MAX_FILES"},
		{"too many log files", map[string]string{"HERD_LOG_FILE_MAX_FILES": "1001"}, "HERD_LOG_FILE_MAX_FILES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{"HERD_NAME": "Hill"}
			for k, v := range tt.vars {
				vars[k] = v
			}
			_, err := FromMap(vars)
			switch {
			case tt.bad == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tt.bad == "":
			case err == nil:
				t.Fatal("accepted")
			case !strings.HasPrefix(err.Error(), tt.bad+": ") && !strings.Contains(err.Error(), "\n"+tt.bad+": "):
				t.Errorf("error %q does not name %s", err, tt.bad)
			case !strings.Contains(err.Error(), " to ") && !strings.Contains(err.Error(), "parsing"): // a parse error quotes the value
				t.Errorf("error %q does not give the range", err)
			}
		})
	}
}

func TestErrorGivesTheRange(t *testing.T) {
	_, err := FromMap(map[string]string{"HERD_NAME": "Hill", "HERD_PEER_BACKOFF_MAX": "1ns"})
	if want := "HERD_PEER_BACKOFF_MAX: 1ns is not within 10ms to 10m"; err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
}

func TestRecordAndClockBoundsAccepted(t *testing.T) {
	tests := []struct {
		name, variable, value string
	}{
		{"one record", "HERD_MAX_RECORDS", "1"},
		{"the most records", "HERD_MAX_RECORDS", "100000000"},
		{"a second ahead", "HERD_MAX_CLOCK_AHEAD", "1s"},
		{"a day ahead", "HERD_MAX_CLOCK_AHEAD", "24h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := FromMap(map[string]string{"HERD_NAME": "Hill", tt.variable: tt.value}); err != nil {
				t.Errorf("%s=%s: %v", tt.variable, tt.value, err)
			}
		})
	}
}

// TestDefault: Default gives each variable's default as Load applies it,
// so that a command reading one variable (herd health) has no copy of it.
func TestDefault(t *testing.T) {
	c, err := FromMap(map[string]string{"HERD_NAME": "Hill"})
	if err != nil {
		t.Fatal(err)
	}
	for variable, want := range map[string]string{
		"HERD_METRICS_ADDR": c.MetricsAddr, "HERD_CLIENT_ADDR": c.ClientAddr, "HERD_PLACES": c.Places, "HERD_DATA_DIR": "",
	} {
		if got := Default(variable); got != want {
			t.Errorf("Default(%s) = %q, want %q", variable, got, want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("Default of an unknown variable did not panic")
		}
	}()
	Default("HERD_NO_SUCH")
}

func TestPeerSecretFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name   string
		vars   map[string]string // besides HERD_NAME and HERD_PEERS
		secret string            // the secret read, when accepted
		bad    string            // the variable named in the error; "" when accepted
	}{
		{"plain", map[string]string{"HERD_PEER_SECRET_FILE": write("plain", "0123456789abcdef")}, "0123456789abcdef", ""},
		{"trailing newline", map[string]string{"HERD_PEER_SECRET_FILE": write("nl", "0123456789abcdef\n")}, "0123456789abcdef", ""},
		{"trailing CRLF twice", map[string]string{"HERD_PEER_SECRET_FILE": write("crlf", "0123456789abcdef\r\n\r\n")}, "0123456789abcdef", ""},
		{"inner spaces kept", map[string]string{"HERD_PEER_SECRET_FILE": write("space", " 0123456789 abcdef \n")}, " 0123456789 abcdef ", ""},
		{"missing file", map[string]string{"HERD_PEER_SECRET_FILE": filepath.Join(dir, "absent")}, "", "HERD_PEER_SECRET_FILE"},
		{"too short", map[string]string{"HERD_PEER_SECRET_FILE": write("short", "short\n")}, "", "HERD_PEER_SECRET_FILE"},
		{"only a newline", map[string]string{"HERD_PEER_SECRET_FILE": write("empty", "\n")}, "", "HERD_PEER_SECRET_FILE"},
		{"both set", map[string]string{"HERD_PEER_SECRET_FILE": write("both", "0123456789abcdef"), "HERD_PEER_SECRET": "0123456789abcdef"}, "", "HERD_PEER_SECRET_FILE"},
		{"with another bad variable", map[string]string{"HERD_PEER_SECRET_FILE": filepath.Join(dir, "absent"), "HERD_MAX_LINE": "x"}, "", "HERD_MAX_LINE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{"HERD_NAME": "Hill", "HERD_PEERS": "J=a:1"}
			for k, v := range tt.vars {
				vars[k] = v
			}
			c, err := FromMap(vars)
			switch {
			case tt.bad == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tt.bad == "":
				if string(c.PeerSecret) != tt.secret {
					t.Errorf("secret %q, want %q", string(c.PeerSecret), tt.secret)
				}
			case err == nil:
				t.Fatal("accepted")
			case !strings.Contains(err.Error(), tt.bad+": "):
				t.Errorf("error %q does not name %s", err, tt.bad)
			}
			if err != nil && strings.Contains(err.Error(), "0123456789") {
				t.Errorf("error %q shows the secret", err)
			}
		})
	}
}
