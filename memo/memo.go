// Package memo remembers the values of pure functions of a string within a
// byte budget: what a step computes again, alike, at every step (each
// tool's schema, each past call's arguments, each input's envelope, each
// agent's model config), since it reads and renders the whole context
// afresh.
package memo

import "sync"

// Cache is a bounded cache of a pure function of a string. Its zero value
// is empty and ready; it is safe for concurrent use. Past its budget it
// starts again (empties), which costs a few recomputations and keeps its
// memory flat. A value it returns is shared by every caller that asks for
// the same key: a caller must not change it.
type Cache[V any] struct {
	mu    sync.RWMutex // guards m and bytes
	m     map[string]V
	bytes int // of the keys and values held
}

// MaxBytes bounds what a Cache holds.
const MaxBytes = 8 << 20

// Get returns f's value for key, computing it once; f also says the
// value's size in bytes. A value over 1/64 of the budget is not held.
func (c *Cache[V]) Get(key string, f func() (V, int)) V {
	c.mu.RLock()
	v, ok := c.m[key]
	c.mu.RUnlock()
	if ok {
		return v
	}
	v, n := f()
	size := len(key) + n
	if size > MaxBytes/64 {
		return v // too big to be worth holding
	}
	c.mu.Lock()
	if c.m == nil || c.bytes+size > MaxBytes {
		c.m, c.bytes = map[string]V{}, 0
	}
	if _, ok := c.m[key]; !ok {
		c.m[key] = v
		c.bytes += size
	}
	c.mu.Unlock()
	return v
}

// GetBytes is Get for a key held in bytes: it reads the cache without
// copying key, so a value found costs no allocation.
func (c *Cache[V]) GetBytes(key []byte, f func() (V, int)) V {
	c.mu.RLock()
	v, ok := c.m[string(key)]
	c.mu.RUnlock()
	if ok {
		return v
	}
	return c.Get(string(key), f)
}

// Len is how many values c holds.
func (c *Cache[V]) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// Bytes is the size of what c holds, as its callers reported it.
func (c *Cache[V]) Bytes() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.bytes
}
