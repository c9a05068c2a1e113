package config

import (
	"strings"
	"testing"
)

const testSecret = "0123456789abcdef"

func TestDerivedPeers(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
		want string
	}{
		{"nine on one host", map[string]string{"HERD_NAME": "herd-3", "HERD_SERVERS": "9", "HERD_PEER_TEMPLATE": "127.0.0.1:173{i}0"},
			"herd-0=127.0.0.1:17300,herd-2=127.0.0.1:17320,herd-4=127.0.0.1:17340,herd-6=127.0.0.1:17360"},
		{"stateful set", map[string]string{"HERD_NAME": "my-herd-0", "HERD_SERVERS": "3", "HERD_PEER_TEMPLATE": "my-herd-{i}.herd-peer:12300"},
			"my-herd-1=my-herd-1.herd-peer:12300,my-herd-2=my-herd-2.herd-peer:12300"},
		{"alone", map[string]string{"HERD_NAME": "herd-0", "HERD_SERVERS": "1"}, ""},
		{"HERD_PEERS wins", map[string]string{"HERD_NAME": "herd-0", "HERD_SERVERS": "9", "HERD_PEER_TEMPLATE": "x:{i}",
			"HERD_PEERS": "Hill=a:1"}, "Hill=a:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.vars["HERD_PEER_SECRET"] = testSecret
			c, err := FromMap(tt.vars)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Peers.String(); got != tt.want {
				t.Errorf("peers %s, want %s", got, tt.want)
			}
		})
	}
}

func TestHerdErrorsNameTheVariable(t *testing.T) {
	tests := []struct {
		name     string
		vars     map[string]string
		variable string
		says     string
	}{
		{"too many servers", map[string]string{"HERD_NAME": "herd-0", "HERD_SERVERS": "1025", "HERD_PEER_TEMPLATE": "h:{i}"}, "HERD_SERVERS", "1 to 1024"},
		{"negative servers", map[string]string{"HERD_NAME": "herd-0", "HERD_SERVERS": "-1"}, "HERD_SERVERS", "1 to 1024"},
		{"name without index", map[string]string{"HERD_NAME": "Hill", "HERD_SERVERS": "3", "HERD_PEER_TEMPLATE": "h:1{i}"}, "HERD_NAME", "base-i"},
		{"index too large", map[string]string{"HERD_NAME": "herd-3", "HERD_SERVERS": "3", "HERD_PEER_TEMPLATE": "h:1{i}"}, "HERD_NAME", "0 to 2"},
		{"index with leading zero", map[string]string{"HERD_NAME": "herd-01", "HERD_SERVERS": "3", "HERD_PEER_TEMPLATE": "h:1{i}"}, "HERD_NAME", "base-i"},
		{"no base", map[string]string{"HERD_NAME": "-1", "HERD_SERVERS": "3", "HERD_PEER_TEMPLATE": "h:1{i}"}, "HERD_NAME", "base-i"},
		{"no template", map[string]string{"HERD_NAME": "herd-0", "HERD_SERVERS": "3"}, "HERD_PEER_TEMPLATE", "must be set"},
		{"template without {i}", map[string]string{"HERD_NAME": "herd-0", "HERD_SERVERS": "3", "HERD_PEER_TEMPLATE": "h:12300"}, "HERD_PEER_TEMPLATE", "no {i}"},
		{"template port out of range", map[string]string{"HERD_NAME": "herd-0", "HERD_SERVERS": "12", "HERD_PEER_TEMPLATE": "127.0.0.1:173{i}0"}, "HERD_PEER_TEMPLATE", "server 10"},
		{"template not host:port", map[string]string{"HERD_NAME": "herd-0", "HERD_SERVERS": "3", "HERD_PEER_TEMPLATE": "herd-{i}"}, "HERD_PEER_TEMPLATE", "host:port"},
		{"cert without the others", map[string]string{"HERD_NAME": "Hill", "HERD_PEER_TLS_CERT": "c.pem"}, "HERD_PEER_TLS_KEY", "go together"},
		{"no CA", map[string]string{"HERD_NAME": "Hill", "HERD_PEER_TLS_CERT": "c.pem", "HERD_PEER_TLS_KEY": "k.pem"}, "HERD_PEER_TLS_CA", "go together"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.vars["HERD_PEER_SECRET"] = testSecret
			_, err := FromMap(tt.vars)
			if err == nil || !strings.Contains(err.Error(), tt.variable+":") || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %v, want one naming %s and saying %q", err, tt.variable, tt.says)
			}
		})
	}
}

func TestDerivedPeersNeedASecret(t *testing.T) {
	_, err := FromMap(map[string]string{"HERD_NAME": "herd-0", "HERD_SERVERS": "2", "HERD_PEER_TEMPLATE": "h:1{i}"})
	if err == nil || !strings.Contains(err.Error(), "HERD_PEER_SECRET:") {
		t.Errorf("error %v, want HERD_PEER_SECRET", err)
	}
}

func TestIndex(t *testing.T) {
	tests := []struct {
		name string
		n    int
		base string
		i    int
		ok   bool
	}{
		{"herd-0", 1, "herd", 0, true},
		{"a-b-12", 13, "a-b", 12, true},
		{"a-b-12", 12, "", 0, false},
		{"herd-", 3, "", 0, false},
		{"herd-+1", 3, "", 0, false},
		{"herd-00", 3, "", 0, false},
		{"herd", 3, "", 0, false},
	}
	for _, tt := range tests {
		base, i, ok := Index(tt.name, tt.n)
		if base != tt.base || i != tt.i || ok != tt.ok {
			t.Errorf("Index(%q, %d) = %q, %d, %v", tt.name, tt.n, base, i, ok)
		}
	}
}
