package server

import (
	"time"

	"github.com/herdkit/herd/pkg/store"
)

// iamatLog is the protocol log record owed for the IAMATs a connection
// read in a row, owned by the reader: one record for them rather than one
// each, since they share the receive time, the connection and the remote
// address, which a record per line would repeat, in one write to the sink.
//
// The record holds the replies, a span of the reader's reply buffer. Its
// lines are written out only once one of them is not what its reply
// repeats (see canonicalIAMAT): until then the replies hold the lines, and
// the record costs no copy.
type iamatLog struct {
	lines  LineLogger
	conn   uint64
	remote string

	n         int    // the IAMATs of the record owed; 0 when none is owed
	mark, end int    // the span of the reader's reply buffer that holds their replies
	in        []byte // their lines joined by newlines, once one is not what its reply repeats; empty until then
}

// add adds to the record an IAMAT read as line, whose reply is
// out[mark:end] of the reader's reply buffer. recs is the batch of records
// not yet stored, this IAMAT's last: it ends with the records of the
// IAMATs of the record, since the reader writes the record whenever it
// stores the batch, before it reads on.
func (l *iamatLog) add(line []byte, recs []store.Record, mark, end int) {
	if l.n == 0 {
		l.mark = mark
	}
	l.n++
	l.end = end
	switch {
	case len(l.in) > 0: // the record's lines are written out
		l.in = append(append(l.in, '\n'), line...)
	case !canonicalIAMAT(line, recs[len(recs)-1].Text):
		// The lines before it were what their replies repeat, "IAMAT "
		// and their records' text: they are written out, once, then
		// this one.
		for _, rec := range recs[len(recs)-l.n : len(recs)-1] {
			l.in = append(append(l.in, "IAMAT "...), rec.Text...)
			l.in = append(l.in, '\n')
		}
		l.in = append(l.in, line...)
	}
}

// flush writes the record owed, if any, with the receive time t; out is
// the reader's reply buffer. The reader calls it before the replies go
// out, and before it logs any other line, so that a connection's records
// keep the order of its lines.
func (l *iamatLog) flush(t time.Time, out []byte) {
	if l.n == 0 {
		return
	}
	replies := out[l.mark:l.end]
	if len(l.in) == 0 {
		l.lines.IAMATs(t, l.conn, l.remote, replies)
	} else {
		l.lines.Line(t, l.conn, l.remote, l.in, replies, "", "")
	}
	l.n = 0
	l.in = l.in[:0]
	if cap(l.in) > maxBatchBytes { // a huge line's buffer is not kept
		l.in = nil
	}
}

// canonicalIAMAT reports whether line is "IAMAT " and text, the fields
// its AT reply repeats: then the reply holds the line, and the protocol
// log need not.
func canonicalIAMAT(line []byte, text string) bool {
	const verb = "IAMAT "
	return len(line) == len(verb)+len(text) && string(line[:len(verb)]) == verb && string(line[len(verb):]) == text
}
