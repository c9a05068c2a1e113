//go:build linux

package swarm

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/herdkit/herd/deploy/internal/netlab"
	"github.com/herdkit/herd/deploy/internal/peertls"
)

// createTLSSecrets makes the herd's CA and one certificate, for the five
// services' names, and creates the secrets stack.tls.yaml reads, under
// its default names, from the manager m.
func createTLSSecrets(t *testing.T, m *engine) *peertls.Bundle {
	t.Helper()
	b, err := peertls.New(servers...)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"herd_peer_tls_cert": b.Cert, "herd_peer_tls_key": b.Key, "herd_peer_tls_ca": b.CA} {
		m.docker(t, "secret", "create", name, writeFile(t, name, data))
	}
	return b
}

// checkPeerTLS checks every server's peer port over the overlay, as its
// links reach it: from the network namespace of a neighbour's container,
// on another engine, at the server's overlay address. There the port
// must speak TLS 1.3 with the herd's certificate (for the server's
// name), the herd's handshake answering inside, and refuse a client
// without a certificate.
func checkPeerTLS(t *testing.T, engines []*engine, links map[string][]string, b *peertls.Bundle, stack string) {
	t.Helper()
	start := time.Now()
	for _, name := range servers {
		e := engines[placement[name]]
		addr := e.docker(t, "inspect", "--format",
			fmt.Sprintf(`{{(index .NetworkSettings.Networks %q).IPAddress}}`, stack+"_herd"), container(t, e, stack, name))
		from := links[name][0]
		fe := engines[placement[from]]
		pid := fe.docker(t, "inspect", "--format", "{{.State.Pid}}", container(t, fe, stack, from))
		ns := fmt.Sprintf("/proc/%s/ns/net", pid)
		peer := net.JoinHostPort(addr, "12300")
		dial := func() (net.Conn, error) { return netlab.DialIn(ns, peer, 10*time.Second) }
		if err := b.Check(dial, name); err != nil {
			t.Fatalf("%s's peer port %s, from %s's container on %s: %v", name, peer, from, fe.host.Name, err)
		}
	}
	t.Logf("every server's peer port, reached over the overlay from a neighbour's container on another engine, "+
		"speaks TLS 1.3 with the herd's certificate and refuses a client without one (%v)", since(start))
}

// container is the id of the one running container of stack's service
// name on e.
func container(t *testing.T, e *engine, stack, name string) string {
	t.Helper()
	ids := strings.Fields(e.docker(t, "ps", "-q", "--filter", "label=com.docker.swarm.service.name="+stack+"_"+name))
	if len(ids) != 1 {
		t.Fatalf("%s runs %d containers of %s_%s, want one", e.host.Name, len(ids), stack, name)
	}
	return ids[0]
}

// notInClear stops capture, which ran while the herd spread the records
// of clients ids over its links, and checks that no frame between two
// engines carried an id in clear, though the frames of this machine's
// client connections did (the client protocol is plain text, so they
// show the capture saw the traffic), and frames between engines crossed
// the bridge: every record crossed the links between engines, encrypted.
func notInClear(t *testing.T, capture *netlab.Capture, ids []string, lab *netlab.Lab, engines []*engine) {
	t.Helper()
	frames, err := capture.Stop()
	if err != nil {
		t.Fatal(err)
	}
	isEngine := map[netip.Addr]bool{}
	for _, e := range engines {
		isEngine[e.host.Addr] = true
	}
	var between int
	clear := map[string]int{} // frames of this machine's client connections
	leaks := map[string]string{}
	for _, f := range frames {
		src, dst, ok := netlab.FrameAddrs(f)
		if !ok {
			continue
		}
		inner := isEngine[src] && isEngine[dst]
		if inner {
			between++
		}
		for _, id := range ids {
			switch {
			case !bytes.Contains(f, []byte(id)):
			case inner:
				leaks[id] = fmt.Sprintf("%s to %s", src, dst)
			case src == lab.HostAddr() || dst == lab.HostAddr():
				clear[id]++
			}
		}
	}
	for _, id := range ids {
		if leaks[id] != "" {
			t.Errorf("client id %s crossed between engines in clear (a frame from %s, among others)", id, leaks[id])
		}
		if clear[id] == 0 {
			t.Errorf("no frame of this machine's client connections carries %s: the capture missed the traffic", id)
		}
	}
	if between == 0 {
		t.Error("no frame between engines crossed the bridge while the records spread")
	}
	t.Logf("%d frames captured while the records spread, %d of them between engines: no client id in clear between engines, "+
		"each in the frames of this machine's client connections", len(frames), between)
}
