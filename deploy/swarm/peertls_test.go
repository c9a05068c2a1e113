//go:build linux

package swarm

import (
	"fmt"
	"net"
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
