package peer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
)

// reasonTLS is the handshake failure of a connection whose mutual TLS
// failed: no TLS at all (a plain peer), no certificate, or one the herd's
// CA did not sign.
const reasonTLS = "tls"

// TLS is mutual TLS for the peer links: this server's certificate, and the
// CA that signs every herd member's. With it, every link is TLS 1.3 and
// both ends verify the other's certificate against the CA; the HMAC
// handshake then runs inside, so the shared secret still decides who is a
// member and under which name.
//
// A certificate's names are not checked against the peer's server name:
// the CA is the herd's own (one made for it, never a public one), and a
// herd commonly mounts one certificate into every server, as a Kubernetes
// Secret shared by a StatefulSet's pods. The name is proved by the HMAC
// handshake inside, which binds both names to the secret; TLS adds that
// nobody without a certificate of the herd's CA can take part in, read, or
// change a link (docs/peer-protocol.md, Encryption).
type TLS struct {
	Certificate tls.Certificate
	CAs         *x509.CertPool
}

// serverConfig is the acceptor's side: TLS 1.3 only, a client certificate
// required and verified against the CA.
func (t *TLS) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{t.Certificate},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    t.CAs,
	}
}

// clientConfig is the dialler's side: TLS 1.3 only, the acceptor's
// certificate verified against the CA, without the host name check (see
// TLS); the dialler presents its own certificate.
func (t *TLS) clientConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{t.Certificate},
		// The chain is verified below, against the herd's CA only.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("peer tls: the acceptor sent no certificate")
			}
			opts := x509.VerifyOptions{Roots: t.CAs, Intermediates: x509.NewCertPool(),
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		},
	}
}

// tlsError is a failed TLS handshake; its reason is tls.
type tlsError struct{ err error }

func (e *tlsError) Error() string { return "tls: " + e.err.Error() }
func (e *tlsError) Unwrap() error { return e.err }

// secureAccept runs the acceptor's TLS handshake when TLS is on, within
// the deadline already set on nc.
func (mg *Manager) secureAccept(nc net.Conn) (net.Conn, error) {
	if mg.cfg.TLS == nil {
		return nc, nil
	}
	tc := tls.Server(nc, mg.serverTLS)
	if err := tc.HandshakeContext(mg.ctx); err != nil {
		return nc, &tlsError{err}
	}
	return tc, nil
}

// secureDial runs the dialler's TLS handshake when TLS is on.
func (mg *Manager) secureDial(ctx context.Context, nc net.Conn) (net.Conn, error) {
	if mg.cfg.TLS == nil {
		return nc, nil
	}
	tc := tls.Client(nc, mg.clientTLS)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nc, &tlsError{err}
	}
	return tc, nil
}

// isTLSFailure reports whether err is a TLS failure: a handshake of our
// own, or an alert the other end sent (in TLS 1.3 the dialler learns that
// its certificate was refused only when it next reads).
func isTLSFailure(err error) bool {
	var te *tlsError
	var alert tls.AlertError
	var verr *tls.CertificateVerificationError
	var rec tls.RecordHeaderError
	return errors.As(err, &te) || errors.As(err, &alert) || errors.As(err, &verr) || errors.As(err, &rec)
}

// LoadTLS reads the PEM files of HERD_PEER_TLS_CERT, HERD_PEER_TLS_KEY and
// HERD_PEER_TLS_CA; the errors say which file is wrong.
func LoadTLS(certFile, keyFile, caFile string) (*TLS, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate %s and key %s: %w", certFile, keyFile, err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("CA: no PEM certificate in %s", caFile)
	}
	return &TLS{Certificate: cert, CAs: pool}, nil
}
