package server

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/herdkit/herd/pkg/logging"
	"github.com/herdkit/herd/pkg/metrics"
	"github.com/herdkit/herd/pkg/protocol"
	"github.com/herdkit/herd/pkg/store"
)

// BenchmarkPipelinedIAMAT measures the server's cost per IAMAT with 16
// requests pipelined on each of 8 connections, with the protocol log on
// (JSON, to io.Discard) as in production, or off.
func BenchmarkPipelinedIAMAT(b *testing.B) {
	benchIAMAT(b, 8, 16)
}

// BenchmarkIAMAT measures the server's cost per IAMAT sent alone on one
// connection, each waiting for the reply to the one before (depth 1): a
// read, a store, a write and a log record per request, with the protocol
// log on or off.
func BenchmarkIAMAT(b *testing.B) {
	benchIAMAT(b, 1, 1)
}

// benchIAMAT runs b.N IAMATs over conns connections of a server on a real
// socket, depth of them written together on a connection before their
// replies are read.
func benchIAMAT(b *testing.B, conns, depth int) {
	for _, logged := range []bool{true, false} {
		b.Run(fmt.Sprintf("log=%v", logged), func(b *testing.B) {
			cfg := logging.Config{Level: slog.LevelInfo, Format: "json"}
			if !logged {
				cfg.Level = slog.LevelWarn
			}
			log, closeLog, err := logging.Open(cfg, io.Discard)
			if err != nil {
				b.Fatal(err)
			}
			defer closeLog()
			s := New(Config{Name: "Hill", Addr: "127.0.0.1:0", MaxLine: 4096, MaxConns: 100, MaxConnsPerIP: 100,
				MaxInflight: 16, IdleTimeout: time.Minute, WriteTimeout: time.Minute},
				store.New(), &fakePlaces{}, metrics.New(), log.Logger, log.Lines)
			if err := s.Listen(); err != nil {
				b.Fatal(err)
			}
			go s.Serve()
			defer s.Shutdown(b.Context())
			b.ResetTimer()
			done := make(chan struct{}, conns)
			for c := range conns {
				go func() {
					defer func() { done <- struct{}{} }()
					nc, err := net.Dial("tcp", s.Addr().String())
					if err != nil {
						b.Error(err)
						return
					}
					defer nc.Close()
					rr := protocol.NewReplyReader(nc)
					var req []byte
					for k := range depth {
						req = fmt.Appendf(req, "IAMAT bench-%d-%d +34.068930-118.445127 1621464827.959498503\n", c, k)
					}
					for i := c * depth; i < b.N; i += conns * depth {
						nc.Write(req)
						for range depth {
							if _, err := rr.ReadReply(protocol.LineReply); err != nil {
								b.Error(err)
								return
							}
						}
					}
				}()
			}
			for range conns {
				<-done
			}
		})
	}
}
