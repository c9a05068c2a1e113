package main

import (
	"fmt"
	"io"
	"runtime"

	"github.com/herdkit/herd/pkg/metrics"
)

const versionUsage = `usage: herd version

Prints the version, the VCS revision and the Go version of this binary.
`

// versionCmd runs `herd version`.
func versionCmd(args []string, stdout io.Writer) int {
	if isHelp(args) {
		fmt.Fprint(stdout, versionUsage)
		return 0
	}
	version, revision := metrics.Build()
	fmt.Fprintln(stdout, "herd", version, revision, runtime.Version())
	return 0
}
