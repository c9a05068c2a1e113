package server

import (
	"strings"
	"testing"
	"time"

	"github.com/herdkit/herd/pkg/protocol"
	"github.com/herdkit/herd/pkg/store"
)

// Steps of an iamatLog test besides IAMAT lines: the reader writes the
// record before another kind of line (logStep), or stores the batch and
// sends the replies too (storeStep).
const (
	logStep   = "<log>"
	storeStep = "<store>"
)

// runIAMATLog feeds an iamatLog the steps as the reader would: each IAMAT
// line's record joins the batch and its reply the reply buffer. It ends
// with a store step.
func runIAMATLog(l *iamatLog, steps []string) {
	var (
		out  []byte
		recs []store.Record
	)
	for _, step := range append(steps, storeStep) {
		switch step {
		case logStep:
			l.flush(fixedNow, out)
		case storeStep:
			l.flush(fixedNow, out)
			out, recs = out[:0], recs[:0]
		default:
			cmd := protocol.Parse([]byte(step))
			rec := store.Record{Text: cmd.Text(), Origin: "Hill"}
			recs = append(recs, rec)
			mark := len(out)
			out = append(append(append(out, "AT Hill +0 "...), rec.Text...), '\n')
			l.add([]byte(step), recs, mark, len(out))
		}
	}
}

// TestIAMATLog: the IAMATs read in a row have one record, their replies
// in order, and their lines only when one is not what its reply repeats;
// the lines then come from the batch's records, the record's own and no
// other.
func TestIAMATLog(t *testing.T) {
	const (
		a      = "IAMAT a +1+1 1"
		b      = "IAMAT b +2+2 2"
		c      = "IAMAT c +3+3 3"
		spaced = "IAMAT  b +2+2\t2" // not what its reply repeats
		atA    = "AT Hill +0 a +1+1 1\n"
		atB    = "AT Hill +0 b +2+2 2\n"
		atC    = "AT Hill +0 c +3+3 3\n"
	)
	line := func(in, out string) record { return record{in, out, "", false} }
	iamats := func(out string) record { return record{"", out, "", true} }
	tests := []struct {
		name  string
		steps []string
		want  []record
	}{
		{"none", nil, nil},
		{"none owed at a log step", []string{logStep, logStep}, nil},
		{"one", []string{a}, []record{iamats(atA)}},
		{"in a row", []string{a, b, c}, []record{iamats(atA + atB + atC)}},
		{"one spaced its own way, first", []string{spaced, a, c},
			[]record{line(spaced+"\n"+a+"\n"+c, atB+atA+atC)}},
		{"one spaced its own way, between", []string{a, spaced, c},
			[]record{line(a+"\n"+spaced+"\n"+c, atA+atB+atC)}},
		{"one spaced its own way, last", []string{a, c, spaced},
			[]record{line(a+"\n"+c+"\n"+spaced, atA+atC+atB)}},
		{"another line between", []string{a, b, logStep, c}, []record{iamats(atA + atB), iamats(atC)}},
		{"another line between, then one spaced its own way: the earlier records are not its",
			[]string{a, logStep, c, spaced}, []record{iamats(atA), line(c+"\n"+spaced, atC+atB)}},
		{"after one spaced its own way, a record without lines", []string{spaced, logStep, a},
			[]record{line(spaced, atB), iamats(atA)}},
		{"stored between", []string{a, storeStep, b}, []record{iamats(atA), iamats(atB)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := &recorder{}
			runIAMATLog(&iamatLog{lines: lines, conn: 1, remote: "r"}, tt.steps)
			got := lines.records()
			if len(got) != len(tt.want) {
				t.Fatalf("records %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("record %d: %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// TestIAMATLogCopiesNothing: a record of IAMATs that their replies repeat
// copies nothing and allocates nothing.
func TestIAMATLogCopiesNothing(t *testing.T) {
	l := &iamatLog{lines: discardLines{}}
	recs := []store.Record{{Text: "a +1+1 1"}, {Text: "b +2+2 2"}}
	out := []byte("AT Hill +0 a +1+1 1\nAT Hill +0 b +2+2 2\n")
	allocs := testing.AllocsPerRun(100, func() {
		l.add([]byte("IAMAT a +1+1 1"), recs[:1], 0, 20)
		l.add([]byte("IAMAT b +2+2 2"), recs, 20, 40)
		if len(l.in) > 0 {
			t.Fatalf("lines copied: %q", l.in)
		}
		l.flush(fixedNow, out)
	})
	if allocs != 0 {
		t.Errorf("%v allocations a record", allocs)
	}
}

// TestIAMATLogDropsHugeBuffer: the buffer of a record's lines is kept for
// the next, unless a huge line grew it.
func TestIAMATLogDropsHugeBuffer(t *testing.T) {
	for _, tt := range []struct {
		name string
		line string
		kept bool
	}{
		{"a short line", "IAMAT  a +1+1 1", true},
		{"a huge line", "IAMAT  a +1+1 1" + strings.Repeat(" ", maxBatchBytes), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := &iamatLog{lines: discardLines{}}
			runIAMATLog(l, []string{tt.line})
			if kept := l.in != nil; kept != tt.kept {
				t.Errorf("buffer kept %v, want %v", kept, tt.kept)
			}
		})
	}
}

// discardLines is a protocol log that writes nothing.
type discardLines struct{}

func (discardLines) Line(time.Time, uint64, string, []byte, []byte, string, string) {}
func (discardLines) IAMATs(time.Time, uint64, string, []byte)                       {}
