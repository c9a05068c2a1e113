package main

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/herdkit/herd/pkg/journal"
)

const journalUsage = `usage: herd journal check DIR | herd journal repair DIR

check prints what a data directory holds: exit 0 whole, 1 damaged, 2 error.
repair keeps what is valid, so that a node without neighbours can start
again. Both refuse while a node uses DIR.
`

// journalCmd runs `herd journal check|repair DIR`. Both take the data
// directory's lock, so they refuse while a node runs.
func journalCmd(args []string, stdout, stderr io.Writer) int {
	if isHelp(args) {
		fmt.Fprint(stdout, journalUsage)
		return 0
	}
	if len(args) != 2 || (args[0] != "check" && args[0] != "repair") {
		fmt.Fprint(stderr, journalUsage)
		return 2
	}
	var rep journal.Report
	var err error
	if args[0] == "check" {
		rep, err = journal.Check(args[1])
	} else {
		rep, err = journal.Repair(args[1], slog.New(slog.NewTextHandler(stderr, nil)))
	}
	if err != nil {
		fmt.Fprintf(stderr, "herd journal %s: %v\n", args[0], err)
		return 2
	}
	rep.Print(stdout)
	if !rep.Whole() {
		return 1
	}
	return 0
}
