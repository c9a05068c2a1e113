// Package e2e holds the end-to-end tests: the classic herd of compose.yaml
// run as five real containers (testcontainers-go), driven over its client
// protocol and observed through its /metrics, through crashes, restarts,
// pauses, network partitions and a neighbour with the wrong secret; and
// compose.yaml itself, checked against the classic topology and run with
// the compose tool.
//
// The tests need a Docker engine and no registry: the image is built FROM
// scratch around a binary compiled on the host. Without an engine they
// skip, unless CI is set, in which case they fail. Run them with
//
//	TESTCONTAINERS_RYUK_DISABLED=true go test -race ./e2e
//
// (TestMain sets that variable too; the reaper's image cannot be pulled
// where there is no registry, so the tests remove what they create
// themselves).
package e2e
