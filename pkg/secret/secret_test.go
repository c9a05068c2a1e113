package secret

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// TestNeverShows: no fmt verb and no slog handler shows a secret's bytes,
// alone or inside a struct, and an unset one shows as empty.
func TestNeverShows(t *testing.T) {
	const value = "super-secret-value"
	s := String(value)
	type holder struct {
		Name   string
		Secret String
	}
	h := holder{"Hill", s}
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		out = append(out, fmt.Sprintf(verb, s), fmt.Sprintf(verb, h), fmt.Sprintf(verb, &h))
	}
	var b bytes.Buffer
	for _, l := range []*slog.Logger{slog.New(slog.NewJSONHandler(&b, nil)), slog.New(slog.NewTextHandler(&b, nil))} {
		l.Info("config", "secret", s, "holder", h)
	}
	out = append(out, b.String())
	for _, o := range out {
		if strings.Contains(o, value) || strings.Contains(o, fmt.Sprintf("%x", value)) {
			t.Errorf("secret shown: %s", o)
		}
	}
	if !strings.Contains(fmt.Sprint(s), Redacted) || !strings.Contains(b.String(), Redacted) {
		t.Errorf("a set secret should show as %s: %q, %q", Redacted, fmt.Sprint(s), b.String())
	}
	if got := fmt.Sprint(String("")); got != "" {
		t.Errorf("unset secret shows as %q, want empty", got)
	}
}
