// Package config holds a node's configuration, read only from environment
// variables (with github.com/caarlos0/env/v10) into one documented struct.
//
// Every field's doc gives its variable, unit and default; the defaults are
// the envDefault tags, so this file is the one place they live. Validate
// checks ranges and names the variable in every error. Port 0 works
// everywhere, so tests can run many nodes.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v10"

	"github.com/herdkit/herd/pkg/protocol"
	"github.com/herdkit/herd/pkg/secret"
	"github.com/herdkit/herd/pkg/topology"
)

// Config is the whole configuration of one node.
type Config struct {
	// Name is the server's name, shown in its AT replies and to its peers:
	// 1 to 64 letters, digits, '.', '_' or '-'. Required.
	Name string `env:"HERD_NAME,required,notEmpty"`

	// ClientAddr is the TCP address of the client protocol.
	ClientAddr string `env:"HERD_CLIENT_ADDR" envDefault:":12200"`
	// PeerAddr is the TCP address on which neighbours connect.
	PeerAddr string `env:"HERD_PEER_ADDR" envDefault:":12300"`
	// Peers are the neighbours, "Name=host:port,Name=host:port".
	Peers Peers `env:"HERD_PEERS"`
	// Servers, when set and HERD_PEERS is not, derives the neighbours from
	// the herd's size (package topology): HERD_NAME must be base-i with i
	// from 0 to Servers-1, and neighbour j is base-j at HERD_PEER_TEMPLATE
	// with {i} replaced by j. From 1 to 1024; 0 (the default) is off.
	Servers int `env:"HERD_SERVERS"`
	// PeerTemplate is the host:port of a derived herd's servers, {i}
	// standing for the index: herd-{i}.herd-peer:12300.
	PeerTemplate string `env:"HERD_PEER_TEMPLATE"`
	// PeerTLSCert, PeerTLSKey and PeerTLSCA are PEM files, all set or
	// none: with them every peer link is mutual TLS 1.3, each end's
	// certificate verified against the CA. The HMAC handshake still runs
	// inside.
	PeerTLSCert string `env:"HERD_PEER_TLS_CERT"`
	PeerTLSKey  string `env:"HERD_PEER_TLS_KEY"`
	PeerTLSCA   string `env:"HERD_PEER_TLS_CA"`
	// PeerSecret authenticates both ends of every peer link; at least 16
	// bytes. Required when Peers is set. Never logged.
	PeerSecret secret.String `env:"HERD_PEER_SECRET"`
	// PeerSecretFile, when set, is a file holding the peer secret (a
	// Kubernetes or Swarm secret is a file), read once at start into
	// PeerSecret with its trailing line ends trimmed. Exclusive with
	// HERD_PEER_SECRET.
	PeerSecretFile string `env:"HERD_PEER_SECRET_FILE"`
	// PeerHeartbeat is how often an idle peer link says it is alive.
	PeerHeartbeat time.Duration `env:"HERD_PEER_HEARTBEAT" envDefault:"500ms"`
	// PeerTimeout is how long a peer link may stay silent, or a write to it
	// may block, before it is dropped and re-dialled. At least twice
	// PeerHeartbeat.
	PeerTimeout time.Duration `env:"HERD_PEER_TIMEOUT" envDefault:"3s"`
	// PeerBackoffMax caps the jittered exponential backoff between dials
	// of a neighbour that is down.
	PeerBackoffMax time.Duration `env:"HERD_PEER_BACKOFF_MAX" envDefault:"2s"`

	// MetricsAddr is the HTTP address of /metrics, /healthz and /readyz.
	MetricsAddr string `env:"HERD_METRICS_ADDR" envDefault:":9100"`
	// Pprof, when true, serves net/http/pprof's profiles under
	// /debug/pprof/ on MetricsAddr. Off by default: a profile shows the
	// program's internals and costs CPU while it runs.
	Pprof bool `env:"HERD_PPROF" envDefault:"false"`
	// ReadyGrace is how long /readyz waits for the first reconciliation
	// with a neighbour before it reports ready anyway.
	ReadyGrace time.Duration `env:"HERD_READY_GRACE" envDefault:"5s"`

	// Places chooses the places provider: auto (google when
	// HERD_GOOGLE_API_KEY is set, otherwise offline), offline, google (the
	// legacy Nearby Search) or google-new (Places API (New)).
	Places string `env:"HERD_PLACES" envDefault:"auto"`
	// GoogleAPIKey is the Google Places API key. Never logged.
	GoogleAPIKey secret.String `env:"HERD_GOOGLE_API_KEY"`
	// GoogleBaseURL replaces the Google endpoint's scheme and host, for
	// tests and proxies. Empty means Google's own.
	GoogleBaseURL string `env:"HERD_GOOGLE_BASE_URL"`
	// PlacesTimeout bounds each upstream places request.
	PlacesTimeout time.Duration `env:"HERD_PLACES_TIMEOUT" envDefault:"5s"`
	// PlacesMaxConcurrent bounds the upstream places requests in flight.
	PlacesMaxConcurrent int `env:"HERD_PLACES_MAX_CONCURRENT" envDefault:"32"`
	// PlacesCacheTTL is how long a places answer is reused for the same
	// position and radius; 0 turns the cache off.
	PlacesCacheTTL time.Duration `env:"HERD_PLACES_CACHE_TTL" envDefault:"60s"`
	// PlacesCacheSize bounds the number of cached places answers; a Google
	// answer of 20 results takes about 20 KB.
	PlacesCacheSize int `env:"HERD_PLACES_CACHE_SIZE" envDefault:"1000"`

	// MaxLine is the longest client line accepted, in bytes, without its
	// line end; a longer line closes the connection.
	MaxLine int `env:"HERD_MAX_LINE" envDefault:"4096"`
	// MaxConns bounds the open client connections; more are closed at once.
	MaxConns int `env:"HERD_MAX_CONNS" envDefault:"4096"`
	// MaxConnsPerIP bounds the open client connections from one source
	// address. Behind Docker's port publishing every host client shares
	// the bridge gateway's address.
	MaxConnsPerIP int `env:"HERD_MAX_CONNS_PER_IP" envDefault:"512"`
	// MaxInflight bounds the requests on one connection that are owed a
	// reply; past it, the server stops reading from that client until
	// replies go out.
	MaxInflight int `env:"HERD_MAX_INFLIGHT" envDefault:"16"`
	// IdleTimeout closes a client connection that sends nothing for this
	// long while no reply is owed to it.
	IdleTimeout time.Duration `env:"HERD_IDLE_TIMEOUT" envDefault:"5m"`
	// WriteTimeout closes a client connection that does not take a reply
	// within this time.
	WriteTimeout time.Duration `env:"HERD_WRITE_TIMEOUT" envDefault:"10s"`
	// MaxRecords bounds the clients whose record a node holds. At the
	// bound a record of a new client is stored only if it ranks above the
	// lowest record held (by client time, then store.Rank's tie-breaks),
	// which is evicted; every node must have the same bound. The default,
	// a million, takes about 185 MB of heap (store.TestMemoryPerRecord).
	MaxRecords int `env:"HERD_MAX_RECORDS" envDefault:"1000000"`
	// MaxClockAhead is how far past the server's clock a client's time
	// may be: an IAMAT further ahead is invalid, so that a client cannot
	// pin its record for ever. From 1s to 24h.
	MaxClockAhead time.Duration `env:"HERD_MAX_CLOCK_AHEAD" envDefault:"24h"`
	// ShutdownTimeout bounds the wait for replies in flight on SIGINT or
	// SIGTERM.
	ShutdownTimeout time.Duration `env:"HERD_SHUTDOWN_TIMEOUT" envDefault:"10s"`

	// DataDir, when set, makes records durable: every change is appended
	// to a journal there and read back at start. Empty keeps records in
	// memory only.
	DataDir string `env:"HERD_DATA_DIR"`
	// FsyncInterval is how often the journal is synced to disk: a record
	// acknowledged this long (plus one fsync) before a power failure
	// survives it. A killed process loses nothing written.
	FsyncInterval time.Duration `env:"HERD_FSYNC_INTERVAL" envDefault:"100ms"`
	// Fsync chooses when an IAMAT is acknowledged: interval (once its
	// record is written to the journal, which a killed process keeps; a
	// sync every FsyncInterval) or always (once it is synced, which a power
	// failure keeps; one fsync for every record written meanwhile).
	Fsync string `env:"HERD_FSYNC" envDefault:"interval"`
	// JournalSegmentSize is the size, in bytes, at which the journal closes
	// a segment and starts the next; snapshots follow rotations, so a small
	// size makes them frequent (the crash test uses that). From
	// MinJournalSegmentSize to MaxJournalSegmentSize; the default is
	// journal.DefaultSegmentSize, 64 MiB.
	JournalSegmentSize int64 `env:"HERD_JOURNAL_SEGMENT_SIZE" envDefault:"67108864"`

	// LogFile, when set, receives the log as well as standard error. It
	// is rotated by size: at most LogFileMaxSize × (LogFileMaxFiles + 1)
	// on disk.
	LogFile string `env:"HERD_LOG_FILE"`
	// LogFileMaxSize is the size, in MB (2^20 bytes), past which LogFile
	// is renamed LogFile.1 (older ones moving to .2, .3 ...) and a new one
	// started.
	LogFileMaxSize int `env:"HERD_LOG_FILE_MAX_SIZE" envDefault:"100"`
	// LogFileMaxFiles is how many renamed LogFiles are kept, besides the
	// one being written; older ones are deleted.
	LogFileMaxFiles int `env:"HERD_LOG_FILE_MAX_FILES" envDefault:"3"`
	// LogLevel is debug, info, warn or error; the protocol log (every line
	// and reply) is at info.
	LogLevel slog.Level `env:"HERD_LOG_LEVEL" envDefault:"info"`
	// LogFormat is json or text.
	LogFormat string `env:"HERD_LOG_FORMAT" envDefault:"json"`
}

// Places providers.
const (
	PlacesAuto      = "auto"
	PlacesOffline   = "offline"
	PlacesGoogle    = "google"
	PlacesGoogleNew = "google-new"
)

// Journal sync modes, HERD_FSYNC.
const (
	FsyncInterval = "interval"
	FsyncAlways   = "always"
)

// Bounds of HERD_MAX_RECORDS and HERD_MAX_CLOCK_AHEAD. A hundred million
// records take about 19 GB.
const (
	MaxRecords    = 100_000_000
	MinClockAhead = time.Second
	MaxClockAhead = 24 * time.Hour
)

// Bounds of HERD_JOURNAL_SEGMENT_SIZE, in bytes.
const (
	MinJournalSegmentSize = 64 << 10
	MaxJournalSegmentSize = 1 << 30
)

// MinSecretLen is the shortest accepted peer secret, in bytes.
const MinSecretLen = 16

// DevPeerSecret is the peer secret compose.yaml uses when HERD_PEER_SECRET
// is not set; a node started with it warns that it is not a secret.
const DevPeerSecret = "herd-development-secret-change-me"

// Default returns the default of an environment variable, as Config's
// envDefault tag gives it, for the commands that read one variable
// without a whole Config (`herd health` reads HERD_METRICS_ADDR). It
// panics if no field reads the variable: a programming error.
func Default(variable string) string {
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("env"), ","); name == variable {
			return f.Tag.Get("envDefault")
		}
	}
	panic("config: no field reads " + variable)
}

// Load reads the configuration from the environment and validates it.
func Load() (Config, error) {
	return parse(env.Options{})
}

// FromMap reads the configuration from vars instead of the process
// environment, as `herd local` and tests do, and validates it.
func FromMap(vars map[string]string) (Config, error) {
	return parse(env.Options{Environment: vars})
}

func parse(opts env.Options) (Config, error) {
	var c Config
	perr := env.ParseWithOptions(&c, opts)
	if perr != nil {
		perr = nameVariables(perr)
	}
	if err := c.readPeerSecretFile(); err != nil {
		perr = errors.Join(perr, err)
	}
	c.derivePeers()
	if perr == nil {
		return c, c.Validate()
	}
	// Report every problem at once: the variables that did not parse, and
	// the validation of the others.
	errs := []error{perr}
	var verrs interface{ Unwrap() []error }
	if errors.As(c.Validate(), &verrs) {
		for _, e := range verrs.Unwrap() {
			variable, _, _ := strings.Cut(e.Error(), ":")
			if !strings.Contains(perr.Error(), variable) {
				errs = append(errs, e)
			}
		}
	}
	return c, errors.Join(errs...)
}

// readPeerSecretFile fills PeerSecret from PeerSecretFile, when that is
// set. Only the trailing line ends go (what `echo secret > file` and most
// editors add); anything else in the file is part of the secret. Errors
// name the variable and the path, never the content.
func (c *Config) readPeerSecretFile() error {
	if c.PeerSecretFile == "" {
		return nil
	}
	if c.PeerSecret != "" {
		return errors.New("HERD_PEER_SECRET_FILE: cannot be set together with HERD_PEER_SECRET")
	}
	b, err := os.ReadFile(c.PeerSecretFile)
	if err != nil {
		return fmt.Errorf("HERD_PEER_SECRET_FILE: %w", err)
	}
	c.PeerSecret = secret.String(strings.TrimRight(string(b), "\r\n"))
	return nil
}

// nameVariables rewrites the env package's parse errors, which name Go
// fields, to name the environment variables instead.
func nameVariables(err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	errs := make([]error, 0, len(agg.Errors))
	t := reflect.TypeFor[Config]()
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if f, ok := t.FieldByName(pe.Name); ok {
				name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
				e = fmt.Errorf("%s: %w", name, pe.Err)
			}
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// Validate checks every field and returns all problems at once, each naming
// its variable and what it accepts.
func (c Config) Validate() error {
	var errs []error
	bad := func(variable, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{variable}, args...)...))
	}
	if !protocol.ValidName(c.Name) {
		bad("HERD_NAME", "%q is not 1 to 64 letters, digits, '.', '_' or '-'", c.Name)
	}
	for variable, addr := range map[string]string{
		"HERD_CLIENT_ADDR": c.ClientAddr, "HERD_PEER_ADDR": c.PeerAddr, "HERD_METRICS_ADDR": c.MetricsAddr,
	} {
		if err := validAddr(addr); err != nil {
			bad(variable, "%v", err)
		}
	}
	c.validHerd(bad)
	c.validPeerTLS(bad)
	for _, p := range c.Peers {
		if p.Name == c.Name {
			bad("HERD_PEERS", "%s lists this server itself", p.Name)
		}
	}
	if len(c.Peers) > 0 && len(c.PeerSecret) < MinSecretLen {
		if c.PeerSecretFile != "" {
			bad("HERD_PEER_SECRET_FILE", "%s must hold at least %d bytes when HERD_PEERS or HERD_SERVERS gives neighbours", c.PeerSecretFile, MinSecretLen)
		} else {
			bad("HERD_PEER_SECRET", "must be at least %d bytes when HERD_PEERS or HERD_SERVERS gives neighbours", MinSecretLen)
		}
	}
	switch c.Places {
	case PlacesAuto, PlacesOffline:
	case PlacesGoogle, PlacesGoogleNew:
		if c.GoogleAPIKey == "" {
			bad("HERD_GOOGLE_API_KEY", "must be set when HERD_PLACES is %s", c.Places)
		}
	default:
		bad("HERD_PLACES", "%q is not one of auto, offline, google, google-new", c.Places)
	}
	if c.GoogleBaseURL != "" {
		if u, err := url.Parse(c.GoogleBaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") ||
			u.Host == "" || u.RawQuery != "" || u.User != nil {
			bad("HERD_GOOGLE_BASE_URL", "%q is not an http or https URL without a query", c.GoogleBaseURL)
		}
	}
	c.validDurations(bad)
	if c.MaxClockAhead < MinClockAhead || c.MaxClockAhead > MaxClockAhead {
		bad("HERD_MAX_CLOCK_AHEAD", "%v is not within %v to %v", c.MaxClockAhead, MinClockAhead, MaxClockAhead)
	}
	ranges := []struct {
		variable  string
		v, lo, hi int
	}{
		{"HERD_PLACES_MAX_CONCURRENT", c.PlacesMaxConcurrent, 1, 10000},
		{"HERD_PLACES_CACHE_SIZE", c.PlacesCacheSize, 1, 10_000_000},
		{"HERD_MAX_LINE", c.MaxLine, 64, 1 << 20},
		{"HERD_MAX_CONNS", c.MaxConns, 1, 1 << 20},
		{"HERD_MAX_CONNS_PER_IP", c.MaxConnsPerIP, 1, 1 << 20},
		{"HERD_MAX_INFLIGHT", c.MaxInflight, 1, 4096},
		{"HERD_LOG_FILE_MAX_SIZE", c.LogFileMaxSize, 1, MaxLogFileMaxSize},
		{"HERD_LOG_FILE_MAX_FILES", c.LogFileMaxFiles, 1, MaxLogFileMaxFiles},
		{"HERD_MAX_RECORDS", c.MaxRecords, 1, MaxRecords},
	}
	for _, r := range ranges {
		if r.v < r.lo || r.v > r.hi {
			bad(r.variable, "%d is not within %d to %d", r.v, r.lo, r.hi)
		}
	}
	if c.Fsync != FsyncInterval && c.Fsync != FsyncAlways {
		bad("HERD_FSYNC", "%q is not interval or always", c.Fsync)
	}
	if c.JournalSegmentSize < MinJournalSegmentSize || c.JournalSegmentSize > MaxJournalSegmentSize {
		bad("HERD_JOURNAL_SEGMENT_SIZE", "%d is not within %d to %d bytes", c.JournalSegmentSize, MinJournalSegmentSize, MaxJournalSegmentSize)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		bad("HERD_LOG_FORMAT", "%q is not json or text", c.LogFormat)
	}
	return errors.Join(errs...)
}

// Bounds of the durations. The maxima keep every sum and product the
// code forms from them (twice the heartbeat, now plus a time-out) far from
// overflow; the minima keep a setting from turning into a hot loop (a
// redial every nanosecond) or a time-out no network can meet.
const (
	MinPeerHeartbeat  = 10 * time.Millisecond
	MaxPeerHeartbeat  = time.Minute
	MaxPeerTimeout    = 10 * time.Minute
	MinPeerBackoffMax = 10 * time.Millisecond
	MaxPeerBackoffMax = 10 * time.Minute
)

// Bounds of the rotated log file: HERD_LOG_FILE_MAX_SIZE in MB and
// HERD_LOG_FILE_MAX_FILES.
const (
	MaxLogFileMaxSize  = 100 << 10 // 100 GB
	MaxLogFileMaxFiles = 1000
)

// validDurations checks every duration against its range. Each check
// compares without multiplying, so no value, however large, overflows its
// way into the range.
func (c Config) validDurations(bad func(variable, format string, args ...any)) {
	durations := []struct {
		variable string
		d        time.Duration
		lo, hi   time.Duration
		zero     string // when not empty, 0 is allowed too, and means this
	}{
		{"HERD_PEER_HEARTBEAT", c.PeerHeartbeat, MinPeerHeartbeat, MaxPeerHeartbeat, ""},
		{"HERD_PEER_BACKOFF_MAX", c.PeerBackoffMax, MinPeerBackoffMax, MaxPeerBackoffMax, ""},
		{"HERD_READY_GRACE", c.ReadyGrace, 10 * time.Millisecond, time.Hour, ""},
		{"HERD_PLACES_TIMEOUT", c.PlacesTimeout, 100 * time.Millisecond, 5 * time.Minute, ""},
		{"HERD_PLACES_CACHE_TTL", c.PlacesCacheTTL, time.Second, 24 * time.Hour, "no cache"},
		{"HERD_IDLE_TIMEOUT", c.IdleTimeout, time.Second, 24 * time.Hour, ""},
		{"HERD_WRITE_TIMEOUT", c.WriteTimeout, 100 * time.Millisecond, 10 * time.Minute, ""},
		{"HERD_SHUTDOWN_TIMEOUT", c.ShutdownTimeout, 100 * time.Millisecond, 10 * time.Minute, ""},
		{"HERD_FSYNC_INTERVAL", c.FsyncInterval, time.Millisecond, time.Minute, ""},
	}
	for _, d := range durations {
		if d.d == 0 && d.zero != "" || d.d >= d.lo && d.d <= d.hi {
			continue
		}
		if d.zero != "" {
			bad(d.variable, "%v is not 0 (%s) or within %v to %v", d.d, d.zero, short(d.lo), short(d.hi))
		} else {
			bad(d.variable, "%v is not within %v to %v", d.d, short(d.lo), short(d.hi))
		}
	}
	// The time-out's lower bound is twice the heartbeat, or twice the
	// smallest heartbeat when the heartbeat itself is out of range. t/2 >= h
	// is t >= 2h for integers, without forming 2h.
	heartbeat := c.PeerHeartbeat
	if heartbeat < MinPeerHeartbeat || heartbeat > MaxPeerHeartbeat {
		heartbeat = MinPeerHeartbeat
	}
	if c.PeerTimeout/2 < heartbeat || c.PeerTimeout > MaxPeerTimeout {
		bad("HERD_PEER_TIMEOUT", "%v is not within twice HERD_PEER_HEARTBEAT (%v) to %v",
			c.PeerTimeout, short(2*heartbeat), short(MaxPeerTimeout))
	}
}

// short formats d as time.Duration does, without its zero tails: 1m
// rather than 1m0s.
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func validAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("%q has a bad port", addr)
	}
	return nil
}

// Peers is the neighbour list, parsed from "Name=host:port,...".
type Peers []topology.Peer

// UnmarshalText parses "Name=host:port,Name=host:port"; spaces around
// entries are ignored and an empty string is no neighbours.
func (p *Peers) UnmarshalText(b []byte) error {
	*p = nil
	seen := map[string]bool{}
	for item := range strings.SplitSeq(string(b), ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, addr, ok := strings.Cut(item, "=")
		if !ok || !protocol.ValidName(name) {
			return fmt.Errorf("%q is not Name=host:port", item)
		}
		if err := validAddr(addr); err != nil {
			return fmt.Errorf("%s: %v", name, err)
		}
		if seen[name] {
			return fmt.Errorf("%s is listed twice", name)
		}
		seen[name] = true
		*p = append(*p, topology.Peer{Name: name, Addr: addr})
	}
	return nil
}

// String returns the list in the form UnmarshalText reads.
func (p Peers) String() string {
	s := make([]string, len(p))
	for i, x := range p {
		s[i] = x.Name + "=" + x.Addr
	}
	return strings.Join(s, ",")
}
