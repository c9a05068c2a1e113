//go:build linux

package netlab

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParsePids(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []int
		ok   bool
	}{
		{"", nil, true},
		{"12\n345\n", []int{12, 345}, true},
		{"12 x\n", nil, false},
	} {
		got, err := parsePids(c.in)
		if (err == nil) != c.ok || !slices.Equal(got, c.want) {
			t.Errorf("parsePids(%q) = %v, %v", c.in, got, err)
		}
	}
}

func TestMountsUnder(t *testing.T) {
	const mountinfo = `22 1 0:21 / / rw - ext4 /dev/vda rw
40 22 0:40 / /tmp/herdt-1/e0/exec/netns/1-abc rw - nsfs nsfs rw
41 22 0:41 / /tmp/herdt-1/e0/data/overlay2/x/merged rw - overlay overlay rw
42 22 0:42 / /tmp/herdt-10 rw - tmpfs tmpfs rw
43 22 0:43 / /tmp/herdt-1/with\040space rw - tmpfs tmpfs rw
44 22 0:44 / /tmp/herdt-1 rw - tmpfs tmpfs rw
`
	got := mountsUnder(mountinfo, "/tmp/herdt-1")
	want := []string{
		"/tmp/herdt-1/e0/data/overlay2/x/merged",
		"/tmp/herdt-1/e0/exec/netns/1-abc",
		"/tmp/herdt-1/with space",
		"/tmp/herdt-1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("mountsUnder = %q\nwant %q (deepest first, not /tmp/herdt-10)", got, want)
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{
		`/a/b`:          "/a/b",
		`/a\040b`:       "/a b",
		`/a\011b\134c`:  "/a\tb\\c",
		`/trailing\04`:  `/trailing\04`,
		`/not\999octal`: `/not\999octal`,
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

// fakeCgroups points cgroupRoot at a directory laid out as cgroup v1
// hierarchies (cpu, memory) for the duration of t.
func fakeCgroups(t *testing.T, procs map[string]string) {
	t.Helper()
	root := t.TempDir()
	old := cgroupRoot
	cgroupRoot = root
	t.Cleanup(func() { cgroupRoot = old })
	for path, pids := range procs {
		dir := filepath.Join(root, path)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(pids), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCgroupPids(t *testing.T) {
	fakeCgroups(t, map[string]string{
		"cpu/herdt-1":                 "",
		"cpu/herdt-1/kubepods/pod1":   "10\n11\n",
		"memory/herdt-1":              "",
		"memory/herdt-1/kubepods/pod": "11\n12\n",
		"memory/herdt-2":              "99\n",
	})
	got, err := cgroupPids("herdt-1")
	if err != nil || !slices.Equal(got, []int{10, 11, 12}) {
		t.Errorf("cgroupPids = %v, %v; want 10, 11, 12 once each", got, err)
	}
	if got := cgroupsNamed("herdt-"); !slices.Equal(got, []string{"herdt-1", "herdt-2"}) {
		t.Errorf("cgroupsNamed = %v", got)
	}
	if got, err := cgroupPids("herdt-3"); err != nil || len(got) != 0 {
		t.Errorf("no such cgroup: %v, %v", got, err)
	}
}

func TestMakeCgroup(t *testing.T) {
	fakeCgroups(t, map[string]string{"cpu": "1\n", "memory": "1\n", "unified": "1\n"})
	if err := os.Mkdir(filepath.Join(cgroupRoot, "not-a-hierarchy"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := MakeCgroup("herdt-k"); err != nil {
		t.Fatal(err)
	}
	if err := MakeCgroup("herdt-k"); err != nil {
		t.Errorf("again: %v", err)
	}
	got, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", "herdt-k"))
	for i := range got {
		got[i], _ = filepath.Rel(cgroupRoot, got[i])
	}
	if want := []string{"cpu/herdt-k", "memory/herdt-k", "unified/herdt-k"}; !slices.Equal(got, want) {
		t.Errorf("made %v, want %v", got, want)
	}
	fakeCgroups(t, nil)
	if err := MakeCgroup("herdt-k"); err == nil {
		t.Error("no hierarchy: no error")
	}
}

func TestLabNames(t *testing.T) {
	l := &Lab{Name: "herdt-ab12", Subnet: netip.MustParsePrefix("10.213.0.0/24"), hub: "herdt-ab12-hub", link: "herdtab12r"}
	if l.HostAddr().String() != "10.213.0.1" || l.prefix(1) != "10.213.0.1/24" {
		t.Errorf("this machine's end: %s, %s", l.HostAddr(), l.prefix(1))
	}
	h := l.Host(2)
	if h.Name != "herdt-ab12-2" || h.Addr.String() != "10.213.0.12" || h.link != "herdtab12h2" {
		t.Errorf("host 2: %+v", h)
	}
	if _, err := New("123456789", l.Subnet); err == nil || !strings.Contains(err.Error(), "at most 8") {
		t.Errorf("a long id: %v", err)
	}
}

// TestLab makes a lab with a host, runs a process in it, and removes
// both; it needs root.
func TestLab(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("making network namespaces needs root")
	}
	l, err := New("unit", netip.MustParsePrefix("10.219.0.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	h := l.Host(0)
	// Down and Close again do nothing, once the test has checked them.
	t.Cleanup(func() { h.Down(); l.Close() })
	if err := h.Up(); err != nil {
		t.Fatal(err)
	}
	out, err := h.Command("ip", "-br", "addr", "show", "eth0").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "10.219.0.10/24") {
		t.Errorf("eth0 in the host: %s, %v", out, err)
	}
	// The host reaches this machine's end of the lab, and nothing else.
	if out, err := h.Command("ip", "route", "get", l.HostAddr().String()).CombinedOutput(); err != nil {
		t.Errorf("route to this machine: %s, %v", out, err)
	}
	if out, err := h.Command("ip", "route", "get", "192.0.2.99").CombinedOutput(); err == nil {
		t.Errorf("route outside the lab: %s", out)
	}
	// Isolated, what the host writes in /var/lib lands in the test's
	// directory.
	varLib := filepath.Join(l.Dir, "var-lib")
	if err := os.Mkdir(varLib, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := h.Isolate(map[string]string{"/var/lib": varLib}); err != nil {
		t.Fatal(err)
	}
	probe := "herdt-unit-probe"
	if out, err := h.Command("/usr/bin/touch", "/var/lib/"+probe).CombinedOutput(); err != nil {
		t.Fatalf("touch in the host: %s, %v", out, err)
	}
	if _, err := os.Stat(filepath.Join(varLib, probe)); err != nil {
		t.Errorf("the host's /var/lib/%s is not in the test's directory: %v", probe, err)
	}
	if _, err := os.Stat(filepath.Join("/var/lib", probe)); !os.IsNotExist(err) {
		os.Remove(filepath.Join("/var/lib", probe))
		t.Errorf("the host wrote this machine's /var/lib: %v", err)
	}
	sleep := h.Command("sleep", "600")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	go sleep.Wait()
	// nsenter enters the namespaces after it starts, then runs sleep.
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids, err := h.Pids()
		if err == nil && slices.Contains(pids, sleep.Process.Pid) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Pids = %v, %v; want %d among them", pids, err, sleep.Process.Pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := h.Down(); err != nil {
		t.Error(err)
	}
	if pids, err := h.Pids(); err != nil || len(pids) != 0 {
		t.Errorf("after Down: %v, %v", pids, err)
	}
	if err := l.Close(); err != nil {
		t.Error(err)
	}
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), l.Name) {
		t.Errorf("namespaces left: %s", out)
	}
	if taken, _ := hasAddr(l.HostAddr()); taken {
		t.Error("this machine still has the lab's address")
	}
	if _, err := os.Stat(l.Dir); !os.IsNotExist(err) {
		t.Errorf("the lab's directory: %v", err)
	}
}

// TestDialIn dials from a host's namespace and from this process's, to a
// listener of this machine's; it needs root.
func TestDialIn(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("making network namespaces needs root")
	}
	l, err := New("dial", netip.MustParsePrefix("10.219.1.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	h := l.Host(0)
	t.Cleanup(func() { h.Down(); l.Close() })
	if err := h.Up(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	hostNS := filepath.Join("/run/netns", h.Name)
	for _, tc := range []struct {
		name, ns, addr string
		from           string // the connection's local address; "" when it fails
	}{
		{"the host, to this machine's end of the lab", hostNS, net.JoinHostPort(l.HostAddr().String(), port), h.Addr.String()},
		{"the host, to its own loopback", hostNS, net.JoinHostPort("127.0.0.1", port), ""},
		{"this process's namespace", "/proc/self/ns/net", net.JoinHostPort("127.0.0.1", port), "127.0.0.1"},
		{"no namespace", filepath.Join(l.Dir, "none"), net.JoinHostPort("127.0.0.1", port), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := DialIn(tc.ns, tc.addr, 5*time.Second)
			if tc.from == "" {
				if err == nil {
					c.Close()
					t.Fatalf("DialIn(%s, %s) connected from %s, want an error", tc.ns, tc.addr, c.LocalAddr())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if from := c.LocalAddr().(*net.TCPAddr).IP.String(); from != tc.from {
				t.Errorf("connected from %s, want %s", from, tc.from)
			}
		})
	}
	// This goroutine's thread never moved.
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", port), 5*time.Second)
	if err != nil {
		t.Fatalf("after DialIn, a dial from here: %v", err)
	}
	c.Close()
}

func TestFrameAddrs(t *testing.T) {
	frame := func(ethertype uint16, ip []byte) []byte {
		f := append(make([]byte, 12), byte(ethertype>>8), byte(ethertype))
		return append(f, ip...)
	}
	ipv4 := func(src, dst string) []byte {
		h := make([]byte, 20)
		h[0] = 0x45
		s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
		copy(h[12:], s[:])
		copy(h[16:], d[:])
		return h
	}
	for _, tc := range []struct {
		name     string
		frame    []byte
		src, dst string // "" when not IPv4
	}{
		{"IPv4", frame(0x0800, ipv4("10.213.0.10", "10.213.0.12")), "10.213.0.10", "10.213.0.12"},
		{"IPv4 with a payload", frame(0x0800, append(ipv4("10.213.0.1", "10.213.0.11"), "IAMAT"...)), "10.213.0.1", "10.213.0.11"},
		{"ARP", frame(0x0806, ipv4("10.213.0.10", "10.213.0.12")), "", ""},
		{"IPv6", frame(0x86dd, make([]byte, 40)), "", ""},
		{"an IPv4 type with another version", frame(0x0800, append([]byte{0x65}, make([]byte, 39)...)), "", ""},
		{"short", frame(0x0800, ipv4("10.213.0.10", "10.213.0.12"))[:30], "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, dst, ok := FrameAddrs(tc.frame)
			if tc.src == "" {
				if ok {
					t.Errorf("FrameAddrs = %s, %s, true; want not IPv4", src, dst)
				}
				return
			}
			if !ok || src.String() != tc.src || dst.String() != tc.dst {
				t.Errorf("FrameAddrs = %s, %s, %v; want %s, %s", src, dst, ok, tc.src, tc.dst)
			}
		})
	}
}

// TestCapture records what crosses a lab's bridge while a host sends
// this machine a line; it needs root.
func TestCapture(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("making network namespaces needs root")
	}
	l, err := New("cap", netip.MustParsePrefix("10.219.2.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	h := l.Host(0)
	t.Cleanup(func() { h.Down(); l.Close() })
	if err := h.Up(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(l.HostAddr().String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		b := make([]byte, 64)
		n, _ := c.Read(b)
		got <- string(b[:n])
	}()
	c, err := l.Capture()
	if err != nil {
		t.Fatal(err)
	}
	const needle = "herdt-capture-needle"
	conn, err := DialIn(filepath.Join("/run/netns", h.Name), ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte(needle))
	conn.Close()
	if s := <-got; s != needle {
		t.Fatalf("this machine read %q", s)
	}
	frames, err := c.Stop()
	if err != nil {
		t.Fatal(err)
	}
	var seen int
	for _, f := range frames {
		if src, dst, ok := FrameAddrs(f); ok && src == h.Addr && dst == l.HostAddr() && strings.Contains(string(f), needle) {
			seen++
		}
	}
	if seen == 0 {
		t.Errorf("none of %d frames carries %q from %s to %s", len(frames), needle, h.Addr, l.HostAddr())
	}
	if again, err := c.Stop(); err != nil || len(again) != len(frames) {
		t.Errorf("Stop again: %d frames, %v; want the %d of the first", len(again), err, len(frames))
	}
}
