package main

import (
	"context"
	"io"

	"github.com/herdkit/herd/pkg/tools/bench"
)

// benchCmd runs `herd bench MODE`. Its modes, usage, flags and exit
// statuses are package bench's (bench.Run): they are most of its surface
// and tested there, and the floor of `herd bench load -floor` is this
// binary run again as `herd bench floor`, which bench's tests stand in
// for with their own test binary.
func benchCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return bench.Run(ctx, args, stdin, stdout, stderr)
}
