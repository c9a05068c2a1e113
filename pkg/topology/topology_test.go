package topology

import (
	"slices"
	"testing"
)

// graph returns the adjacency of a herd of n.
func graph(n int) [][]int {
	g := make([][]int, n)
	for i := range n {
		g[i] = Neighbours(i, n)
	}
	return g
}

// distances returns the hop counts from start, -1 where unreachable,
// skipping the servers in down.
func distances(g [][]int, start int, down ...int) []int {
	dist := make([]int, len(g))
	for i := range dist {
		dist[i] = -1
	}
	dist[start] = 0
	queue := []int{start}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		for _, j := range g[i] {
			if dist[j] < 0 && !slices.Contains(down, j) {
				dist[j] = dist[i] + 1
				queue = append(queue, j)
			}
		}
	}
	return dist
}

func TestProperties(t *testing.T) {
	for n := 1; n <= 64; n++ {
		g := graph(n)
		log := CeilLog2(n)
		diameter := 0
		for i, nb := range g {
			if len(nb) > 2*log {
				t.Errorf("N=%d: server %d has %d links, more than 2⌈log2 N⌉ = %d", n, i, len(nb), 2*log)
			}
			for _, j := range nb {
				if j == i {
					t.Errorf("N=%d: server %d links to itself", n, i)
				}
				if !slices.Contains(g[j], i) {
					t.Errorf("N=%d: %d lists %d, which does not list it", n, i, j)
				}
			}
			for j, d := range distances(g, i) {
				if d < 0 {
					t.Fatalf("N=%d: %d cannot reach %d", n, i, j)
				}
				diameter = max(diameter, d)
			}
		}
		if diameter > log {
			t.Errorf("N=%d: diameter %d, more than ⌈log2 N⌉ = %d", n, diameter, log)
		}
		if n < 5 {
			continue
		}
		for a := range n {
			for b := a + 1; b < n; b++ {
				start := 0
				for start == a || start == b {
					start++
				}
				for j, d := range distances(g, start, a, b) {
					if d < 0 && j != a && j != b {
						t.Fatalf("N=%d: with %d and %d down, %d cannot reach %d", n, a, b, start, j)
					}
				}
			}
		}
	}
}

func TestNeighbours(t *testing.T) {
	tests := []struct {
		name string
		i, n int
		want []int
	}{
		{"alone", 0, 1, nil},
		{"pair", 1, 2, []int{0}},
		{"four", 0, 4, []int{1, 2, 3}},
		{"nine", 0, 9, []int{1, 2, 4, 5, 7, 8}},
		{"nine, server 3", 3, 9, []int{1, 2, 4, 5, 7, 8}},
		{"eleven, server 10", 10, 11, []int{0, 1, 2, 3, 6, 7, 8, 9}},
		{"out of range", 9, 9, nil},
		{"negative", -1, 9, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Neighbours(tt.i, tt.n); !slices.Equal(got, tt.want) {
				t.Errorf("Neighbours(%d, %d) = %v, want %v", tt.i, tt.n, got, tt.want)
			}
		})
	}
}

func TestCeilLog2(t *testing.T) {
	for _, tt := range []struct{ n, want int }{{1, 0}, {2, 1}, {3, 2}, {4, 2}, {5, 3}, {9, 4}, {64, 6}, {65, 7}, {1024, 10}} {
		if got := CeilLog2(tt.n); got != tt.want {
			t.Errorf("CeilLog2(%d) = %d, want %d", tt.n, got, tt.want)
		}
	}
}
