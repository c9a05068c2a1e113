package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/herdkit/herd/pkg/logging"
)

// isHelp reports whether args asks for a command's usage.
func isHelp(args []string) bool {
	return len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help")
}

// withLogger runs f with the configured logger and reports its error.
func withLogger(cfg logging.Config, stderr io.Writer, f func(*logging.Log) error) int {
	log, closeLog, err := logging.Open(cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "herd: HERD_LOG_FILE: %v\n", err)
		return 2
	}
	err = f(log)
	if err != nil {
		log.Error("herd stopped", "err", err)
	}
	closeLog()
	if err != nil {
		return 1
	}
	return 0
}

// indent indents every line of a configuration error by two spaces,
// under the line that introduces it.
func indent(err error) string {
	return "  " + strings.ReplaceAll(err.Error(), "\n", "\n  ")
}
