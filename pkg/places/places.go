package places

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// Query asks for the places within a radius of a stored position.
type Query struct {
	// Pos is the position as the client wrote it; with RadiusKm it is the
	// cache key, so two WHATSATs about clients at the same spot share an
	// answer.
	Pos      string
	Lat, Lng float64 // degrees
	RadiusKm float64 // greater than 0, at most 50
}

// Provider looks places up.
type Provider interface {
	// Name is the provider's metric label: offline, google or google-new.
	Name() string
	// Nearby returns the places near q, the most prominent first, at most
	// 20 of them. It never returns nil: a failure is a Response with a
	// status other than OK or ZERO_RESULTS and an error_message. It gives
	// up when ctx is done.
	Nearby(ctx context.Context, q Query) *Response
}

// Peeker is a provider that can answer some queries at once from memory
// (Cache): a caller with the answer in hand need not hand the query to a
// goroutine of its own.
type Peeker interface {
	// Peek returns the answer to q if it is at hand, without calling or
	// waiting for anything.
	Peek(q Query) (*Response, bool)
}

// Statuses of the legacy Nearby Search response.
const (
	StatusOK             = "OK"
	StatusZeroResults    = "ZERO_RESULTS"
	StatusInvalidRequest = "INVALID_REQUEST"
	StatusOverQueryLimit = "OVER_QUERY_LIMIT"
	StatusRequestDenied  = "REQUEST_DENIED"
	StatusUnknownError   = "UNKNOWN_ERROR"
)

// Response is an answer in the shape of Google's legacy Nearby Search
// response. It keeps the top-level fields in the order they came, with
// their values as they came, and the results split apart, so that it can be
// rendered with any bound without being parsed again: one upstream answer
// serves every bound.
type Response struct {
	// Status is the response's status field, e.g. OK or ZERO_RESULTS.
	Status string
	// ErrorMessage is the response's error_message field, empty when it
	// has none.
	ErrorMessage string

	head    []byte   // "{\n   ...,\n   \"results\" : " or the whole object if there are no results
	results [][]byte // each result indented for its place in the array
	tail    []byte   // ",\n   ...\n}" after the results
	noArray bool     // the object has no "results" field
}

// indent is the indentation of rendered JSON, three spaces as Google's own.
const indent = "   "

// Cacheable reports whether the answer may be reused: an answer from the
// provider, as opposed to a failure to get one.
func (r *Response) Cacheable() bool {
	return r.Status == StatusOK || r.Status == StatusZeroResults
}

// Len returns the number of results held.
func (r *Response) Len() int { return len(r.results) }

// AppendJSON appends the response with its results cut to the first bound,
// indented, with no blank line inside and no trailing newline.
func (r *Response) AppendJSON(dst []byte, bound int) []byte {
	dst = append(dst, r.head...)
	if r.noArray {
		return dst
	}
	n := min(max(bound, 0), len(r.results))
	if n == 0 {
		dst = append(dst, "[]"...)
	} else {
		dst = append(dst, "[\n"...)
		for i, res := range r.results[:n] {
			if i > 0 {
				dst = append(dst, ",\n"...)
			}
			dst = append(dst, indent+indent...)
			dst = append(dst, res...)
		}
		dst = append(dst, "\n"+indent+"]"...)
	}
	return append(dst, r.tail...)
}

// Parse reads a legacy Nearby Search response body. It keeps the order and
// values of the top-level fields; only their layout changes, to one
// indentation for every response.
//
// It splits the object and the results array itself and has json.Indent
// lay out, and so validate, every value, in under half the time of the
// json.Decoder version it replaced (kept in parse_reference_test.go, which
// FuzzParse holds it to).
func Parse(body []byte) (*Response, error) {
	s := scanner{b: body}
	s.space()
	if !s.take('{') {
		return nil, errors.New("places: response is not a JSON object")
	}
	r := &Response{noArray: true}
	var out bytes.Buffer
	out.WriteString("{")
	s.space()
	if !s.take('}') {
		for first := true; ; first = false {
			if err := r.member(&s, &out, first); err != nil {
				return nil, err
			}
			s.space()
			if s.take('}') {
				break
			}
			if !s.take(',') {
				return nil, errors.New("places: response object is not closed")
			}
			s.space()
		}
	}
	s.space()
	if s.i != len(body) {
		return nil, errors.New("places: data after the response object")
	}
	if r.Status == "" {
		return nil, errors.New("places: response has no status")
	}
	out.WriteString("\n}")
	if r.noArray {
		r.head = out.Bytes()
	} else {
		// A copy, since out's buffer grew to hold the head: a cached
		// answer should not keep that.
		r.tail = bytes.Clone(out.Bytes())
	}
	return r, nil
}

// member reads one field of the response object into r and out, which
// holds the rendering so far.
func (r *Response) member(s *scanner, out *bytes.Buffer, first bool) error {
	key, ok := s.value()
	var name string
	if !ok || key[0] != '"' || json.Unmarshal(key, &name) != nil {
		return errors.New("places: bad response: a field name is not a string")
	}
	s.space()
	if !s.take(':') {
		return fmt.Errorf("places: bad response: no colon after %q", name)
	}
	s.space()
	raw, ok := s.value()
	if !ok {
		return fmt.Errorf("places: bad response field %q: truncated", name)
	}
	if !first {
		out.WriteString(",")
	}
	out.WriteString("\n" + indent)
	k, _ := json.Marshal(name)
	out.Write(k)
	out.WriteString(" : ")
	switch name {
	case "results":
		if !r.noArray {
			return errors.New(`places: response has two "results" fields`)
		}
		items, err := splitArray(raw)
		if err != nil {
			return err
		}
		r.noArray = false
		r.head = bytes.Clone(out.Bytes())
		out.Reset()
		r.results = make([][]byte, len(items))
		for i, it := range items {
			var b bytes.Buffer
			b.Grow(len(it) + len(it)/2)
			if err := json.Indent(&b, it, indent+indent, indent); err != nil {
				return fmt.Errorf("places: bad result: %w", err)
			}
			r.results[i] = b.Bytes()
		}
		return nil
	case "status":
		if err := json.Unmarshal(raw, &r.Status); err != nil {
			return fmt.Errorf("places: status is not a string: %w", err)
		}
	case "error_message":
		// Kept for logs; a message that is not a string is passed
		// through as it came and not logged.
		_ = json.Unmarshal(raw, &r.ErrorMessage)
	}
	if err := json.Indent(out, raw, indent, indent); err != nil {
		return fmt.Errorf("places: bad response field %q: %w", name, err)
	}
	return nil
}

// Failure returns the answer to a lookup that failed: the status (Google's
// own, or UNKNOWN_ERROR for a failure of ours), the message, and no
// results, in the order Google uses.
func Failure(status, message string) *Response {
	body, _ := json.Marshal(struct {
		ErrorMessage    string   `json:"error_message,omitempty"`
		HTMLAttribution []string `json:"html_attributions"`
		Results         []string `json:"results"`
		Status          string   `json:"status"`
	}{message, []string{}, []string{}, status})
	r, err := Parse(body)
	if err != nil {
		panic("places: Failure built a bad response: " + err.Error())
	}
	return r
}

// MaxResults is the most results a provider returns, as Google's own.
const MaxResults = 20

// LatLng is a position as the legacy response writes it; json.Number
// keeps the digits as they came.
type LatLng struct {
	Lat json.Number `json:"lat"`
	Lng json.Number `json:"lng"`
}

// Render turns v, a struct in the shape of the legacy response, into a
// Response: encoding/json writes it, leaving <, > and & as they are, and
// Parse reads it back, so that a provider that builds its answer (offline,
// google-new) has the layout of every other.
func Render(v any) (*Response, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return Parse(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}
