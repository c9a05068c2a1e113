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
		log2, log3, hops := ceilLog(2, n), ceilLog(3, n), diameterBound(n)
		diameter := 0
		for i, nb := range g {
			if len(nb) > 2*log3 || len(nb) > 2*log2 {
				t.Errorf("N=%d: server %d has %d links, more than 2⌈log3 N⌉ = %d or 2⌈log2 N⌉ = %d", n, i, len(nb), 2*log3, 2*log2)
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
		if diameter > hops || diameter > log2 {
			t.Errorf("N=%d: diameter %d, more than %d (balanced ternary) or ⌈log2 N⌉ = %d", n, diameter, hops, log2)
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
		{"four, complete", 0, 4, []int{1, 2, 3}},
		{"five, complete", 2, 5, []int{0, 1, 3, 4}},
		{"six: +3 and -3 are one", 0, 6, []int{1, 3, 5}},
		{"nine", 0, 9, []int{1, 3, 6, 8}},
		{"nine, server 3", 3, 9, []int{0, 2, 4, 6}},
		{"eleven, server 10: 9 wraps around", 10, 11, []int{0, 1, 2, 7, 8, 9}},
		{"sixty-four", 0, 64, []int{1, 3, 9, 27, 37, 55, 61, 63}},
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

// ceilLog returns ⌈log_b n⌉ for n >= 1.
func ceilLog(b, n int) int {
	k := 0
	for p := 1; p < n; p *= b {
		k++
	}
	return k
}

// diameterBound returns the least m with (3^m-1)/2 >= ⌊n/2⌋: every
// distance round the circle up to that is a sum of distinct ±3^k.
func diameterBound(n int) int {
	m := 0
	for p := 1; (p-1)/2 < n/2; p *= 3 {
		m++
	}
	return m
}

func TestBounds(t *testing.T) {
	for _, tt := range []struct{ b, n, want int }{{2, 1, 0}, {2, 2, 1}, {2, 5, 3}, {2, 9, 4}, {2, 64, 6}, {2, 65, 7}, {3, 9, 2}, {3, 10, 3}, {3, 64, 4}} {
		if got := ceilLog(tt.b, tt.n); got != tt.want {
			t.Errorf("ceilLog(%d, %d) = %d, want %d", tt.b, tt.n, got, tt.want)
		}
	}
	for _, tt := range []struct{ n, want int }{{1, 0}, {2, 1}, {3, 1}, {9, 2}, {27, 3}, {28, 4}, {64, 4}} {
		if got := diameterBound(tt.n); got != tt.want {
			t.Errorf("diameterBound(%d) = %d, want %d", tt.n, got, tt.want)
		}
	}
}
