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
			if a.dead != tt.dead || a.live() != a.size-tt.dead {
				t.Errorf("dead %d, live %d; want %d dead of %d", a.dead, a.live(), tt.dead, a.size)
			}
			var kept []int
			for i := range refs {
				if !slices.Contains(tt.free, i) {
					kept = append(kept, i)
				}
			}
			old := a.size
			a.compact(func(yield func(*uint32) bool) {
				for _, i := range kept {
					if !yield(&refs[i]) {
						return
					}
				}
			})
			if a.dead != 0 || a.size != old-tt.dead {
				t.Errorf("after compact: %d bytes, %d dead; want %d, 0", a.size, a.dead, old-tt.dead)
			}
			for _, i := range kept {
				if got := string(a.item(refs[i])); got != tt.items[i] {
					t.Errorf("item %d after compact = %q, want %q", i, got, tt.items[i])
				}
			}
			// The old chunks, which held slices point into, are unchanged.
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
			a := arena{size: tt.live + tt.dead, dead: tt.dead}
			if got := a.wasteful(); got != tt.want {
				t.Errorf("wasteful = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestArenaChunks fills chunks: each next one twice the last up to
// maxChunk, an item never split, full chunks never grown, and the limits
// of an item's size and of the chunks' number.
func TestArenaChunks(t *testing.T) {
	var a arena
	item := strings.Repeat("x", 300) // 302 bytes with its length
	var refs []uint32
	var held [][]byte
	for range 20 {
		ref, ok := add(&a, item)
		if !ok {
			t.Fatal("add failed")
		}
		refs = append(refs, ref)
		held = append(held, a.item(ref))
	}
	var caps []int
	for _, c := range a.chunks {
		caps = append(caps, cap(c))
	}
	// 1 KiB holds three items, 2 KiB six, 4 KiB the other eleven.
	if want := []int{1 << 10, 2 << 10, 4 << 10}; !slices.Equal(caps, want) {
		t.Errorf("chunks of %v, want %v", caps, want)
	}
	for i, ref := range refs {
		if got := a.item(ref); string(got) != item || &got[0] != &held[i][0] {
			t.Errorf("item %d moved or changed", i)
		}
	}
	if a.size != 20*302 || a.live() != 20*302 {
		t.Errorf("size %d, live %d; want %d", a.size, a.live(), 20*302)
	}
	if _, ok := add(&a, strings.Repeat("x", maxChunk)); ok {
		t.Error("an item larger than a chunk was added")
	}
	big, ok := add(&a, strings.Repeat("y", maxChunk-3))
	if !ok || len(a.item(big)) != maxChunk-3 || cap(a.chunks[len(a.chunks)-1]) != maxChunk {
		t.Errorf("an item of a whole chunk: added %v, chunk of %d", ok, cap(a.chunks[len(a.chunks)-1]))
	}
	full := arena{chunks: make([][]byte, maxChunks)}
	full.chunks[maxChunks-1] = make([]byte, 0, 4)
	if _, ok := add(&full, "12345"); ok {
		t.Error("an item was added past the last chunk")
	}
	if _, ok := add(&full, "12"); !ok {
		t.Error("an item that fits the last chunk was refused")
	}
}
