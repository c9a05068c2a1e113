package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"

	"github.com/herdkit/herd/internal/testutil"
	"github.com/herdkit/herd/pkg/config"
	"github.com/herdkit/herd/pkg/protocol"
	"github.com/herdkit/herd/pkg/topology"
)

// composeLabel selects what compose creates for the e2e project.
const composeLabel = "com.docker.compose.project=" + composeProject

// TestComposeUp runs compose.yaml as a user would: builds herd:local with
// docker/build-image, brings the herd up with the compose tool, talks to
// it on the published ports, and takes it down, leaving nothing behind.
func TestComposeUp(t *testing.T) {
	requireDocker(t)
	tool := composeTool(t)
	ctx := context.Background()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		t.Fatalf("docker client: %v", err)
	}
	defer cli.Close()

	buildLocalImage(t, cli)

	// compose.yaml publishes fixed ports: a project left over from a
	// crashed run goes first, then anything else on them is an error.
	compose(t, tool, "down", "-v", "--remove-orphans")
	var busy []string
	for i := range topology.Classic {
		for _, port := range []int{config.ClassicClientPort + i, config.ClassicMetricsPort + i} {
			addr := fmt.Sprintf("127.0.0.1:%d", port)
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				busy = append(busy, addr)
				continue
			}
			ln.Close()
		}
	}
	if len(busy) > 0 {
		t.Fatalf("compose.yaml publishes %s, which something else holds: stop it (docker ps, or a `herd local`) and run again", strings.Join(busy, ", "))
	}

	t.Cleanup(func() {
		if out, err := compose(t, tool, "down", "-v", "--remove-orphans"); err != nil {
			t.Errorf("%s down: %v\n%s", strings.Join(tool, " "), err, out)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		f := client.Filters{}.Add("label", composeLabel)
		if cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f}); err != nil || len(cs.Items) > 0 {
			t.Errorf("after down: containers labelled %s: %d (%v)", composeLabel, len(cs.Items), err)
		}
		if ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f}); err != nil || len(ns.Items) > 0 {
			t.Errorf("after down: networks labelled %s: %d (%v)", composeLabel, len(ns.Items), err)
		}
		if vs, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: f}); err != nil || len(vs.Items) > 0 {
			t.Errorf("after down: volumes labelled %s: %d (%v)", composeLabel, len(vs.Items), err)
		}
	})
	// --no-build: the image was just built; compose must not try the
	// "source" target, which needs golang:1.26 from a registry.
	if out, err := compose(t, tool, "up", "-d", "--no-build"); err != nil {
		t.Fatalf("%s up: %v\n%s", strings.Join(tool, " "), err, out)
	}

	eventually(t, 90*time.Second, "the five compose services are running and healthy", func() (bool, string) {
		cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", composeLabel)})
		if err != nil {
			return false, err.Error()
		}
		var states []string
		healthy := 0
		for _, c := range cs.Items {
			in, err := cli.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
			if err != nil {
				return false, err.Error()
			}
			st := in.Container.State
			health := container.NoHealthcheck
			if st.Health != nil {
				health = st.Health.Status
			}
			states = append(states, fmt.Sprintf("%s: %s, %s", c.Labels["com.docker.compose.service"], st.Status, health))
			if st.Running && health == container.Healthy {
				healthy++
			}
		}
		return len(cs.Items) == len(topology.Classic) && healthy == len(topology.Classic), strings.Join(states, "; ")
	})
	for i, s := range topology.Classic {
		url := fmt.Sprintf("http://127.0.0.1:%d/readyz", config.ClassicMetricsPort+i)
		eventually(t, 30*time.Second, s.Name+" answers "+url, func() (bool, string) {
			code, err := httpGet(url)
			if err != nil {
				return false, err.Error()
			}
			return code == 200, fmt.Sprint(code)
		})
	}

	// IAMAT to Hill, WHATSAT from Campbell.
	hill := fmt.Sprintf("127.0.0.1:%d", config.ClassicClientPort)
	campbell := fmt.Sprintf("127.0.0.1:%d", config.ClassicClientPort+3)
	id, when := fmt.Sprintf("compose%d.kiwi.cs.ucla.edu", time.Now().UnixNano()), now()
	at := checkAT(t, "Hill", id, when, send(t, hill, "IAMAT "+id+" "+pos+" "+when))
	eventually(t, converge, "Campbell answers WHATSAT with Hill's AT line", func() (bool, string) {
		line := "WHATSAT " + id + " 10 1"
		reply := send(t, campbell, line)
		rs, err := testutil.ReadReplies(strings.NewReader(reply), line)
		return err == nil && rs[0].Kind == protocol.ReplyAT && string(rs[0].Line) == at, fmt.Sprintf("%q", reply)
	})

	for i, s := range topology.Classic {
		url := fmt.Sprintf("http://127.0.0.1:%d/metrics", config.ClassicMetricsPort+i)
		m := scrapeURL(t, url)
		if m.get("herd_build_info", nil) != 1 {
			t.Errorf("%s: herd_build_info is missing", url)
		}
		// docker/build-image stamps the commit, though go build's own VCS
		// stamping is off or finds no .git.
		if rev := gitRevision(); rev != "unknown" && m.get("herd_build_info", labels{"revision": rev}) != 1 {
			t.Errorf("%s: herd_build_info has no revision=%q", url, rev)
		}
		for _, nb := range s.Neighbours {
			if up := m.get("herd_peer_up", labels{"peer": nb}); up != 1 {
				t.Errorf("%s: herd_peer_up{peer=%q} = %v, want 1", url, nb, up)
			}
		}
		eventually(t, converge, s.Name+" holds the record", func() (bool, string) {
			n := scrapeURL(t, url).get("herd_store_records", nil)
			return n >= 1, fmt.Sprint(n)
		})
	}
}

// composeTool finds docker-compose, else the compose plugin of docker.
func composeTool(t *testing.T) []string {
	t.Helper()
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("CI is set and there is no compose tool (docker-compose, or docker compose)")
	}
	t.Skip("no compose tool (docker-compose, or docker compose): skipping; set CI to make this a failure")
	return nil
}

// compose runs the compose tool on compose.yaml in the repository root,
// as project herd-e2e, and returns its combined output.
func compose(t *testing.T, tool []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args = append(append(tool[1:len(tool):len(tool)], "-f", "compose.yaml", "-p", composeProject), args...)
	cmd := exec.CommandContext(ctx, tool[0], args...)
	cmd.Dir = repoRoot
	cmd.Env = composeEnv()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// composeEnv is this process's environment without the places settings,
// so that the herd uses its offline places data, as compose.yaml's
// defaults say: the tests never reach the internet.
func composeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "HERD_PLACES" || strings.HasPrefix(k, "HERD_GOOGLE_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// buildLocalImage builds herd:local with docker/build-image, the way the
// README says. The image it replaces, if any and if nothing uses it, is
// removed rather than left dangling.
func buildLocalImage(t *testing.T, cli *testcontainers.DockerClient) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var old string
	if in, err := cli.ImageInspect(ctx, "herd:local"); err == nil {
		old = in.ID
	}
	cmd := exec.CommandContext(ctx, "docker/build-image", "herd:local")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker/build-image herd:local: %v\n%s", err, out)
	}
	in, err := cli.ImageInspect(ctx, "herd:local")
	if err != nil {
		t.Fatalf("herd:local after docker/build-image: %v", err)
	}
	if old != "" && old != in.ID {
		if prev, err := cli.ImageInspect(ctx, old); err == nil && len(prev.RepoTags) == 0 {
			// Not forced: an image a container still uses stays.
			if _, err := cli.ImageRemove(ctx, old, client.ImageRemoveOptions{PruneChildren: true}); err != nil {
				t.Logf("the herd:local image replaced stays: %v", err)
			}
		}
	}
}
