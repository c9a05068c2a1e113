package protocol

import (
	"bufio"
	"strings"
	"testing"
)

func TestLineBuffered(t *testing.T) {
	tests := []struct {
		name  string
		input string
		reads int // lines read before asking
		want  bool
	}{
		{"nothing buffered", "", 0, false},
		{"a whole line", "IAMAT a +1+1 1\n", 0, true},
		{"only part of a line", "IAMAT a +1", 0, false},
		{"a whole line, then part of one", "IAMAT a +1+1 1\nIAMAT b", 0, true},
		{"the whole line read, part of one left", "IAMAT a +1+1 1\nIAMAT b", 1, false},
		{"every line read", "x\ny\n", 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			br := bufio.NewReader(strings.NewReader(tt.input))
			br.Peek(len(tt.input)) // fill the buffer with all of it
			for range tt.reads {
				if _, err := br.ReadSlice('\n'); err != nil {
					t.Fatal(err)
				}
			}
			if got := LineBuffered(br); got != tt.want {
				t.Errorf("LineBuffered = %v, want %v", got, tt.want)
			}
		})
	}
}
