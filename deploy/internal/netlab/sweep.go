//go:build linux

package netlab

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Sweep removes what runs of the tests left, found by Prefix: it kills
// the processes in their namespaces and cgroups, unmounts and removes
// their directories in the temporary directory, and deletes their
// namespaces (the hubs last, which takes the bridges and veths) and
// cgroups. A run that is still going loses its hosts: sweep between runs.
func Sweep() error {
	var errs []error
	names, err := namespaces()
	if err != nil {
		errs = append(errs, err)
	}
	// Hosts before hubs: a hub's veths go with it.
	slices.SortFunc(names, func(a, b string) int {
		return boolInt(strings.HasSuffix(a, "-hub")) - boolInt(strings.HasSuffix(b, "-hub"))
	})
	for _, n := range names {
		h := &Host{Name: n}
		errs = append(errs, KillAll(h.Pids))
	}
	groups := cgroupsNamed(Prefix)
	for _, g := range groups {
		errs = append(errs, RemoveCgroup(g))
	}
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), Prefix+"*"))
	for _, d := range dirs {
		errs = append(errs, Unmount(d), os.RemoveAll(d))
	}
	for _, link := range links() {
		errs = append(errs, ip("link", "del", link))
	}
	for _, n := range names {
		errs = append(errs, ip("netns", "del", n))
	}
	return errors.Join(errs...)
}

// links returns this machine's network interfaces whose names start
// with linkPrefix: the veths to labs' hubs.
func links() []string {
	ifs, _ := net.Interfaces()
	var names []string
	for _, i := range ifs {
		if strings.HasPrefix(i.Name, linkPrefix) {
			names = append(names, i.Name)
		}
	}
	return names
}

// namespaces returns the named network namespaces that start with Prefix.
func namespaces() ([]string, error) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], Prefix) {
			names = append(names, f[0])
		}
	}
	return names, nil
}

// cgroupsNamed returns the top-level cgroups, of any hierarchy, whose
// names start with prefix.
func cgroupsNamed(prefix string) []string {
	var names []string
	for _, pattern := range []string{filepath.Join(cgroupRoot, "*", prefix+"*"), filepath.Join(cgroupRoot, prefix+"*")} {
		dirs, _ := filepath.Glob(pattern)
		for _, d := range dirs {
			names = append(names, filepath.Base(d))
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
