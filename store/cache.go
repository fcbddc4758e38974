package store

import (
	"context"
	"time"
)

// A Cache keeps answers by key for a time: the store of the exact-match
// response cache, which answers a request seen before on the same route
// when every target is down, or (where a route opts in) as a normal cache.
//
// Keys are chosen by the caller and used as given. Callers pass a hash of
// what a key identifies (for the response cache, the hex SHA-256 of the
// normalized request and its route) rather than the request itself: keys
// stay short, of one alphabet, and a key never carries prompt text into a
// backend's key space. Values are opaque bytes.
//
// A Cache may drop an entry before its time (a bounded cache evicts entries
// to make room), so a miss never means the key was not set. Implementations
// are safe for concurrent use.
type Cache interface {
	// Get returns the value stored under key. A miss (no value, or an
	// expired one) is (nil, false, nil); an error reports that the backend
	// failed. A hit's value is never nil (an empty value is an empty slice)
	// and belongs to the caller.
	Get(ctx context.Context, key string) ([]byte, bool, error)
	// Set stores value under key for ttl, replacing any value there. The
	// cache keeps its own copy of value. A ttl of zero or less removes the
	// key's value instead.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
}
