package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/store"
)

// RunCache runs the Cache contract against the caches open returns. Each
// call of open may return a new handle on the same backend (as two
// instances would hold); keys of one test are told apart by random ids.
// The caches must hold at least a few MiB before they evict.
//
// Expiry is checked in real time, as it must be on a shared backend whose
// clock cannot be set: entries live a few hundred milliseconds and are
// looked for again after a wide margin. No test asserts how fast anything
// is.
func RunCache(t *testing.T, open func(t testing.TB) store.Cache) {
	ctx := context.Background()

	// get reads key and fails the test on an error.
	get := func(t *testing.T, c store.Cache, key string) ([]byte, bool) {
		t.Helper()
		v, ok, err := c.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get %s: %v", key, err)
		}
		if !ok && v != nil {
			t.Errorf("Get %s: a miss returned %q, want nil", key, v)
		}
		if ok && v == nil {
			t.Errorf("Get %s: a hit returned a nil value", key)
		}
		return v, ok
	}
	set := func(t *testing.T, c store.Cache, key string, value []byte, ttl time.Duration) {
		t.Helper()
		if err := c.Set(ctx, key, value, ttl); err != nil {
			t.Fatalf("Set %s: %v", key, err)
		}
	}
	want := func(t *testing.T, c store.Cache, key string, value []byte) {
		t.Helper()
		if got, ok := get(t, c, key); !ok || !bytes.Equal(got, value) {
			t.Errorf("Get %s = %q, %v; want %q, true", key, trim(got), ok, trim(value))
		}
	}
	miss := func(t *testing.T, c store.Cache, key string) {
		t.Helper()
		if got, ok := get(t, c, key); ok {
			t.Errorf("Get %s = %q, true; want a miss", key, trim(got))
		}
	}

	t.Run("Miss", func(t *testing.T) {
		c := open(t)
		miss(t, c, cacheKey())
	})

	t.Run("RoundTrip", func(t *testing.T) {
		c := open(t)
		key := cacheKey()
		value := []byte("{\"id\":\"chatcmpl-1\"}\n\x00\xff\xfe\r\n\x01 binary")
		set(t, c, key, value, time.Minute)
		stored := bytes.Clone(value)
		value[0] = 'X' // the cache keeps its own copy
		want(t, c, key, stored)
		got, _ := get(t, c, key)
		if len(got) > 0 {
			got[0] = 'Y' // and the caller owns what Get returns
		}
		want(t, c, key, stored)

		// A large value, every byte value in it.
		big := make([]byte, 1<<20)
		rand.Read(big)
		bigKey := cacheKey()
		set(t, c, bigKey, big, time.Minute)
		want(t, c, bigKey, big)

		// An empty value is a hit, not a miss.
		for _, empty := range [][]byte{nil, {}} {
			k := cacheKey()
			set(t, c, k, empty, time.Minute)
			want(t, c, k, []byte{})
		}
	})

	t.Run("Overwrite", func(t *testing.T) {
		c := open(t)
		key := cacheKey()
		set(t, c, key, []byte("first answer, the longer one"), time.Minute)
		set(t, c, key, []byte("second"), time.Minute)
		want(t, c, key, []byte("second"))
		set(t, c, key, []byte("third, longer than the second"), time.Minute)
		want(t, c, key, []byte("third, longer than the second"))

		// A ttl of zero or less removes the value.
		set(t, c, key, []byte("gone"), 0)
		miss(t, c, key)
		set(t, c, key, []byte("back"), time.Minute)
		set(t, c, key, []byte("gone"), -time.Second)
		miss(t, c, key)
		set(t, c, cacheKey(), []byte("never there"), 0)
	})

	t.Run("Expiry", func(t *testing.T) {
		c := open(t)
		const ttl = 400 * time.Millisecond
		short, long, tiny := cacheKey(), cacheKey(), cacheKey()
		start := time.Now()
		set(t, c, short, []byte("short"), ttl)
		set(t, c, long, []byte("long"), time.Minute)
		set(t, c, tiny, []byte("tiny"), time.Microsecond)
		got, ok := get(t, c, short)
		// Only a check made well within the ttl can expect a hit.
		if elapsed := time.Since(start); elapsed < ttl/2 {
			if !ok || string(got) != "short" {
				t.Errorf("Get %s %v after Set with ttl %v = %q, %v; want a hit", short, elapsed, ttl, got, ok)
			}
		} else {
			t.Logf("the hit is not checked: %v passed, ttl %v", elapsed, ttl)
		}
		time.Sleep(ttl + 300*time.Millisecond)
		miss(t, c, short)
		miss(t, c, tiny) // a ttl under the backend's resolution still expires
		want(t, c, long, []byte("long"))
		// An expired key may be set again.
		set(t, c, short, []byte("again"), time.Minute)
		want(t, c, short, []byte("again"))
	})

	t.Run("IndependentKeys", func(t *testing.T) {
		c := open(t)
		base := cacheKey()
		keys := []string{base, base + "0", base[:len(base)-1], "X" + base}
		for i, k := range keys {
			set(t, c, k, []byte("value "+strconv.Itoa(i)), time.Minute)
		}
		for i, k := range keys {
			want(t, c, k, []byte("value "+strconv.Itoa(i)))
		}
		set(t, c, keys[0], nil, 0)
		miss(t, c, keys[0])
		for i, k := range keys[1:] {
			want(t, c, k, []byte("value "+strconv.Itoa(i+1)))
		}
	})

	t.Run("Shared", func(t *testing.T) {
		// What one handle sets, another reads.
		a, b := open(t), open(t)
		key := cacheKey()
		set(t, a, key, []byte("from a"), time.Minute)
		want(t, b, key, []byte("from a"))
		set(t, b, key, []byte("from b"), time.Minute)
		want(t, a, key, []byte("from b"))
	})

	t.Run("Concurrent", func(t *testing.T) {
		// Goroutines set and get shared and own keys at once. A value
		// names its key, so a read shows whether it got another key's
		// value or a torn one.
		c := open(t)
		shared := []string{cacheKey(), cacheKey(), cacheKey()}
		value := func(key string, n int) []byte {
			return []byte(key + ":" + strconv.Itoa(n) + ":" + string(bytes.Repeat([]byte{'v'}, n%64)))
		}
		check := func(key string, v []byte) bool {
			prefix, rest, ok := bytes.Cut(v, []byte(":"))
			if !ok || string(prefix) != key {
				return false
			}
			num, pad, ok := bytes.Cut(rest, []byte(":"))
			n, err := strconv.Atoi(string(num))
			return ok && err == nil && bytes.Equal(pad, bytes.Repeat([]byte{'v'}, n%64))
		}
		const workers, rounds = 8, 100
		var wg sync.WaitGroup
		for w := range workers {
			h := c
			if w%2 == 1 {
				h = open(t) // another handle on the same backend
			}
			wg.Go(func() {
				own := cacheKey()
				for i := range rounds {
					for _, k := range []string{shared[i%len(shared)], own} {
						if err := h.Set(ctx, k, value(k, w*rounds+i), time.Minute); err != nil {
							t.Errorf("Set: %v", err)
							return
						}
						v, ok, err := h.Get(ctx, k)
						if err != nil {
							t.Errorf("Get: %v", err)
							return
						}
						if ok && !check(k, v) {
							t.Errorf("Get %s = %q: not a value set under it", k, v)
							return
						}
					}
					if v, ok, err := h.Get(ctx, own); err != nil || !ok || !bytes.Equal(v, value(own, w*rounds+i)) {
						t.Errorf("Get of its own key %s = %q, %v, %v; want %q", own, v, ok, err, value(own, w*rounds+i))
						return
					}
				}
			})
		}
		wg.Wait()
		for _, k := range shared {
			if v, ok := get(t, c, k); !ok || !check(k, v) {
				t.Errorf("shared key %s = %q, %v after the writers", k, v, ok)
			}
		}
	})
}

// cacheKey returns a random key shaped like those callers pass: the hex
// of a SHA-256.
func cacheKey() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// trim shortens a value for a message.
func trim(v []byte) []byte {
	if len(v) > 64 {
		return append(v[:64:64], "..."...)
	}
	return v
}
