package places

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// parseReference is Parse as it was first written, on json.Decoder: the
// reference that FuzzParse holds the faster Parse to. It reads a legacy Nearby Search response body. It keeps the order and
// values of the top-level fields; only their layout changes, to one
// indentation for every response.
func parseReference(body []byte) (*Response, error) {
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
		case "error_message":
			// Kept for logs; a message that is not a string is passed
			// through as it came and not logged.
			_ = json.Unmarshal(raw, &r.ErrorMessage)
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
