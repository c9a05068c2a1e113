package peer

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herdkit/herd/internal/testutil"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/herdkit/herd/internal/testcert"
	"github.com/herdkit/herd/pkg/store"
	"github.com/herdkit/herd/pkg/topology"
)

// herdTLS issues a certificate for name from ca.
func herdTLS(t *testing.T, ca *testcert.CA, name string) *TLS {
	t.Helper()
	certPEM, keyPEM, err := ca.Issue(name)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.PEM)
	return &TLS{Certificate: cert, CAs: pool}
}

func newCA(t *testing.T, name string) *testcert.CA {
	t.Helper()
	ca, err := testcert.NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// withTLS returns fastTimings with the given TLS.
func withTLS(c *TLS) Config {
	cfg := fastTimings
	cfg.TLS = c
	return cfg
}

// TestTLSLinks: a link is up between two servers of one CA, and refused,
// counted as tls at the acceptor, when the dialler speaks plain TCP or
// holds a certificate of another CA.
func TestTLSLinks(t *testing.T) {
	herdCA, otherCA := newCA(t, "herd CA"), newCA(t, "another CA")
	tests := []struct {
		name   string
		dialer Config // B's, which dials A; A never dials
		up     bool
	}{
		{"both of the herd's CA", withTLS(herdTLS(t, herdCA, "B")), true},
		{"plain TCP dialler", fastTimings, false},
		{"certificate of another CA", withTLS(herdTLS(t, otherCA, "B")), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lnA, lnB := listen(t), listen(t)
			closed := listen(t)
			closed.Close() // A's address for B: A never reaches it, so every link is B's dial
			a := runNode(t, "A", lnA, []topology.Peer{{Name: "B", Addr: closed.Addr().String()}}, testSecret, withTLS(herdTLS(t, herdCA, "A")), nil)
			b := runNode(t, "B", lnB, []topology.Peer{{Name: "A", Addr: lnA.Addr().String()}}, testSecret, tt.dialer, nil)
			if tt.up {
				r := store.Record{Text: "k +1+1 1", Origin: "A", Recv: time.Now().UnixNano()}
				testutil.Apply(a.st, r, store.Local)
				testutil.Eventually(t, 10*time.Second, testutil.Holds("the condition of line 77", func() bool { _, ok := b.st.Get("k"); return ok && b.mgr.Reconciled() && a.mgr.Reconciled() }))
				return
			}
			testutil.Eventually(t, 10*time.Second, testutil.Holds("the condition of line 80", func() bool { return failures(a, reasonTLS) >= 2 }))
			if a.mgr.Status()[0].Up || b.mgr.Status()[0].Up {
				t.Error("a link is up without the herd's certificates")
			}
		})
	}
}

// relay is an attacker on the path between a dialler and its neighbour:
// it passes everything through, and can add bytes of its own towards the
// acceptor between the dialler's frames.
type relay struct {
	ln     net.Listener
	target string
	lines  bool // forward line by line (plain text), so that an injection lands between frames

	mu     sync.Mutex
	toPeer net.Conn // the current connection towards the acceptor
}

func newRelay(t *testing.T, target string, lines bool) *relay {
	r := &relay{ln: listen(t), target: target, lines: lines}
	go r.serve()
	t.Cleanup(func() { r.ln.Close() })
	return r
}

func (r *relay) serve() {
	for {
		from, err := r.ln.Accept()
		if err != nil {
			return
		}
		to, err := net.Dial("tcp", r.target)
		if err != nil {
			from.Close()
			continue
		}
		r.mu.Lock()
		r.toPeer = to
		r.mu.Unlock()
		go func() { io.Copy(from, to); from.Close() }()
		go func() {
			defer to.Close()
			br := bufio.NewReader(from)
			buf := make([]byte, 32<<10)
			for {
				var b []byte
				var err error
				if r.lines {
					b, err = br.ReadSlice('\n')
				} else {
					var n int
					n, err = br.Read(buf)
					b = buf[:n]
				}
				r.mu.Lock()
				to.Write(b)
				r.mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
}

// inject writes b towards the acceptor on the current connection.
func (r *relay) inject(b string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.toPeer.Write([]byte(b))
}

// TestRelayInjection plays an attacker on the path: a relay that passes a
// real handshake through and then adds a record frame of its own. Over
// plain TCP the acceptor stores the forged record: the HMAC proves only
// the handshake, and frames carry no MAC. Over TLS the forged bytes fail
// the record layer's authentication, the link drops, and nothing is
// stored.
func TestRelayInjection(t *testing.T) {
	ca := newCA(t, "herd CA")
	tests := []struct {
		name          string
		a, b          Config
		stored        bool
		droppedReason string
	}{
		{"plain TCP: the forged record is stored", fastTimings, fastTimings, true, ""},
		{"TLS: the link drops and nothing is stored", withTLS(herdTLS(t, ca, "A")), withTLS(herdTLS(t, ca, "B")), false, downError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lnA, lnB := listen(t), listen(t)
			rel := newRelay(t, lnA.Addr().String(), tt.a.TLS == nil)
			closed := listen(t)
			closed.Close()
			a := runNode(t, "A", lnA, []topology.Peer{{Name: "B", Addr: closed.Addr().String()}}, testSecret, tt.a, nil)
			b := runNode(t, "B", lnB, []topology.Peer{{Name: "A", Addr: rel.ln.Addr().String()}}, testSecret, tt.b, nil)
			testutil.Eventually(t, 10*time.Second, testutil.Holds("the condition of line 179", func() bool { return a.mgr.Reconciled() && b.mgr.Reconciled() }))
			forged := fmt.Sprintf("F %d 1 B %d mitm-injected +34.068930-118.445127 %d.0\n", uint64(1)<<40, time.Now().UnixNano(), time.Now().Unix())
			rel.inject(forged)
			if tt.stored {
				testutil.Eventually(t, 10*time.Second, testutil.Holds("the condition of line 183", func() bool { _, ok := a.st.Get("mitm-injected"); return ok }))
				return
			}
			testutil.Eventually(t, 10*time.Second, testutil.Holds("the condition of line 186", func() bool {
				return promtest.ToFloat64(a.m.PeerDisconnects.WithLabelValues("B", tt.droppedReason)) >= 1
			}))
			if r, ok := a.st.Get("mitm-injected"); ok {
				t.Errorf("the forged record is stored: %v", r)
			}
		})
	}
}

func TestLoadTLS(t *testing.T) {
	ca := newCA(t, "herd CA")
	dir := t.TempDir()
	files, err := ca.WriteFiles(dir, "herd-0")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name           string
		cert, key, pem string
		says           string
	}{
		{"good", files.Cert, files.Key, files.CA, ""},
		{"no certificate file", dir + "/none", files.Key, files.CA, "certificate: "},
		{"key of another certificate", files.Cert, files.CA, files.CA, "certificate " + files.Cert},
		{"CA without a certificate", files.Cert, files.Key, files.Key, "CA: no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadTLS(tt.cert, tt.key, tt.pem)
			if tt.says == "" && err != nil || tt.says != "" && (err == nil || !strings.Contains(err.Error(), tt.says)) {
				t.Errorf("LoadTLS: %v, want %q", err, tt.says)
			}
		})
	}
}
