package protocol

// Kind is what a client line asks for.
type Kind uint8

const (
	// Invalid is any line that is not a valid command; it is answered with
	// "? " and the line.
	Invalid Kind = iota
	// Blank is a line of only whitespace; it gets no reply.
	Blank
	// IAMAT reports a client's position.
	IAMAT
	// WHATSAT asks what is near a client.
	WHATSAT

	// NumKinds is the number of kinds: an array indexed by Kind has this
	// length. A new command's kind goes above it.
	NumKinds
)

// ReplyForm is the shape of the reply to a valid command. Whatever the
// command, the reply to an invalid line is one "? " line.
type ReplyForm uint8

const (
	// LineReply is one AT line (IAMAT).
	LineReply ReplyForm = iota
	// PlacesReply is an AT line, then the places JSON, which may span
	// lines but has no empty line inside, then an empty line (WHATSAT).
	PlacesReply
)

// Spec describes one command of the protocol.
type Spec struct {
	// Kind is the command's kind, and Word the command word that starts
	// its line.
	Kind Kind
	Word string
	// Reply is the form of the reply to a valid line.
	Reply ReplyForm

	parse func(fields) Command // the line's fields, Word first
}

// commands is the command table: Parse, Kind.String, the reply forms and
// the server's statistics derive from it. Adding a command means a Kind
// above, a row here with its parse function, a case in the server's
// dispatch (server/conn.go, execute) and its description in the docs.
var commands = [...]Spec{
	{Kind: IAMAT, Word: "IAMAT", Reply: LineReply, parse: parseIAMAT},
	{Kind: WHATSAT, Word: "WHATSAT", Reply: PlacesReply, parse: parseWHATSAT},
}

// Commands returns the command table, one Spec per command, in the order
// of their kinds.
func Commands() []Spec {
	return append([]Spec(nil), commands[:]...)
}

// Lookup returns the Spec of the command of kind k, and false for Invalid,
// Blank or a kind out of range.
func Lookup(k Kind) (Spec, bool) {
	for _, s := range commands {
		if s.Kind == k {
			return s, true
		}
	}
	return Spec{}, false
}

func (k Kind) String() string {
	switch k {
	case Invalid:
		return "invalid"
	case Blank:
		return "blank"
	}
	if s, ok := Lookup(k); ok {
		return s.Word
	}
	return "invalid"
}

// FormOf returns the form of the reply to line, were it valid: that of the
// command its first word names, and LineReply for a line that names none
// (which is invalid and answered "? " and the line).
func FormOf[T text](line T) ReplyForm {
	i := 0
	for i < len(line) && IsSpace(line[i]) {
		i++
	}
	j := i
	for j < len(line) && !IsSpace(line[j]) {
		j++
	}
	for _, s := range commands {
		if string(line[i:j]) == s.Word {
			return s.Reply
		}
	}
	return LineReply
}
