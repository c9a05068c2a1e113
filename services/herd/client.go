package main

import (
	"context"
	"io"

	"github.com/herdkit/herd/pkg/tools/client"
)

// clientCmd runs `herd client`. Its usage, flags and exit statuses are
// package client's (client.Run), where they are tested with the
// exchanges they drive, and where test/ runs the README's examples
// through the same entry point as this command.
func clientCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return client.Run(ctx, args, stdin, stdout, stderr)
}
