package server

import (
	"bytes"
	"time"

	"github.com/herdkit/herd/pkg/places"
	"github.com/herdkit/herd/pkg/protocol"
	"github.com/herdkit/herd/pkg/store"
)

// iamat answers an IAMAT; its record joins the batch stored before the
// reply goes out.
func (c *conn) iamat(line []byte, cmd *protocol.Command) {
	// A time further ahead than MaxClockAhead would make the record newer
	// than every real update for ever. Records from peers are not judged
	// again: their origin did.
	if c.s.ahead > 0 && cmd.Sec > c.readAt.Unix()+c.s.ahead {
		c.invalid(line, protocol.IAMAT, reasonAhead)
		return
	}
	// The reply does not depend on whether the record is newer.
	rec := store.Record{Text: cmd.Text(), Origin: c.s.cfg.Name, Recv: c.readAt.UnixNano()}
	c.batch = append(c.batch, rec)
	mark := len(c.out)
	c.out = protocol.AppendATParsed(c.out, rec.Origin, rec.Recv, cmd.Sec, cmd.Nsec, rec.Text)
	c.out = append(c.out, '\n')
	c.outN++
	c.iamats.add(line, c.batch, mark, len(c.out))
}

// whatsat answers a WHATSAT from the places at hand, or starts its lookup.
func (c *conn) whatsat(line []byte, cmd *protocol.Command) {
	c.logIAMATs()  // the lines before this one first
	c.storeBatch() // it may ask about a client of this batch
	rec, ok := c.s.store.Get(string(cmd.Client))
	if !ok {
		c.invalid(line, cmd.Verb, "unknown client")
		return
	}
	pos := rec.Pos()
	lat, lng, _ := protocol.ParsePos(pos)
	q := places.Query{Pos: pos, Lat: lat, Lng: lng, RadiusKm: cmd.RadiusKm()}
	if c.s.peek != nil {
		if resp, ok := c.s.peek.Peek(q); ok {
			mark := len(c.out)
			c.out = appendWHATSAT(c.out, rec, resp, cmd.Bound)
			c.outN++
			c.doneWHATSAT(line, c.out[mark:], resp, c.readAt)
			return
		}
	}
	c.flush() // the replies before it go out, or join owed, first
	c.lookup(line, rec, q, cmd.Bound)
}

// invalid answers a line that is not a valid command, of verb, with "? "
// and the line, and logs reason.
func (c *conn) invalid(line []byte, verb protocol.Kind, reason string) {
	c.logIAMATs() // the lines before this one first
	mark := len(c.out)
	c.out = protocol.AppendInvalid(c.out, line)
	c.outN++
	end := c.s.now()
	c.s.stats.done(verb, outcomeInvalid, c.readAt, end)
	c.s.lines.Line(end, c.id, c.remote, line, c.out[mark:], "reason", reason)
}

// lookup owes the reply to a WHATSAT received at start and fills it in
// from a goroutine.
func (c *conn) lookup(line []byte, rec store.Packed, q places.Query, bound int) {
	r := c.replies.owe()
	in, start := bytes.Clone(line), c.readAt
	c.lookups.Add(1)
	go func() {
		defer c.lookups.Done()
		resp := c.s.places.Nearby(c.ctx, q)
		buf := appendWHATSAT(nil, rec, resp, bound)
		c.doneWHATSAT(in, buf, resp, start)
		c.replies.complete(r, buf)
	}()
}

// appendWHATSAT appends the reply to a WHATSAT about rec: its AT line, the
// places cut to bound, and the empty line that ends it.
func appendWHATSAT(dst []byte, rec store.Packed, resp *places.Response, bound int) []byte {
	return protocol.AppendPlacesReply(dst,
		func(b []byte) []byte { return rec.AppendAT(b) },
		func(b []byte) []byte { return resp.AppendJSON(b, bound) })
}

// doneWHATSAT counts and logs the reply to a WHATSAT received at start.
func (c *conn) doneWHATSAT(line, reply []byte, resp *places.Response, start time.Time) {
	outcome := outcomeOK
	if !resp.Cacheable() {
		outcome = outcomePlacesError
	}
	end := c.s.now()
	c.s.stats.done(protocol.WHATSAT, outcome, start, end)
	c.s.lines.Line(end, c.id, c.remote, line, reply, "places_status", resp.Status)
}
