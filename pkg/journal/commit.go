package journal

import (
	"errors"
	"fmt"
	"runtime"
	"time"
)

// The commit side of the journal: what a connection waits for before it
// acknowledges a record.

// Durable returns the last change number the journal promises to keep:
// written to the file, or with Always synced to the disk.
func (j *Journal) Durable() uint64 { return j.durableSeq.Load() }

// ErrNotDurable is returned by Wait when a change could not be made
// durable in time, because the journal cannot write or is closed.
var ErrNotDurable = errors.New("journal: change not durable")

// Wait returns once the change numbered seq, and every change before it,
// is durable (see Durable), or ErrNotDurable, with the journal's fault if
// it has one, when that did not happen within timeout or the journal
// closed first. A client's record is acknowledged only after Wait.
//
// Wait is a group commit: a caller that takes the writer's lock writes
// every change stored so far, for all the others, in one write; with
// Always, a caller that takes the syncer's lock then syncs everything
// written so far, while the next batch is being written. The others
// queue for the lock and mostly find, when their turn comes, that their
// change is already durable.
func (j *Journal) Wait(seq uint64, timeout time.Duration) error {
	if j.durableSeq.Load() >= seq {
		return nil
	}
	j.waiters.Add(1)
	defer j.waiters.Add(-1)
	var timer *time.Timer
	expired := func() <-chan time.Time {
		if timer == nil {
			timer = time.NewTimer(timeout)
		}
		return timer.C
	}
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for j.durableSeq.Load() < seq {
		j.mu.Lock()
		ch, fault, closed := j.advanced, j.fault, j.closed
		j.mu.Unlock()
		switch {
		case closed:
			return ErrNotDurable
		case fault != nil:
			// Nothing becomes durable until the loop's retry succeeds,
			// which wakes every Wait.
			select {
			case <-ch:
			case <-expired():
				return fmt.Errorf("%w: %w", ErrNotDurable, fault)
			}
		case j.writtenSeq.Load() < seq:
			// Let the goroutines already runnable store their changes
			// first, so that one write covers them: under load, the
			// connections woken with this one; alone, at once.
			runtime.Gosched()
			if !j.acquire(j.wlock, expired) {
				return ErrNotDurable
			}
			if j.writtenSeq.Load() < seq && !j.stopping() {
				j.writeBatch(1 << 20)
			}
			j.unlockWriter()
		default: // written, not yet synced (Always)
			if !j.acquire(j.slock, expired) {
				return ErrNotDurable
			}
			if j.durableSeq.Load() < seq && !j.stopping() {
				j.syncWritten()
			}
			j.unlockSyncer()
		}
	}
	return nil
}

// acquire takes l, or gives up when expired's channel fires.
func (j *Journal) acquire(l chan struct{}, expired func() <-chan time.Time) bool {
	if j.tryLock(l) {
		return true
	}
	select {
	case l <- struct{}{}:
		return true
	case <-expired():
		return false
	}
}

// tryLock takes l if it is free.
func (j *Journal) tryLock(l chan struct{}) bool {
	select {
	case l <- struct{}{}:
		return true
	default:
		return false
	}
}

// Fault returns why the journal cannot write, or nil when its last write,
// sync and rotation succeeded. While it has a fault, Wait does not return
// for new changes: the node stops acknowledging records.
func (j *Journal) Fault() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.fault
}

// unlockWriter releases the writer's lock, to the next in line if any.
func (j *Journal) unlockWriter() { <-j.wlock }

// unlockSyncer releases the syncer's lock, to the next in line if any.
func (j *Journal) unlockSyncer() { <-j.slock }

// advance makes the changes up to seq durable. The waiters see it when
// they get the lock they queue for; none sleeps on anything else while
// the journal has no fault.
func (j *Journal) advance(seq uint64) {
	if j.durableSeq.Load() < seq {
		j.durableSeq.Store(seq)
	}
}

// setFault makes err, of an operation op, the journal's fault.
func (j *Journal) setFault(op string, err error) {
	j.wake(func() { j.fault, j.faultOp = err, op })
}

// clearFault clears the journal's fault if op caused it: op succeeded.
func (j *Journal) clearFault(op string) {
	j.mu.Lock()
	mine := j.fault != nil && j.faultOp == op
	j.mu.Unlock()
	if mine {
		j.log.Info("journal " + op + " succeeds again")
		j.wake(func() {
			if j.faultOp == op {
				j.fault, j.faultOp = nil, ""
			}
		})
	}
}

// wake runs f under mu and wakes every Wait that sleeps on the fault.
func (j *Journal) wake(f func()) {
	j.mu.Lock()
	f()
	close(j.advanced)
	j.advanced = make(chan struct{})
	j.mu.Unlock()
}
