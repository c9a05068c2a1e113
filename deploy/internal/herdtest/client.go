// Package herdtest is the client side of deploy's end-to-end tests: it
// tells servers where clients are (IAMAT), keeps a record of every
// acknowledged IAMAT, sends them under load, and checks that a server
// answers WHATSAT with each recorded AT line, as the protocol
// defines the two commands.
package herdtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Client reaches servers at host:port addresses, where the host is an
// address or a name its Resolver looks up (a cluster's DNS, say). The
// zero Client uses the system's resolver.
type Client struct {
	Resolver *net.Resolver
}

// dial connects to addr within timeout.
func (c *Client) dial(addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout, Resolver: c.Resolver}
	return d.Dial("tcp", addr)
}

// http is an HTTP client that dials as c does.
func (c *Client) http() *http.Client {
	d := net.Dialer{Timeout: ioTimeout, Resolver: c.Resolver}
	return &http.Client{Timeout: ioTimeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		DisableKeepAlives: true,
	}}
}

// Pos is the position every IAMAT gives: UCLA, which the servers'
// offline places data knows.
const Pos = "+34.068930-118.445127"

// ioTimeout bounds each exchange with a server.
const ioTimeout = 10 * time.Second

// iamatLine is an IAMAT for client id at Pos, sent now.
func iamatLine(id string, now time.Time) string {
	return fmt.Sprintf("IAMAT %s %s %d.%09d\n", id, Pos, now.Unix(), now.Nanosecond())
}

// checkAT returns at if it acknowledges an IAMAT for id: an AT line that
// repeats the client's id and position.
func checkAT(at, id string) (string, error) {
	at = strings.TrimSuffix(at, "\n")
	if !strings.HasPrefix(at, "AT ") || !strings.Contains(at, " "+id+" "+Pos+" ") {
		return "", fmt.Errorf("IAMAT %s: reply %q", id, at)
	}
	return at, nil
}

// IAMAT tells the server at addr (host:port of its client port) that
// client id is at Pos now, and returns its AT line.
func (cl *Client) IAMAT(addr, id string) (string, error) {
	c, err := cl.dial(addr, ioTimeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(c, iamatLine(id, time.Now())); err != nil {
		return "", err
	}
	at, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("IAMAT %s to %s: %w", id, addr, err)
	}
	return checkAT(at, id)
}

// Missing asks the server at addr about every client in want (client id
// to the AT line it was acknowledged with), on one connection,
// pipelined, and returns the ids whose AT line it does not answer with.
func (cl *Client) Missing(addr string, want map[string]string) ([]string, error) {
	c, err := cl.dial(addr, ioTimeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout + time.Duration(len(want))*time.Millisecond))
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	written := make(chan error, 1)
	go func() {
		w := bufio.NewWriter(c)
		for _, id := range ids {
			// Radius 10 km, no places: only the AT line matters.
			fmt.Fprintf(w, "WHATSAT %s 10 0\n", id)
		}
		err := w.Flush()
		c.(*net.TCPConn).CloseWrite()
		written <- err
	}()
	r := bufio.NewReader(c)
	var missing []string
	for _, id := range ids {
		at, err := readWhatsat(r)
		if err != nil {
			return nil, fmt.Errorf("WHATSAT %s at %s: %w", id, addr, err)
		}
		if at != want[id] {
			missing = append(missing, id)
		}
	}
	return missing, <-written
}

// readWhatsat reads one reply to a WHATSAT and returns its first line:
// the AT line, followed by the places and an empty line, or "? ..." alone
// for a client the server has not heard of.
func readWhatsat(r *bufio.Reader) (string, error) {
	first, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	first = strings.TrimSuffix(first, "\n")
	if strings.HasPrefix(first, "? ") {
		return first, nil
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		if line == "\n" {
			return first, nil
		}
	}
}

// PeersUp returns herd_peer_up of the server whose metrics are at addr
// (host:port), neighbour by neighbour.
func (cl *Client) PeersUp(addr string) (map[string]bool, error) {
	resp, err := cl.http().Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %s", resp.Status)
	}
	up := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		// herd_peer_up{peer="Jaquez"} 1
		rest, ok := strings.CutPrefix(sc.Text(), `herd_peer_up{peer="`)
		if !ok {
			continue
		}
		peer, value, ok := strings.Cut(rest, `"} `)
		if !ok {
			return nil, fmt.Errorf("metrics line %q", sc.Text())
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %w", sc.Text(), err)
		}
		up[peer] = v == 1
	}
	return up, sc.Err()
}

// Ready reports whether the server whose metrics are at addr (host:port)
// is ready: reconciled with its neighbours, or past its grace.
func (cl *Client) Ready(addr string) error {
	resp, err := cl.http().Get("http://" + addr + "/readyz")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/readyz: %s", resp.Status)
	}
	return nil
}
