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
	"github.com/herdkit/herd/pkg/store"
)

// Reasons a link goes down; labels of herd_peer_disconnects_total.
const (
	downEOF      = "eof"      // the neighbour closed the link
	downTimeout  = "timeout"  // nothing read, or a write blocked, for PeerTimeout
	downError    = "error"    // a read or write failed, or a frame was malformed
	downReplaced = "replaced" // a newer or preferred link to the neighbour took over
	downShutdown = "shutdown" // this server is stopping
)

// batchSize bounds the changes read from the store and written per write.
const batchSize = 512

// markDelay is how long a mark frame that would travel alone waits for a
// record frame to carry it. Most changes a link skips came from its own
// neighbour, and under load a mark for each would cost one write per
// change; a watermark late by markDelay only makes a reconnect resend the
// few records the neighbour already holds.
const markDelay = 10 * time.Millisecond

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
	lastRead  atomic.Int64  // Unix nanoseconds of the last frame read
	sync      chan frame    // the neighbour's sync frame, from reader to writer
	stop      chan struct{} // closed by close
	done      chan struct{} // closed when run returns
	closeOnce sync.Once
	reason    string // why the link went down, set once by close

	sent    [kinds]prometheus.Counter // by kind
	backlog prometheus.Gauge
}

func newLink(n *neighbour, nc net.Conn, br *bufio.Reader, remote hello, dialled bool) *link {
	l := &link{
		n: n, nc: nc, br: br, remoteInc: remote.inc, dialled: dialled, clocks: speaksClock(remote.nonce),
		pongs: make(chan [2]int64, 1),
		sync:  make(chan frame, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	l.lastRead.Store(time.Now().UnixNano())
	met := n.mgr.metrics
	for k, source := range kindSource {
		l.sent[k] = met.PeerRecordsSent.WithLabelValues(n.name, source)
	}
	l.backlog = met.PeerBacklog.WithLabelValues(n.name)
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
		if !protocol.LineBuffered(l.br) {
			// About to block: apply what this read brought first, not
			// waiting for the end of a frame still arriving.
			in.flush()
			l.nc.SetReadDeadline(time.Now().Add(mgr.cfg.Timeout))
		}
		line, err := l.br.ReadSlice('\n')
		if err != nil {
			return l.readFailure(err)
		}
		l.lastRead.Store(time.Now().UnixNano())
		f, err := parseFrame(line[:len(line)-1])
		if err != nil {
			l.n.log.Warn("malformed frame from neighbour, dropping link", "frame", truncate(line, 80))
			return downError
		}
		if !synced {
			if f.kind != frameSync {
				l.n.log.Warn("neighbour did not start with a sync frame, dropping link")
				return downError
			}
			synced = true
			l.sync <- f
			continue
		}
		if err := in.handle(f); err != nil {
			l.n.log.Warn("neighbour broke the peer protocol, dropping link", "err", err)
			return downError
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

// writeLoop streams changes to the neighbour until the link fails.
func (l *link) writeLoop(have uint64) string {
	mgr := l.n.mgr
	st := mgr.store
	notify := st.Subscribe()
	defer st.Unsubscribe(notify)
	// Changes up to end are reconciliation, after it flooding. It is taken
	// before our sync frame goes out: the neighbour streams nothing before
	// it gets that frame, so no record of this link is in the range, and
	// the records this link brings are not sent back to it.
	end := st.Seq()
	var buf []byte
	buf = appendSync(buf, l.remoteInc, have)
	if !l.write(buf) {
		return downError
	}
	var peerSync frame
	select {
	case peerSync = <-l.sync:
	case <-mgr.ctx.Done():
		return downShutdown
	case <-l.stop:
		return downError
	}
	// Where to start: after the neighbour's watermark of our changes if it
	// knows this incarnation of ours, from the beginning otherwise.
	out := outbox{from: l.n.id, cursor: peerSync.seq, end: end, reconciling: true}
	if peerSync.inc != mgr.cfg.Incarnation || out.cursor > st.Seq() {
		out.cursor = 0
	}
	var batch []store.Change
	heartbeat := time.NewTicker(mgr.cfg.Heartbeat)
	defer heartbeat.Stop()
	lastWrite := time.Now()
	markTimer := time.NewTimer(markDelay)
	markTimer.Stop()
	defer markTimer.Stop()
	var markDue <-chan time.Time // armed while a mark waits
	for {
		var next uint64
		batch, next = st.Changes(out.cursor, batchSize, batch[:0])
		buf = buf[:0]
		select {
		case p := <-l.pongs:
			// First in the write, so that records do not delay it.
			buf = appendPong(buf, p[0], p[1], mgr.cfg.Now().UnixNano())
		default:
		}
		var flood, reconcile int
		buf, flood, reconcile = out.fill(buf, batch, next)
		if out.markWaits && markDue == nil {
			markTimer.Reset(markDelay)
			markDue = markTimer.C
		}
		if len(buf) > 0 {
			if !l.write(buf) {
				return downTimeout
			}
			lastWrite = time.Now()
			markDue = nil
			markTimer.Stop()
			l.sent[kindFlood].Add(float64(flood))
			l.sent[kindReconcile].Add(float64(reconcile))
		}
		if len(batch) == batchSize {
			l.backlog.Set(float64(st.Seq() - out.cursor))
			continue
		}
		l.backlog.Set(0) // Changes read up to the last change
		select {
		case <-notify:
		case <-markDue:
			markDue, out.markWaits = nil, false
			if !l.write(appendSeq(buf[:0], frameMark, out.cursor)) {
				return downTimeout
			}
			lastWrite = time.Now()
		case p := <-l.pongs:
			if !l.write(appendPong(buf[:0], p[0], p[1], mgr.cfg.Now().UnixNano())) {
				return downTimeout
			}
			lastWrite = time.Now()
		case <-heartbeat.C:
			if l.clocks {
				// Every heartbeat, busy or idle, so that the offset is
				// measured under load too.
				if !l.write(appendPing(buf[:0], mgr.cfg.Now().UnixNano())) {
					return downTimeout
				}
				lastWrite = time.Now()
			} else if time.Since(lastWrite) >= mgr.cfg.Heartbeat {
				if !l.write(append(buf[:0], framePing, '\n')) {
					return downTimeout
				}
				lastWrite = time.Now()
			}
		case <-l.stop:
			return downError
		case <-mgr.ctx.Done():
			return downShutdown
		}
	}
}

// outbox is what a link's writer has told its neighbour of the change
// log, and composes each write.
type outbox struct {
	from        store.Source // the neighbour's: changes it flooded are not sent back
	cursor      uint64       // the last change number the neighbour is told of by the writes so far, or by the mark waiting
	end         uint64       // changes up to end are reconciliation
	reconciling bool         // the D frame has not gone yet
	markWaits   bool         // skipped changes after the last frame sent: a mark waits for company
}

// fill appends to buf, which holds a pong or nothing, the frames for
// batch, the changes after o.cursor up to next, and returns it with the
// records of each kind it holds. A buf it returns non-empty tells the
// neighbour every change up to next, since writing it ends the wait of a
// mark: a mark follows records that leave changes after them skipped, and
// a pong alone while a mark waits. Skipped changes with nothing to write
// set o.markWaits; the writer sends the mark after markDelay unless
// another write goes first.
func (o *outbox) fill(buf []byte, batch []store.Change, next uint64) (_ []byte, flood, reconcile int) {
	last := o.cursor // the last change number the neighbour will have been told of
	for _, c := range batch {
		inRange := c.Seq <= o.end
		// A flooded record is not sent back where it came from: this
		// link's neighbour holds it, or a newer one. Reconciliation sends
		// everything after the watermark, since a neighbour that
		// restarted may have lost what it sent on an earlier link.
		if c.From == o.from && !inRange {
			continue
		}
		kind := byte(frameFlood)
		if inRange {
			kind = frameReconcile
			reconcile++
		} else {
			flood++
		}
		buf = appendRecord(buf, kind, c.Seq, c.Record)
		last = c.Seq
	}
	switch {
	case o.reconciling && next >= o.end:
		buf = appendSeq(buf, frameSynced, next)
		o.reconciling = false
	case last < next && len(buf) > 0, o.markWaits && last == o.cursor && len(buf) > 0:
		buf = appendSeq(buf, frameMark, next)
	case last < next:
		o.markWaits = true
	}
	o.cursor = next
	if len(buf) > 0 {
		o.markWaits = false
	}
	return buf, flood, reconcile
}

// write sends b within PeerTimeout.
func (l *link) write(b []byte) bool {
	l.nc.SetWriteDeadline(time.Now().Add(l.n.mgr.cfg.Timeout))
	_, err := l.nc.Write(b)
	return err == nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
