package server

import (
	"sync"
	"sync/atomic"
)

// replyQueue keeps a connection's replies in the order of its requests. A
// reply is owed from the moment its request is read until it is written:
// replies ready at once go out at once while nothing is owed before them,
// and join the queue behind a lookup otherwise. The reader reads no
// further while limit requests are owed a reply.
type replyQueue struct {
	w     *deadlineConn // where replies go; mu serializes its writes
	limit int           // MaxInflight

	mu      sync.Mutex
	drained sync.Cond // signalled when owed replies are written
	owed    []*reply  // replies owed, oldest first; non-empty only while a lookup is being answered
	owedN   int       // the requests whose replies are in owed
	// anyOwed mirrors len(owed) > 0 so that the reader checks it per line
	// without taking mu.
	anyOwed atomic.Bool
}

// reply is the reply to one or more requests, ready when done.
type reply struct {
	buf      []byte
	requests int
	done     bool
}

// init makes q write to w, with at most limit requests owed a reply.
func (q *replyQueue) init(w *deadlineConn, limit int) {
	q.w, q.limit = w, limit
	q.drained.L = &q.mu
}

// owing reports whether any reply is owed.
func (q *replyQueue) owing() bool { return q.anyOwed.Load() }

// emit sends the replies to n requests that are ready: at once when
// nothing is owed before them, otherwise added to owed behind the lookup.
func (q *replyQueue) emit(b []byte, n int) {
	if len(b) == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.owed) == 0 {
		q.w.write(b)
		return
	}
	q.owed = append(q.owed, &reply{buf: append([]byte(nil), b...), requests: n, done: true})
	q.owedN += n
}

// owe adds the reply to one request that is not ready, to be filled in
// by complete.
func (q *replyQueue) owe() *reply {
	r := &reply{requests: 1}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.owed = append(q.owed, r)
	q.anyOwed.Store(true)
	q.owedN++
	return r
}

// complete fills in an owed reply and writes every ready reply at the
// head of owed in one write.
func (q *replyQueue) complete(r *reply, b []byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	r.buf, r.done = b, true
	k := 0
	var w []byte
	for k < len(q.owed) && q.owed[k].done {
		w = append(w, q.owed[k].buf...)
		q.owedN -= q.owed[k].requests
		k++
	}
	q.owed = append(q.owed[:0], q.owed[k:]...)
	q.anyOwed.Store(len(q.owed) > 0)
	q.w.write(w)
	q.drained.Broadcast()
}

// atLimit reports whether n more replies would reach limit replies owed,
// counting only while a lookup is being answered.
func (q *replyQueue) atLimit(n int) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.owed) > 0 && q.owedN+n >= q.limit
}

// waitBelowLimit waits while limit requests are owed a reply. Lookups
// always complete (they end with the connection's context), so the wait
// ends.
func (q *replyQueue) waitBelowLimit() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.owedN >= q.limit {
		q.drained.Wait()
	}
}
