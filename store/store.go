// Package store defines the interfaces behind which Sluice keeps state that
// may outlive a request or be shared by instances: the usage ledger (one row
// per request, summed for reports and budgets), the API keys, the queue of
// jobs, rate limits, Idempotency-Key records, the response cache, and the
// stream logs that make streams resumable. LedgerWriter batches ledger rows
// off the request path.
//
// Each backend lives in a subpackage named after what it wraps: store/memory
// (nothing to set up, nothing kept), store/sqlite (one instance, kept in a
// file: ledger, keys and jobs), store/redis (shared rate limits,
// idempotency records, response cache and stream logs) and store/postgres
// (shared ledger, keys and jobs). Every backend of an interface passes the
// one contract suite in store/storetest.
package store

import (
	"context"
	"errors"
	"iter"
	"time"
)

// ErrNotFound is returned for a record that does not exist or has expired.
var ErrNotFound = errors.New("not found")

// A StreamLog keeps the events of streamed answers, as the bytes each client
// was sent, so that a client whose connection broke can resume from the last
// event it saw, on this instance or (with a shared backend) on another.
//
// One writer (the call producing the stream) creates a log, appends its
// events in order and finishes it; any number of readers read it, during
// and after. Implementations are safe for concurrent use.
type StreamLog interface {
	// Create starts the log of stream id. The log expires after ttl unless
	// Finish sets its retention first, so the log of a writer that died
	// does not stay forever.
	Create(ctx context.Context, id string, info StreamInfo, ttl time.Duration) error
	// Append adds frame as event seq. Sequence numbers start at 1 and grow by
	// one; the log keeps its own copy of frame. Appending the last event
	// again with the same bytes (a retry whose answer was lost) does
	// nothing and succeeds.
	Append(ctx context.Context, id string, seq uint64, frame []byte) error
	// Finish marks the log complete: readers get what is left and end. The
	// log is kept for retention from now, then expires.
	Finish(ctx context.Context, id string, retention time.Duration) error
	// Info returns what is known of stream id, or ErrNotFound.
	Info(ctx context.Context, id string) (StreamInfo, error)
	// Touch records that a reader is attached to stream id at now (see
	// StreamInfo.Touched), or returns ErrNotFound.
	Touch(ctx context.Context, id string, now time.Time) error
	// Read yields the events of stream id after sequence number after, in
	// order and each once; then, until the log is finished, it waits for
	// new ones. It yields ErrNotFound if the log does not exist or expires
	// while being read, and ctx's error if ctx ends first. A Frame's Data
	// must not be modified.
	Read(ctx context.Context, id string, after uint64) iter.Seq2[Frame, error]
}

// StreamInfo describes a logged stream.
type StreamInfo struct {
	// Dialect is the client API the stream was created in ("openai" or
	// "anthropic"): a resumed stream is answered in it.
	Dialect string
	// Owner identifies who created the stream (a hash of the credential it
	// was created with); only the same owner may resume it.
	Owner string
	// Touched is when a reader last attached (see StreamLog.Touch); zero if
	// none did. Stored with millisecond precision.
	Touched time.Time
	// Finished reports whether the log is complete.
	Finished bool
}

// A Frame is one logged event.
type Frame struct {
	Seq  uint64
	Data []byte
}
