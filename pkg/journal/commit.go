package journal

import (
	"errors"
	"fmt"
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
// Wait is a group commit: the first caller that finds nobody writing
// writes every change stored so far, for all the others, in one write;
// with Always, the first that finds nobody syncing then syncs everything
// written so far, while the next batch is written. The others wait for
// them rather than for the journal's goroutine to be scheduled.
func (j *Journal) Wait(seq uint64, timeout time.Duration) error {
	if j.durableSeq.Load() >= seq {
		return nil
	}
	j.waiters.Add(1)
	defer j.waiters.Add(-1)
	var timer *time.Timer
	for {
		j.mu.Lock()
		ch, fault, closed := j.advanced, j.fault, j.closed
		j.mu.Unlock()
		if j.durableSeq.Load() >= seq {
			break
		}
		if closed {
			return ErrNotDurable
		}
		if fault == nil {
			if j.writtenSeq.Load() < seq {
				if j.wmu.TryLock() {
					if !j.stopping() {
						j.writeBatch(1 << 20)
					}
					j.unlockWriter()
					continue
				}
			} else if j.cfg.Always && j.smu.TryLock() {
				if !j.stopping() {
					j.syncWritten()
				}
				j.unlockSyncer()
				continue
			}
		}
		if timer == nil {
			timer = time.NewTimer(timeout)
			defer timer.Stop()
		}
		select {
		case <-ch:
		case <-timer.C:
			if fault != nil {
				return fmt.Errorf("%w: %w", ErrNotDurable, fault)
			}
			return ErrNotDurable
		}
	}
	return nil
}

// Fault returns why the journal cannot write, or nil when its last write,
// sync and rotation succeeded. While it has a fault, Wait does not return
// for new changes: the node stops acknowledging records.
func (j *Journal) Fault() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.fault
}

// unlockWriter releases wmu and wakes the waiters, which may have found
// it held after the last change this writer made durable, so that one of
// them takes it.
func (j *Journal) unlockWriter() {
	j.wmu.Unlock()
	if j.waiters.Load() > 0 {
		j.wake(func() {})
	}
}

// unlockSyncer releases smu and wakes the waiters, as unlockWriter does.
func (j *Journal) unlockSyncer() {
	j.smu.Unlock()
	if j.waiters.Load() > 0 {
		j.wake(func() {})
	}
}

// advance makes the changes up to seq durable and wakes the waiters.
func (j *Journal) advance(seq uint64) {
	if j.durableSeq.Load() >= seq {
		return
	}
	j.durableSeq.Store(seq)
	j.wake(func() {})
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

// wake runs f under mu and wakes every Wait.
func (j *Journal) wake(f func()) {
	j.mu.Lock()
	f()
	close(j.advanced)
	j.advanced = make(chan struct{})
	j.mu.Unlock()
}
