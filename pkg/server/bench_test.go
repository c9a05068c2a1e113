package server

import (
	"bytes"
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

// BenchmarkConnReadLoop measures a connection's reader alone, in the
// benchmark's goroutine, without a socket or a scheduler between client
// and server: the cost per IAMAT of reading, parsing, storing, answering
// and logging, 16 to a read or one, with the protocol log on (JSON, to
// io.Discard) or off. The socket benchmarks above add the kernel's and
// the scheduler's costs, and their noise on a shared machine.
func BenchmarkConnReadLoop(b *testing.B) {
	for _, depth := range []int{16, 1} {
		for _, logged := range []bool{true, false} {
			b.Run(fmt.Sprintf("depth=%d/log=%v", depth, logged), func(b *testing.B) {
				cfg := logging.Config{Level: slog.LevelInfo, Format: "json"}
				if !logged {
					cfg.Level = slog.LevelWarn
				}
				log, closeLog, err := logging.Open(cfg, io.Discard)
				if err != nil {
					b.Fatal(err)
				}
				defer closeLog()
				s := New(Config{Name: "Hill", MaxLine: 4096, MaxConns: 100, MaxConnsPerIP: 100,
					MaxInflight: 16, IdleTimeout: time.Minute, WriteTimeout: time.Minute},
					store.New(), &fakePlaces{}, metrics.New(), log.Logger, log.Lines)
				defer s.Shutdown(b.Context())
				nc := &repeatConn{left: (b.N + depth - 1) / depth}
				for k := range depth {
					nc.req = fmt.Appendf(nc.req, "IAMAT bench-%d +34.068930-118.445127 1621464827.959498503\n", k)
				}
				c := s.newConn(nc)
				if refused := s.admit(c); refused != "" {
					b.Fatal(refused)
				}
				b.ResetTimer()
				c.serve()
				b.StopTimer()
				if nc.replies != nc.sent {
					b.Fatalf("%d replies to %d lines", nc.replies, nc.sent)
				}
			})
		}
	}
}

// repeatConn is a client connection that sends req, left times, one send
// a read, and takes every reply; it sets no deadline.
type repeatConn struct {
	req           []byte
	left          int
	sent, replies int // lines sent, replies taken
}

func (r *repeatConn) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	r.left--
	r.sent += bytes.Count(r.req, []byte("\n"))
	return copy(p, r.req), nil
}

func (r *repeatConn) Write(p []byte) (int, error) {
	r.replies += bytes.Count(p, []byte("\n"))
	return len(p), nil
}

func (r *repeatConn) Close() error                     { return nil }
func (r *repeatConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (r *repeatConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2} }
func (r *repeatConn) SetDeadline(time.Time) error      { return nil }
func (r *repeatConn) SetReadDeadline(time.Time) error  { return nil }
func (r *repeatConn) SetWriteDeadline(time.Time) error { return nil }
