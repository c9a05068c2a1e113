package e2e

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"
	mnet "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"
	tclog "github.com/testcontainers/testcontainers-go/log"
	tcnet "github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/topology"
)

// Ports inside every node's container, as compose.yaml and the image set
// them.
const (
	clientPort  = "12200/tcp"
	metricsPort = "9100/tcp"
)

// timing overrides the nodes' timing variables, and only those, so that
// failures are noticed and repaired in about a second rather than in the
// defaults' three: a peer link silent for 1s is dropped, an idle one pings
// every 200ms, a neighbour that is down is redialled at least every second,
// and /readyz gives up waiting for a neighbour after 2s (which matters
// only for a node whose neighbours never answer, such as the one with the
// wrong secret).
var timing = map[string]string{
	"HERD_PEER_TIMEOUT":     "1s",
	"HERD_PEER_HEARTBEAT":   "200ms",
	"HERD_PEER_BACKOFF_MAX": "1s",
	"HERD_READY_GRACE":      "2s",
}

// peerTimeout is HERD_PEER_TIMEOUT above.
const peerTimeout = time.Second

// converge bounds how long the herd may take to agree after a change:
// seconds, by the protocol ("within seconds"), with room for a loaded
// machine.
const converge = 15 * time.Second

// herd is the classic herd of compose.yaml, run in containers on a
// private network, with what the tests sent it.
type herd struct {
	net   *testcontainers.DockerNetwork
	cli   *testcontainers.DockerClient
	nodes map[string]*node // by server name: Hill, Jaquez, ...
	names []string         // in topology.Classic's order
	image string
	proj  *types.Project

	mu       sync.Mutex
	records  map[string]record // the newest record sent, by client id
	replaced map[string]*node  // originals of the nodes replaced, by name
}

// node is one server's container.
type node struct {
	name  string // the server's name, HERD_NAME
	alias string // its compose service name and network alias
	env   map[string]string
	c     *testcontainers.DockerContainer

	mu      sync.Mutex
	client  string // host:port of its client port on 127.0.0.1, "" when unpublished
	metrics string // host:port of its metrics port on 127.0.0.1
	live    bool   // running, on the network and not paused: its links should be up
}

// record is what a client said and the AT line its server answered.
type record struct {
	at   string
	time string // the client's time, digits.digits
}

// newHerd starts the five servers of compose.yaml and waits until every
// one is ready. Everything it creates is removed when t ends, whether it
// passes or not.
func newHerd(t *testing.T) *herd {
	t.Helper()
	img := herdImage(t)
	proj := loadCompose(t)
	ctx := context.Background()

	nw, err := tcnet.New(ctx)
	testcontainers.CleanupNetwork(t, nw) // registered first, so removed last
	if err != nil {
		t.Fatalf("creating the herd network: %v", err)
	}
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		t.Fatalf("docker client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	h := &herd{net: nw, cli: cli, nodes: map[string]*node{}, image: img, proj: proj, records: map[string]record{}, replaced: map[string]*node{}}

	for _, s := range topology.Classic {
		alias := strings.ToLower(s.Name)
		svc, ok := proj.Services[alias]
		if !ok {
			t.Fatalf("compose.yaml has no service %q", alias)
		}
		env := map[string]string{}
		for k, v := range svc.Environment {
			if v != nil {
				env[k] = *v
			}
		}
		if env["HERD_NAME"] != s.Name {
			t.Fatalf("service %s: HERD_NAME is %q, want %q", alias, env["HERD_NAME"], s.Name)
		}
		maps.Copy(env, timing)
		h.nodes[s.Name] = &node{name: s.Name, alias: alias, env: env}
		h.names = append(h.names, s.Name)
	}

	// Five containers at once: a herd is ready in a few seconds.
	var wg sync.WaitGroup
	errs := make([]error, len(h.names))
	for i, name := range h.names {
		n := h.nodes[name]
		wg.Go(func() { n.c, errs[i] = h.run(ctx, t, n, n.env) })
	}
	wg.Wait()
	for _, name := range h.names {
		h.cleanup(t, h.nodes[name].c)
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("starting the herd: %v", err)
	}
	for _, name := range h.names {
		h.refresh(t, name)
		h.setLive(name, true)
	}
	// Ready may mean only that the grace period is over: wait for the
	// links themselves, so that the first record floods.
	h.waitLinks(t)
	return h
}

func (h *herd) setLive(name string, live bool) {
	n := h.nodes[name]
	n.mu.Lock()
	n.live = live
	n.mu.Unlock()
}

func (h *herd) isLive(name string) bool {
	n := h.nodes[name]
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.live
}

// waitLinks waits until every link between two live nodes is up and
// reconciled at both ends (herd_peer_up 1).
func (h *herd) waitLinks(t testing.TB) {
	t.Helper()
	for _, s := range topology.Classic {
		if !h.isLive(s.Name) {
			continue
		}
		eventually(t, converge, s.Name+" has its links to its live neighbours up", func() (bool, string) {
			m := h.scrape(t, s.Name)
			var down []string
			for _, nb := range s.Neighbours {
				if h.isLive(nb) && m.get("herd_peer_up", labels{"peer": nb}) != 1 {
					down = append(down, nb)
				}
			}
			return len(down) == 0, "down: " + strings.Join(down, ", ")
		})
	}
}

// run creates and starts one node's container on the herd network, with
// its ports published on random ports of 127.0.0.1, and waits until its
// /readyz answers 200.
//
// Two things of the compose service are left out on purpose: its restart
// policy (a node the tests kill must stay down until they start it), and
// its named volume at /data (HERD_DATA_DIR): the journal lives in the
// container's own layer, which survives a stop, a kill and a start, and
// goes away with the container.
func (h *herd) run(ctx context.Context, t *testing.T, n *node, env map[string]string) (*testcontainers.DockerContainer, error) {
	svc := h.proj.Services[n.alias]
	var exposed []string
	bindings := mnet.PortMap{}
	for _, p := range svc.Ports {
		spec := fmt.Sprintf("%d/%s", p.Target, cmp.Or(p.Protocol, "tcp"))
		port, err := mnet.ParsePort(spec)
		if err != nil {
			return nil, err
		}
		exposed = append(exposed, spec)
		// Never 0.0.0.0: the tests talk to the nodes only from this
		// machine. Port 0 lets Docker pick a free port.
		bindings[port] = []mnet.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "0"}}
	}
	return testcontainers.Run(ctx, h.image,
		testcontainers.WithLogger(tclog.TestLogger(t)),
		tcnet.WithNetwork([]string{n.alias}, h.net),
		testcontainers.WithEnv(env),
		testcontainers.WithExposedPorts(exposed...),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.PortBindings = bindings
		}),
		testcontainers.WithLabels(map[string]string{"com.herdkit.e2e.node": n.name}),
		testcontainers.WithWaitStrategy(readyStrategy()),
	)
}

// readyStrategy waits for /readyz: the node listens and has reconciled
// with its neighbours, or its grace period is over. It dials 127.0.0.1,
// where the ports are published (TestMain points testcontainers' host
// there, and ForcedIPv4LocalHost keeps it from "localhost", which may be
// ::1).
func readyStrategy() wait.Strategy {
	return wait.ForHTTP("/readyz").WithPort(metricsPort).WithForcedIPv4LocalHost().
		WithPollInterval(50 * time.Millisecond).WithStartupTimeout(60 * time.Second)
}

// cleanup registers the removal of c, and before it (cleanups run last
// first) an unpause, and the tail of its log if the test failed.
func (h *herd) cleanup(t *testing.T, c *testcontainers.DockerContainer) {
	t.Helper()
	testcontainers.CleanupContainer(t, c)
	if c == nil {
		return
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if st, err := c.State(ctx); err == nil && st.Paused {
			if _, err := h.cli.ContainerUnpause(ctx, c.GetContainerID(), client.ContainerUnpauseOptions{}); err != nil {
				t.Errorf("unpausing %s: %v", c.GetContainerID(), err)
			}
		}
		if t.Failed() {
			t.Logf("log of container %s (%s), last lines:\n%s", c.GetContainerID()[:12], nodeLabel(ctx, c), logTail(ctx, c, 60))
		}
	})
}

func nodeLabel(ctx context.Context, c *testcontainers.DockerContainer) string {
	in, err := c.Inspect(ctx)
	if err != nil || in.Config == nil {
		return "?"
	}
	return in.Config.Labels["com.herdkit.e2e.node"]
}

// logTail returns the last n lines of c's log but those of the client
// component (every client line and reply, every client connection), which
// would drown the peer events.
func logTail(ctx context.Context, c *testcontainers.DockerContainer, n int) string {
	rc, err := c.Logs(ctx)
	if err != nil {
		return err.Error()
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	var lines []string
	for l := range strings.SplitSeq(strings.TrimRight(string(b), "\n"), "\n") {
		if !strings.Contains(l, `"component":"client"`) {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// node returns a server's node by name.
func (h *herd) node(t testing.TB, name string) *node {
	t.Helper()
	n, ok := h.nodes[name]
	if !ok {
		t.Fatalf("no server %q in the herd", name)
	}
	return n
}

// refresh reads a node's published ports again: they change on every
// start and on every reconnection.
func (h *herd) refresh(t testing.TB, name string) {
	t.Helper()
	n := h.node(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cp, err := n.c.MappedPort(ctx, clientPort)
	if err != nil {
		t.Fatalf("%s: client port: %v", name, err)
	}
	mp, err := n.c.MappedPort(ctx, metricsPort)
	if err != nil {
		t.Fatalf("%s: metrics port: %v", name, err)
	}
	n.mu.Lock()
	n.client, n.metrics = "127.0.0.1:"+cp.Port(), "127.0.0.1:"+mp.Port()
	n.mu.Unlock()
}

func (n *node) clientAddr(t testing.TB) string {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.client == "" {
		t.Fatalf("%s has no published client port (stopped or cut off?)", n.name)
	}
	return n.client
}

func (n *node) metricsAddr(t testing.TB) string {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.metrics == "" {
		t.Fatalf("%s has no published metrics port (stopped or cut off?)", n.name)
	}
	return n.metrics
}

func (n *node) unpublish() {
	n.mu.Lock()
	n.client, n.metrics = "", ""
	n.mu.Unlock()
}

// kill sends SIGKILL to a node: a crash, with no goodbye to its peers.
func (h *herd) kill(t testing.TB, name string) {
	t.Helper()
	n := h.node(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := h.cli.ContainerKill(ctx, n.c.GetContainerID(), client.ContainerKillOptions{Signal: "SIGKILL"}); err != nil {
		t.Fatalf("killing %s: %v", name, err)
	}
	h.setLive(name, false)
	n.unpublish()
	eventually(t, 30*time.Second, name+" has exited", func() (bool, string) {
		st, err := n.c.State(ctx)
		if err != nil {
			return false, err.Error()
		}
		return !st.Running, string(st.Status)
	})
}

// stop stops a node gracefully (SIGTERM, then SIGKILL after 10s).
func (h *herd) stop(t testing.TB, name string) {
	t.Helper()
	n := h.node(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	timeout := 10 * time.Second
	if err := n.c.Stop(ctx, &timeout); err != nil {
		t.Fatalf("stopping %s: %v", name, err)
	}
	h.setLive(name, false)
	n.unpublish()
}

// start starts a stopped or killed node again, waits until it is ready,
// and reads its new ports.
func (h *herd) start(t testing.TB, names ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	for i, name := range names {
		n := h.node(t, name)
		wg.Go(func() {
			if err := n.c.Start(ctx); err != nil {
				errs[i] = fmt.Errorf("starting %s: %w", name, err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		h.refresh(t, name)
		h.setLive(name, true)
	}
	h.waitLinks(t)
}

// pause freezes a node's processes: its sockets stay open and its kernel
// still accepts connections, but nothing answers.
func (h *herd) pause(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := h.cli.ContainerPause(ctx, h.node(t, name).c.GetContainerID(), client.ContainerPauseOptions{}); err != nil {
		t.Fatalf("pausing %s: %v", name, err)
	}
	h.setLive(name, false)
}

func (h *herd) unpause(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := h.cli.ContainerUnpause(ctx, h.node(t, name).c.GetContainerID(), client.ContainerUnpauseOptions{}); err != nil {
		t.Fatalf("unpausing %s: %v", name, err)
	}
	h.setLive(name, true)
	h.waitLinks(t)
}

// disconnect cuts a node off the herd network, its only network: its
// links go silent, and its published ports go away with the endpoint.
func (h *herd) disconnect(t testing.TB, name string) {
	t.Helper()
	n := h.node(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := h.cli.NetworkDisconnect(ctx, h.net.ID, client.NetworkDisconnectOptions{Container: n.c.GetContainerID()}); err != nil {
		t.Fatalf("disconnecting %s: %v", name, err)
	}
	h.setLive(name, false)
	n.unpublish()
}

// connect puts a node back on the herd network under its alias (which a
// reconnection does not keep by itself), then waits until its ports are
// published again and answer.
func (h *herd) connect(t testing.TB, name string) {
	t.Helper()
	n := h.node(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := h.cli.NetworkConnect(ctx, h.net.ID, client.NetworkConnectOptions{
		Container:      n.c.GetContainerID(),
		EndpointConfig: &mnet.EndpointSettings{Aliases: []string{n.alias}},
	}); err != nil {
		t.Fatalf("connecting %s: %v", name, err)
	}
	eventually(t, 30*time.Second, name+" publishes its ports and answers /readyz again", func() (bool, string) {
		cp, err1 := n.c.MappedPort(ctx, clientPort)
		mp, err2 := n.c.MappedPort(ctx, metricsPort)
		if err := errors.Join(err1, err2); err != nil {
			return false, err.Error()
		}
		status, err := httpGet("http://127.0.0.1:" + mp.Port() + "/readyz")
		if err != nil {
			return false, err.Error()
		}
		n.mu.Lock()
		n.client, n.metrics = "127.0.0.1:"+cp.Port(), "127.0.0.1:"+mp.Port()
		n.mu.Unlock()
		return status == http.StatusOK, "status " + strconv.Itoa(status)
	})
	h.setLive(name, true)
	h.waitLinks(t)
}

// execClient runs `herd client` inside a node's container, against its own
// client port: the way to talk to a node whose published ports are gone.
// It returns the output and the exit status (0 valid, 1 "? ...", 2 error).
func (h *herd) execClient(t testing.TB, name string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := append([]string{"/herd", "client", "127.0.0.1:12200"}, args...)
	code, r, err := h.node(t, name).c.Exec(ctx, cmd, tcexec.Multiplexed())
	if err != nil {
		t.Fatalf("%s: exec %q: %v", name, cmd, err)
	}
	out, _ := io.ReadAll(r)
	return string(out), code
}

// replace stops a node and starts another container in its place: the
// same alias on the same network and the same environment but for env.
// Until restore, the herd's helpers talk to the replacement under the
// node's name.
func (h *herd) replace(t *testing.T, name string, env map[string]string) {
	t.Helper()
	n := h.node(t, name)
	h.stop(t, name)
	e := maps.Clone(n.env)
	maps.Copy(e, env)
	r := &node{name: n.name, alias: n.alias, env: e}
	var err error
	r.c, err = h.run(context.Background(), t, r, e)
	h.cleanup(t, r.c)
	if err != nil {
		t.Fatalf("starting a replacement for %s: %v", name, err)
	}
	h.mu.Lock()
	h.replaced[name] = n
	h.mu.Unlock()
	h.nodes[name] = r // not live: its neighbours refuse it
	h.refresh(t, name)
}

// restore removes the replacement of a node and starts the original again.
func (h *herd) restore(t *testing.T, name string) {
	t.Helper()
	h.mu.Lock()
	orig, ok := h.replaced[name]
	delete(h.replaced, name)
	h.mu.Unlock()
	if !ok {
		t.Fatalf("%s was not replaced", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.nodes[name].c.Terminate(ctx); err != nil {
		t.Fatalf("removing the replacement for %s: %v", name, err)
	}
	h.nodes[name] = orig
	h.start(t, name)
}

// others returns the herd's servers but those named, in order.
func (h *herd) others(names ...string) []string {
	var o []string
	for _, n := range h.names {
		if !slices.Contains(names, n) {
			o = append(o, n)
		}
	}
	return o
}

// eventually waits until cond holds, and fails t with what it waited
// for and what cond last said if it does not within d.
func eventually(t testing.TB, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	testutil.Eventually(t, d, func() error {
		if ok, last := cond(); !ok {
			return fmt.Errorf("%s (last: %s)", what, last)
		}
		return nil
	})
}

func httpGet(url string) (int, error) {
	c := http.Client{Timeout: 5 * time.Second, Transport: noReuse}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}
