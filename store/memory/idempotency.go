package memory

import (
	"context"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/store"
)

// DefaultMaxIdempotencyBytes bounds the answers an Idempotency keeps when
// IdempotencyOptions.MaxBytes is zero.
const DefaultMaxIdempotencyBytes = 256 << 20

// IdempotencyOptions configure an Idempotency.
type IdempotencyOptions struct {
	// MaxBytes bounds the stored answers; past it, the oldest completed
	// records are dropped before their time. 0 means
	// DefaultMaxIdempotencyBytes.
	MaxBytes int64
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// An Idempotency keeps Idempotency-Key records in memory. It is safe for
// concurrent use and runs no goroutine: expired records are dropped as new
// ones are claimed.
type Idempotency struct {
	opts IdempotencyOptions

	mu     sync.Mutex
	recs   map[string]*idemEntry
	bytes  int64
	done   []string // completed keys, oldest first, for eviction
	claims int
}

type idemEntry struct {
	rec     store.IdemRecord
	expires time.Time
}

// NewIdempotency returns an empty Idempotency.
func NewIdempotency(opts IdempotencyOptions) *Idempotency {
	if opts.MaxBytes == 0 {
		opts.MaxBytes = DefaultMaxIdempotencyBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Idempotency{opts: opts, recs: map[string]*idemEntry{}}
}

// Claim implements store.Idempotency.
func (s *Idempotency) Claim(_ context.Context, key, hash string, lease, ttl time.Duration) (store.IdemRecord, bool, error) {
	now := s.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.claims++; s.claims%1024 == 0 {
		s.sweep(now)
	}
	if e, ok := s.recs[key]; ok && now.Before(e.expires) && (e.rec.Done || now.Before(e.rec.Lease)) {
		return copyRec(e.rec), false, nil
	}
	s.drop(key)
	s.recs[key] = &idemEntry{rec: store.IdemRecord{Hash: hash, Lease: now.Add(lease)}, expires: now.Add(ttl)}
	return store.IdemRecord{}, true, nil
}

// SetStream implements store.Idempotency.
func (s *Idempotency) SetStream(_ context.Context, key, streamID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.live(key)
	if !ok {
		return store.ErrNotFound
	}
	e.rec.StreamID = streamID
	return nil
}

// Complete implements store.Idempotency.
func (s *Idempotency) Complete(_ context.Context, key string, rec store.IdemRecord, ttl time.Duration) error {
	now := s.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.live(key)
	if !ok {
		return store.ErrNotFound
	}
	if e.rec.Done {
		return nil
	}
	rec = copyRec(rec)
	rec.Hash, rec.Done, rec.StreamID = e.rec.Hash, true, ""
	e.rec, e.expires = rec, now.Add(ttl)
	s.bytes += int64(len(rec.Body))
	s.done = append(s.done, key)
	for s.bytes > s.opts.MaxBytes && len(s.done) > 0 {
		oldest := s.done[0]
		s.done = s.done[1:]
		if oldest != key {
			s.drop(oldest)
		}
	}
	return nil
}

// Release implements store.Idempotency.
func (s *Idempotency) Release(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.recs[key]; ok && !e.rec.Done {
		delete(s.recs, key)
	}
	return nil
}

// Get implements store.Idempotency.
func (s *Idempotency) Get(_ context.Context, key string) (store.IdemRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.live(key)
	if !ok {
		return store.IdemRecord{}, store.ErrNotFound
	}
	return copyRec(e.rec), nil
}

// live returns key's entry if it has not expired. s.mu is held.
func (s *Idempotency) live(key string) (*idemEntry, bool) {
	e, ok := s.recs[key]
	if !ok || !s.opts.Now().Before(e.expires) {
		return nil, false
	}
	return e, true
}

// drop removes key's record. s.mu is held.
func (s *Idempotency) drop(key string) {
	if e, ok := s.recs[key]; ok {
		if e.rec.Done {
			s.bytes -= int64(len(e.rec.Body))
		}
		delete(s.recs, key)
	}
}

// sweep drops expired records. s.mu is held.
func (s *Idempotency) sweep(now time.Time) {
	for k, e := range s.recs {
		if !now.Before(e.expires) {
			s.drop(k)
		}
	}
	kept := s.done[:0]
	for _, k := range s.done {
		if e, ok := s.recs[k]; ok && e.rec.Done {
			kept = append(kept, k)
		}
	}
	s.done = kept
}

func copyRec(r store.IdemRecord) store.IdemRecord {
	r.Body = append([]byte(nil), r.Body...)
	return r
}
