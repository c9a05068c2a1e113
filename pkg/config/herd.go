package config

import (
	"strconv"
	"strings"

	"github.com/herdkit/herd/pkg/topology"
)

// TemplateIndex is what HERD_PEER_TEMPLATE's {i} stands for: a
// neighbour's index, in decimal.
const TemplateIndex = "{i}"

// Index splits a derived herd's server name, base-i, into its base and
// index; ok is false unless i is a decimal number from 0 to n-1 without
// leading zeros (so that each server has one name).
func Index(name string, n int) (base string, i int, ok bool) {
	j := strings.LastIndexByte(name, '-')
	if j <= 0 {
		return "", 0, false
	}
	digits := name[j+1:]
	if digits == "" || len(digits) > 1 && digits[0] == '0' || strings.Trim(digits, "0123456789") != "" {
		return "", 0, false
	}
	i, err := strconv.Atoi(digits)
	if err != nil || i < 0 || i >= n {
		return "", 0, false
	}
	return name[:j], i, true
}

// PeerAddr returns the peer address of server i of a derived herd: the
// template with every {i} replaced by i in decimal.
func PeerAddr(template string, i int) string {
	return strings.ReplaceAll(template, TemplateIndex, strconv.Itoa(i))
}

// derivePeers fills Peers from HERD_SERVERS when HERD_PEERS is not set:
// the neighbours topology.Neighbours gives this server's index, each named
// base-j and found at the template's address for j. It leaves Peers empty
// when the settings are wrong; validHerd reports why.
func (c *Config) derivePeers() {
	if len(c.Peers) > 0 || c.Servers == 0 || c.validHerd(func(string, string, ...any) {}) != 0 {
		return
	}
	base, i, _ := Index(c.Name, c.Servers)
	for _, j := range topology.Neighbours(i, c.Servers) {
		c.Peers = append(c.Peers, topology.Peer{Name: serverName(base, j), Addr: PeerAddr(c.PeerTemplate, j)})
	}
}

// Derived returns the servers base-0 to base-(n-1) of a derived herd of
// n, each linked to the neighbours topology.Neighbours gives its index:
// the herd that n servers given HERD_SERVERS=n and HERD_NAME=base-i form
// (`herd local -servers n` runs it). It returns nil for n < 1.
func Derived(base string, n int) []topology.Server {
	var herd []topology.Server
	for i := range n {
		s := topology.Server{Name: serverName(base, i)}
		for _, j := range topology.Neighbours(i, n) {
			s.Neighbours = append(s.Neighbours, serverName(base, j))
		}
		herd = append(herd, s)
	}
	return herd
}

// serverName is the name of server i of a derived herd, as Index reads
// it: base-i.
func serverName(base string, i int) string { return base + "-" + strconv.Itoa(i) }

// validHerd checks HERD_SERVERS, HERD_NAME's form and HERD_PEER_TEMPLATE
// when HERD_SERVERS is set, and returns the number of problems it
// reported. They are checked even when HERD_PEERS wins, so that a herd
// whose list is removed later starts as it was configured.
func (c Config) validHerd(bad func(variable, format string, args ...any)) int {
	if c.Servers == 0 {
		return 0
	}
	problems := 0
	report := func(variable, format string, args ...any) {
		problems++
		bad(variable, format, args...)
	}
	if c.Servers < 1 || c.Servers > topology.MaxServers {
		report("HERD_SERVERS", "%d is not within 1 to %d", c.Servers, topology.MaxServers)
		return problems
	}
	if _, _, ok := Index(c.Name, c.Servers); !ok {
		report("HERD_NAME", "%q is not of the form base-i with i from 0 to %d (HERD_SERVERS=%d)", c.Name, c.Servers-1, c.Servers)
	}
	switch {
	case c.Servers == 1:
	case c.PeerTemplate == "":
		report("HERD_PEER_TEMPLATE", "must be set when HERD_SERVERS is more than 1 and HERD_PEERS is not set")
	case !strings.Contains(c.PeerTemplate, TemplateIndex):
		report("HERD_PEER_TEMPLATE", "%q has no %s for a neighbour's index", c.PeerTemplate, TemplateIndex)
	default:
		for j := range c.Servers {
			if err := validAddr(PeerAddr(c.PeerTemplate, j)); err != nil {
				report("HERD_PEER_TEMPLATE", "%q gives server %d the address %v", c.PeerTemplate, j, err)
				break
			}
		}
	}
	return problems
}

// validPeerTLS checks that the three TLS files are set together.
func (c Config) validPeerTLS(bad func(variable, format string, args ...any)) {
	files := []struct{ variable, path string }{
		{"HERD_PEER_TLS_CERT", c.PeerTLSCert}, {"HERD_PEER_TLS_KEY", c.PeerTLSKey}, {"HERD_PEER_TLS_CA", c.PeerTLSCA},
	}
	var set, unset []string
	for _, f := range files {
		if f.path == "" {
			unset = append(unset, f.variable)
		} else {
			set = append(set, f.variable)
		}
	}
	if len(set) > 0 && len(unset) > 0 {
		bad(unset[0], "must be set with %s: HERD_PEER_TLS_CERT, HERD_PEER_TLS_KEY and HERD_PEER_TLS_CA go together", strings.Join(set, " and "))
	}
}

// PeerTLS reports whether peer links are mutual TLS.
func (c Config) PeerTLS() bool { return c.PeerTLSCert != "" }
