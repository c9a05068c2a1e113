package protocol

import "testing"

// TestCommandTable: every command kind has one row, its word parses to
// its kind, and the reply forms are those of PROTOCOL.md.
func TestCommandTable(t *testing.T) {
	specs := Commands()
	if len(specs) != int(NumKinds-IAMAT) {
		t.Fatalf("%d commands for %d command kinds", len(specs), NumKinds-IAMAT)
	}
	for i, s := range specs {
		if s.Kind != IAMAT+Kind(i) {
			t.Errorf("row %d has kind %v, want the kinds in order", i, s.Kind)
		}
		if got, ok := Lookup(s.Kind); !ok || got.Word != s.Word {
			t.Errorf("Lookup(%v) = %v, %v", s.Kind, got.Word, ok)
		}
		if s.Kind.String() != s.Word {
			t.Errorf("%v.String() = %q", s.Kind, s.Kind.String())
		}
		c := Parse([]byte(s.Word))
		if c.Kind != Invalid || c.Verb != s.Kind {
			t.Errorf("Parse(%q) = kind %v verb %v, want an invalid line of verb %v", s.Word, c.Kind, c.Verb, s.Kind)
		}
		if f := FormOf(" " + s.Word + " x"); f != s.Reply {
			t.Errorf("FormOf(%q) = %v, want %v", s.Word, f, s.Reply)
		}
	}
	for _, k := range []Kind{Invalid, Blank, NumKinds} {
		if _, ok := Lookup(k); ok {
			t.Errorf("Lookup(%v) found a command", k)
		}
	}
	if Invalid.String() != "invalid" || Blank.String() != "blank" {
		t.Errorf("Invalid %q, Blank %q", Invalid, Blank)
	}
	for line, want := range map[string]ReplyForm{
		"WHATSAT k 10 5": PlacesReply, "IAMAT k +1+1 1": LineReply, "WHATSATX": LineReply, "": LineReply, "whatsat": LineReply,
	} {
		if got := FormOf([]byte(line)); got != want {
			t.Errorf("FormOf(%q) = %v, want %v", line, got, want)
		}
	}
}
