package bench

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/herdkit/herd/pkg/protocol"
)

// Wire protocols the bench speaks (LoadConfig.Protocol and
// PropagationConfig.Protocol): the herd's own, or Redis's RESP, so that
// one generator, one schedule and one set of histograms measure Herd and
// the Redis a user would run instead (docker/compare-redis).
const (
	// ProtocolHerd is the herd's client protocol: IAMAT and WHATSAT.
	ProtocolHerd = "herd"
	// ProtocolRESP is Redis's protocol: GEOADD for an IAMAT and GEOPOS for
	// a WHATSAT, on the sorted set RESPKey. GEOADD carries no client time:
	// Redis keeps the last position written.
	ProtocolRESP = "resp"
)

// RESPKey is the key of the sorted set that RESP requests write and read.
const RESPKey = "herd:positions"

// dialect writes the requests of one wire protocol and reads their
// replies.
type dialect interface {
	// appendWrite appends a write of client id at positions()[pos], with
	// the client time t: an IAMAT, or a GEOADD.
	appendWrite(dst, id []byte, pos int, t []byte) []byte
	// appendRead appends a question about client id: a WHATSAT with the
	// run's radius and bound, or a GEOPOS.
	appendRead(dst, id []byte) []byte
	// newReader returns a reader of conn's replies that gives up when
	// nothing arrives for timeout.
	newReader(conn net.Conn, timeout time.Duration) replySource
}

// replySource reads the replies of one connection.
type replySource interface {
	// next returns the next reply, to a request of kind k, if the whole
	// of it has arrived: how it went (ReplyAT for a success: an AT line,
	// GEOADD's integer, a known position; ReplyInvalid for a refusal or
	// an unknown client; ReplyMalformed) and its first line, the AT line
	// of a herd's reply, valid until the next fill.
	next(k kind) (protocol.ReplyKind, []byte, bool)
	// fill reads once from the connection.
	fill(now time.Time) error
}

// newDialect returns the dialect of a wire protocol; radius and bound are
// those of the herd's WHATSAT.
func newDialect(proto, radius string, bound int) (dialect, error) {
	switch proto {
	case ProtocolHerd, "":
		return herdDialect{whatsatTail: []byte(" " + radius + " " + strconv.Itoa(bound) + "\n")}, nil
	case ProtocolRESP:
		return respDialect{}, nil
	}
	return nil, fmt.Errorf("protocol %q: want %s or %s", proto, ProtocolHerd, ProtocolRESP)
}

// herdDialect is the herd's client protocol.
type herdDialect struct {
	whatsatTail []byte // " radius bound\n"
}

func (herdDialect) appendWrite(dst, id []byte, pos int, t []byte) []byte {
	dst = append(append(dst, "IAMAT "...), id...)
	dst = append(append(dst, ' '), positions()[pos]...)
	return append(append(append(dst, ' '), t...), '\n')
}

func (d herdDialect) appendRead(dst, id []byte) []byte {
	return append(append(append(dst, "WHATSAT "...), id...), d.whatsatTail...)
}

func (herdDialect) newReader(conn net.Conn, timeout time.Duration) replySource {
	return newReplyReader(conn, timeout)
}
