package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"

	"github.com/herdkit/herd/internal/testutil"
)

// repoRoot is the module root, relative to this package's directory (where
// go test runs the test binary).
const repoRoot = ".."

func TestMain(m *testing.M) {
	// The reaper's image cannot be pulled without a registry. This must run
	// before the first testcontainers call, which reads its configuration
	// once; only the exact string "true" disables it. Cleanup is ours:
	// CleanupContainer and CleanupNetwork in every test, the image below.
	os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	// The nodes publish their ports on 127.0.0.1 only, so that is where
	// testcontainers' wait strategies must knock. Left alone, it guesses:
	// "localhost" (which may resolve to ::1), or, when it finds
	// /.dockerenv (as on the machines these tests run on, which share the
	// engine's network namespace), the bridge gateway's address, where
	// nothing is published.
	os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	code := m.Run()
	if err := removeHerdImage(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: removing the test image: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// dockerErr is nil when a Docker engine answers, checked once per binary.
var dockerErr = sync.OnceValue(func() (err error) {
	defer func() {
		// testcontainers' client set-up can panic on a broken environment.
		if r := recover(); r != nil {
			err = fmt.Errorf("docker client: %v", r)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	_, err = cli.Ping(ctx, client.PingOptions{})
	return err
})

// requireDocker skips t under -short or when no Docker engine is
// reachable, or fails it when CI is set: in CI a missing engine is a
// broken runner, not a reason to pass.
func requireDocker(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: builds the herd image and runs containers; run without -short")
	}
	trackSources(t)
	err := dockerErr()
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("CI is set and no Docker engine is reachable: %v", err)
	}
	t.Skipf("no Docker engine is reachable (%v): skipping the end-to-end test; set CI to make this a failure", err)
}

// The herd image, built at most once per test binary under a tag unique
// to this run, and removed by TestMain.
var (
	imageOnce sync.Once
	imageTag  string
	imageErr  error
)

// herdImage returns the tag of the herd image, building it on first use.
func herdImage(t testing.TB) string {
	t.Helper()
	requireDocker(t)
	imageOnce.Do(func() { imageTag, imageErr = buildHerdImage(t) })
	if imageErr != nil {
		t.Fatalf("building the herd image: %v", imageErr)
	}
	return imageTag
}

// buildHerdImage compiles the herd binary on the host and builds the
// Dockerfile's "prebuilt" stage around it, pulling nothing, as
// docker/build-image does: the stage is FROM scratch, and only the lines
// from it on are given to Docker, since the classic builder (the only one
// here: no buildx) would build every stage above it, golang included. The
// revision is stamped through -ldflags, as docker/build-image does.
//
// It builds through testcontainers' provider rather than the docker CLI:
// it talks to the same engine as the containers (DOCKER_HOST,
// ~/.testcontainers.properties), needs no docker binary, and always uses
// the classic builder's API, so DOCKER_BUILDKIT in the environment cannot
// turn it into a BuildKit build that fails without buildx. KeepImage keeps
// Terminate from removing the image under the other nodes; TestMain
// removes it once at the end.
func buildHerdImage(t testing.TB) (string, error) {
	dir, err := os.MkdirTemp("", "herd-e2e-image-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)

	// The context holds only what the stage copies: the Dockerfile, the
	// binary, and the empty data directory that becomes the journal's
	// home (/data, owned by the server's user).
	revision := gitRevision()
	build := exec.Command("go", "build", "-trimpath",
		"-ldflags=-s -X github.com/herdkit/herd/pkg/metrics.Revision="+revision,
		"-o", filepath.Join(dir, "herd"), "./services/herd")
	build.Dir = repoRoot
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	dockerfile, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		return "", err
	}
	stage, err := prebuiltStage(dockerfile)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), stage, 0o644); err != nil {
		return "", err
	}
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o755); err != nil {
		return "", err
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p, err := testcontainers.NewDockerProvider()
	if err != nil {
		return "", err
	}
	defer p.Close()
	var buildLog testutil.Buffer
	tag, err := p.BuildImage(ctx, &testcontainers.ContainerRequest{FromDockerfile: testcontainers.FromDockerfile{
		Context:        dir,
		Dockerfile:     "Dockerfile",
		Repo:           "herd-e2e",
		Tag:            fmt.Sprintf("run-%d-%d", os.Getpid(), time.Now().UnixNano()),
		KeepImage:      true,
		BuildLogWriter: &buildLog,
		BuildArgs:      map[string]*string{"REVISION": &revision},
	}})
	if err != nil {
		return "", fmt.Errorf("%w\n%s", err, buildLog.String())
	}
	t.Logf("built %s", tag)
	return tag, nil
}

// prebuiltStage returns the Dockerfile's lines from its last stage,
// "FROM scratch AS prebuilt", on, as docker/build-image cuts them.
func prebuiltStage(dockerfile []byte) ([]byte, error) {
	const from = "\nFROM scratch AS prebuilt\n"
	i := strings.LastIndex(string(dockerfile), from)
	if i < 0 {
		return nil, fmt.Errorf("the Dockerfile has no line %q", strings.TrimSpace(from))
	}
	stage := dockerfile[i+1:]
	if strings.Contains(string(stage), "--from=") || strings.Count(string(stage), "\nFROM ") > 0 {
		return nil, fmt.Errorf("the Dockerfile's prebuilt stage is not the last, or copies from another stage")
	}
	return stage, nil
}

// gitRevision returns the commit checked out, or "unknown" without git.
func gitRevision() string {
	cmd := exec.Command("git", "rev-parse", "HEAD")
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// removeHerdImage removes the image built by this binary, if any.
func removeHerdImage() error {
	if imageTag == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	// Force: a container left behind by a crashed test must not keep the
	// image; PruneChildren removes the classic builder's parent layers.
	_, err = cli.ImageRemove(ctx, imageTag, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	return err
}
