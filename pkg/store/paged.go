package store

// paged is an array that grows a page at a time. A full page never moves
// or grows, so growing the array copies nothing, and at most its last
// page is not full. The store's arrays of an element per client (the
// slots, the change log, the bound's heap) are paged: a slice that grows
// by append copies itself each time it outgrows its capacity (some 200 MB
// of copying on the way to a million slots of 48 bytes, with as much let
// go for the collector) and holds up to a quarter more than it needs.
type paged[T any] struct {
	pages [][]T
	n     int
}

const (
	pageBits = 12
	pageSize = 1 << pageBits
	pageMask = pageSize - 1
	// firstPage is the capacity the first page starts with; it doubles
	// up to pageSize, so that a small store stays small.
	firstPage = 16
)

func (a *paged[T]) len() int { return a.n }

// at returns element i, which is below len.
func (a *paged[T]) at(i int) *T { return &a.pages[i>>pageBits][i&pageMask] }

// push appends v.
func (a *paged[T]) push(v T) {
	k := a.n >> pageBits
	if k == len(a.pages) {
		size := pageSize
		if k == 0 {
			size = firstPage
		}
		a.pages = append(a.pages, make([]T, 0, size))
	}
	p := a.pages[k]
	if len(p) == cap(p) { // the first page, growing
		grown := make([]T, len(p), min(2*cap(p), pageSize))
		copy(grown, p)
		p = grown
	}
	a.pages[k] = append(p, v)
	a.n++
}

// reserve makes the first page of an empty array hold n elements, up to
// a page, without growing: for an array about to be filled with n.
func (a *paged[T]) reserve(n int) {
	if len(a.pages) == 0 {
		a.pages = append(a.pages, make([]T, 0, min(max(n, firstPage), pageSize)))
	}
}

// pop removes the last element. Its page stays, for the next push.
func (a *paged[T]) pop() {
	a.n--
	k := a.n >> pageBits
	var zero T
	a.pages[k][a.n&pageMask] = zero
	a.pages[k] = a.pages[k][:a.n&pageMask]
}
