//go:build linux

package swarm

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herdkit/herd/deploy/internal/herdsrc"
	"github.com/herdkit/herd/deploy/internal/herdtest"
	"github.com/herdkit/herd/deploy/internal/peertls"
	"sigs.k8s.io/yaml"
)

// placement is the engine each server's service is pinned to (by its
// node label): no two neighbours share an engine, so every peer link
// crosses the overlay between engines, and stopping engine 2 (Hill and
// Campbell) leaves the others linked (Jaquez - Singleton - Smith).
var placement = map[string]int{"singleton": 0, "jaquez": 1, "smith": 1, "hill": 2, "campbell": 2}

// client reaches the servers at their engines' addresses.
var client = &herdtest.Client{}

// stopped is the engine the test stops under load.
const stopped = 2

// server is where the test reaches one server of the stack: its ports
// are published in host mode on its engine's address.
type server struct {
	name            string
	client, metrics string // host:port
}

// stackServers returns the servers at the stack's default ports on the
// engines placement puts them on.
func stackServers(engines []*engine) map[string]server {
	s := map[string]server{}
	for i, name := range servers {
		addr := engines[placement[name]].host.Addr.String()
		s[name] = server{name: name,
			client:  net.JoinHostPort(addr, strconv.Itoa(12200+i)),
			metrics: net.JoinHostPort(addr, strconv.Itoa(9200+i))}
	}
	return s
}

// neighbours reads each server's neighbours (HERD_PEERS) from the stack
// as docker stack config reads it, lower-cased, and checks that
// placement keeps every pair of them on two engines.
func neighbours(t *testing.T) map[string][]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := run(ctx, nil, nil, "stack", "config", "-c", "stack.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeConfig
	if err := yaml.Unmarshal([]byte(out), &c); err != nil {
		t.Fatal(err)
	}
	n := map[string][]string{}
	for _, name := range servers {
		for _, p := range strings.Split(c.Services[name].Environment["HERD_PEERS"], ",") {
			peer, _, _ := strings.Cut(p, "=")
			peer = strings.ToLower(peer)
			if placement[peer] == placement[name] {
				t.Fatalf("placement puts neighbours %s and %s on one engine", name, peer)
			}
			n[name] = append(n[name], peer)
		}
	}
	return n
}

// TestStackOnEngines deploys stack.yaml on a swarm of three Docker
// engines, each in a network namespace of its own on one bridge, and
// checks that the five servers spread over them form one herd; that with
// one engine stopped under load the others go on answering; and that
// when it returns its servers catch up, with no acknowledged IAMAT
// missing anywhere. Where the kernel cannot do IPsec (ESP), the overlay
// the stack asks for cannot carry traffic between engines: the test then
// shows that the links fail closed, and runs the herd with stack.tls.yaml
// on top (mutual TLS on the links, a plain overlay), checking that every
// peer port, reached over the overlay from another engine, speaks TLS 1.3
// and refuses a client without the herd's certificate. Either way, no
// client id crosses between engines in clear (a capture on the bridge).
// It leaves no engine, namespace, bridge, veth or swarm behind, failed or
// not (engineLab).
func TestStackOnEngines(t *testing.T) {
	requireEngines(t)
	links := neighbours(t)
	id := randomHex(t, 3)
	start := time.Now()
	lab, engines := engineLab(t, id, 3)
	t.Logf("three engines up in %v", since(start))
	image := loadImage(t, id, engines)
	formSwarm(t, engines)
	manager := engines[0]
	manager.docker(t, "secret", "create", "herd_peer_secret", writeFile(t, "secret", []byte(randomHex(t, 24))))
	srv := stackServers(engines)

	const stack = "herd"
	files := []string{"stack.yaml"}
	encrypted, why := espWorks(engines[0])
	var certs *peertls.Bundle
	if !encrypted {
		t.Logf("this kernel cannot do ESP with rfc4106(gcm(aes)), as the encrypted overlay needs (%s)", why)
		failClosed(t, engines, image, srv, links)
		certs = createTLSSecrets(t, manager)
		files = append(files, "stack.tls.yaml")
	}
	deployStack(t, manager, image, stack, files...)
	start = time.Now()
	waitHerd(t, srv, links, servers)
	t.Logf("five servers ready and linked %v after docker stack deploy -c %s", since(start), strings.Join(files, " -c "))
	checkSpread(t, engines, stack)
	if encrypted {
		checkESP(t, engines)
	} else {
		checkPeerTLS(t, engines, links, certs, stack)
	}
	capture, err := lab.Capture()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { capture.Stop() })
	ids := oneHerd(t, srv, "spread-"+id)
	notInClear(t, capture, ids, lab, engines)
	survive(t, engines, srv, links, "load-"+id)
}

func since(t time.Time) time.Duration { return time.Since(t).Round(100 * time.Millisecond) }

// writeFile writes data to a file called name in a directory of the
// test's, and returns its path.
func writeFile(t *testing.T, name string, data []byte) string {
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// loadImage builds the herd image from this tree on the local engine,
// loads it into every engine (docker save, docker load: there is no
// registry), and removes it from the local engine.
func loadImage(t *testing.T, id string, engines []*engine) string {
	t.Helper()
	start := time.Now()
	image := "herd-swarm-test:" + id
	herdsrc.BuildImage(t, image)
	defer docker(t, "rmi", "-f", image)
	archive := filepath.Join(t.TempDir(), "herd.tar")
	docker(t, "save", "-o", archive, image)
	for _, e := range engines {
		e.docker(t, "load", "-i", archive)
	}
	t.Logf("image %s built and loaded into the engines in %v", image, since(start))
	return image
}

// formSwarm makes engine 0 a swarm's first manager and the others
// managers too (three managers: the swarm keeps its quorum with one
// engine stopped), on the engines' own addresses, with overlay subnets
// from 10.214.0.0/16, and labels each node for the servers placement
// gives it.
func formSwarm(t *testing.T, engines []*engine) {
	t.Helper()
	first := engines[0]
	addr := first.host.Addr.String()
	first.docker(t, "swarm", "init", "--advertise-addr", addr, "--listen-addr", addr+":2377",
		"--default-addr-pool", "10.214.0.0/16")
	token := first.docker(t, "swarm", "join-token", "-q", "manager")
	for _, e := range engines[1:] {
		a := e.host.Addr.String()
		e.docker(t, "swarm", "join", "--token", token, "--advertise-addr", a, "--listen-addr", a+":2377", addr+":2377")
	}
	for i, e := range engines {
		e.node = e.docker(t, "info", "--format", "{{.Swarm.NodeID}}")
		args := []string{"node", "update"}
		for name, n := range placement {
			if n == i {
				args = append(args, "--label-add", "herd."+name+"=true")
			}
		}
		first.docker(t, append(args, e.node)...)
	}
}

// espWorks reports whether the kernel can make the IPsec state Docker's
// encrypted overlay makes (ESP, AES-GCM), by making one in e's namespace
// and deleting it; if not, why says what ip said.
func espWorks(e *engine) (ok bool, why string) {
	a, b := e.host.Addr.String(), "127.0.0.2"
	add := exec.Command("ip", "-n", e.host.Name, "xfrm", "state", "add", "src", a, "dst", b,
		"proto", "esp", "spi", "0x4242", "mode", "transport",
		"aead", "rfc4106(gcm(aes))", "0x"+strings.Repeat("42", 20), "64")
	if out, err := add.CombinedOutput(); err != nil {
		return false, fmt.Sprintf("ip xfrm state add ... proto esp ... aead rfc4106(gcm(aes)): %v: %s", err, strings.TrimSpace(string(out)))
	}
	exec.Command("ip", "-n", e.host.Name, "xfrm", "state", "delete", "src", a, "dst", b, "proto", "esp", "spi", "0x4242").Run()
	return true, ""
}

// deployStack deploys files (stack.yaml, and files on top of it) as
// stack with image, from the manager m.
func deployStack(t *testing.T, m *engine, image, stack string, files ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{"stack", "deploy", "--resolve-image", "never"}
	for _, f := range files {
		args = append(args, "-c", f)
	}
	if _, err := m.run(ctx, []string{"HERD_IMAGE=" + image}, append(args, stack)...); err != nil {
		t.Fatal(err)
	}
}

// waitHerd waits until every server in names is ready and linked to all
// of its neighbours.
func waitHerd(t *testing.T, srv map[string]server, links map[string][]string, names []string) {
	t.Helper()
	for _, name := range names {
		poll(t, name+" ready and linked", 3*time.Minute, func() error {
			if err := client.Ready(srv[name].metrics); err != nil {
				return err
			}
			up, err := client.PeersUp(srv[name].metrics)
			if err != nil {
				return err
			}
			for _, n := range links[name] {
				if !up[title(n)] {
					return fmt.Errorf("no link to %s (herd_peer_up %v)", n, up)
				}
			}
			return nil
		})
	}
}

// checkSpread checks that each engine runs the containers of exactly the
// services placement gives it.
func checkSpread(t *testing.T, engines []*engine, stack string) {
	t.Helper()
	for i, e := range engines {
		var got, want []string
		for _, l := range strings.Fields(e.docker(t, "ps", "--format", `{{.Label "com.docker.swarm.service.name"}}`)) {
			got = append(got, strings.TrimPrefix(l, stack+"_"))
		}
		for name, n := range placement {
			if n == i {
				want = append(want, name)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s runs %v, want %v", e.host.Name, got, want)
		}
	}
}

// checkESP checks that every engine has IPsec states, as the encrypted
// overlay between engines makes.
func checkESP(t *testing.T, engines []*engine) {
	t.Helper()
	for _, e := range engines {
		out, err := exec.Command("ip", "-n", e.host.Name, "xfrm", "state").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "proto esp") {
			t.Errorf("%s has no ESP state: %v %s", e.host.Name, err, out)
		}
	}
}

// oneHerd tells each server about a client of its own, and checks that
// every other server answers WHATSAT about it with the AT line. It
// returns the clients' ids.
func oneHerd(t *testing.T, srv map[string]server, prefix string) []string {
	t.Helper()
	var ids []string
	for _, from := range servers {
		id := prefix + "-" + from
		ids = append(ids, id)
		at, err := client.IAMAT(srv[from].client, id)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for _, to := range servers {
			if to != from {
				poll(t, fmt.Sprintf("%s's record on %s", from, to), 30*time.Second, func() error {
					return missing(srv[to], map[string]string{id: at})
				})
			}
		}
		t.Logf("an IAMAT at %s read at the four others within %v", title(from), since(start))
	}
	return ids
}

// missing returns an error naming the records of want that s does not
// answer WHATSAT with.
func missing(s server, want map[string]string) error {
	ids, err := client.Missing(s.client, want)
	if err != nil {
		return err
	}
	if len(ids) > 0 {
		slices.Sort(ids)
		return fmt.Errorf("%s lacks %d of %d records, %s among them", s.name, len(ids), len(want), ids[0])
	}
	return nil
}
