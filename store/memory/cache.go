package memory

import (
	"bytes"
	"container/list"
	"context"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/store"
)

// DefaultMaxCacheBytes bounds the bytes a Cache keeps when
// CacheOptions.MaxBytes is zero.
const DefaultMaxCacheBytes = 64 << 20

// CacheOptions configure a Cache. The zero value of each field means its
// default.
type CacheOptions struct {
	// MaxBytes bounds the bytes of the keys and values kept (the
	// bookkeeping of each entry, about a hundred and fifty bytes, comes on
	// top). Past it, the least recently used entries are dropped before
	// their time; an entry larger than MaxBytes on its own is not kept at
	// all. 0 means DefaultMaxCacheBytes.
	MaxBytes int64
	// Now returns the current time; nil means time.Now. Times are compared
	// by their monotonic readings when they have them.
	Now func() time.Time
}

// A Cache is a store.Cache in process memory, for a single instance. It
// keeps at most MaxBytes, dropping the least recently used entries (read
// or set) to make room. It runs no goroutine: an expired entry is dropped
// when it is next read or set, or when it becomes the least recently used
// and room is needed.
//
// A Cache is safe for concurrent use.
type Cache struct {
	opts CacheOptions

	mu      sync.Mutex
	entries map[string]*list.Element // of *cacheEntry
	lru     *list.List               // most recently used at the front
	bytes   int64                    // the size of every entry
}

// A cacheEntry is one key's value. The bytes of value are never changed
// once stored (a Set stores a new slice), so Get copies them out without
// the lock.
type cacheEntry struct {
	key     string
	value   []byte
	expires time.Time
}

func (e *cacheEntry) size() int64 { return int64(len(e.key) + len(e.value)) }

var _ store.Cache = (*Cache)(nil)

// NewCache returns an empty Cache.
func NewCache(opts CacheOptions) *Cache {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxCacheBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Cache{opts: opts, entries: map[string]*list.Element{}, lru: list.New()}
}

// Get implements store.Cache.
func (c *Cache) Get(_ context.Context, key string) ([]byte, bool, error) {
	now := c.opts.Now()
	c.mu.Lock()
	el, ok := c.entries[key]
	if !ok {
		c.mu.Unlock()
		return nil, false, nil
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.remove(el)
		c.mu.Unlock()
		return nil, false, nil
	}
	c.lru.MoveToFront(el)
	v := e.value
	c.mu.Unlock()
	// v is never nil (see Set), so neither is its clone.
	return bytes.Clone(v), true, nil
}

// Set implements store.Cache.
func (c *Cache) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	now := c.opts.Now()
	size := int64(len(key) + len(value))
	var v []byte
	if ttl > 0 && size <= c.opts.MaxBytes {
		// Copied before taking the lock; non-nil even when empty.
		v = append(make([]byte, 0, len(value)), value...)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if v == nil {
		// Expired at once, or too large to keep: the value the key had
		// is replaced by none.
		if ok {
			c.remove(el)
		}
		return nil
	}
	if ok {
		e := el.Value.(*cacheEntry)
		c.bytes -= e.size()
		e.value, e.expires = v, now.Add(ttl)
		c.lru.MoveToFront(el)
	} else {
		el = c.lru.PushFront(&cacheEntry{key: key, value: v, expires: now.Add(ttl)})
		c.entries[key] = el
	}
	c.bytes += size
	// The entry just set is at the front and fits alone, so it stays.
	for c.bytes > c.opts.MaxBytes {
		c.remove(c.lru.Back())
	}
	return nil
}

// remove drops the entry of el. c.mu is held.
func (c *Cache) remove(el *list.Element) {
	e := c.lru.Remove(el).(*cacheEntry)
	delete(c.entries, e.key)
	c.bytes -= e.size()
}
