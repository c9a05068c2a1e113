package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/herdkit/herd/pkg/config"
	"github.com/herdkit/herd/pkg/topology"
)

// composeProject is the compose project name of every e2e run.
const composeProject = "herd-e2e"

// containerPeerPort is the peer port of a server in a container
// (PROTOCOL.md: 12300 in a container), which neighbours dial by service
// name and which is never published.
const containerPeerPort = 12300

// loadCompose loads compose.yaml as compose would from the repository
// root, with this process's environment, for the harness to run its
// services.
//
// The one departure: the places settings are left out of that
// environment, so that the nodes use the offline places data as
// compose.yaml's defaults say, whatever the shell exports. End-to-end
// tests talk to 127.0.0.1 and their own containers only, never to Google.
func loadCompose(t testing.TB) *types.Project {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "HERD_PLACES" || strings.HasPrefix(k, "HERD_GOOGLE_") {
			continue
		}
		env = append(env, kv)
	}
	p, err := loadComposeEnv(env)
	if err != nil {
		t.Fatalf("loading compose.yaml: %v", err)
	}
	return p
}

// loadComposeEnv loads compose.yaml with exactly the environment env and
// the profiles given.
func loadComposeEnv(env []string, profiles ...string) (*types.Project, error) {
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		return nil, err
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "compose.yaml")},
		cli.WithName(composeProject),
		cli.WithWorkingDirectory(root),
		cli.WithEnv(env),
		cli.WithDotEnv,
		cli.WithProfiles(profiles),
	)
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(context.Background())
}

// TestComposeMatchesTopology checks compose.yaml against the classic herd
// of PROTOCOL.md (topology.Classic). It needs no Docker.
func TestComposeMatchesTopology(t *testing.T) {
	// An empty environment: what compose.yaml says by itself.
	p, err := loadComposeEnv(nil)
	if err != nil {
		t.Fatalf("loading compose.yaml: %v", err)
	}

	var want []string
	for _, s := range topology.Classic {
		want = append(want, strings.ToLower(s.Name))
	}
	if got := slices.Sorted(slices.Values(p.ServiceNames())); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("services without a profile: %q, want the five servers %q", got, want)
	}

	var image string
	var build *types.BuildConfig
	for i, s := range topology.Classic {
		name := strings.ToLower(s.Name)
		svc, ok := p.Services[name]
		if !ok {
			continue // reported above
		}
		t.Run(s.Name, func(t *testing.T) {
			env := func(k string) string {
				if v := svc.Environment[k]; v != nil {
					return *v
				}
				return ""
			}
			if got := env("HERD_NAME"); got != s.Name {
				t.Errorf("HERD_NAME = %q, want %q", got, s.Name)
			}
			var peers config.Peers
			if err := peers.UnmarshalText([]byte(env("HERD_PEERS"))); err != nil {
				t.Errorf("HERD_PEERS = %q: %v", env("HERD_PEERS"), err)
			}
			var wantPeers config.Peers
			for _, nb := range s.Neighbours {
				wantPeers = append(wantPeers, topology.Peer{Name: nb, Addr: fmt.Sprintf("%s:%d", strings.ToLower(nb), containerPeerPort)})
			}
			if !samePeers(peers, wantPeers) {
				t.Errorf("HERD_PEERS = %q, want the neighbours %q", env("HERD_PEERS"), wantPeers.String())
			}
			// The ports inside the container are the image's defaults;
			// compose.yaml must not move them away from what it publishes.
			for k, def := range map[string]string{"HERD_CLIENT_ADDR": ":12200", "HERD_PEER_ADDR": ":12300", "HERD_METRICS_ADDR": ":9100"} {
				if v := env(k); v != "" && v != def {
					t.Errorf("%s = %q, want the image's %q", k, v, def)
				}
			}
			if got := env("HERD_PEER_SECRET"); got != config.DevPeerSecret {
				t.Errorf("HERD_PEER_SECRET defaults to %q, want the development secret %q", got, config.DevPeerSecret)
			}
			// Five nodes share the machine: one thread each for Go code
			// (docs/benchmarks.md, the compose herd against the host).
			if got := env("GOMAXPROCS"); got != "1" {
				t.Errorf("GOMAXPROCS defaults to %q, want 1", got)
			}

			wantPorts := []string{
				fmt.Sprintf("127.0.0.1:%d->12200/tcp", config.ClassicClientPort+i),
				fmt.Sprintf("127.0.0.1:%d->9100/tcp", config.ClassicMetricsPort+i),
			}
			var got []string
			for _, pc := range svc.Ports {
				got = append(got, fmt.Sprintf("%s:%s->%d/%s", pc.HostIP, pc.Published, pc.Target, pc.Protocol))
				if pc.Target == containerPeerPort {
					t.Errorf("the peer port is published: %+v", pc)
				}
			}
			if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(wantPorts))) {
				t.Errorf("ports %q, want exactly %q", got, wantPorts)
			}

			hc := svc.HealthCheck
			if hc == nil || hc.Disable || !slices.Equal(hc.Test, types.HealthCheckTest{"CMD", "/herd", "health"}) {
				t.Errorf("healthcheck %+v, want the exec form [CMD /herd health] (the image has no shell)", hc)
			}
			if svc.Restart == "" || svc.Restart == types.RestartPolicyNo {
				t.Errorf("restart policy %q, want one that restarts", svc.Restart)
			}
			if len(svc.Profiles) != 0 {
				t.Errorf("profiles %q: a server must start with a plain up", svc.Profiles)
			}
		})
		if image == "" {
			image, build = svc.Image, svc.Build
		}
		if svc.Image == "" || svc.Image != image {
			t.Errorf("%s: image %q, want one image for all five (%q)", name, svc.Image, image)
		}
		if (svc.Build == nil) != (build == nil) || build != nil && (svc.Build.Context != build.Context || svc.Build.Target != build.Target || svc.Build.Dockerfile != build.Dockerfile) {
			t.Errorf("%s: build %+v, want the same build for all five (%+v)", name, svc.Build, build)
		}
	}

	// Prometheus and Grafana need images from a registry: only under the
	// monitoring profile, so that a plain up never pulls them.
	for _, name := range []string{"prometheus", "grafana"} {
		svc, ok := p.DisabledServices[name]
		if !ok {
			t.Errorf("%s is not a service disabled without a profile", name)
			continue
		}
		if !slices.Equal(svc.Profiles, []string{"monitoring"}) {
			t.Errorf("%s: profiles %q, want [monitoring]", name, svc.Profiles)
		}
	}
	mon, err := loadComposeEnv(nil, "monitoring")
	if err != nil {
		t.Fatalf("loading compose.yaml with the monitoring profile: %v", err)
	}
	root, _ := filepath.Abs(repoRoot)
	mounts := map[string]map[string]string{ // service: target: source under the repository
		"prometheus": {
			"/etc/prometheus/prometheus.yml": "docker/prometheus/prometheus.yml",
			"/etc/prometheus/alerts.yml":     "docker/prometheus/alerts.yml",
		},
		"grafana": {
			"/etc/grafana/provisioning":   "docker/grafana/provisioning",
			"/var/lib/grafana/dashboards": "docker/grafana/dashboards",
		},
	}
	for name, want := range mounts {
		svc, ok := mon.Services[name]
		if !ok {
			t.Errorf("%s is not a service under the monitoring profile", name)
			continue
		}
		got := map[string]string{}
		for _, v := range svc.Volumes {
			if v.Type != types.VolumeTypeBind || !v.ReadOnly {
				t.Errorf("%s: volume %s is not a read-only bind mount", name, v.String())
			}
			rel, err := filepath.Rel(root, v.Source)
			if err != nil {
				rel = v.Source
			}
			got[v.Target] = filepath.ToSlash(rel)
		}
		for target, src := range want {
			if got[target] != src {
				t.Errorf("%s: %s is mounted from %q, want %q", name, target, got[target], src)
			}
			if _, err := os.Stat(filepath.Join(root, src)); err != nil {
				t.Errorf("%s: the mounted %s: %v", name, src, err)
			}
		}
		for _, pc := range svc.Ports {
			if pc.HostIP != "127.0.0.1" {
				t.Errorf("%s: port %+v is not bound on 127.0.0.1", name, pc)
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(root, "docker/prometheus/prometheus.yml")); err == nil {
		for _, s := range want {
			if !strings.Contains(string(b), `"`+s+`:9100"`) {
				t.Errorf("docker/prometheus/prometheus.yml does not scrape %s:9100", s)
			}
		}
	}
}

// TestComposeBoundsContainerLogs: every service's container log rotates,
// so that a flood of requests, each logged, cannot fill the disk. It
// needs no Docker.
func TestComposeBoundsContainerLogs(t *testing.T) {
	p, err := loadComposeEnv(nil, "monitoring")
	if err != nil {
		t.Fatalf("loading compose.yaml: %v", err)
	}
	if len(p.Services) < len(topology.Classic)+2 {
		t.Fatalf("%d services with the monitoring profile, want the five servers, Prometheus and Grafana", len(p.Services))
	}
	for name, svc := range p.Services {
		lc := svc.Logging
		switch {
		case lc == nil:
			t.Errorf("%s: no logging section: the container log grows without bound", name)
		case lc.Driver == "local": // rotates by default: 20 MB in 5 files
		case lc.Driver != "json-file":
			t.Errorf("%s: log driver %q, want json-file or local", name, lc.Driver)
		default:
			size, err := logSize(lc.Options["max-size"])
			if err != nil || size <= 0 || size > 100<<20 {
				t.Errorf("%s: json-file max-size %q, want at most 100m", name, lc.Options["max-size"])
			}
			files, err := strconv.Atoi(lc.Options["max-file"])
			if err != nil || files < 1 || files > 10 {
				t.Errorf("%s: json-file max-file %q, want 1 to 10", name, lc.Options["max-file"])
			}
		}
	}
}

// logSize reads a json-file max-size: a number of bytes with an optional
// k, m or g, as the Docker engine reads it.
func logSize(s string) (int64, error) {
	mult := int64(1)
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		}
		if mult > 1 {
			s = s[:n-1]
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v > 1<<40 {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	return v * mult, nil
}

// samePeers reports whether two neighbour lists hold the same neighbours
// at the same addresses, in any order.
func samePeers(a, b config.Peers) bool {
	key := func(p config.Peers) []string {
		var s []string
		for _, x := range p {
			s = append(s, x.Name+"="+x.Addr)
		}
		return slices.Sorted(slices.Values(s))
	}
	return slices.Equal(key(a), key(b))
}
