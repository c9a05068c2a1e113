//go:build linux

// Package netlab makes the hosts of deploy's end-to-end tests on one
// Linux machine: network namespaces, each joined by a veth pair to a
// bridge in a namespace of its own, with an address on a small subnet that
// this machine also reaches through a veth of its own. Processes started
// in a host see only its network; they share the machine's file systems
// and cgroups, which Unmount and RemoveCgroup clean up.
//
// Every namespace, directory and cgroup made through this package has a
// name that starts with Prefix, so that Sweep finds what an interrupted
// run left. It needs root, and iproute2's ip and util-linux's nsenter.
package netlab

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Prefix begins the name of every namespace, directory and cgroup made
// here.
const Prefix = "herdt-"

// Lab is a bridge and the hosts attached to it.
type Lab struct {
	// Name is Prefix followed by the lab's id; the hub namespace, the
	// hosts' namespaces and Dir are named after it.
	Name string
	// Dir is a directory for the hosts' files, removed by Close.
	Dir string
	// Subnet holds the hosts' addresses: .1 is this machine's end, host
	// n is .10+n.
	Subnet netip.Prefix

	hub, link string // the hub's namespace, and this machine's veth
}

// New makes the lab id on subnet (a /24): the hub namespace with its
// bridge, and a veth from this machine to it with the subnet's first
// address. It fails if this machine has that address already, as it does
// when an interrupted run's lab is still there.
func New(id string, subnet netip.Prefix) (*Lab, error) {
	if len(id) > 8 {
		return nil, fmt.Errorf("lab id %q: at most 8 characters (interface names are at most 15)", id)
	}
	l := &Lab{Name: Prefix + id, Subnet: subnet.Masked(), hub: Prefix + id + "-hub", link: linkPrefix + id + "r"}
	if taken, err := hasAddr(l.addr(1)); err != nil || taken {
		return nil, fmt.Errorf("address %s is taken on this machine (a lab left by an interrupted run? %s): %v", l.addr(1), SweepHint, err)
	}
	dir, err := os.MkdirTemp("", l.Name+"-")
	if err != nil {
		return nil, err
	}
	l.Dir = dir
	err = ipAll(
		[]string{"netns", "add", l.hub},
		[]string{"-n", l.hub, "link", "set", "lo", "up"},
		[]string{"-n", l.hub, "link", "add", "br0", "type", "bridge"},
		[]string{"-n", l.hub, "link", "set", "br0", "up"},
		[]string{"link", "add", l.link, "type", "veth", "peer", "name", "up0", "netns", l.hub},
		[]string{"-n", l.hub, "link", "set", "up0", "master", "br0", "up"},
		[]string{"addr", "add", l.prefix(1), "dev", l.link},
		[]string{"link", "set", l.link, "up"},
	)
	if err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return l, nil
}

// linkPrefix begins the names of the veths on this machine's side, which
// have no room for Prefix's dash.
const linkPrefix = "herdt"

// SweepHint says how to remove what an interrupted run left.
const SweepHint = "(cd deploy && go run ./internal/netlab/sweep) removes it"

// HostAddr is this machine's address on the lab's subnet.
func (l *Lab) HostAddr() netip.Addr { return l.addr(1) }

func (l *Lab) addr(n int) netip.Addr {
	a := l.Subnet.Addr().As4()
	a[3] = byte(n)
	return netip.AddrFrom4(a)
}

func (l *Lab) prefix(n int) string {
	return netip.PrefixFrom(l.addr(n), l.Subnet.Bits()).String()
}

// Close deletes the hub namespace, which takes the bridge and every veth
// with it, and the lab's directory after unmounting what is mounted in
// it. Hosts must be closed first.
func (l *Lab) Close() error {
	var errs []error
	// This machine's end first: the hub's devices go some time after
	// the hub.
	if err := ip("link", "del", l.link); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
		errs = append(errs, err)
	}
	if err := ip("netns", "del", l.hub); err != nil && !strings.Contains(err.Error(), "No such file") {
		errs = append(errs, err)
	}
	if l.Dir != "" {
		errs = append(errs, Unmount(l.Dir), os.RemoveAll(l.Dir))
	}
	return errors.Join(errs...)
}

// Host is a network namespace on the lab's bridge.
type Host struct {
	// Name is the namespace's name, <lab>-<n>.
	Name string
	// Addr is the host's address on the lab's subnet.
	Addr netip.Addr

	lab    *Lab
	link   string    // the hub's end of the host's veth
	holder *exec.Cmd // holds the mount namespace Isolate makes
}

// Host returns host n of the lab (0 to 200), not yet up.
func (l *Lab) Host(n int) *Host {
	return &Host{Name: fmt.Sprintf("%s-%d", l.Name, n), Addr: l.addr(10 + n), lab: l,
		link: fmt.Sprintf("%sh%d", strings.TrimSuffix(l.link, "r"), n)}
}

// Up makes the host's namespace, with its loopback and an eth0 on the
// lab's bridge. It has no default route: it reaches the lab's subnet and
// nothing else, so that a look-up of an outside name fails at once.
func (h *Host) Up() error {
	l := h.lab
	err := ipAll(
		[]string{"netns", "add", h.Name},
		[]string{"-n", h.Name, "link", "set", "lo", "up"},
		[]string{"-n", l.hub, "link", "add", h.link, "type", "veth", "peer", "name", "eth0", "netns", h.Name},
		[]string{"-n", l.hub, "link", "set", h.link, "master", "br0", "up"},
		[]string{"-n", h.Name, "addr", "add", l.prefix(int(h.Addr.As4()[3])), "dev", "eth0"},
		[]string{"-n", h.Name, "link", "set", "eth0", "up"},
	)
	if err != nil {
		return errors.Join(err, h.Down())
	}
	return nil
}

// Down kills every process left in the host's namespace and deletes it
// with its veth, as a machine's power going off would. The veth is
// deleted first: a namespace's devices go some time after it is deleted,
// and the next Up makes a veth of the same name.
func (h *Host) Down() error {
	var errs []error
	if err := KillAll(h.Pids); err != nil {
		errs = append(errs, err)
	}
	h.holder = nil
	if err := ip("-n", h.lab.hub, "link", "del", h.link); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
		errs = append(errs, err)
	}
	if err := ip("netns", "del", h.Name); err != nil && !strings.Contains(err.Error(), "No such file") {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Route sends this machine's packets for p through the host: a subnet
// behind it, such as its pods'. The route goes with the lab.
func (h *Host) Route(p netip.Prefix) error {
	return ip("route", "add", p.String(), "via", h.Addr.String(), "dev", h.lab.link)
}

// Command returns a command that runs name with args in the host's
// network namespace, and its mount namespace once Isolate has made one.
// Otherwise only the network is the host's: nsenter keeps this machine's
// mounts, where `ip netns exec` would mount a new /sys and hide the cgroup
// file systems that container runtimes need. name and the paths in args
// must be absolute: entering a mount namespace starts at its root.
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	if h.holder != nil {
		target := strconv.Itoa(h.holder.Process.Pid)
		return exec.Command("nsenter", append([]string{"--target", target, "--net", "--mount", name}, args...)...)
	}
	return exec.Command("nsenter", append([]string{"--net=" + filepath.Join("/run/netns", h.Name), name}, args...)...)
}

// Isolate gives the host a mount namespace of its own, in which each
// directory of this machine in binds (such as /var/lib) has another
// (the test's) mounted over it: what programs on the host write there
// with no option to put it elsewhere (the kubelet's device-plugin socket
// in /var/lib/kubelet, its /var/log/containers, the CNI's result cache,
// containerd's shim sockets in /run/containerd) lands in the test's
// directory, and the mounts they make stay in the host. A process in the
// host's network namespace holds the mount namespace, so Down ends it.
func (h *Host) Isolate(binds map[string]string) error {
	h.holder = exec.Command("nsenter", "--net="+filepath.Join("/run/netns", h.Name),
		"unshare", "--mount", "--propagation", "private", "sleep", "infinity")
	if err := h.holder.Start(); err != nil {
		h.holder = nil
		return err
	}
	go h.holder.Wait()
	if err := waitNewMountNamespace(h.holder.Process.Pid); err != nil {
		return err
	}
	target := strconv.Itoa(h.holder.Process.Pid)
	for dst, src := range binds {
		out, err := exec.Command("nsenter", "--target", target, "--mount", "mount", "--bind", src, dst).CombinedOutput()
		if err != nil {
			return fmt.Errorf("mount --bind %s %s in %s: %v: %s", src, dst, h.Name, err, out)
		}
	}
	return nil
}

// waitNewMountNamespace waits until process pid is in a mount namespace
// other than this process's: until unshare has made it.
func waitNewMountNamespace(pid int) error {
	self, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		return err
	}
	deadline := time.Now().Add(cleanupTimeout)
	for {
		ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid))
		if err == nil && ns != self {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process %d is not in a mount namespace of its own after %v (%v)", pid, cleanupTimeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Pids returns the processes in the host's network namespace.
func (h *Host) Pids() ([]int, error) {
	out, err := exec.Command("ip", "netns", "pids", h.Name).Output()
	if err != nil {
		if _, statErr := os.Stat(filepath.Join("/run/netns", h.Name)); os.IsNotExist(statErr) {
			return nil, nil
		}
		return nil, fmt.Errorf("ip netns pids %s: %w", h.Name, err)
	}
	return parsePids(string(out))
}

// hasAddr reports whether an interface of this machine has addr.
func hasAddr(addr netip.Addr) (bool, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false, err
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr() == addr {
			return true, nil
		}
	}
	return false, nil
}

// ip runs ip with args; the error holds what it wrote.
func ip(args ...string) error {
	var stderr bytes.Buffer
	cmd := exec.Command("ip", args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// ipAll runs ip with each of cmds in turn, up to the first that fails.
func ipAll(cmds ...[]string) error {
	for _, c := range cmds {
		if err := ip(c...); err != nil {
			return err
		}
	}
	return nil
}
