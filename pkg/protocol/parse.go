package protocol

import (
	"strconv"
	"strings"
)

// Bounds of a WHATSAT from PROTOCOL.md.
const (
	// MaxRadiusKm is the largest radius a WHATSAT may ask for, in km.
	MaxRadiusKm = 50
	// MaxBound is the largest number of results a WHATSAT may ask for.
	MaxBound = 20
)

// Command is one parsed client line. Its byte slices point into the line
// that was parsed, so they are valid only as long as that line is.
type Command struct {
	Kind Kind
	// Verb is IAMAT or WHATSAT when the line starts with that word, even if
	// the rest is invalid, and Invalid otherwise; for metrics.
	Verb Kind
	// Reason says why the line is Invalid, for the log; it is a constant
	// string and never echoes input.
	Reason string

	Client []byte // IAMAT and WHATSAT: the client id
	Pos    []byte // IAMAT: the ISO 6709 position, e.g. +34.068930-118.445127
	Time   []byte // IAMAT: the client's time, POSIX seconds digits[.digits]
	// Sec and Nsec are an IAMAT's Time as ParseTime returns it.
	Sec, Nsec int64
	Radius    []byte // WHATSAT: the radius in km, greater than 0 and at most 50
	Bound     int    // WHATSAT: the number of results wanted, 0 to 20
}

// RadiusKm returns a WHATSAT's radius as a number of kilometres.
func (c Command) RadiusKm() float64 {
	// Radius was validated as an unsigned decimal, which ParseFloat accepts.
	km, _ := strconv.ParseFloat(string(c.Radius), 64)
	return km
}

// Text returns an IAMAT's client id, position and time joined by single
// spaces: the form in which records are stored and flooded, and the tail of
// the AT reply. It is the only allocation of an IAMAT's parse and reply.
func (c Command) Text() string {
	var b strings.Builder
	b.Grow(len(c.Client) + len(c.Pos) + len(c.Time) + 2)
	b.Write(c.Client)
	b.WriteByte(' ')
	b.Write(c.Pos)
	b.WriteByte(' ')
	b.Write(c.Time)
	return b.String()
}

// AppendText appends what Text returns, without allocating.
func (c Command) AppendText(dst []byte) []byte {
	dst = append(dst, c.Client...)
	dst = append(dst, ' ')
	dst = append(dst, c.Pos...)
	dst = append(dst, ' ')
	return append(dst, c.Time...)
}

// maxFields is one more than any command has, so that extra fields are
// detected without splitting the whole line.
const maxFields = 5

// Parse parses one client line, without its line ending (the server drops
// the LF and a CR before it). It never allocates.
func Parse(line []byte) Command {
	var f fields
	if f.n = split(line, f.f[:]); f.n == 0 {
		return Command{Kind: Blank}
	}
	for i := range commands {
		if string(f.f[0]) == commands[i].Word {
			c := commands[i].parse(f)
			c.Verb = commands[i].Kind
			return c
		}
	}
	return invalid("unknown command")
}

// fields are a line's first fields, as split stores them. A parse function
// takes them by value: through the command table's function values, a
// slice or pointer would escape and cost an allocation per line.
type fields struct {
	f [maxFields][]byte
	n int
}

func invalid(reason string) Command { return Command{Kind: Invalid, Reason: reason} }

func parseIAMAT(l fields) Command {
	f := l.f
	if l.n != 4 {
		return invalid("IAMAT takes a client id, a position and a time")
	}
	if !ValidPos(f[2]) {
		return invalid("bad position")
	}
	sec, nsec, ok := ParseTime(f[3])
	if !ok {
		return invalid("bad time")
	}
	return Command{Kind: IAMAT, Client: f[1], Pos: f[2], Time: f[3], Sec: sec, Nsec: nsec}
}

func parseWHATSAT(l fields) Command {
	f := l.f
	if l.n != 4 {
		return invalid("WHATSAT takes a client id, a radius and a bound")
	}
	if !validRadius(f[2]) {
		return invalid("bad radius")
	}
	bound, ok := parseBound(f[3])
	if !ok {
		return invalid("bad bound")
	}
	return Command{Kind: WHATSAT, Client: f[1], Radius: f[2], Bound: bound}
}

// IsSpace reports whether c separates fields: space, tab, CR, VT, FF, and
// LF, which cannot occur inside a line but is whitespace all the same.
func IsSpace(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\v', '\f', '\n':
		return true
	}
	return false
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// split stores up to len(f) whitespace-separated fields of line in f and
// returns how many it stored.
func split(line []byte, f [][]byte) int {
	n := 0
	i := 0
	for n < len(f) {
		for i < len(line) && IsSpace(line[i]) {
			i++
		}
		if i == len(line) {
			break
		}
		start := i
		for i < len(line) && !IsSpace(line[i]) {
			i++
		}
		f[n] = line[start:i]
		n++
	}
	return n
}

// validRadius accepts an unsigned decimal number (digits, optionally a
// point and more digits, or a point and digits) greater than 0 and at most
// MaxRadiusKm. The comparison is exact, on the digits, so that
// 50.0000000000000000001 is refused although it rounds to 50.
func validRadius(s []byte) bool {
	whole, frac, ok := splitDecimal(s)
	if !ok {
		return false
	}
	whole = trimZeros(whole)
	fracZero := len(trimTrailingZeros(frac)) == 0
	if len(whole) > 2 {
		return false
	}
	w := 0
	for _, c := range whole {
		w = w*10 + int(c-'0')
	}
	if w > MaxRadiusKm || (w == MaxRadiusKm && !fracZero) {
		return false
	}
	return w > 0 || !fracZero
}

// splitDecimal splits digits[.digits], digits. or .digits into its whole and
// fraction digits.
func splitDecimal(s []byte) (whole, frac []byte, ok bool) {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	whole = s[:i]
	if i == len(s) {
		return whole, nil, i > 0
	}
	if s[i] != '.' {
		return nil, nil, false
	}
	frac = s[i+1:]
	for _, c := range frac {
		if !isDigit(c) {
			return nil, nil, false
		}
	}
	return whole, frac, len(whole)+len(frac) > 0
}

// parseBound accepts a whole number from 0 to MaxBound; leading zeros are
// allowed.
func parseBound(s []byte) (int, bool) {
	if len(s) == 0 {
		return 0, false
	}
	for _, c := range s {
		if !isDigit(c) {
			return 0, false
		}
	}
	s = trimZeros(s)
	if len(s) > 2 {
		return 0, false
	}
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n, n <= MaxBound
}

func trimZeros[T text](s T) T {
	i := 0
	for i < len(s) && s[i] == '0' {
		i++
	}
	return s[i:]
}

func trimTrailingZeros[T text](s T) T {
	i := len(s)
	for i > 0 && s[i-1] == '0' {
		i--
	}
	return s[:i]
}
