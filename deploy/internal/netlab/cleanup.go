//go:build linux

package netlab

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cleanupTimeout bounds how long KillAll and RemoveCgroup wait for
// processes to go: a killed process leaves its cgroup only once its
// parent, or init, has reaped it.
const cleanupTimeout = 30 * time.Second

// KillAll sends SIGKILL to every process that list returns, until it
// returns none or cleanupTimeout passes.
func KillAll(list func() ([]int, error)) error {
	deadline := time.Now().Add(cleanupTimeout)
	for {
		pids, err := list()
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v still there after %v", pids, cleanupTimeout)
		}
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// parsePids reads one process id a line.
func parsePids(s string) ([]int, error) {
	var pids []int
	for _, f := range strings.Fields(s) {
		p, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("process id %q: %w", f, err)
		}
		pids = append(pids, p)
	}
	return pids, nil
}

// cgroupRoot is where the cgroup file systems are mounted.
var cgroupRoot = "/sys/fs/cgroup"

// cgroupDirs returns the directory of cgroup name in every hierarchy that
// has it: /sys/fs/cgroup/<controller>/name on cgroup v1, and
// /sys/fs/cgroup/name on v2.
func cgroupDirs(name string) []string {
	var dirs []string
	candidates, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", name))
	candidates = append(candidates, filepath.Join(cgroupRoot, name))
	for _, d := range candidates {
		if _, err := os.Stat(filepath.Join(d, "cgroup.procs")); err == nil {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// MakeCgroup makes cgroup name at the top of every hierarchy, as the
// kubelet needs its cgroup root to be (it fails on a missing one).
func MakeCgroup(name string) error {
	var dirs []string
	hierarchies, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", "cgroup.procs"))
	hierarchies = append(hierarchies, filepath.Join(cgroupRoot, "cgroup.procs"))
	for _, h := range hierarchies {
		if _, err := os.Stat(h); err == nil {
			dirs = append(dirs, filepath.Join(filepath.Dir(h), name))
		}
	}
	if len(dirs) == 0 {
		return fmt.Errorf("no cgroup hierarchy in %s", cgroupRoot)
	}
	for _, d := range dirs {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	return nil
}

// cgroupPids returns the processes in cgroup name and its descendants.
func cgroupPids(name string) ([]int, error) {
	var pids []int
	for _, d := range cgroupDirs(name) {
		err := filepath.WalkDir(d, func(path string, e fs.DirEntry, err error) error {
			if err != nil || e.Name() != "cgroup.procs" {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			p, err := parsePids(string(b))
			pids = append(pids, p...)
			return err
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	slices.Sort(pids)
	return slices.Compact(pids), nil
}

// RemoveCgroup kills every process in cgroup name (a top-level cgroup of
// every hierarchy, as a container runtime's cgroup parent or a kubelet's
// cgroup root is) and its descendants, and removes them all.
func RemoveCgroup(name string) error {
	if err := KillAll(func() ([]int, error) { return cgroupPids(name) }); err != nil {
		return fmt.Errorf("cgroup %s: %w", name, err)
	}
	var errs []error
	for _, d := range cgroupDirs(name) {
		var dirs []string
		filepath.WalkDir(d, func(path string, e fs.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		// Children first.
		slices.Reverse(dirs)
		for _, dir := range dirs {
			if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// mountsUnder returns the mount points at or under dir, deepest first.
func mountsUnder(mountinfo, dir string) []string {
	var points []string
	sc := bufio.NewScanner(strings.NewReader(mountinfo))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 {
			continue
		}
		p := unescapeMount(f[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			points = append(points, p)
		}
	}
	slices.SortFunc(points, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	return slices.Compact(points)
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Unmount detaches every mount at or under dir, deepest first: what a
// container runtime that was killed leaves mounted (its containers' root
// file systems, network namespaces bound to files).
func Unmount(dir string) error {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range mountsUnder(string(b), filepath.Clean(dir)) {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}
