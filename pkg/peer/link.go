package peer

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/herdkit/herd/pkg/protocol"
)

// Reasons a link goes down; labels of herd_peer_disconnects_total.
const (
	downEOF      = "eof"      // the neighbour closed the link
	downTimeout  = "timeout"  // nothing read, or a write blocked, for PeerTimeout
	downError    = "error"    // a read or write failed, or a frame was malformed
	downReplaced = "replaced" // a newer or preferred link to the neighbour took over
	downShutdown = "shutdown" // this server is stopping
)

// link is one authenticated connection to a neighbour. Its writer streams
// the store's change log from the neighbour's watermark: first what the
// neighbour missed (reconciliation), then every change as it is stored
// (flooding). Its reader applies the neighbour's records to the store. The
// change log is the outgoing queue, so a slow neighbour costs no memory:
// its writer just falls behind and, if a write blocks for PeerTimeout, the
// link is dropped and the next one resumes from the watermark.
type link struct {
	n         *neighbour
	nc        net.Conn
	br        *bufio.Reader
	remoteInc uint64        // the neighbour's incarnation
	dialled   bool          // this server dialled the link
	clocks    bool          // the neighbour speaks timed pings (clock.go)
	pongs     chan [2]int64 // timed pings to answer, t1 and t2, from reader to writer

	watermark atomic.Uint64 // the last of the neighbour's change numbers received
	lastRead  atomic.Int64  // Unix nanoseconds of the last read that ended a frame
	sync      chan frame    // the neighbour's sync frame, from reader to writer
	synced    chan struct{} // closed once the writer has sent its own sync frame, or given up
	long      []byte        // a frame longer than br's buffer (readLong)
	stop      chan struct{} // closed by close
	done      chan struct{} // closed when run returns
	closeOnce sync.Once
	reason    string // why the link went down, set once by close

	sent      [kinds]prometheus.Counter // by kind
	announced prometheus.Counter        // announcements sent
	writes    prometheus.Counter
	tree      *tree // nil unless the neighbour speaks broadcast trees
	filling   bool  // the neighbour was filling when the link came up (fill.go)
	changes   [numTreeChanges]prometheus.Counter
	backlog   prometheus.Gauge
}

func newLink(n *neighbour, nc net.Conn, br *bufio.Reader, remote hello, dialled bool) *link {
	l := &link{
		n: n, nc: nc, br: br, remoteInc: remote.inc, dialled: dialled, clocks: speaksClock(remote.nonce),
		pongs: make(chan [2]int64, 1),
		sync:  make(chan frame, 1), synced: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{}),
	}
	l.lastRead.Store(time.Now().UnixNano())
	met := n.mgr.metrics
	for k, source := range kindSource {
		l.sent[k] = met.PeerRecordsSent.WithLabelValues(n.name, source)
	}
	l.backlog = met.PeerBacklog.WithLabelValues(n.name)
	l.announced = met.PeerAnnounced.WithLabelValues(n.name)
	l.writes = met.PeerWrites.WithLabelValues(n.name)
	for c, label := range treeChangeLabels {
		l.changes[c] = met.PeerTreeChanges.WithLabelValues(n.name, label)
	}
	if !n.mgr.cfg.floodOnly && speaksTree(remote.nonce) { // both ends speak them
		l.tree = newTree(n.mgr.store)
		l.filling = isFilling(remote.nonce)
	}
	return l
}

// live reports whether the link read a frame within two heartbeats.
func (l *link) live() bool {
	return time.Since(time.Unix(0, l.lastRead.Load())) <= 2*l.n.mgr.cfg.Heartbeat
}

// close shuts the link for a reason; the first reason given wins.
func (l *link) close(reason string) {
	l.closeOnce.Do(func() {
		l.reason = reason
		close(l.stop)
		l.nc.Close()
	})
}

// run sends the sync frame for the watermark held, then runs the reader
// and the writer until either fails; it closes l.done when both are gone.
func (l *link) run() {
	defer close(l.done)
	have := l.watermark.Load()
	var wg sync.WaitGroup
	wg.Go(func() { l.close(l.readLoop()) })
	wg.Go(func() { l.close(l.writeLoop(have)) })
	wg.Wait()
}

// readLoop applies frames until the link fails and returns why.
func (l *link) readLoop() string {
	mgr := l.n.mgr
	in := newInbound(l)
	defer in.flush() // the whole frames read before a failure count
	synced := false
	for {
		read := !protocol.LineBuffered(l.br) // ReadSlice reads from the connection
		if read {
			// About to block: apply what this read brought first, not
			// waiting for the end of a frame still arriving.
			in.flush()
			l.nc.SetReadDeadline(time.Now().Add(mgr.cfg.Timeout))
		}
		line, err := l.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			line, err = l.readLong(line)
		}
		if err != nil {
			return l.readFailure(err)
		}
		if read { // once a read, not once a frame: a read brings hundreds
			l.lastRead.Store(time.Now().UnixNano())
		}
		f, err := parseFrame(line[:len(line)-1])
		if err != nil {
			l.n.log.Warn("malformed frame from neighbour, dropping link", "frame", truncate(line, 80))
			return downError
		}
		if !synced {
			switch {
			case f.kind == framePing && l.tree != nil:
				continue // the neighbour waits for a fill (fill.go)
			case f.kind != frameSync:
				l.n.log.Warn("neighbour did not start with a sync frame, dropping link")
				return downError
			}
			synced = true
			l.sync <- f
			// What this end claims to hold of the neighbour's changes is
			// set when its own sync frame goes.
			select {
			case <-l.synced:
			case <-l.stop:
				return downError
			}
			in.started(f)
			continue
		}
		if err := in.handle(f); err != nil {
			l.n.log.Warn("neighbour broke the peer protocol, dropping link", "err", err)
			return downError
		}
	}
}

// readLong reads the rest of a frame longer than the read buffer, whose
// start the buffer held, into a buffer of its own, up to maxFrame. The
// line it returns is valid until the next read.
func (l *link) readLong(start []byte) ([]byte, error) {
	if cap(l.long) > 4*linkBuffer {
		l.long = nil // a huge frame's buffer is not kept
	}
	l.long = append(l.long[:0], start...)
	for {
		more, err := l.br.ReadSlice('\n')
		l.long = append(l.long, more...)
		switch {
		case len(l.long) > maxFrame:
			return nil, bufio.ErrBufferFull
		case err == nil:
			return l.long, nil
		case !errors.Is(err, bufio.ErrBufferFull):
			return nil, err
		}
	}
}

func (l *link) readFailure(err error) string {
	switch {
	case errors.Is(err, io.EOF):
		return downEOF
	case errors.Is(err, os.ErrDeadlineExceeded):
		return downTimeout
	case errors.Is(err, bufio.ErrBufferFull):
		l.n.log.Warn("frame too long from neighbour, dropping link")
	}
	return downError
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
