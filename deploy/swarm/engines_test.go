//go:build linux

package swarm

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herdkit/herd/deploy/internal/netlab"
)

// engine is one Docker engine (Debian's dockerd) on a host of a netlab
// lab: its own network and mount namespaces, data root, exec root, /run,
// pid file, API socket and cgroup parent. Its data root survives stop and
// start, as a machine's disk survives a restart; everything else is made
// anew.
type engine struct {
	host   *netlab.Host
	dir    string // data/, exec/, run/, docker.sock, dockerd.log
	driver string // the storage driver
	node   string // its swarm node's id
	cmd    *exec.Cmd
	exited chan error
}

func newEngine(lab *netlab.Lab, n int, driver string) *engine {
	h := lab.Host(n)
	return &engine{host: h, dir: filepath.Join(lab.Dir, fmt.Sprintf("e%d", n)), driver: driver}
}

func (e *engine) socket() string { return filepath.Join(e.dir, "docker.sock") }

// cgroup is the parent cgroup of the engine's containers.
func (e *engine) cgroup() string { return e.host.Name }

// env is the environment that points the docker command at the engine.
func (e *engine) env() []string { return []string{"DOCKER_HOST=unix://" + e.socket()} }

// start brings the engine's host up and starts dockerd on it, with a
// configuration file of its own (the machine's /etc/docker/daemon.json is
// not read), and waits until its API answers.
func (e *engine) start(t testing.TB) {
	t.Helper()
	if err := e.host.Up(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"data", "exec", "run"} {
		if err := os.MkdirAll(filepath.Join(e.dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// The engine's own /run, as a machine's: its containerd puts its
	// shims' sockets in /run/containerd whatever its options.
	if err := e.host.Isolate(map[string]string{"/run": filepath.Join(e.dir, "run")}); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(e.dir, "daemon.json")
	if err := os.WriteFile(config, []byte(`{"log-driver": "json-file"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.OpenFile(filepath.Join(e.dir, "dockerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	e.cmd = e.host.Command("dockerd",
		"--config-file", config,
		"--data-root", filepath.Join(e.dir, "data"),
		"--exec-root", filepath.Join(e.dir, "exec"),
		"--pidfile", filepath.Join(e.dir, "docker.pid"),
		"--host", "unix://"+e.socket(),
		"--storage-driver", e.driver,
		"--cgroup-parent", "/"+e.cgroup(),
		// Host-mode ports without a docker-proxy process each.
		"--userland-proxy=false")
	e.cmd.Stdout, e.cmd.Stderr = logf, logf
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	e.exited = make(chan error, 1)
	go func(cmd *exec.Cmd, exited chan error) { exited <- cmd.Wait() }(e.cmd, e.exited)
	poll(t, e.host.Name+"'s dockerd answering", time.Minute, func() error {
		select {
		case err := <-e.exited:
			e.exited <- err
			t.Fatalf("dockerd on %s exited: %v\n%s", e.host.Name, err, e.logTail())
		default:
		}
		_, err := e.run(context.Background(), nil, "version", "--format", "{{.Server.Version}}")
		return err
	})
}

// stop shuts the engine's machine down: dockerd stops its containers
// (each with its grace period) and exits, then whatever is left in the
// engine's cgroup or the host's namespaces is killed, its mounts are
// undone, and the namespaces, exec root and /run go. The data root
// stays.
//
// Restarting dockerd alone is not the same: Docker 20.10 then finds the
// overlay network's VXLAN device of the last run in its namespace, and
// every task is rejected ("error creating vxlan interface: file exists").
func (e *engine) stop(t testing.TB) {
	t.Helper()
	if err := e.halt(); err != nil {
		t.Error(err)
	}
}

// halt is stop without a test, for the cleanup of a failed test.
func (e *engine) halt() error {
	var errs []error
	if e.cmd != nil {
		e.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-e.exited:
		case <-time.After(time.Minute):
			e.cmd.Process.Kill()
			<-e.exited
			errs = append(errs, fmt.Errorf("dockerd on %s did not stop within a minute of SIGTERM", e.host.Name))
		}
		e.cmd = nil
	}
	// The containers first, while their shims are there to reap them.
	errs = append(errs,
		netlab.RemoveCgroup(e.cgroup()),
		e.host.Down(),
		netlab.Unmount(filepath.Join(e.dir, "exec")),
		os.RemoveAll(filepath.Join(e.dir, "exec")),
		os.RemoveAll(filepath.Join(e.dir, "run")))
	return errors.Join(errs...)
}

// run runs the docker command against the engine.
func (e *engine) run(ctx context.Context, env []string, args ...string) (string, error) {
	return run(ctx, append(e.env(), env...), nil, args...)
}

// docker runs the docker command against the engine, and fails t on an
// error.
func (e *engine) docker(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := e.run(ctx, nil, args...)
	if err != nil {
		t.Fatalf("%s: %v", e.host.Name, err)
	}
	return out
}

// logTail is the end of dockerd's log.
func (e *engine) logTail() string {
	b, _ := os.ReadFile(filepath.Join(e.dir, "dockerd.log"))
	return tail(string(b), 30)
}

func tail(s string, lines int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// requireEngines skips t unless HERD_TEST_ENGINES=1, and then fails it
// if what it needs is missing: root, dockerd, ip, nsenter, and the local
// engine that builds the image.
func requireEngines(t *testing.T) {
	t.Helper()
	if os.Getenv("HERD_TEST_ENGINES") != "1" {
		t.Skip("HERD_TEST_ENGINES=1 runs this test: as root, with Debian's docker.io (dockerd) and iproute2, " +
			"it starts three Docker engines in network namespaces (docs/deploy.md: about 1.5 minutes, 0.7 GB of memory)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("HERD_TEST_ENGINES=1 needs root: the test makes network namespaces and runs dockerd")
	}
	for _, c := range []string{"dockerd", "ip", "nsenter", "docker"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Fatalf("HERD_TEST_ENGINES=1 needs %s: %v", c, err)
		}
	}
	requireEngine(t)
}

// engineLab starts n engines on a new lab, and removes them and the lab
// when t ends. The engines' addresses are on 10.213.0.0/24.
func engineLab(t *testing.T, id string, n int) (*netlab.Lab, []*engine) {
	t.Helper()
	lab, err := netlab.New(id, netip.MustParsePrefix("10.213.0.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	var engines []*engine
	t.Cleanup(func() {
		var errs []error
		for _, e := range engines {
			if t.Failed() {
				t.Logf("%s's dockerd log, last lines:\n%s", e.host.Name, e.logTail())
			}
			errs = append(errs, e.halt())
		}
		errs = append(errs, lab.Close())
		for _, e := range engines {
			errs = append(errs, netlab.RemoveCgroup(e.cgroup()))
		}
		if err := errors.Join(errs...); err != nil {
			t.Errorf("removing the engines: %v", err)
		}
	})
	driver := os.Getenv("HERD_TEST_ENGINE_STORAGE_DRIVER")
	if driver == "" {
		driver = "overlay2"
	}
	for i := range n {
		e := newEngine(lab, i, driver)
		engines = append(engines, e)
		e.start(t)
	}
	return lab, engines
}
