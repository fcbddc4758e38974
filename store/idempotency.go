package store

import (
	"context"
	"time"
)

// An IdemRecord is what is kept of a request sent with an Idempotency-Key.
type IdemRecord struct {
	// Hash identifies the request (a hash of its route and body): a repeat
	// with another hash is a different request under the same key.
	Hash string
	// Done reports whether the first request finished; until then the
	// record is a claim, valid until Lease.
	Done  bool
	Lease time.Time
	// StreamID names the stream log of a streamed answer still running,
	// so that a repeat can attach to it; empty otherwise.
	StreamID string
	// The stored answer, once Done: its status, content type and body (for
	// a stream, every byte of it as it was sent).
	Status      int
	ContentType string
	Body        []byte
}

// Idempotency keeps the records of Idempotency-Keys. Keys are scoped by the
// caller (the gateway includes the API key's identity). Implementations
// are safe for concurrent use, and with a shared backend two instances
// claiming one key agree on a single winner.
type Idempotency interface {
	// Claim claims key for a request with hash, until lease from now, or
	// returns the record already there (claimed false). An expired claim
	// (its holder died) is taken over. The record, done or not, expires
	// after ttl.
	Claim(ctx context.Context, key, hash string, lease, ttl time.Duration) (rec IdemRecord, claimed bool, err error)
	// SetStream records the stream id of a claimed key's running answer.
	SetStream(ctx context.Context, key, streamID string) error
	// Complete stores the answer of a claimed key; the record is kept for
	// ttl from now.
	Complete(ctx context.Context, key string, rec IdemRecord, ttl time.Duration) error
	// Release drops a claim whose request failed in a way that may be
	// tried again, so that a repeat runs anew.
	Release(ctx context.Context, key string) error
	// Get returns key's record, or ErrNotFound.
	Get(ctx context.Context, key string) (IdemRecord, error)
}
