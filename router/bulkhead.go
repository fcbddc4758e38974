package router

import (
	"context"
	"errors"
	"time"
)

// ErrBulkheadFull is the cause (in a *sluice.Error with code overloaded) of
// a call refused because its provider's bulkhead stayed full.
var ErrBulkheadFull = errors.New("router: bulkhead full")

// A semaphore is a provider's bulkhead: at most cap(s) places. Waiters are
// served in the order they came (a channel's send queue is FIFO).
type semaphore chan struct{}

// acquire takes a place, waiting up to wait (and no longer than ctx). It
// returns ErrBulkheadFull when none came free in time, or ctx's error.
func (s semaphore) acquire(ctx context.Context, wait time.Duration) error {
	select {
	case s <- struct{}{}:
		return nil
	default:
	}
	if wait <= 0 {
		return ErrBulkheadFull
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case s <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return ErrBulkheadFull
	}
}

// release gives a place back.
func (s semaphore) release() { <-s }
