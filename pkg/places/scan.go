package places

import "errors"

// scanner finds the extent of JSON values without checking them: Parse
// hands every value it keeps to json.Indent, which does.
type scanner struct {
	b []byte
	i int
}

// space skips JSON white space.
func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// take skips c if it comes next.
func (s *scanner) take(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// value returns the value starting here and moves past it: a string, an
// object or array up to its matching bracket, or a literal up to the next
// delimiter. It reports false when the input ends first or no value
// starts here.
func (s *scanner) value() ([]byte, bool) {
	start := s.i
	if start >= len(s.b) {
		return nil, false
	}
	switch s.b[start] {
	case '"':
		if !s.skipString() {
			return nil, false
		}
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if !s.skipString() {
					return nil, false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			s.i++
			if depth == 0 {
				return s.b[start:s.i], true
			}
		}
		return nil, false
	default:
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ':', ' ', '\t', '\n', '\r':
				return s.b[start:s.i], s.i > start
			}
			s.i++
		}
	}
	return s.b[start:s.i], s.i > start
}

// skipString moves past the string starting here.
func (s *scanner) skipString() bool {
	for s.i++; s.i < len(s.b); s.i++ {
		switch s.b[s.i] {
		case '\\':
			s.i++
		case '"':
			s.i++
			return true
		}
	}
	return false
}

// splitArray returns the elements of a JSON array, unchecked.
func splitArray(raw []byte) ([][]byte, error) {
	s := scanner{b: raw}
	if !s.take('[') {
		return nil, errors.New("places: results is not an array")
	}
	var items [][]byte
	s.space()
	if s.take(']') {
		if s.i != len(raw) {
			return nil, errors.New("places: bad results array")
		}
		return items, nil
	}
	for {
		s.space()
		v, ok := s.value()
		if !ok {
			return nil, errors.New("places: bad results array")
		}
		items = append(items, v)
		s.space()
		if s.take(']') {
			break
		}
		if !s.take(',') {
			return nil, errors.New("places: bad results array")
		}
	}
	if s.i != len(raw) {
		return nil, errors.New("places: bad results array")
	}
	return items, nil
}
