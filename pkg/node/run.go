package node

import (
	"context"
	"fmt"
	"time"

	"github.com/herdkit/herd/pkg/config"
	"github.com/herdkit/herd/pkg/logging"
)

// Serve runs one node configured by cfg until ctx is done, then shuts it
// down within cfg.ShutdownTimeout: `herd serve`.
func Serve(ctx context.Context, cfg config.Config, log *logging.Log) error {
	if cfg.PeerSecret == config.DevPeerSecret {
		log.Warn("HERD_PEER_SECRET is the development default; set a secret of your own outside development")
	}
	n, err := New(cfg, log)
	if err != nil {
		return err
	}
	if err := n.Start(); err != nil {
		return err
	}
	return Wait(ctx, cfg.ShutdownTimeout, n)
}

// Wait runs until ctx is done or one of the started nodes fails, then
// shuts them all down within timeout, and returns the failure or the
// first error of a shutdown. Serve waits for its one node this way, and
// `herd local` for the nodes it runs in one process.
func Wait(ctx context.Context, timeout time.Duration, nodes ...*Node) error {
	errs := make(chan error, len(nodes))
	for _, n := range nodes {
		go func() {
			select {
			case err := <-n.Err():
				errs <- err
			case <-ctx.Done():
			}
		}()
	}
	var failure error
	select {
	case <-ctx.Done():
	case failure = <-errs:
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, n := range nodes {
		if err := n.Shutdown(sctx); err != nil && failure == nil {
			failure = fmt.Errorf("shutdown: %w", err)
		}
	}
	return failure
}
