package peer

import (
	"strings"
	"testing"

	"github.com/herdkit/herd/pkg/store"
)

// TestOutboxFill: each write a link's writer composes tells the neighbour
// every change up to the last one read, so that it may end the wait of a
// mark; only skipped changes with nothing to write leave a mark waiting.
func TestOutboxFill(t *testing.T) {
	const nb, other = store.Source(1), store.Source(2) // the link's neighbour, and another
	change := func(seq uint64, from store.Source) store.Change {
		return store.Change{Seq: seq, From: from, Record: store.Record{Text: "c +1+1 1", Origin: "X", Recv: 5}}
	}
	rec := func(kind byte, seq uint64) string { return string(appendRecord(nil, kind, seq, change(seq, 0).Record)) }
	pong := string(appendPong(nil, 1, 2, 3))
	tests := []struct {
		name      string
		out       outbox // before
		pong      bool   // a pong is first in the write
		batch     []store.Change
		next      uint64
		want      string // the write; "" for none
		markWaits bool   // after
	}{
		{name: "reconciliation sends the neighbour's own records too, then D",
			out:   outbox{end: 2, reconciling: true},
			batch: []store.Change{change(1, other), change(2, nb)}, next: 2,
			want: rec(frameReconcile, 1) + rec(frameReconcile, 2) + "D 2\n"},
		{name: "nothing to reconcile: D alone",
			out: outbox{reconciling: true}, next: 0, want: "D 0\n"},
		{name: "a flood skips the neighbour's records, and a mark follows",
			out:   outbox{end: 0},
			batch: []store.Change{change(1, other), change(2, nb)}, next: 2,
			want: rec(frameFlood, 1) + "M 2\n"},
		{name: "only skipped changes: the mark waits",
			out:   outbox{end: 0},
			batch: []store.Change{change(1, nb)}, next: 1,
			markWaits: true},
		{name: "records after a waiting mark tell it",
			out:   outbox{cursor: 1, markWaits: true},
			batch: []store.Change{change(2, other)}, next: 2,
			want: rec(frameFlood, 2)},
		{name: "a pong alone while a mark waits carries the mark",
			out:  outbox{cursor: 1, markWaits: true},
			pong: true, next: 1,
			want: pong + "M 1\n"},
		{name: "a pong with skipped changes carries their mark",
			out:  outbox{cursor: 1},
			pong: true, batch: []store.Change{change(2, nb)}, next: 2,
			want: pong + "M 2\n"},
		{name: "a pong alone, no mark waiting",
			out:  outbox{cursor: 1},
			pong: true, next: 1,
			want: pong},
		{name: "changes replaced since: the mark waits",
			out:  outbox{cursor: 1},
			next: 4, markWaits: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := tt.out
			out.from = nb
			var buf []byte
			if tt.pong {
				buf = appendPong(buf, 1, 2, 3)
			}
			buf, _, _ = out.fill(buf, tt.batch, tt.next)
			if string(buf) != tt.want {
				t.Errorf("write\n%s\nwant\n%s", strings.TrimSpace(string(buf)), strings.TrimSpace(tt.want))
			}
			if out.markWaits != tt.markWaits || out.cursor != tt.next {
				t.Errorf("mark waits %v at %d, want %v at %d", out.markWaits, out.cursor, tt.markWaits, tt.next)
			}
		})
	}
}
