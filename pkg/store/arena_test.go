package store

import (
	"slices"
	"strings"
	"testing"
)

func TestArena(t *testing.T) {
	long := strings.Repeat("x", 200) // a length of two bytes
	tests := []struct {
		name  string
		items []string
		free  []int // indexes of items freed
		dead  int
	}{
		{"one id", []string{"kiwi"}, nil, 0},
		{"an empty item", []string{""}, nil, 0},
		{"ids and a text", []string{"a", "kiwi +1+1 1", "b"}, nil, 0},
		{"a long item", []string{"a", long, "b"}, []int{1}, 202},
		{"freed items", []string{"a", "bb", "ccc"}, []int{0, 2}, 2 + 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a arena
			refs := make([]uint32, len(tt.items))
			for i, item := range tt.items {
				ref, ok := add(&a, item)
				if !ok {
					t.Fatalf("add(%q) failed", item)
				}
				refs[i] = ref
			}
			held := make([][]byte, len(refs)) // as a Packed holds them
			for i, ref := range refs {
				held[i] = a.item(ref)
				if string(held[i]) != tt.items[i] || cap(held[i]) != len(held[i]) {
					t.Errorf("item %d = %q (cap %d), want %q", i, held[i], cap(held[i]), tt.items[i])
				}
			}
			for _, i := range tt.free {
				a.free(refs[i])
			}
			if a.dead != tt.dead || a.live() != len(a.b)-tt.dead {
				t.Errorf("dead %d, live %d; want %d dead of %d", a.dead, a.live(), tt.dead, len(a.b))
			}
			var kept []int
			for i := range refs {
				if !slices.Contains(tt.free, i) {
					kept = append(kept, i)
				}
			}
			old := a.b
			a.compact(func(yield func(*uint32) bool) {
				for _, i := range kept {
					if !yield(&refs[i]) {
						return
					}
				}
			})
			if a.dead != 0 || len(a.b) != len(old)-tt.dead {
				t.Errorf("after compact: %d bytes, %d dead; want %d, 0", len(a.b), a.dead, len(old)-tt.dead)
			}
			for _, i := range kept {
				if got := string(a.item(refs[i])); got != tt.items[i] {
					t.Errorf("item %d after compact = %q, want %q", i, got, tt.items[i])
				}
			}
			// The old buffer, which held slices point into, is unchanged.
			add(&a, "more")
			for i, h := range held {
				if string(h) != tt.items[i] {
					t.Errorf("held item %d = %q after compact, want %q", i, h, tt.items[i])
				}
			}
		})
	}
}

func TestArenaWasteful(t *testing.T) {
	tests := []struct {
		name       string
		live, dead int
		want       bool
	}{
		{"nothing dead", 1 << 20, 0, false},
		{"less dead than half the live", 1 << 20, 1 << 18, false},
		{"more dead than half the live", 1 << 20, 1<<19 + 1, true},
		{"too little to be worth it", 100, 1000, false},
		{"just enough", 100, minArenaDead, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := arena{b: make([]byte, tt.live+tt.dead), dead: tt.dead}
			if got := a.wasteful(); got != tt.want {
				t.Errorf("wasteful = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestArenaFits(t *testing.T) {
	tests := []struct {
		name    string
		held, n int
		want    bool
	}{
		{"empty", 0, 100, true},
		{"up to 4 GiB with its length", 1000, maxArena - 1000 - 10, true},
		{"one byte past", 1000, maxArena - 1000 - 9, false},
		{"far past", 0, 2 * maxArena, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := arena{b: make([]byte, tt.held)}
			if got := a.fits(tt.n); got != tt.want {
				t.Errorf("fits(%d) with %d held = %v, want %v", tt.n, tt.held, got, tt.want)
			}
		})
	}
}
