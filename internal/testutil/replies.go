package testutil

import (
	"io"

	"github.com/herdkit/herd/pkg/protocol"
)

// ReadReplies reads from rd the replies to lines sent in order, as the
// client that sent them would (a blank line gets none), and returns copies
// of them. It stops at the first error, returning the replies read before.
func ReadReplies(rd io.Reader, lines ...string) ([]protocol.Reply, error) {
	rr := protocol.NewReplyReader(rd)
	var replies []protocol.Reply
	for _, l := range lines {
		if protocol.Parse([]byte(l)).Kind == protocol.Blank {
			continue
		}
		r, err := rr.ReadReply(protocol.FormOf(l))
		if err != nil {
			return replies, err
		}
		replies = append(replies, r.Clone())
	}
	return replies, nil
}
