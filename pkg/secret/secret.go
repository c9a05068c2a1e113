// Package secret holds the type of a value that must never reach a log:
// the peer secret and the Google API key. The configuration reads it, and
// the component that uses it keeps the type until the one line that needs
// the bytes (the peer handshake's HMAC, the Google request).
package secret

import (
	"fmt"
	"log/slog"
)

// String is a string that never shows itself in logs or formatted output.
// Convert it, string(s), only where its bytes are used.
type String string

// Redacted is what a set String shows instead of itself.
const Redacted = "[redacted]"

// String hides the secret: Redacted, or "" when it is not set.
func (s String) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString hides the secret from %#v.
func (s String) GoString() string { return s.String() }

// LogValue hides the secret from log/slog.
func (s String) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Format hides the secret from every fmt verb: %d and %x would otherwise
// print its bytes.
func (s String) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, s.GoString())
		return
	}
	fmt.Fprint(f, s.String())
}

// MarshalText hides the secret from encoding/json and every encoder that
// uses encoding.TextMarshaler, as slog's JSON handler does for a struct
// that holds one.
func (s String) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
