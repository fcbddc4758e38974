package memory

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/store"
)

// Keys keeps API keys in memory: for tests, and for an instance that keeps
// no file and whose keys live as long as it runs. It is safe for concurrent
// use; its zero value is not usable, call NewKeys.
//
// Like the SQL stores, it keeps times to the microsecond.
type Keys struct {
	mu     sync.RWMutex
	byID   map[string]*store.Key
	byHash map[string]*store.Key
}

var _ store.Keys = (*Keys)(nil)

// NewKeys returns an empty Keys.
func NewKeys() *Keys {
	return &Keys{byID: map[string]*store.Key{}, byHash: map[string]*store.Key{}}
}

// CreateKey implements store.Keys. An empty ID or Hash is an error too.
func (s *Keys) CreateKey(ctx context.Context, k store.Key) error {
	if k.ID == "" || k.Hash == "" {
		return errors.New("create key: the key has no ID or no hash")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("create key %q: %w", k.ID, err)
	}
	k.Created, k.Disabled, k.Rotated = micros(k.Created), micros(k.Disabled), micros(k.Rotated)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byID[k.ID] != nil {
		return fmt.Errorf("create key %q: the ID exists", k.ID)
	}
	if s.byHash[k.Hash] != nil {
		return fmt.Errorf("create key %q: the hash belongs to another key", k.ID)
	}
	s.byID[k.ID] = &k
	s.byHash[k.Hash] = &k
	return nil
}

// KeyByHash implements store.Keys.
func (s *Keys) KeyByHash(_ context.Context, hash string) (store.Key, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if k := s.byHash[hash]; k != nil {
		return *k, nil
	}
	return store.Key{}, store.ErrNotFound
}

// KeyByID implements store.Keys.
func (s *Keys) KeyByID(_ context.Context, id string) (store.Key, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if k := s.byID[id]; k != nil {
		return *k, nil
	}
	return store.Key{}, store.ErrNotFound
}

// ListKeys implements store.Keys. Keys created at the same time come in
// order of ID.
func (s *Keys) ListKeys(context.Context) ([]store.Key, error) {
	s.mu.RLock()
	out := make([]store.Key, 0, len(s.byID))
	for _, k := range s.byID {
		out = append(out, *k)
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b store.Key) int {
		return cmp.Or(a.Created.Compare(b.Created), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// DisableKey implements store.Keys.
func (s *Keys) DisableKey(_ context.Context, id string, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.byID[id]
	if k == nil {
		return store.ErrNotFound
	}
	if k.Disabled.IsZero() {
		k.Disabled = micros(now)
	}
	return nil
}

// RotateKey implements store.Keys. A hash that belongs to another key is an
// error.
func (s *Keys) RotateKey(_ context.Context, id, hash string, now time.Time) error {
	if hash == "" {
		return fmt.Errorf("rotate key %q: no hash", id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.byID[id]
	if k == nil {
		return store.ErrNotFound
	}
	if other := s.byHash[hash]; other != nil && other != k {
		return fmt.Errorf("rotate key %q: the hash belongs to another key", id)
	}
	delete(s.byHash, k.Hash)
	k.Hash, k.Rotated = hash, micros(now)
	s.byHash[hash] = k
	return nil
}
