package server

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// newTestQueue returns a reply queue that writes to a fakeConn, with at
// most limit requests owed a reply.
func newTestQueue(t *testing.T, limit int) (*replyQueue, *fakeConn) {
	d, fc, _ := newTestDeadlineConn(t, time.Hour, time.Hour)
	q := &replyQueue{}
	q.init(d, limit)
	return q, fc
}

// TestReplyQueueOrder: replies ready at once go out at once while nothing
// is owed, and otherwise wait behind the lookups before them; a lookup's
// completion writes every ready reply at the head in one write, whatever
// order the lookups complete in.
func TestReplyQueueOrder(t *testing.T) {
	// Steps: "emit x" sends x, ready; "owe k" owes lookup k's reply;
	// "complete k" fills it in with "Lk".
	tests := []struct {
		name   string
		steps  []string
		writes []string
	}{
		{"nothing owed: each at once", []string{"emit a", "emit b"}, []string{"a", "b"}},
		{"behind a lookup: in one write once it completes",
			[]string{"emit a", "owe 1", "emit b", "emit c", "complete 1"}, []string{"a", "L1bc"}},
		{"lookups completing in order",
			[]string{"owe 1", "emit b", "owe 2", "emit c", "complete 1", "complete 2"}, []string{"L1b", "L2c"}},
		{"lookups completing out of order",
			[]string{"owe 1", "emit b", "owe 2", "emit c", "complete 2", "complete 1"}, []string{"L1bL2c"}},
		{"three lookups, the middle one first",
			[]string{"owe 1", "owe 2", "emit c", "owe 3", "complete 2", "complete 3", "complete 1"}, []string{"L1L2cL3"}},
		{"at once again once nothing is owed",
			[]string{"owe 1", "emit b", "complete 1", "emit c"}, []string{"L1b", "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, fc := newTestQueue(t, 100)
			owed := map[string]*reply{}
			var buf []byte // reused like the reader's: emit copies what it queues
			for _, step := range tt.steps {
				op, arg, _ := strings.Cut(step, " ")
				switch op {
				case "emit":
					buf = append(buf[:0], arg...)
					q.emit(buf, 1)
					copy(buf, "?")
				case "owe":
					owed[arg] = q.owe()
				case "complete":
					q.complete(owed[arg], []byte("L"+arg))
				}
			}
			if got := fc.writes(); !slices.Equal(got, tt.writes) {
				t.Errorf("writes %q, want %q", got, tt.writes)
			}
			if q.owing() || q.owedN != 0 {
				t.Errorf("owing %v, %d requests owed, after every lookup completed", q.owing(), q.owedN)
			}
		})
	}
}

// TestReplyQueueAtLimit: the reader flushes before limit requests would
// be owed a reply, which counts only while a lookup is owed.
func TestReplyQueueAtLimit(t *testing.T) {
	tests := []struct {
		lookups, ready int // owed: lookups, and ready replies behind them
		n              int // the replies the reader holds
		want           bool
	}{
		{0, 0, 5, false}, // nothing owed: no limit
		{1, 0, 1, false},
		{1, 0, 2, true},
		{1, 1, 1, true},
		{2, 0, 0, false},
		{3, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d lookups %d ready %d held", tt.lookups, tt.ready, tt.n), func(t *testing.T) {
			q, _ := newTestQueue(t, 3)
			for range tt.lookups {
				q.owe()
			}
			if tt.ready > 0 {
				q.emit([]byte("AT\n"), tt.ready)
			}
			if got := q.atLimit(tt.n); got != tt.want {
				t.Errorf("atLimit(%d) = %v, want %v", tt.n, got, tt.want)
			}
		})
	}
}

// TestReplyQueueWaitBelowLimit: the reader waits while limit requests are
// owed a reply, and goes on once a completion brings them below it.
func TestReplyQueueWaitBelowLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q, fc := newTestQueue(t, 3)
		first := q.owe()
		q.emit([]byte("a"), 1)
		second := q.owe()
		var waited bool
		go func() {
			q.waitBelowLimit()
			waited = true
		}()
		synctest.Wait()
		if waited {
			t.Fatal("waitBelowLimit returned with 3 requests owed and a limit of 3")
		}
		q.complete(second, []byte("L2")) // behind the first: still owed
		synctest.Wait()
		if waited {
			t.Fatal("waitBelowLimit returned with 3 requests owed and a limit of 3")
		}
		q.complete(first, []byte("L1"))
		synctest.Wait()
		if !waited {
			t.Fatal("waitBelowLimit still waits with nothing owed")
		}
		if got, want := fc.writes(), []string{"L1aL2"}; !slices.Equal(got, want) {
			t.Errorf("writes %q, want %q", got, want)
		}
	})
}
