package places

import (
	"container/list"
	"context"
	"sync"
	"time"

	"github.com/herdkit/herd/pkg/metrics"
)

// Cache answers repeated lookups from memory: a query about the same
// position and radius within the TTL gets the answer the provider gave
// the first time, whatever its bound, since the bound is applied when the
// answer is rendered. Only answers (OK, ZERO_RESULTS) are kept, never
// failures. Entries are bounded, the least recently used going first.
//
// Identical misses in flight together share one provider call. That call
// belongs to no single caller: it goes on when the caller that started it
// gives up, and is cancelled only when every caller waiting for it has,
// each of them returning as soon as its own context is done.
type Cache struct {
	p    Provider
	ttl  time.Duration
	size int
	m    *metrics.Metrics
	now  func() time.Time // time.Now, or a test's clock

	mu      sync.Mutex
	entries map[cacheKey]*list.Element // values are *cacheEntry
	lru     list.List                  // most recently used at the front
	calls   map[cacheKey]*call
}

// cacheKey identifies identical queries: the position as the client wrote
// it and the radius. The coordinates, which follow from the position, are
// there for queries built without one.
type cacheKey struct {
	pos      string
	lat, lng float64
	radius   float64
}

type cacheEntry struct {
	key     cacheKey
	resp    *Response
	expires time.Time
}

// call is a provider call that one or more lookups wait for. resp is set
// before done is closed; waiters and cancel are guarded by Cache.mu.
type call struct {
	done    chan struct{}
	resp    *Response
	waiters int
	cancel  context.CancelFunc
}

// NewCache returns p behind a cache of at most size answers, each kept for
// ttl. It drives PlacesCacheHits, PlacesCacheMisses, PlacesCacheShared and
// PlacesCacheEntries.
func NewCache(p Provider, ttl time.Duration, size int, m *metrics.Metrics) *Cache {
	return &Cache{
		p: p, ttl: ttl, size: max(size, 1), m: m, now: time.Now,
		entries: map[cacheKey]*list.Element{},
		calls:   map[cacheKey]*call{},
	}
}

// Name returns the name of the provider behind the cache.
func (c *Cache) Name() string { return c.p.Name() }

// Ready returns the readiness of the provider behind the cache.
func (c *Cache) Ready() <-chan struct{} { return Ready(c.p) }

// Len returns the number of answers held, expired ones included until
// they are dropped.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// Nearby answers from the cache, or joins the provider call in flight for
// the same query, or starts one.
func (c *Cache) Nearby(ctx context.Context, q Query) *Response {
	k := cacheKey{q.Pos, q.Lat, q.Lng, q.RadiusKm}
	c.mu.Lock()
	if r, ok := c.held(k); ok {
		c.mu.Unlock()
		return r
	}
	c.m.PlacesCacheMisses.Inc()
	cl, ok := c.calls[k]
	if !ok && ctx.Err() != nil {
		c.mu.Unlock()
		return Failure(StatusUnknownError, "places: request cancelled")
	}
	if ok {
		cl.waiters++
		c.m.PlacesCacheShared.Inc()
	} else {
		// The call keeps ctx's values but not its cancellation, which
		// the waiters' count decides.
		cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		cl = &call{done: make(chan struct{}), waiters: 1, cancel: cancel}
		c.calls[k] = cl
		go c.fetch(cctx, k, q, cl)
	}
	c.mu.Unlock()

	select {
	case <-cl.done:
		return cl.resp
	case <-ctx.Done():
		c.mu.Lock()
		cl.waiters--
		if cl.waiters == 0 {
			cl.cancel()
			// A later query starts afresh rather than joining a call
			// that is being cancelled.
			if c.calls[k] == cl {
				delete(c.calls, k)
			}
		}
		c.mu.Unlock()
		return Failure(StatusUnknownError, "places: request cancelled")
	}
}

// Peek returns the answer held for q, if one is, counting a hit as Nearby
// would; it never calls the provider or waits for a call, and counts no
// miss.
func (c *Cache) Peek(q Query) (*Response, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held(cacheKey{q.Pos, q.Lat, q.Lng, q.RadiusKm})
}

// held returns the live answer for k, counting a hit, and drops an expired
// one. c.mu is held.
func (c *Cache) held(k cacheKey) (*Response, bool) {
	e, ok := c.entries[k]
	if !ok {
		return nil, false
	}
	ent := e.Value.(*cacheEntry)
	if c.now().Before(ent.expires) {
		c.lru.MoveToFront(e)
		c.m.PlacesCacheHits.Inc()
		return ent.resp, true
	}
	c.remove(e)
	c.m.PlacesCacheEntries.Set(float64(c.lru.Len()))
	return nil, false
}

// fetch makes the provider call for cl and hands its answer to the
// waiters, keeping it if it may be reused.
func (c *Cache) fetch(ctx context.Context, k cacheKey, q Query, cl *call) {
	defer cl.cancel()
	resp := c.p.Nearby(ctx, q)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls[k] == cl {
		delete(c.calls, k)
	}
	if resp.Cacheable() {
		c.store(k, resp)
	}
	cl.resp = resp
	close(cl.done)
}

// store keeps resp for k, dropping the least recently used entries beyond
// the size, and expired ones found at the back. c.mu is held.
func (c *Cache) store(k cacheKey, resp *Response) {
	now := c.now()
	if e, ok := c.entries[k]; ok {
		ent := e.Value.(*cacheEntry)
		ent.resp, ent.expires = resp, now.Add(c.ttl)
		c.lru.MoveToFront(e)
	} else {
		c.entries[k] = c.lru.PushFront(&cacheEntry{key: k, resp: resp, expires: now.Add(c.ttl)})
	}
	for c.lru.Len() > c.size {
		c.remove(c.lru.Back())
	}
	for back := c.lru.Back(); back != nil && !now.Before(back.Value.(*cacheEntry).expires); back = c.lru.Back() {
		c.remove(back)
	}
	c.m.PlacesCacheEntries.Set(float64(c.lru.Len()))
}

// remove drops an entry. c.mu is held.
func (c *Cache) remove(e *list.Element) {
	c.lru.Remove(e)
	delete(c.entries, e.Value.(*cacheEntry).key)
}
