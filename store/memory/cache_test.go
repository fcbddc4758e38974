package memory_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/store"
	"github.com/sluice-gw/sluice/store/memory"
	"github.com/sluice-gw/sluice/store/storetest"
)

func TestCache(t *testing.T) {
	c := memory.NewCache(memory.CacheOptions{})
	storetest.RunCache(t, func(testing.TB) store.Cache { return c })
}

// cacheWant checks, in order, which keys the cache holds. Each Get of a key
// held makes it the most recently used.
func cacheWant(t *testing.T, c *memory.Cache, keys string, held bool) {
	t.Helper()
	for _, k := range strings.Fields(keys) {
		_, ok, err := c.Get(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		if ok != held {
			t.Errorf("key %s held %v, want %v", k, ok, held)
		}
	}
}

func cacheSet(t *testing.T, c *memory.Cache, key string, n int) {
	t.Helper()
	if err := c.Set(context.Background(), key, make([]byte, n), time.Hour); err != nil {
		t.Fatal(err)
	}
}

// TestCacheLRU checks that past MaxBytes the least recently used entries go
// first, reads and sets counting as use, and that an entry's size is its
// key's and value's bytes, kept right when a value is replaced.
func TestCacheLRU(t *testing.T) {
	c := memory.NewCache(memory.CacheOptions{MaxBytes: 300})
	for _, k := range []string{"a", "b", "c"} {
		cacheSet(t, c, k, 99) // 100 bytes each: full
	}
	cacheWant(t, c, "a", true) // a is now the most recently used
	cacheSet(t, c, "d", 99)    // b, the least recently used, goes
	cacheWant(t, c, "b", false)
	// Most recent first: d a c. 200 bytes more push out c, then a.
	cacheSet(t, c, "e", 199)
	cacheWant(t, c, "c a", false)
	cacheWant(t, c, "d e", true) // e d
	// d shrinks to 2 bytes (e is now the least recently used): 202 bytes
	// held, and 100 more push out e alone.
	cacheSet(t, c, "d", 1)
	cacheSet(t, c, "f", 99)
	cacheWant(t, c, "e", false)
	cacheWant(t, c, "d f", true)
	// An entry of exactly MaxBytes fits, alone.
	cacheSet(t, c, "g", 299)
	cacheWant(t, c, "d f", false)
	cacheWant(t, c, "g", true)
}

// TestCacheTooLarge checks that an entry larger than MaxBytes is not kept,
// that it does not push other entries out, and that it replaces the value
// its key had by none.
func TestCacheTooLarge(t *testing.T) {
	c := memory.NewCache(memory.CacheOptions{MaxBytes: 100})
	cacheSet(t, c, "small", 10)
	cacheSet(t, c, "big", 100) // 103 bytes with its key
	cacheWant(t, c, "big", false)
	cacheWant(t, c, "small", true)
	cacheSet(t, c, "big", 80) // 98 bytes with small's
	cacheWant(t, c, "big", true)
	cacheSet(t, c, "big", 1000)
	cacheWant(t, c, "big", false)
	cacheWant(t, c, "small", true)
}

// TestCacheClock checks expiry against the injected clock, to the
// nanosecond.
func TestCacheClock(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := memory.NewCache(memory.CacheOptions{Now: func() time.Time { return now }})
	if err := c.Set(ctx, "k", []byte("v"), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	now = now.Add(10*time.Second - 1)
	if v, ok, _ := c.Get(ctx, "k"); !ok || string(v) != "v" {
		t.Errorf("Get just before the ttl ends = %q, %v; want a hit", v, ok)
	}
	// Reads do not extend an entry's life.
	now = now.Add(1)
	if _, ok, _ := c.Get(ctx, "k"); ok {
		t.Error("Get when the ttl ends is a hit, want a miss")
	}
	// Setting again starts a new ttl from now.
	if err := c.Set(ctx, "k", []byte("w"), time.Second); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second / 2)
	if err := c.Set(ctx, "k", []byte("x"), time.Second); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second * 3 / 4)
	if v, ok, _ := c.Get(ctx, "k"); !ok || string(v) != "x" {
		t.Errorf("Get after a second Set = %q, %v; want x", v, ok)
	}
}

// BenchmarkCacheGetParallel measures cache hits from many goroutines at
// once, on 1024 answers of 2 KiB: what serving from the cache costs.
func BenchmarkCacheGetParallel(b *testing.B) {
	ctx := context.Background()
	c := memory.NewCache(memory.CacheOptions{})
	const n = 1024
	keys := make([]string, n)
	value := bytes.Repeat([]byte("x"), 2048)
	for i := range keys {
		keys[i] = fmt.Sprintf("%064x", i)
		if err := c.Set(ctx, keys[i], value, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Uint32
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(7919))
		for pb.Next() {
			i++
			if _, ok, _ := c.Get(ctx, keys[i%n]); !ok {
				b.Error("miss")
				return
			}
		}
	})
}

// BenchmarkCacheSet measures storing a 2 KiB answer in a full cache, each
// Set evicting an older entry.
func BenchmarkCacheSet(b *testing.B) {
	ctx := context.Background()
	value := bytes.Repeat([]byte("x"), 2048)
	c := memory.NewCache(memory.CacheOptions{MaxBytes: 1024 * (2048 + 64)})
	keys := make([]string, 4096)
	for i := range keys {
		keys[i] = fmt.Sprintf("%064x", i)
	}
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := c.Set(ctx, keys[i%len(keys)], value, time.Hour); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
