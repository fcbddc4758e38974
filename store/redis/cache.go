package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sluice-gw/sluice/store"
)

// A Cache is a store.Cache in Redis, shared by every instance using the
// same server and prefix. It is safe for concurrent use.
//
// The value of key is the string <prefix>cache:<key>, stored by one SET
// with the entry's ttl as its expiry, in whole milliseconds (a ttl under a
// millisecond counts as one); a ttl of zero or less deletes the key. Keys
// are used as given, so callers pass a hash (the hex SHA-256 of what the
// entry answers): keys stay short, and free of the braces that would
// change their cluster hash tag. The Cache sets no bound of its own on the
// bytes kept: entries leave when they expire, or when a maxmemory policy
// of the server evicts them.
type Cache struct {
	db     *DB
	prefix string
}

var _ store.Cache = (*Cache)(nil)

// NewCache returns a Cache on db whose keys start with prefix ("" means
// DefaultPrefix).
func NewCache(db *DB, prefix string) *Cache {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Cache{db: db, prefix: prefix}
}

func (c *Cache) key(k string) string { return c.prefix + "cache:" + k }

// Get implements store.Cache.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	s, err := c.db.client.Get(ctx, c.key(key)).Result()
	if errors.Is(err, goredis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("get cache entry %s: %w", key, err)
	}
	// A copy the caller may change (StringCmd.Bytes shares the string's
	// memory), and never nil.
	return []byte(s), true, nil
}

// Set implements store.Cache.
func (c *Cache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	var err error
	if ttl <= 0 {
		err = c.db.client.Del(ctx, c.key(key)).Err()
	} else {
		// go-redis would round a ttl under a millisecond up itself, but
		// log a warning each time.
		ttl = max(ttl, time.Millisecond)
		err = c.db.client.Set(ctx, c.key(key), value, ttl).Err()
	}
	if err != nil {
		return fmt.Errorf("set cache entry %s: %w", key, err)
	}
	return nil
}
