package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/herdkit/herd/internal/testutil"
)

// gateJournal is a journal whose changes become durable when the test
// says so, or never.
type gateJournal struct {
	mu      sync.Mutex
	durable uint64
	moved   chan struct{}
	waits   chan uint64 // each Wait's change number, when set
}

func newGateJournal() *gateJournal {
	return &gateJournal{moved: make(chan struct{}), waits: make(chan uint64, 100)}
}

func (g *gateJournal) Wait(seq uint64, timeout time.Duration) error {
	g.waits <- seq
	deadline := time.After(timeout)
	for {
		g.mu.Lock()
		durable, moved := g.durable, g.moved
		g.mu.Unlock()
		if durable >= seq {
			return nil
		}
		select {
		case <-moved:
		case <-deadline:
			return errors.New("disk full")
		}
	}
}

func (g *gateJournal) advance(seq uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.durable = seq
	close(g.moved)
	g.moved = make(chan struct{})
}

// TestIAMATRepliedOnlyWhenDurable: the AT reply leaves only once the
// journal holds the record; the records are in the store meanwhile.
func TestIAMATRepliedOnlyWhenDurable(t *testing.T) {
	j := newGateJournal()
	ts := newTestServer(t, Config{Journal: j})
	c := dial(t, ts.Addr())
	c.send(kiwi + "\nIAMAT x +1+1 1\n")
	if seq := <-j.waits; seq != 2 {
		t.Fatalf("waited for change %d, want 2 (both records)", seq)
	}
	c.nc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if err := c.rr.Fill(); err == nil || c.rr.Buffered() > 0 {
		t.Fatalf("a reply (%d bytes) before the records are durable", c.rr.Buffered())
	}
	if ts.st.Len() != 2 {
		t.Fatalf("%d records stored", ts.st.Len())
	}
	j.advance(2)
	c.expect(kiwiAT)
	c.expect("AT Hill +1621464827.223371889 x +1+1 1")
}

// TestNotDurableClosesWithoutReply: when the journal cannot write within
// the write time-out, the connection closes with no reply at all (not
// even to the lines that needed nothing written), and the close is
// counted.
func TestNotDurableClosesWithoutReply(t *testing.T) {
	j := newGateJournal()
	ts := newTestServer(t, Config{Journal: j, WriteTimeout: 200 * time.Millisecond})
	c := dial(t, ts.Addr())
	c.send("HELLO\n" + kiwi + "\n")
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	rest, err := io.ReadAll(c.rr)
	if err != nil && !isReset(err) {
		t.Fatal(err)
	}
	if len(rest) > 0 {
		t.Fatalf("replied %q although the record is not durable", rest)
	}
	testutil.Eventually(t, 5*time.Second, testutil.ValueIs(ts.m.ClientDisconnects.WithLabelValues(closeNotDurable), 1))
	// The record is held and served; a later connection is answered once
	// the journal writes again.
	go j.advance(1)
	c2 := dial(t, ts.Addr())
	c2.send("WHATSAT kiwi.cs.ucla.edu 10 1\n")
	c2.expectWhatsat(kiwiAT, 1)
}

// TestShutdownUnderPipelining: a client that keeps pipelining while the
// server shuts down gets a whole reply to every line the server read, the
// stream ends with a FIN, never a reset, and every record stored was
// answered.
func TestShutdownUnderPipelining(t *testing.T) {
	ts := newTestServerLog(t, Config{MaxInflight: 64}, 8)
	const conns = 8
	type result struct {
		replies int
		err     error
		partial string
	}
	results := make(chan result, conns)
	var started sync.WaitGroup
	for k := range conns {
		started.Add(1)
		go func() {
			nc, err := net.Dial("tcp", ts.Addr().String())
			if err != nil {
				results <- result{err: err}
				return
			}
			defer nc.Close()
			go func() { // writes until the server stops reading
				line := []byte("IAMAT c" + string(rune('a'+k)) + " +34.068930-118.445127 1621464827.959498503\n")
				batch := []byte(strings.Repeat(string(line), 64))
				started.Done()
				for {
					if _, err := nc.Write(batch); err != nil {
						return
					}
				}
			}()
			nc.SetReadDeadline(time.Now().Add(20 * time.Second))
			b, err := io.ReadAll(nc)
			r := result{replies: strings.Count(string(b), "\n"), err: err}
			if len(b) > 0 && b[len(b)-1] != '\n' {
				r.partial = string(b[max(0, len(b)-60):])
			}
			results <- r
		}()
	}
	started.Wait()
	testutil.Eventually(t, 5*time.Second, func() error {
		if n := promtest.ToFloat64(ts.m.ClientRequests.WithLabelValues("IAMAT", "ok")); n <= 10_000 {
			return fmt.Errorf("%v IAMATs answered, want over 10,000", n)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	total := 0
	for range conns {
		r := <-results
		if r.err != nil {
			t.Errorf("connection ended with %v, not a clean close", r.err)
		}
		if r.partial != "" {
			t.Errorf("a partial reply at the end: %q", r.partial)
		}
		total += r.replies
	}
	answered := promtest.ToFloat64(ts.m.ClientRequests.WithLabelValues("IAMAT", "ok"))
	if float64(total) != answered {
		t.Errorf("clients got %d replies, the server answered %v lines", total, answered)
	}
}
