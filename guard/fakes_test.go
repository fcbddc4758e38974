package guard

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/store"
)

// fakeKeys is a store.Keys in memory that counts lookups and can fail.
type fakeKeys struct {
	mu      sync.Mutex
	keys    []store.Key
	lookups int
	fail    error
}

var _ store.Keys = (*fakeKeys)(nil)

func (f *fakeKeys) CreateKey(_ context.Context, k store.Key) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range f.keys {
		if o.ID == k.ID || o.Hash == k.Hash {
			return errors.New("duplicate key")
		}
	}
	f.keys = append(f.keys, k)
	return nil
}

func (f *fakeKeys) KeyByHash(_ context.Context, hash string) (store.Key, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups++
	if f.fail != nil {
		return store.Key{}, f.fail
	}
	for _, k := range f.keys {
		if k.Hash == hash {
			return k, nil
		}
	}
	return store.Key{}, store.ErrNotFound
}

func (f *fakeKeys) KeyByID(_ context.Context, id string) (store.Key, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range f.keys {
		if k.ID == id {
			return k, nil
		}
	}
	return store.Key{}, store.ErrNotFound
}

func (f *fakeKeys) ListKeys(context.Context) ([]store.Key, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]store.Key(nil), f.keys...), nil
}

func (f *fakeKeys) update(id string, fn func(*store.Key)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.keys {
		if f.keys[i].ID == id {
			fn(&f.keys[i])
			return nil
		}
	}
	return store.ErrNotFound
}

func (f *fakeKeys) DisableKey(_ context.Context, id string, now time.Time) error {
	return f.update(id, func(k *store.Key) {
		if k.Disabled.IsZero() {
			k.Disabled = now
		}
	})
}

func (f *fakeKeys) RotateKey(_ context.Context, id, hash string, now time.Time) error {
	return f.update(id, func(k *store.Key) { k.Hash, k.Rotated = hash, now })
}

func (f *fakeKeys) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lookups
}

func (f *fakeKeys) setFail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

// fakeLedger is a store.Ledger that answers Spend from a table.
type fakeLedger struct {
	mu    sync.Mutex
	spend map[string]float64 // by keyID+"|"+tenant+"|"+since (RFC 3339)
	calls int
	fail  error
}

var _ store.Ledger = (*fakeLedger)(nil)

func (f *fakeLedger) Write(context.Context, []store.LedgerRow) error { return nil }

func (f *fakeLedger) Usage(context.Context, store.UsageQuery) ([]store.UsageTotal, error) {
	return nil, nil
}

func (f *fakeLedger) Spend(_ context.Context, keyID, tenant string, since time.Time) (float64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fail != nil {
		return 0, f.fail
	}
	return f.spend[keyID+"|"+tenant+"|"+since.UTC().Format(time.RFC3339)], nil
}

// failingLimiter is a store.Limiter whose backend is down.
type failingLimiter struct {
	mu      sync.Mutex
	calls   int
	charges int
}

func (f *failingLimiter) Take(context.Context, string, store.Limit, int64) (store.Decision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return store.Decision{}, errors.New("dial tcp 127.0.0.1:6379: connection refused")
}

func (f *failingLimiter) Charge(context.Context, string, store.Limit, int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.charges++
	return errors.New("dial tcp 127.0.0.1:6379: connection refused")
}
