package peer

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/herdkit/herd/pkg/protocol"
	"github.com/herdkit/herd/pkg/secret"
)

// Version is the peer protocol version this server speaks.
const Version = 1

// Reasons a handshake fails; metric labels of herd_peer_handshake_failures_total.
// A refusal decided at one end is sent to the other as ERR <reason>, and
// both ends count it under that reason.
const (
	reasonBadSecret     = "bad_secret"          // a proof did not verify: the secrets differ
	reasonUnknownPeer   = "unknown_peer"        // the dialler is not a configured neighbour
	reasonWrongPeer     = "wrong_peer"          // the dialled address answered with another name
	reasonProtocol      = "protocol"            // not the herd peer protocol, or another version, or closed unexplained
	reasonTimeout       = "timeout"             // the handshake did not finish in time
	reasonDuplicate     = "duplicate"           // a better link to this neighbour is already up
	reasonDuplicateName = "duplicate_name"      // another live server of that name holds the link
	reasonTooMany       = "too_many_handshakes" // the acceptor had MaxHandshakes in progress
	reasonPerIP         = "per_ip"              // the acceptor had MaxHandshakesPerIP in progress from that address
	reasonRefused       = "refused"             // the other end refused us with a reason not listed here
)

// refusalShutdown is the ERR an acceptor sends when it stops during a
// handshake; the dialler counts it as refused.
const refusalShutdown = "shutdown"

// handshakeError is a refused handshake with its metric reason.
type handshakeError struct {
	reason string
	detail string
	told   bool // the other end refused and said why, so it needs no ERR line
}

func (e *handshakeError) Error() string { return e.reason + ": " + e.detail }

func refuse(reason, format string, args ...any) error {
	return &handshakeError{reason: reason, detail: fmt.Sprintf(format, args...)}
}

// refusedBy returns the error for an ERR line the other end sent. Its
// reason is the one given when this server knows it, so that both ends
// count a refusal alike, and refused otherwise: the other end cannot grow
// the metric's label set.
func refusedBy(who, reason string) error {
	label := reasonRefused
	switch reason {
	case reasonBadSecret, reasonUnknownPeer, reasonWrongPeer, reasonProtocol, reasonDuplicate,
		reasonDuplicateName, reasonTooMany, reasonPerIP:
		label = reason
	}
	return &handshakeError{reason: label, detail: fmt.Sprintf("%s refused the handshake: %.32q", who, reason), told: true}
}

// tell sends the other end the reason of a refusal decided here, so that it
// counts that reason rather than an unexplained close, and returns err. A
// refusal the other end told us is not echoed back. The write is bounded by
// the handshake's deadline, still set.
func tell(nc net.Conn, err error) error {
	var he *handshakeError
	if errors.As(err, &he) && !he.told {
		nc.Write([]byte("ERR " + he.reason + "\n"))
	}
	return err
}

// told reports whether err is a refusal the other end sent.
func told(err error) bool {
	var he *handshakeError
	return errors.As(err, &he) && he.told
}

// reasonOf returns the metric reason of a handshake error.
func reasonOf(err error) string {
	var he *handshakeError
	if errors.As(err, &he) {
		return he.reason
	}
	if isTLSFailure(err) {
		return reasonTLS
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return reasonTimeout
	}
	return reasonProtocol
}

// hello is the first line each end sends: HERD version HELLO name
// incarnation nonce [proof].
type hello struct {
	name  string
	inc   uint64
	nonce string
	proof string // only from the acceptor
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (h hello) String() string {
	s := fmt.Sprintf("HERD %d HELLO %s %x %s", Version, h.name, h.inc, h.nonce)
	if h.proof != "" {
		s += " " + h.proof
	}
	return s + "\n"
}

func parseHello(line string, withProof bool) (hello, error) {
	f := strings.Fields(line)
	if len(f) == 2 && f[0] == "ERR" {
		return hello{}, refusedBy("the other end", f[1])
	}
	want := 6
	if withProof {
		want = 7
	}
	if len(f) != want || f[0] != "HERD" || f[2] != "HELLO" {
		return hello{}, refuse(reasonProtocol, "not a herd peer hello")
	}
	if f[1] != strconv.Itoa(Version) {
		return hello{}, refuse(reasonProtocol, "peer protocol version %.8q, want %d", f[1], Version)
	}
	inc, err := strconv.ParseUint(f[4], 16, 64)
	if err != nil || !protocol.ValidName(f[3]) || len(f[5]) != nonceLen {
		return hello{}, refuse(reasonProtocol, "malformed hello")
	}
	h := hello{name: f[3], inc: inc, nonce: f[5]}
	if withProof {
		h.proof = f[6]
	}
	return h, nil
}

// proof proves knowledge of the secret for one role of one handshake. It
// binds both names, both nonces and both incarnations, so that a proof can
// be neither replayed nor reflected back to its sender.
func proof(secret secret.String, role string, self, other hello) string {
	mac := hmac.New(sha256.New, []byte(secret))
	for _, s := range []string{"herd/1", role, self.name, other.name, self.nonce, other.nonce,
		strconv.FormatUint(self.inc, 16), strconv.FormatUint(other.inc, 16)} {
		mac.Write([]byte(s))
		mac.Write([]byte{0})
	}
	return hex.EncodeToString(mac.Sum(nil))
}

func validProof(got, want string) bool { return hmac.Equal([]byte(got), []byte(want)) }

// readLine reads one handshake line.
func readLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return "", refuse(reasonProtocol, "handshake line too long")
		}
		return "", err
	}
	return strings.TrimSuffix(string(line), "\n"), nil
}

// dialHandshake runs the dialler's side: say hello, check the acceptor's
// name and proof, ask admit whether that incarnation may link (it returns
// a refusal reason, or ""), prove ourselves, and wait for OK. It returns
// the acceptor's hello: its incarnation, and in its nonce whether it
// speaks timed pings. Every refusal decided here is sent to the
// acceptor as ERR <reason> instead of AUTH.
func dialHandshake(nc net.Conn, br *bufio.Reader, self hello, peer string, secret secret.String,
	admit func(inc uint64) string, deadline time.Time) (hello, error) {
	nc.SetDeadline(deadline)
	defer nc.SetDeadline(time.Time{})
	if _, err := nc.Write([]byte(self.String())); err != nil {
		return hello{}, err
	}
	line, err := readLine(br)
	if err != nil {
		return hello{}, tell(nc, err)
	}
	other, err := parseHello(line, true)
	if err != nil {
		return hello{}, tell(nc, err)
	}
	if other.name != peer {
		return hello{}, tell(nc, refuse(reasonWrongPeer, "dialled %s, answered by %s", peer, other.name))
	}
	if !validProof(other.proof, proof(secret, "accept", other, self)) {
		return hello{}, tell(nc, refuse(reasonBadSecret, "%s failed to prove the peer secret", peer))
	}
	if admit != nil {
		if reason := admit(other.inc); reason != "" {
			return hello{}, tell(nc, refuse(reason, "incarnation %x of %s is refused", other.inc, peer))
		}
	}
	if _, err := nc.Write([]byte("AUTH " + proof(secret, "dial", self, other) + "\n")); err != nil {
		return hello{}, err
	}
	line, err = readLine(br)
	if err != nil {
		return hello{}, err
	}
	if line != "OK" {
		if reason, ok := strings.CutPrefix(line, "ERR "); ok {
			if reason == reasonDuplicate {
				return hello{}, &handshakeError{reason: reasonDuplicate, detail: peer + " keeps the link it dialled", told: true}
			}
			return hello{}, refusedBy(peer, reason)
		}
		return hello{}, refuse(reasonProtocol, "no OK from %s", peer)
	}
	return other, nil
}

// acceptHandshake runs the acceptor's side up to the dialler's proof, by
// deadline. It returns the dialler's hello; the caller answers OK or ERR
// with finishAccept once it knows whether it keeps the link. Every
// refusal decided here is sent to the dialler as ERR <reason>.
func acceptHandshake(nc net.Conn, br *bufio.Reader, self hello, secret func(name string) (secret.String, bool), deadline time.Time) (hello, error) {
	nc.SetDeadline(deadline)
	line, err := readLine(br)
	if err != nil {
		return hello{}, tell(nc, err)
	}
	other, err := parseHello(line, false)
	if err != nil {
		return hello{}, tell(nc, err)
	}
	key, ok := secret(other.name)
	if !ok {
		return other, tell(nc, refuse(reasonUnknownPeer, "%s is not a configured neighbour", other.name))
	}
	self.proof = proof(key, "accept", self, other)
	if _, err := nc.Write([]byte(self.String())); err != nil {
		return other, err
	}
	line, err = readLine(br)
	if err != nil {
		return other, tell(nc, err)
	}
	if reason, ok := strings.CutPrefix(line, "ERR "); ok {
		return other, refusedBy(other.name, reason)
	}
	got, ok := strings.CutPrefix(line, "AUTH ")
	self.proof = ""
	if !ok || !validProof(got, proof(key, "dial", other, self)) {
		return other, tell(nc, refuse(reasonBadSecret, "%s failed to prove the peer secret", other.name))
	}
	return other, nil
}

// finishAccept tells the dialler whether the link is kept: OK, or ERR and
// the reason it is refused.
func finishAccept(nc net.Conn, refusal string) error {
	defer nc.SetDeadline(time.Time{})
	if refusal != "" {
		_, err := nc.Write([]byte("ERR " + refusal + "\n"))
		return err
	}
	_, err := nc.Write([]byte("OK\n"))
	return err
}
