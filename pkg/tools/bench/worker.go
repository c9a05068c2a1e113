package bench

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/herdkit/herd/pkg/protocol"
)

// maxBatch bounds the requests of one write in the open loop, when a late
// sender catches up with its schedule.
const maxBatch = 1024

var (
	errAborted   = errors.New("closed at the end of the run")
	errMalformed = errors.New("malformed reply")
	errClosed    = errors.New("server closed the connection")
)

// worker drives one connection and keeps its own results, merged when the
// run ends, so that nothing is shared per request.
type worker struct {
	p    *plan
	id   int64
	conn *net.TCPConn
	gen  *generator
	// quota is this connection's share of cfg.N, or -1 for no limit.
	quota int64

	// Written by the sender only.
	sent     [2][2]int64             // [phase][kind]
	deadline time.Time               // the write deadline last set
	lag      *hdrhistogram.Histogram // open loop: due time to write, of measured requests, µs

	// Written by the receiver only.
	recv, invalid [2][2]int64
	malformed     int64
	hist          *hdrhistogram.Histogram // valid replies to measured requests, µs
	lastReplyNs   int64                   // when the last measured reply came, since base

	// The first error ends the connection; err is read once both sides
	// are done.
	failOnce sync.Once
	err      error
	dead     chan struct{}

	// For the progress line.
	liveSent, liveRecv, liveErr atomic.Int64
}

func newWorker(p *plan, id int, conn *net.TCPConn) *worker {
	w := &worker{
		p:     p,
		id:    int64(id),
		conn:  conn,
		gen:   newGenerator(id, p.cfg.Conns, p.cfg, p.d),
		quota: -1,
		hist:  newHistogram(),
		dead:  make(chan struct{}),
	}
	if p.cfg.Rate > 0 {
		w.lag = newHistogram()
	}
	if n := p.cfg.N; n > 0 {
		c := int64(p.cfg.Conns)
		w.quota = n / c
		if w.id < n%c {
			w.quota++
		}
	}
	return w
}

// fail ends the connection with its first error.
func (w *worker) fail(err error) {
	w.failOnce.Do(func() {
		if w.p.aborted.Load() {
			err = errAborted
		}
		w.err = err
		close(w.dead)
		w.conn.Close()
	})
}

// write writes buf, with a write deadline moved as the reader's is.
func (w *worker) write(buf []byte, now time.Time) error {
	t := w.p.cfg.Timeout
	if w.deadline.Sub(now) < t-t/10 {
		w.deadline = now.Add(t)
		if err := w.conn.SetWriteDeadline(w.deadline); err != nil {
			return err
		}
	}
	_, err := w.conn.Write(buf)
	return err
}

// reply accounts for a complete reply to a request of kind k sent (or
// scheduled) at sentNs and received at recvNs.
func (w *worker) reply(k kind, sentNs, recvNs int64, r protocol.ReplyKind) {
	ph := w.p.phaseOf(sentNs)
	w.recv[ph][k]++
	switch r {
	case protocol.ReplyAT:
		if ph == measured {
			record(w.hist, recvNs-sentNs)
		}
	case protocol.ReplyInvalid:
		w.invalid[ph][k]++
	case protocol.ReplyMalformed:
		w.malformed++
	}
	if ph == measured {
		w.lastReplyNs = recvNs
	}
}

// closedLoop keeps cfg.Pipeline requests outstanding: it writes all that
// are missing in one write, reads what has arrived, and starts over. One
// goroutine does both, so a connection costs no synchronisation at all.
func (w *worker) closedLoop() {
	p, g := w.p, w.gen
	depth := p.cfg.Pipeline
	sentAt := make([]int64, depth) // ring of the outstanding requests' send times, oldest at head
	head, outstanding := 0, 0
	var k, rk, measuredSent int64 // requests written, replies read, measured requests written
	buf := make([]byte, 0, depth*128)
	lr := g.d.newReader(w.conn, p.cfg.Timeout)
	// finished reports whether there is nothing more to send.
	finished := func(ns int64) bool {
		return p.stop.Load() || (p.endNs > 0 && ns >= p.endNs) ||
			(p.phaseOf(ns) == measured && w.quota >= 0 && measuredSent >= w.quota)
	}
	for {
		now := time.Now()
		ns := int64(now.Sub(p.base))
		ph := p.phaseOf(ns)
		n := int64(depth - outstanding)
		switch {
		case finished(ns):
			n = 0
		case ph == measured && w.quota >= 0:
			n = min(n, w.quota-measuredSent)
		}
		if n > 0 {
			g.setTime(now.UnixNano())
			buf = buf[:0]
			for range n {
				w.sent[ph][g.kindOf(k)]++
				buf = g.appendRequest(buf, k)
				k++
				sentAt[(head+outstanding)%depth] = ns
				outstanding++
			}
			if ph == measured {
				measuredSent += n
			}
			w.liveSent.Add(n)
			if err := w.write(buf, now); err != nil {
				w.fail(err)
				return
			}
		}
		if outstanding == 0 {
			return
		}

		err := lr.fill(now)
		recvNs := int64(time.Since(p.base))
		var got, bad int64
		for {
			r, _, ok := lr.next(g.kindOf(rk))
			if !ok {
				break
			}
			w.reply(g.kindOf(rk), sentAt[head], recvNs, r)
			head = (head + 1) % depth
			outstanding--
			rk++
			got++
			if r != protocol.ReplyAT {
				bad++
			}
			if r == protocol.ReplyMalformed {
				err = errMalformed
				break
			}
		}
		w.liveRecv.Add(got)
		w.liveErr.Add(bad)
		if err != nil {
			// An error once every reply is in and nothing is left to send
			// (the server closing, say) ends the connection cleanly.
			if outstanding > 0 || !finished(recvNs) {
				w.fail(readError(err))
			}
			return
		}
	}
}

// openLoop sends on the schedule while a second goroutine reads: request
// k of connection i is due at (i + k·conns) / rate seconds, so the
// connections together follow one constant-rate schedule. The receiver
// computes a request's due time from its number; nothing but counters is
// shared.
func (w *worker) openLoop() {
	var written atomic.Int64 // requests written
	var replied atomic.Int64 // replies read
	var final atomic.Int64   // requests written in all, once the sender is done
	final.Store(-1)
	received := make(chan struct{})
	go func() {
		defer close(received)
		w.receiveOpen(&written, &replied, &final)
	}()
	w.sendOpen(&written)
	f := written.Load()
	final.Store(f)
	select {
	case <-w.dead:
	default:
		// Half-close: the server answers what it has and closes its side.
		// If every reply is already in, wake the receiver at once instead.
		if replied.Load() >= f {
			_ = w.conn.CloseRead()
		} else if err := w.conn.CloseWrite(); err != nil {
			w.fail(err)
		}
	}
	<-received
}

// due returns when request k of this connection is due, since base.
func (w *worker) due(k int64) int64 {
	return int64(float64(w.id+k*int64(w.p.cfg.Conns)) * w.p.nsPerReq)
}

func (w *worker) sendOpen(written *atomic.Int64) {
	p, g := w.p, w.gen
	buf := make([]byte, 0, 16<<10)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var k, measuredSent int64
	for {
		if p.stop.Load() {
			return
		}
		now := time.Now()
		ns := int64(now.Sub(p.base))
		g.setTime(now.UnixNano())
		buf = buf[:0]
		finished := false
		n := int64(0)
		for ; n < maxBatch; n++ {
			t := w.due(k)
			if t > ns {
				break
			}
			ph := p.phaseOf(t)
			if (p.endNs > 0 && t >= p.endNs) || (ph == measured && w.quota >= 0 && measuredSent >= w.quota) {
				finished = true
				break
			}
			if ph == measured {
				measuredSent++
				record(w.lag, ns-t)
			}
			w.sent[ph][g.kindOf(k)]++
			buf = g.appendRequest(buf, k)
			k++
		}
		if n > 0 {
			w.liveSent.Add(n)
			err := w.write(buf, now)
			written.Store(k)
			if err != nil {
				w.fail(err)
				return
			}
		}
		if finished {
			return
		}
		if n == maxBatch {
			continue
		}
		timer.Reset(time.Until(p.base.Add(time.Duration(w.due(k)))))
		select {
		case <-timer.C:
		case <-p.stopCh:
			return
		case <-w.dead:
			return
		}
	}
}

func (w *worker) receiveOpen(written, replied, final *atomic.Int64) {
	p, g := w.p, w.gen
	lr := g.d.newReader(w.conn, p.cfg.Timeout)
	var rk int64
	for {
		replied.Store(rk)
		if f := final.Load(); f >= 0 && rk >= f {
			return
		}
		err := lr.fill(time.Now())
		recvNs := int64(time.Since(p.base))
		var got, bad int64
		for {
			r, _, ok := lr.next(g.kindOf(rk))
			if !ok {
				break
			}
			w.reply(g.kindOf(rk), w.due(rk), recvNs, r)
			rk++
			got++
			if r != protocol.ReplyAT {
				bad++
			}
			if r == protocol.ReplyMalformed {
				err = errMalformed
				break
			}
		}
		w.liveRecv.Add(got)
		w.liveErr.Add(bad)
		if err == nil {
			continue
		}
		if f := final.Load(); f >= 0 && rk >= f && err != errMalformed {
			return // every reply is in
		}
		if errors.Is(err, os.ErrDeadlineExceeded) && rk >= written.Load() && final.Load() < 0 {
			continue // idle, and owed nothing: keep waiting
		}
		w.fail(readError(err))
		return
	}
}

// readError names an early end of the connection.
func readError(err error) error {
	if errors.Is(err, io.EOF) {
		return errClosed
	}
	return err
}
