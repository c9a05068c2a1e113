// Package peertls is the mutual TLS of a herd's peer links as deploy's
// end-to-end tests see it: it makes a herd's certificates, and checks a
// peer port as a member and as an outsider would reach it
// (docs/peer-protocol.md, Encryption).
package peertls

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"
)

// Bundle is a herd's TLS material, in PEM as the servers read it
// (HERD_PEER_TLS_CA, HERD_PEER_TLS_CERT, HERD_PEER_TLS_KEY): a CA of the
// herd's own, and one certificate it signed that every server presents,
// for both server and client authentication.
type Bundle struct {
	CA, Cert, Key []byte

	pair tls.Certificate // Cert and Key, parsed
	pool *x509.CertPool  // CA
}

// validity is how long a Bundle's certificates are valid: a test's run.
const validity = 24 * time.Hour

// New makes a CA and a certificate signed by it for names (DNS names,
// which may have a wildcard first label).
func New(names ...string) (*Bundle, error) {
	caKey, caDER, err := certificate(&x509.Certificate{
		Subject:  pkix.Name{CommonName: "herd test CA"},
		KeyUsage: x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
	}, nil, nil)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, der, err := certificate(&x509.Certificate{
		Subject: pkix.Name{CommonName: "herd"}, DNSNames: names,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, ca, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	b := &Bundle{
		CA:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		Cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Key:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		pool: x509.NewCertPool(),
	}
	b.pool.AddCert(ca)
	if b.pair, err = tls.X509KeyPair(b.Cert, b.Key); err != nil {
		return nil, err
	}
	return b, nil
}

// certificate makes a P-256 key and a certificate of tmpl for it, signed
// by parent's key, or by itself when parent is nil.
func certificate(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Minute), time.Now().Add(validity)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	return key, der, err
}

// Config is a member's side of a link to a peer port: b's certificate,
// TLS 1.3 only, the acceptor's certificate verified against b's CA and,
// unless name is empty, for name. (The servers themselves check no names:
// the CA is the herd's own; a test may check that a certificate is the
// one it meant to mount.)
func (b *Bundle) Config(name string) *tls.Config {
	c := b.verifying(name)
	c.Certificates = []tls.Certificate{b.pair}
	return c
}

// verifying is Config without a client certificate: an outsider's side.
func (b *Bundle) verifying(name string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // verified below, against b's CA only
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("no certificate")
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: b.pool, DNSName: name,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
			return err
		},
	}
}

// ioTimeout bounds each connection Check makes.
const ioTimeout = 10 * time.Second

// refusalWait is how long Check waits for a port to refuse a client
// without a certificate. The refusal follows the handshake at once; a
// port that accepted such a client waits for its hello instead, silent.
var refusalWait = 5 * time.Second

// Check connects to a herd's peer port twice through dial, and returns
// an error saying what is wrong unless:
//   - with b's certificate, the port speaks TLS 1.3, presents b's
//     certificate (for name, unless name is empty), and inside the tunnel
//     the herd's handshake answers: an empty line, which is no hello, is
//     refused with "ERR <reason>";
//   - without a client certificate, it refuses the client within
//     refusalWait ("certificate required": in TLS 1.3 the client learns
//     it when it first reads).
func (b *Bundle) Check(dial func() (net.Conn, error), name string) error {
	if err := b.checkMember(dial, name); err != nil {
		return fmt.Errorf("with the herd's certificate: %w", err)
	}
	nc, err := dial()
	if err != nil {
		return err
	}
	c := tls.Client(nc, b.verifying(name))
	defer c.Close()
	c.SetDeadline(time.Now().Add(refusalWait))
	if err = c.Handshake(); err == nil {
		_, err = c.Read(make([]byte, 1))
	}
	// The alert arrives as "remote error: tls: certificate required"
	// (crypto/tls exports no type for a received alert).
	if err == nil || !strings.Contains(err.Error(), "tls: certificate required") {
		return fmt.Errorf("without a client certificate: %v, want the port to refuse it (certificate required)", err)
	}
	return nil
}

// checkMember is Check's first connection: a member's.
func (b *Bundle) checkMember(dial func() (net.Conn, error), name string) error {
	nc, err := dial()
	if err != nil {
		return err
	}
	c := tls.Client(nc, b.Config(name))
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	if err := c.Handshake(); err != nil {
		return err
	}
	state := c.ConnectionState()
	if state.Version != tls.VersionTLS13 {
		return fmt.Errorf("TLS version %s, want TLS 1.3", tls.VersionName(state.Version))
	}
	if !state.PeerCertificates[0].Equal(b.pair.Leaf) {
		return fmt.Errorf("the port presents %s, not the herd's certificate", state.PeerCertificates[0].Subject)
	}
	if _, err := c.Write([]byte("\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("the herd's handshake inside TLS: %w", err)
	}
	if !strings.HasPrefix(line, "ERR ") {
		return fmt.Errorf("the herd's handshake inside TLS answered %q to an empty line, want ERR <reason>", line)
	}
	return nil
}
