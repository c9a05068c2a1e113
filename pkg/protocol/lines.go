package protocol

import (
	"bufio"
	"bytes"
)

// LineBuffered reports whether br holds a whole line, so that reading the
// next line will not wait for input. Client connections, peer links and
// herd client send what is ready whenever it does not, so a line still
// arriving never holds back the lines before it. It looks only at what br
// has buffered and does no I/O.
func LineBuffered(br *bufio.Reader) bool {
	b, _ := br.Peek(br.Buffered())
	return bytes.IndexByte(b, '\n') >= 0
}
