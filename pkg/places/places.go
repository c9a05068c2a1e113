// Package places answers "what is near this position" for WHATSAT, from
// providers behind one interface: the embedded GeoNames data (offline, the
// default), Google's legacy Nearby Search, and Places API (New). Answers
// always have the shape of the legacy Nearby Search response, whatever the
// provider, and failures are answers too: a status and an error_message.
package places

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
func Parse(body []byte) (*Response, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("places: response is not a JSON object")
	}
	r := &Response{noArray: true}
	var out bytes.Buffer
	out.WriteString("{")
	first := true
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("places: bad response: %w", err)
		}
		name, _ := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("places: bad response field %q: %w", name, err)
		}
		if !first {
			out.WriteString(",")
		}
		first = false
		out.WriteString("\n" + indent)
		key, _ := json.Marshal(name)
		out.Write(key)
		out.WriteString(" : ")
		switch name {
		case "results":
			if !r.noArray {
				return nil, errors.New(`places: response has two "results" fields`)
			}
			var items []json.RawMessage
			if err := json.Unmarshal(raw, &items); err != nil {
				return nil, fmt.Errorf("places: results is not an array: %w", err)
			}
			r.noArray = false
			r.head = bytes.Clone(out.Bytes())
			out.Reset()
			r.results = make([][]byte, len(items))
			for i, it := range items {
				var b bytes.Buffer
				if err := json.Indent(&b, it, indent+indent, indent); err != nil {
					return nil, err
				}
				r.results[i] = b.Bytes()
			}
			continue
		case "status":
			if err := json.Unmarshal(raw, &r.Status); err != nil {
				return nil, fmt.Errorf("places: status is not a string: %w", err)
			}
		}
		if err := json.Indent(&out, raw, indent, indent); err != nil {
			return nil, err
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, errors.New("places: response object is not closed")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("places: data after the response object")
	}
	if r.Status == "" {
		return nil, errors.New("places: response has no status")
	}
	out.WriteString("\n}")
	if r.noArray {
		r.head = out.Bytes()
	} else {
		r.tail = out.Bytes()
	}
	return r, nil
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
