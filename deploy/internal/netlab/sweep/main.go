//go:build linux

// Command sweep removes the network namespaces, processes, cgroups and
// directories that an interrupted run of deploy's end-to-end tests left
// (netlab.Sweep). .ci/run runs it before and after the tests.
package main

import (
	"fmt"
	"os"

	"github.com/herdkit/herd/deploy/internal/netlab"
)

func main() {
	if err := netlab.Sweep(); err != nil {
		fmt.Fprintln(os.Stderr, "sweep:", err)
		os.Exit(1)
	}
}
