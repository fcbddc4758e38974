package redis_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/store"
	"github.com/sluice-gw/sluice/store/redis"
	"github.com/sluice-gw/sluice/store/storetest"
)

// TestCache runs the contract with a new DB for every handle, as separate
// instances would hold, all on one prefix.
func TestCache(t *testing.T) {
	prefix := testPrefix(t)
	storetest.RunCache(t, func(t testing.TB) store.Cache {
		return redis.NewCache(openDB(t, prefix), prefix)
	})
}

// TestCacheLayout checks the key of an entry, its bytes and its expiry, as
// Cache's documentation describes them.
func TestCacheLayout(t *testing.T) {
	ctx := context.Background()
	prefix := testPrefix(t)
	c := redis.NewCache(openDB(t, prefix), prefix)
	raw := rawClient(t)
	sum := sha256.Sum256([]byte(`{"model":"gpt-4o","messages":[]}`))
	key := hex.EncodeToString(sum[:])
	rkey := prefix + "cache:" + key
	value := []byte("{\"ok\":true}\x00\xff")

	if err := c.Set(ctx, key, value, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	if got, err := raw.Get(ctx, rkey).Bytes(); err != nil || !bytes.Equal(got, value) {
		t.Errorf("GET %s = %q, %v; want %q", rkey, got, err, value)
	}
	if ttl, err := raw.PTTL(ctx, rkey).Result(); err != nil || ttl < 80*time.Second || ttl > 90*time.Second {
		t.Errorf("PTTL %s = %v, %v; want about 90s", rkey, ttl, err)
	}
	// A ttl not a whole number of seconds is kept to the millisecond.
	if err := c.Set(ctx, key, value, 2500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if ttl, err := raw.PTTL(ctx, rkey).Result(); err != nil || ttl < 1500*time.Millisecond || ttl > 2500*time.Millisecond {
		t.Errorf("PTTL %s = %v, %v; want about 2.5s", rkey, ttl, err)
	}
	// A ttl under a millisecond is one millisecond.
	if err := c.Set(ctx, key, value, time.Nanosecond); err != nil {
		t.Fatal(err)
	}
	if ttl, err := raw.PTTL(ctx, rkey).Result(); err != nil || ttl > time.Millisecond {
		t.Errorf("PTTL %s after a ttl of 1ns = %v, %v; want at most 1ms (or gone)", rkey, ttl, err)
	}
	// A ttl of zero deletes the key.
	if err := c.Set(ctx, key, value, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, key, value, 0); err != nil {
		t.Fatal(err)
	}
	if n := raw.Exists(ctx, rkey).Val(); n != 0 {
		t.Errorf("%s exists after a Set with ttl 0", rkey)
	}
	// Values written by another client are read as they are.
	if err := raw.Set(ctx, rkey, "written elsewhere", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := c.Get(ctx, key); err != nil || !ok || string(got) != "written elsewhere" {
		t.Errorf("Get = %q, %v, %v", got, ok, err)
	}
}

// TestCacheDefaultPrefix checks that an empty prefix means DefaultPrefix.
func TestCacheDefaultPrefix(t *testing.T) {
	ctx := context.Background()
	raw := rawClient(t)
	key := "test-" + testPrefix(t)[len("sluicetest:"):]
	rkey := redis.DefaultPrefix + "cache:" + key
	t.Cleanup(func() { raw.Del(context.Background(), rkey) })
	c := redis.NewCache(openDB(t, testPrefix(t)), "")
	if err := c.Set(ctx, key, []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := raw.Get(ctx, rkey).Val(); got != "v" {
		t.Errorf("GET %s = %q, want v", rkey, got)
	}
}

// TestCacheErrors checks that a failure of the server is an error, not a
// miss.
func TestCacheErrors(t *testing.T) {
	prefix := testPrefix(t)
	c := redis.NewCache(openDB(t, prefix), prefix)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if v, ok, err := c.Get(ctx, "k"); err == nil || ok || v != nil {
		t.Errorf("Get with a cancelled context = %q, %v, %v; want an error", v, ok, err)
	}
	if err := c.Set(ctx, "k", []byte("v"), time.Minute); err == nil {
		t.Error("Set with a cancelled context succeeded")
	}
}
