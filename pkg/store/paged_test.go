package store

import "testing"

func TestPaged(t *testing.T) {
	tests := []struct {
		name      string
		push, pop int
		pages     int
		firstCap  int // the first page's capacity
	}{
		{"empty", 0, 0, 0, 0},
		{"a few", 5, 0, 1, firstPage},
		{"the first page growing", 100, 0, 1, 128},
		{"a full first page", pageSize, 0, 1, pageSize},
		{"one more page", pageSize + 1, 0, 2, pageSize},
		{"three pages and a bit", 3*pageSize + 7, 0, 4, pageSize},
		{"popped back across a page", 2*pageSize + 3, pageSize, 3, pageSize},
		{"popped to nothing", 10, 10, 1, firstPage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a paged[int]
			for i := range tt.push {
				a.push(i)
			}
			for range tt.pop {
				a.pop()
			}
			n := tt.push - tt.pop
			if a.len() != n || len(a.pages) != tt.pages {
				t.Fatalf("len %d in %d pages, want %d in %d", a.len(), len(a.pages), n, tt.pages)
			}
			if tt.pages > 0 && cap(a.pages[0]) != tt.firstCap {
				t.Errorf("first page of %d, want %d", cap(a.pages[0]), tt.firstCap)
			}
			for k, p := range a.pages[min(1, len(a.pages)):] {
				if cap(p) != pageSize {
					t.Errorf("page %d of %d, want %d", k+1, cap(p), pageSize)
				}
			}
			for i := range n {
				if *a.at(i) != i {
					t.Fatalf("at(%d) = %d", i, *a.at(i))
				}
			}
			// Pushing after pops refills the pages kept.
			a.push(-1)
			if *a.at(n) != -1 || a.len() != n+1 {
				t.Errorf("after a push: at(%d) = %d, len %d", n, *a.at(n), a.len())
			}
		})
	}
}

// TestPagedNeverMoves: a full page keeps its place while the array grows.
func TestPagedNeverMoves(t *testing.T) {
	var a paged[int]
	for i := range pageSize {
		a.push(i)
	}
	first := a.at(0)
	for i := range 5 * pageSize {
		a.push(i)
	}
	if a.at(0) != first {
		t.Error("the first page moved")
	}
}

func TestPagedReserve(t *testing.T) {
	tests := []struct {
		name     string
		reserve  int
		firstCap int
	}{
		{"a few", 3, firstPage},
		{"some", 100, 100},
		{"more than a page", 3 * pageSize, pageSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a paged[int]
			a.reserve(tt.reserve)
			for i := range tt.reserve {
				a.push(i)
			}
			if cap(a.pages[0]) != tt.firstCap {
				t.Errorf("first page of %d, want %d", cap(a.pages[0]), tt.firstCap)
			}
			for i := range tt.reserve {
				if *a.at(i) != i {
					t.Fatalf("at(%d) = %d", i, *a.at(i))
				}
			}
		})
	}
}
