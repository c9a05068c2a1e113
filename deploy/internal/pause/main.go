// Command pause is the process of a pod's sandbox for deploy's kubelet
// test: it holds the pod's namespaces open and waits for SIGTERM or
// SIGINT, then exits 0. It is built static and put alone in an image
// FROM scratch (the registry's pause image cannot be pulled here).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
