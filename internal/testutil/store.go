package testutil

import "github.com/herdkit/herd/pkg/store"

// Apply stores r in st as having come from from, the way a node's client
// connections and link readers do (Store.ApplyAll), and returns the change
// number it was given and whether it was newer. While other goroutines
// apply records to st too, the number may be a later change's: waiting
// for it (Journal.Wait) also waits for r's.
func Apply(st *store.Store, r store.Record, from store.Source) (uint64, bool) {
	if applied := st.ApplyAll([]store.Record{r}, from, nil); !applied[0] {
		return 0, false
	}
	return st.Seq(), true
}
