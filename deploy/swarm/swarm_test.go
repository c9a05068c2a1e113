package swarm

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/herdkit/herd/deploy/internal/herdsrc"
)

// servers are the stack's services, in the classic order.
var servers = []string{"hill", "jaquez", "smith", "campbell", "singleton"}

// title is a service's HERD_NAME.
func title(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

// run runs docker with args and env added to the environment, and returns
// its standard output; the error holds standard error.
func run(ctx context.Context, env []string, stdin io.Reader, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// docker runs docker and fails t on an error.
func docker(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := run(ctx, nil, nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// skipOrFail skips t, or fails it when CI is set: in CI a missing engine
// is a broken runner, not a reason to pass.
func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("CI is set: "+format, args...)
	}
	t.Skipf(format, args...)
}

// requireCLI skips t without a docker command.
func requireCLI(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		skipOrFail(t, "no docker command: %v", err)
	}
}

// requireEngine skips t without a Docker engine that answers.
func requireEngine(t testing.TB) {
	t.Helper()
	requireCLI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := run(ctx, nil, nil, "version", "--format", "{{.Server.Version}}"); err != nil {
		skipOrFail(t, "no Docker engine: %v", err)
	}
}

// stackEnv is the environment docker stack substitutes into stack.yaml:
// the image, the secret's name, and a client and metrics port per server.
type stackEnv struct {
	image, secret  string
	client, metric map[string]int
}

func (e stackEnv) vars() []string {
	vars := []string{"HERD_IMAGE=" + e.image, "HERD_SECRET_NAME=" + e.secret}
	for _, s := range servers {
		vars = append(vars,
			fmt.Sprintf("HERD_%s_PORT=%d", strings.ToUpper(s), e.client[s]),
			fmt.Sprintf("HERD_%s_METRICS_PORT=%d", strings.ToUpper(s), e.metric[s]))
	}
	return vars
}

// freePorts returns n ports free on this machine now. Host-mode ports are
// fixed in the stack, so they are chosen here, never the defaults that
// compose.yaml and its tests use.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

func newStackEnv(t testing.TB, image, secret string) stackEnv {
	ports := freePorts(t, 2*len(servers))
	e := stackEnv{image: image, secret: secret, client: map[string]int{}, metric: map[string]int{}}
	for i, s := range servers {
		e.client[s], e.metric[s] = ports[2*i], ports[2*i+1]
	}
	return e
}

// composeConfig is the part of `docker stack config`'s output checked.
type composeConfig struct {
	Services map[string]struct {
		Image       string            `json:"image"`
		Environment map[string]string `json:"environment"`
		Networks    map[string]any    `json:"networks"`
		Ports       []struct {
			Mode      string `json:"mode"`
			Target    int    `json:"target"`
			Published int    `json:"published"`
		} `json:"ports"`
		Secrets []struct {
			Source string `json:"source"`
			Target string `json:"target"`
			UID    string `json:"uid"`
			Mode   int    `json:"mode"`
		} `json:"secrets"`
		Volumes []struct {
			Type   string `json:"type"`
			Source string `json:"source"`
			Target string `json:"target"`
		} `json:"volumes"`
		Healthcheck struct {
			Test []string `json:"test"`
		} `json:"healthcheck"`
		StopGracePeriod string `json:"stop_grace_period"`
		Deploy          struct {
			EndpointMode  string `json:"endpoint_mode"`
			Replicas      int    `json:"replicas"`
			RestartPolicy struct {
				Condition string `json:"condition"`
			} `json:"restart_policy"`
			Placement struct {
				Constraints []string `json:"constraints"`
			} `json:"placement"`
		} `json:"deploy"`
	} `json:"services"`
	Networks map[string]struct {
		Driver     string            `json:"driver"`
		DriverOpts map[string]string `json:"driver_opts"`
	} `json:"networks"`
	Secrets map[string]struct {
		Name     string `json:"name"`
		External bool   `json:"external"`
	} `json:"secrets"`
}

// TestStackConfig checks that docker stack accepts stack.yaml and reads
// from it what the herd relies on: an encrypted overlay, DNS round robin
// and host-mode ports (no IPVS), the secret as a file, a volume per
// server pinned to its node, a grace longer than the server's shutdown,
// and links named on both their ends.
func TestStackConfig(t *testing.T) {
	requireCLI(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// As the file's comment says to deploy it, with no variables: the
	// defaults are those of compose.yaml.
	out, err := run(ctx, nil, nil, "stack", "config", "-c", "stack.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"image: herd:local", "name: herd_peer_secret", "published: 12200", "published: 9204"} {
		if !strings.Contains(out, want) {
			t.Errorf("with no variables, the stack lacks %q", want)
		}
	}

	env := newStackEnv(t, "herd:config-test", "herd_config_test")
	out, err = run(ctx, env.vars(), nil, "stack", "config", "-c", "stack.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeConfig
	if err := yaml.Unmarshal([]byte(out), &c); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if n := c.Networks["herd"]; n.Driver != "overlay" || n.DriverOpts["encrypted"] != "true" {
		t.Errorf("network herd: %+v, want an encrypted overlay", n)
	}
	if s := c.Secrets["peer_secret"]; !s.External || s.Name != env.secret {
		t.Errorf("secret peer_secret: %+v, want the external %s", s, env.secret)
	}
	if len(c.Services) != len(servers) {
		t.Errorf("services %d, want %d", len(c.Services), len(servers))
	}
	links := map[[2]string]bool{}
	for _, name := range servers {
		s, ok := c.Services[name]
		if !ok {
			t.Errorf("no service %s", name)
			continue
		}
		if s.Image != env.image || s.Environment["HERD_NAME"] != title(name) {
			t.Errorf("%s: image %s, HERD_NAME %s", name, s.Image, s.Environment["HERD_NAME"])
		}
		if s.Deploy.EndpointMode != "dnsrr" || s.Deploy.Replicas != 1 || s.Deploy.RestartPolicy.Condition != "any" {
			t.Errorf("%s: deploy %+v, want dnsrr, one replica, restart on any exit", name, s.Deploy)
		}
		if want := "node.labels.herd." + name + " == true"; len(s.Deploy.Placement.Constraints) != 1 || s.Deploy.Placement.Constraints[0] != want {
			t.Errorf("%s: constraints %v, want [%s]", name, s.Deploy.Placement.Constraints, want)
		}
		published := map[int]int{}
		for _, p := range s.Ports {
			if p.Mode != "host" {
				t.Errorf("%s: port %d is published in %s mode, not host", name, p.Target, p.Mode)
			}
			published[p.Target] = p.Published
		}
		if published[12200] != env.client[name] || published[9100] != env.metric[name] || len(published) != 2 {
			t.Errorf("%s: ports %+v, want 12200 on %d and 9100 on %d", name, s.Ports, env.client[name], env.metric[name])
		}
		if len(s.Secrets) != 1 || s.Secrets[0].Source != "peer_secret" ||
			s.Environment["HERD_PEER_SECRET_FILE"] != "/run/secrets/"+s.Secrets[0].Target || s.Secrets[0].UID != "65534" {
			t.Errorf("%s: secrets %+v, HERD_PEER_SECRET_FILE=%s", name, s.Secrets, s.Environment["HERD_PEER_SECRET_FILE"])
		}
		if _, ok := s.Environment["HERD_PEER_SECRET"]; ok {
			t.Errorf("%s: HERD_PEER_SECRET is in the environment", name)
		}
		if len(s.Volumes) != 1 || s.Volumes[0].Source != name+"-data" || s.Volumes[0].Target != s.Environment["HERD_DATA_DIR"] {
			t.Errorf("%s: volumes %+v, HERD_DATA_DIR=%s", name, s.Volumes, s.Environment["HERD_DATA_DIR"])
		}
		if _, ok := s.Networks["herd"]; !ok || len(s.Networks) != 1 {
			t.Errorf("%s: networks %v, want only herd", name, s.Networks)
		}
		if strings.Join(s.Healthcheck.Test, " ") != "CMD /herd health" {
			t.Errorf("%s: healthcheck %v, want the exec form (the image has no shell)", name, s.Healthcheck.Test)
		}
		grace, err1 := time.ParseDuration(s.StopGracePeriod)
		shutdown, err2 := time.ParseDuration(s.Environment["HERD_SHUTDOWN_TIMEOUT"])
		if err1 != nil || err2 != nil || grace <= shutdown {
			t.Errorf("%s: stop_grace_period %q, HERD_SHUTDOWN_TIMEOUT %q: the grace must be longer", name, s.StopGracePeriod, s.Environment["HERD_SHUTDOWN_TIMEOUT"])
		}
		for _, p := range strings.Split(s.Environment["HERD_PEERS"], ",") {
			peer, addr, _ := strings.Cut(p, "=")
			if want := strings.ToLower(peer) + ":12300"; addr != want {
				t.Errorf("%s: neighbour %s at %s, want %s (its service name)", name, peer, addr, want)
			}
			links[[2]string{title(name), peer}] = true
		}
	}
	for l := range links {
		if !links[[2]string{l[1], l[0]}] {
			t.Errorf("%s lists %s, which does not list it", l[0], l[1])
		}
	}
}

// tlsSecrets are the secrets stack.tls.yaml adds to every service: its
// source, the variable that names the file the server reads it from, and
// its mode (only the key is not for all to read).
var tlsSecrets = []struct {
	source, env string
	mode        int
}{
	{"peer_tls_cert", "HERD_PEER_TLS_CERT", 0o444},
	{"peer_tls_key", "HERD_PEER_TLS_KEY", 0o400},
	{"peer_tls_ca", "HERD_PEER_TLS_CA", 0o444},
}

// TestStackTLSConfig checks that docker stack reads stack.yaml with
// stack.tls.yaml on top as that file says: every server reads its
// certificate, key (the server's user's only) and CA from Swarm secrets
// of the names given; the overlay is no longer encrypted; and the rest is
// stack.yaml's, unchanged.
func TestStackTLSConfig(t *testing.T) {
	requireCLI(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := newStackEnv(t, "herd:config-test", "herd_config_test")
	names := []string{"HERD_TLS_CERT_NAME=tc", "HERD_TLS_KEY_NAME=tk", "HERD_TLS_CA_NAME=tca"}
	plain, err := run(ctx, env.vars(), nil, "stack", "config", "-c", "stack.yaml")
	if err != nil {
		t.Fatal(err)
	}
	withTLS, err := run(ctx, append(env.vars(), names...), nil, "stack", "config", "-c", "stack.yaml", "-c", "stack.tls.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeConfig
	if err := yaml.Unmarshal([]byte(withTLS), &c); err != nil {
		t.Fatalf("%v\n%s", err, withTLS)
	}
	if n := c.Networks["herd"]; n.Driver != "overlay" || len(n.DriverOpts) != 0 {
		t.Errorf("network herd: %+v, want a plain overlay (TLS protects the links)", n)
	}
	for source, name := range map[string]string{"peer_tls_cert": "tc", "peer_tls_key": "tk", "peer_tls_ca": "tca"} {
		if s := c.Secrets[source]; !s.External || s.Name != name {
			t.Errorf("secret %s: %+v, want the external %s", source, s, name)
		}
	}
	for _, name := range servers {
		s := c.Services[name]
		targets := map[string]string{}
		for _, sec := range s.Secrets {
			targets[sec.Source] = sec.Target
			for _, want := range tlsSecrets {
				if sec.Source == want.source && (sec.Mode != want.mode || want.mode == 0o400 && sec.UID != "65534") {
					t.Errorf("%s: secret %s mode %o uid %q, want mode %o (the key the server's user's, 65534)", name, sec.Source, sec.Mode, sec.UID, want.mode)
				}
			}
		}
		for _, want := range tlsSecrets {
			if targets[want.source] == "" || s.Environment[want.env] != "/run/secrets/"+targets[want.source] {
				t.Errorf("%s: %s=%q, secret %s at %q", name, want.env, s.Environment[want.env], want.source, targets[want.source])
			}
		}
		if targets["peer_secret"] == "" {
			t.Errorf("%s: the peer secret is gone (secrets %v)", name, targets)
		}
	}
	if got, want := withoutTLS(t, withTLS), withoutTLS(t, plain); !reflect.DeepEqual(got, want) {
		t.Errorf("with stack.tls.yaml, the stack differs in more than TLS:\n%s\nwant\n%s", got, want)
	}
}

// withoutTLS is the output of docker stack config with what
// stack.tls.yaml adds or changes taken out: the secrets and variables of
// tlsSecrets, the network's driver options, the extension fields. Ports
// are sorted by their target: merging two files orders them otherwise.
func withoutTLS(t *testing.T, config string) string {
	t.Helper()
	var c map[string]any
	if err := yaml.Unmarshal([]byte(config), &c); err != nil {
		t.Fatal(err)
	}
	secrets := c["secrets"].(map[string]any)
	for _, s := range tlsSecrets {
		delete(secrets, s.source)
	}
	for _, svc := range c["services"].(map[string]any) {
		svc := svc.(map[string]any)
		env := svc["environment"].(map[string]any)
		var kept []any
		for _, sec := range svc["secrets"].([]any) {
			if !strings.HasPrefix(sec.(map[string]any)["source"].(string), "peer_tls_") {
				kept = append(kept, sec)
			}
		}
		svc["secrets"] = kept
		ports := svc["ports"].([]any)
		slices.SortFunc(ports, func(a, b any) int {
			return cmp.Compare(a.(map[string]any)["target"].(float64), b.(map[string]any)["target"].(float64))
		})
		for _, s := range tlsSecrets {
			delete(env, s.env)
		}
	}
	delete(c["networks"].(map[string]any)["herd"].(map[string]any), "driver_opts")
	for k := range c {
		if strings.HasPrefix(k, "x-") {
			delete(c, k)
		}
	}
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// poll calls cond until it returns nil or the deadline passes, and fails
// t with cond's last error then.
func poll(t testing.TB, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// send sends one line to a server's client port on 127.0.0.1, half-closes,
// and returns what the server writes before it closes its side.
func send(port int, line string) (string, error) {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	c.(*net.TCPConn).CloseWrite()
	b, err := io.ReadAll(c)
	return string(b), err
}

// ready reports whether the server whose metrics are on port is ready.
func ready(port int) error {
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/readyz: %s", resp.Status)
	}
	return nil
}

// pos is UCLA, which the offline places data knows.
const pos = "+34.068930-118.445127"

// iamat tells the server on port that client id is at pos now, and returns
// its AT line.
func iamat(t testing.TB, port int, server, id string) string {
	t.Helper()
	now := time.Now()
	reply, err := send(port, fmt.Sprintf("IAMAT %s %s %d.%09d", id, pos, now.Unix(), now.Nanosecond()))
	if err != nil {
		t.Fatalf("IAMAT to %s: %v", server, err)
	}
	at := strings.TrimSuffix(reply, "\n")
	if !strings.HasPrefix(at, "AT "+title(server)+" ") || !strings.Contains(at, " "+id+" "+pos+" ") {
		t.Fatalf("IAMAT to %s: reply %q", server, reply)
	}
	return at
}

// hasRecord reports whether the server on port answers a WHATSAT about id
// with the AT line at.
func hasRecord(port int, id, at string) error {
	reply, err := send(port, "WHATSAT "+id+" 10 1")
	if err != nil {
		return err
	}
	first, _, _ := strings.Cut(reply, "\n")
	if first != at {
		return fmt.Errorf("WHATSAT %s: %q, want %q", id, first, at)
	}
	return nil
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// swarmFor makes the local engine a swarm manager for t: it initialises a
// single-node swarm when the engine is in none, and leaves it when t ends.
// A swarm the engine was already in is used as it is, and kept.
func swarmFor(t *testing.T) (nodeID string) {
	t.Helper()
	state := docker(t, "info", "--format", "{{.Swarm.LocalNodeState}}")
	switch state {
	case "inactive":
		// Swarm creates the bridge docker_gwbridge for host-mode ports
		// and keeps it after leaving; it goes too unless it was there.
		hadBridge := docker(t, "network", "ls", "-q", "--filter", "name=^docker_gwbridge$") != ""
		// The swarm's own ports (2377, and 7946 for gossip) on the
		// loopback address only: nothing outside this machine joins it.
		docker(t, "swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", "127.0.0.1:2377")
		t.Cleanup(func() {
			docker(t, "swarm", "leave", "--force")
			if state := docker(t, "info", "--format", "{{.Swarm.LocalNodeState}}"); state != "inactive" {
				t.Errorf("after leaving the swarm it initialised, the engine's swarm state is %q", state)
			}
			if !hadBridge && docker(t, "network", "ls", "-q", "--filter", "name=^docker_gwbridge$") != "" {
				docker(t, "network", "rm", "docker_gwbridge")
			}
		})
	case "active":
		if docker(t, "info", "--format", "{{.Swarm.ControlAvailable}}") != "true" {
			t.Skip("the engine is in a swarm, but not a manager")
		}
	default:
		t.Fatalf("the engine's swarm state is %q", state)
	}
	return docker(t, "info", "--format", "{{.Swarm.NodeID}}")
}

// TestSwarmEndToEnd deploys stack.yaml on a swarm of the local engine,
// with the image built from this tree, and checks that a record told to
// one server is read on another two links away, and that when a server's
// container is killed, Swarm starts a new one, which has the record it
// had and the one told meanwhile. It removes everything it made.
func TestSwarmEndToEnd(t *testing.T) {
	requireEngine(t)
	if testing.Short() {
		t.Skip("-short: the swarm end-to-end test builds an image and runs five containers")
	}
	id := randomHex(t, 4)
	stack := "herdswarm" + id
	nodeID := swarmFor(t)

	image := "herd-swarm-test:" + id
	herdsrc.BuildImage(t, image)
	t.Cleanup(func() { docker(t, "rmi", "-f", image) })

	secret := "herd_swarm_test_" + id
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := run(ctx, nil, strings.NewReader(randomHex(t, 24)), "secret", "create", secret, "-"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { docker(t, "secret", "rm", secret) })

	// Pin every server to this node, and undo the labels it did not have.
	had := docker(t, "node", "inspect", "--format", "{{json .Spec.Labels}}", nodeID)
	var added []string
	for _, s := range servers {
		label := "herd." + s
		if !strings.Contains(had, `"`+label+`":"true"`) {
			docker(t, "node", "update", "--label-add", label+"=true", nodeID)
			added = append(added, label)
		}
	}
	t.Cleanup(func() {
		for _, label := range added {
			docker(t, "node", "update", "--label-rm", label, nodeID)
		}
	})

	env := newStackEnv(t, image, secret)
	if _, err := run(ctx, env.vars(), nil, "stack", "deploy", "--resolve-image", "never", "-c", "stack.yaml", stack); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeStack(t, stack) })
	start := time.Now()
	for _, s := range servers {
		poll(t, s+" ready", 3*time.Minute, func() error { return ready(env.metric[s]) })
	}
	t.Logf("five servers ready %v after docker stack deploy", time.Since(start).Round(time.Millisecond))

	// Hill and Campbell are two links apart: Hill - Smith - Campbell.
	first := iamat(t, env.client["hill"], "hill", "swarm-first-"+id)
	start = time.Now()
	poll(t, "the record on Campbell", 30*time.Second, func() error { return hasRecord(env.client["campbell"], "swarm-first-"+id, first) })
	t.Logf("Hill's record read on Campbell after %v", time.Since(start).Round(time.Millisecond))

	// Kill Smith's container; Swarm starts another task.
	service := stack + "_smith"
	killed := docker(t, "ps", "-q", "--no-trunc", "--filter", "label=com.docker.swarm.service.name="+service)
	if killed == "" || strings.Contains(killed, "\n") {
		t.Fatalf("containers of %s: %q, want one", service, killed)
	}
	docker(t, "kill", killed)
	start = time.Now()
	second := iamat(t, env.client["hill"], "hill", "swarm-second-"+id)
	var restarted string
	poll(t, "a new task of "+service, 2*time.Minute, func() error {
		out, err := run(context.Background(), nil, nil, "ps", "-q", "--no-trunc", "--filter", "label=com.docker.swarm.service.name="+service)
		if err != nil {
			return err
		}
		if out == "" || out == killed {
			return fmt.Errorf("no new container yet (%q)", out)
		}
		restarted = out
		return ready(env.metric["smith"])
	})
	t.Logf("Swarm replaced Smith's killed container %.12s with %.12s, ready after %v", killed, restarted, time.Since(start).Round(time.Millisecond))
	poll(t, "Smith's records after the restart", 30*time.Second, func() error {
		if err := hasRecord(env.client["smith"], "swarm-first-"+id, first); err != nil {
			return err
		}
		return hasRecord(env.client["smith"], "swarm-second-"+id, second)
	})
	tasks := docker(t, "service", "ps", "--format", "{{.DesiredState}} {{.CurrentState}}", service)
	if strings.Count(tasks, "\n")+1 < 2 {
		t.Errorf("tasks of %s:\n%s\nwant the killed one and its replacement", service, tasks)
	}
}

// removeStack removes the stack and waits until its containers and
// network are gone, then removes its volumes.
//
// `docker stack rm` can fail to remove the network while a task is still
// stopping ("network ... is in use by task"): it is run again until the
// network is gone too.
func removeStack(t *testing.T, stack string) {
	label := "label=com.docker.stack.namespace=" + stack
	poll(t, "the stack's containers and network gone", 2*time.Minute, func() error {
		ctx := context.Background()
		if out, err := run(ctx, nil, nil, "stack", "rm", stack); err != nil && !strings.Contains(out+err.Error(), "Nothing found in stack") {
			t.Logf("docker stack rm %s: %v (again)", stack, err)
		}
		c, err := run(ctx, nil, nil, "ps", "-aq", "--filter", label)
		if err != nil {
			return err
		}
		n, err := run(ctx, nil, nil, "network", "ls", "-q", "--filter", label)
		if err != nil {
			return err
		}
		if c != "" || n != "" {
			return fmt.Errorf("containers %q, networks %q remain", c, n)
		}
		return nil
	})
	if vols := docker(t, "volume", "ls", "-q", "--filter", label); vols != "" {
		docker(t, append([]string{"volume", "rm"}, strings.Fields(vols)...)...)
	}
}
