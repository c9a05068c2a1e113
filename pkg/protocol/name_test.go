package protocol

import (
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		s    string
		want bool
	}{
		{"classic", "Hill", true},
		{"every allowed byte", "a-Z_0.9", true},
		{"longest", strings.Repeat("n", MaxNameLen), true},
		{"empty", "", false},
		{"too long", strings.Repeat("n", MaxNameLen+1), false},
		{"space, which would split an AT line", "Hill 2", false},
		{"tab", "Hill\t2", false},
		{"equals, which would split HERD_PEERS", "a=b", false},
		{"comma", "a,b", false},
		{"not ASCII", "Hüll", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidName(tt.s); got != tt.want {
				t.Errorf("ValidName(%q) = %v, want %v", tt.s, got, tt.want)
			}
		})
	}
}
