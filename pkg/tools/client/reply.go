package client

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// outcome is what a reply says about its command.
type outcome int

const (
	valid   outcome = iota // AT ...
	invalid                // ? ...
	strange                // anything else: not a reply of the protocol
)

// errIncomplete is returned for a reply cut short by the end of the
// connection.
var errIncomplete = errors.New("connection closed in the middle of a reply")

// readReply reads one reply from r: one line, or for the valid reply to a
// WHATSAT the AT line, then the JSON, which may span lines but has no empty
// line inside, then the empty line that ends the reply. It returns the
// reply as received, line ends included, and io.EOF if the connection ended
// before any of it; a partial reply comes with errIncomplete or the read
// error. A WHATSAT reply whose JSON does not start with '{' is strange.
func readReply(r *bufio.Reader, whatsat bool) ([]byte, outcome, error) {
	line, err := r.ReadBytes('\n')
	if err != nil {
		if len(line) == 0 && errors.Is(err, io.EOF) {
			return nil, strange, io.EOF
		}
		return line, classify(line), incomplete(err)
	}
	o := classify(line)
	if !whatsat || o != valid {
		return line, o, nil
	}
	reply := line
	for first := true; ; first = false {
		line, err = r.ReadBytes('\n')
		reply = append(reply, line...)
		if err != nil {
			return reply, o, incomplete(err)
		}
		text := bytes.TrimRight(line, "\r\n")
		if first && !bytes.HasPrefix(bytes.TrimLeft(text, " \t"), []byte("{")) {
			// Not JSON: the framing is lost; stop at this line.
			return reply, strange, nil
		}
		if len(text) == 0 {
			return reply, o, nil
		}
	}
}

func incomplete(err error) error {
	if errors.Is(err, io.EOF) {
		return errIncomplete
	}
	return err
}

func classify(line []byte) outcome {
	switch {
	case bytes.HasPrefix(line, []byte("AT ")):
		return valid
	case bytes.HasPrefix(line, []byte("? ")):
		return invalid
	}
	return strange
}
