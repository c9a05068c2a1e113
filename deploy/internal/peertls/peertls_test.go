package peertls

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"strings"
	"testing"
	"time"
)

// fakePeer is a peer port on 127.0.0.1: TLS as config says (none when
// nil), then it answers the first line with reply: "ERR protocol\n", as
// the herd's acceptor answers a line that is no hello.
func fakePeer(t *testing.T, config *tls.Config, reply string) func() (net.Conn, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				if config != nil {
					c = tls.Server(c, config)
				}
				if _, err := bufio.NewReader(c).ReadString('\n'); err == nil {
					c.Write([]byte(reply))
				}
			}(c)
		}
	}()
	return func() (net.Conn, error) { return net.Dial("tcp", ln.Addr().String()) }
}

// herdServer is the acceptor's side of the herd's mutual TLS with b
// (pkg/peer's serverConfig).
func herdServer(b *Bundle) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{b.pair},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: b.pool}
}

func TestCheck(t *testing.T) {
	// Ports that accept a client without a certificate wait for its
	// hello: no need to wait long to see that they did not refuse it.
	defer func(w time.Duration) { refusalWait = w }(refusalWait)
	refusalWait = 300 * time.Millisecond
	b, err := New("*.herd-peer", "hill")
	if err != nil {
		t.Fatal(err)
	}
	other, err := New("*.herd-peer", "hill")
	if err != nil {
		t.Fatal(err)
	}
	with := func(f func(c *tls.Config)) *tls.Config {
		c := herdServer(b)
		f(c)
		return c
	}
	for _, tc := range []struct {
		name    string
		server  *tls.Config
		reply   string // "" for ERR protocol
		dnsName string
		err     string // "" for none
	}{
		{"the herd's acceptor", herdServer(b), "", "", ""},
		{"a TLS server of something else", herdServer(b), "220 ready\n", "", `answered "220 ready\n"`},
		{"a name of the certificate", herdServer(b), "", "hill", ""},
		{"a wildcard name", herdServer(b), "", "herd-2.herd-peer", ""},
		{"a name it lacks", herdServer(b), "", "jaquez", "not jaquez"},
		{"no TLS", nil, "", "", "first record does not look like a TLS handshake"},
		{"TLS 1.2", with(func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS12, tls.VersionTLS12 }), "", "",
			"protocol version"},
		{"another herd's certificate", with(func(c *tls.Config) { c.Certificates = []tls.Certificate{other.pair} }), "", "",
			"unknown authority"},
		{"clients of another CA", with(func(c *tls.Config) { c.ClientCAs = other.pool }), "", "", "with the herd's certificate"},
		{"no client certificate required", with(func(c *tls.Config) { c.ClientAuth = tls.NoClientCert }), "", "",
			"without a client certificate: read tcp"},
		{"a client certificate asked for, not required", with(func(c *tls.Config) { c.ClientAuth = tls.VerifyClientCertIfGiven }), "", "",
			"without a client certificate: read tcp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.reply == "" {
				tc.reply = "ERR protocol\n"
			}
			err := b.Check(fakePeer(t, tc.server, tc.reply), tc.dnsName)
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("Check: %v, want nil", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("Check: %v, want an error with %q", err, tc.err)
			}
		})
	}
}

// TestNew checks the bundle as the servers read it (pkg/peer.LoadTLS):
// PEM, a certificate the CA signed for both server and client
// authentication, and a CA that is one.
func TestNew(t *testing.T) {
	b, err := New("*.herd-peer", "hill")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(b.Cert, b.Key); err != nil {
		t.Fatalf("certificate and key: %v", err)
	}
	parse := func(what string, p []byte) *x509.Certificate {
		block, rest := pem.Decode(p)
		if block == nil || block.Type != "CERTIFICATE" || len(rest) != 0 {
			t.Fatalf("%s: not one PEM certificate", what)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return c
	}
	ca, cert := parse("CA", b.CA), parse("certificate", b.Cert)
	if !ca.IsCA || ca.Equal(cert) {
		t.Errorf("the CA is no CA of its own (IsCA %v)", ca.IsCA)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("usage %v: %v", usage, err)
		}
	}
	if strings.Join(cert.DNSNames, ",") != "*.herd-peer,hill" {
		t.Errorf("names %v", cert.DNSNames)
	}
}
