//go:build linux

package swarm

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herdkit/herd/deploy/internal/herdtest"
)

// failClosed deploys stack.yaml as it is on engines whose kernel cannot
// encrypt the overlay, and checks that no peer link comes up over it:
// every server resolves each neighbour's name to its overlay address, its
// connection gets no answer there (Docker drops the VXLAN packets of an
// encrypted network that IPsec did not carry), and no link is up. Then it
// removes the stack.
func failClosed(t *testing.T, engines []*engine, image string, srv map[string]server, links map[string][]string) {
	t.Helper()
	const stack = "herdenc"
	deployStack(t, engines[0], image, stack, "stack.yaml")
	start := time.Now()
	for _, name := range servers {
		e := engines[placement[name]]
		poll(t, name+"'s connections over the encrypted overlay failing", 2*time.Minute, func() error {
			logs, err := serviceLogs(e, stack+"_"+name)
			if err != nil {
				return err
			}
			for _, n := range links[name] {
				if !dialTimedOut(logs, title(n)) {
					return fmt.Errorf("no connection to %s over the overlay has timed out yet", n)
				}
			}
			up, err := client.PeersUp(srv[name].metrics)
			if err != nil {
				return err
			}
			for peer, u := range up {
				if u {
					t.Fatalf("%s's link to %s is up over an encrypted overlay this kernel cannot encrypt", name, peer)
				}
			}
			return nil
		})
	}
	t.Logf("with the overlay encrypted, every connection between engines timed out and no link came up (%v)", since(start))
	start = time.Now()
	removeStackOn(t, engines, stack)
	t.Logf("stack %s removed in %v", stack, since(start))
}

// serviceLogs returns the log of the container of service on e.
func serviceLogs(e *engine, service string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ids, err := e.run(ctx, nil, "ps", "-aq", "--filter", "label=com.docker.swarm.service.name="+service)
	if err != nil || ids == "" {
		return "", fmt.Errorf("no container of %s on %s: %v", service, e.host.Name, err)
	}
	cmd := exec.CommandContext(ctx, "docker", "logs", strings.Fields(ids)[0])
	cmd.Env = append(cmd.Environ(), e.env()...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// dialTimedOut reports whether logs show a connection to neighbour peer
// at an overlay address (10.214.0.0/16, formSwarm's pool) timing out.
func dialTimedOut(logs, peer string) bool {
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, `"msg":"dialling neighbour failed"`) && strings.Contains(l, `"peer":"`+peer+`"`) &&
			strings.Contains(l, `"err":"dial tcp 10.214.`) && strings.Contains(l, "i/o timeout") {
			return true
		}
	}
	return false
}

// removeStackOn removes stack from the swarm of engines and waits until
// no engine has its containers or network.
func removeStackOn(t *testing.T, engines []*engine, stack string) {
	t.Helper()
	label := "label=com.docker.stack.namespace=" + stack
	poll(t, stack+" removed from every engine", 2*time.Minute, func() error {
		ctx := context.Background()
		if _, err := engines[0].run(ctx, nil, "stack", "rm", stack); err != nil && !strings.Contains(err.Error(), "Nothing found in stack") {
			return err
		}
		for _, e := range engines {
			c, err1 := e.run(ctx, nil, "ps", "-aq", "--filter", label)
			n, err2 := e.run(ctx, nil, "network", "ls", "-q", "--filter", label)
			if err1 != nil || err2 != nil || c != "" || n != "" {
				return fmt.Errorf("%s: containers %q, networks %q (%v %v)", e.host.Name, c, n, err1, err2)
			}
		}
		return nil
	})
}

// survive puts the herd under load, stops engine stopped, checks that
// the servers on the other engines go on acknowledging and agreeing,
// starts it again, waits for its servers to come back linked, and checks
// that every IAMAT any server acknowledged is then on all five.
func survive(t *testing.T, engines []*engine, srv map[string]server, links map[string][]string, prefix string) {
	t.Helper()
	addrs := map[string]string{}
	var gone, kept []string
	for _, name := range servers {
		addrs[name] = srv[name].client
		if placement[name] == stopped {
			gone = append(gone, name)
		} else {
			kept = append(kept, name)
		}
	}
	load := client.StartLoad(prefix, addrs)
	stopLoad := sync.OnceFunc(load.Stop)
	t.Cleanup(stopLoad)
	waitAcks(t, load, servers, 20, "under load")

	down := engines[stopped]
	start := time.Now()
	down.stop(t)
	t.Logf("%s (%s) stopped in %v under load, %d IAMATs acknowledged so far", down.host.Name, strings.Join(gone, ", "), since(start), load.Acks.Len())
	// Down long enough for the swarm to see it: its managers mark the
	// node down when its heartbeats stop.
	poll(t, "the swarm marking "+down.host.Name+" down", 2*time.Minute, func() error {
		state, err := engines[0].run(context.Background(), nil, "node", "inspect", "--format", "{{.Status.State}}", down.node)
		if err == nil && state != "down" {
			err = fmt.Errorf("node state %q", state)
		}
		return err
	})
	t.Logf("the swarm marked %s down %v after its stop began", down.host.Name, since(start))
	waitAcks(t, load, kept, 50, "with "+down.host.Name+" stopped")
	outage := map[string]string{}
	for _, name := range kept {
		id := fmt.Sprintf("%s-outage-%s", prefix, name)
		at, err := client.IAMAT(srv[name].client, id)
		if err != nil {
			t.Fatal(err)
		}
		outage[id] = at
	}
	for _, name := range kept {
		poll(t, "the outage's records on "+name, 30*time.Second, func() error { return missing(srv[name], outage) })
	}
	t.Logf("with %s stopped, %s acknowledged IAMATs and read each other's", down.host.Name, strings.Join(kept, ", "))

	downFor := since(start)
	start = time.Now()
	down.start(t)
	waitHerd(t, srv, links, gone)
	t.Logf("%s started again after %v down: %s ready and linked %v later", down.host.Name, downFor, strings.Join(gone, ", "), since(start))
	waitAcks(t, load, gone, 20, "after "+down.host.Name+" returned")
	stopLoad()

	want := load.Acks.Lines()
	for id, at := range outage {
		want[id] = at
	}
	start = time.Now()
	for _, name := range servers {
		poll(t, "every acknowledged IAMAT on "+name, 2*time.Minute, func() error { return missing(srv[name], want) })
	}
	var per []string
	for _, name := range servers {
		per = append(per, fmt.Sprintf("%s %d (%d failed)", name, load.Acks.Of(name), load.Failures(name)))
	}
	t.Logf("all %d acknowledged IAMATs on all five servers (%v after the load stopped); by server: %s",
		len(want), since(start), strings.Join(per, ", "))
}

// waitAcks waits until each of names has acknowledged n more IAMATs than
// it had when called.
func waitAcks(t *testing.T, load *herdtest.Load, names []string, n int, when string) {
	t.Helper()
	base := map[string]int{}
	for _, name := range names {
		base[name] = load.Acks.Of(name)
	}
	poll(t, fmt.Sprintf("%d IAMATs acknowledged by each of %v %s", n, names, when), 2*time.Minute, func() error {
		var short []string
		for _, name := range names {
			if load.Acks.Of(name)-base[name] < n {
				short = append(short, fmt.Sprintf("%s %d", name, load.Acks.Of(name)-base[name]))
			}
		}
		if len(short) > 0 {
			return fmt.Errorf("so far: %s", strings.Join(short, ", "))
		}
		return nil
	})
}
