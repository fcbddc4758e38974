package router

import (
	"errors"
	"fmt"
	"time"
)

// Retry is a route's retry policy: how often one target is tried again after
// a failure before the first content, and how long to wait in between. The
// zero Retry makes no retries.
//
// Only the upstream's transient failures are retried: a connection error, a
// timeout before the first content, and an answer whose upstream status was
// 408, 409, 429, 500, 502, 503, 504 or 529 (or, for an error event inside a
// stream, which has no status, one of the codes those statuses map to:
// upstream_timeout, upstream_unavailable, overloaded, rate_limited). A
// client's error, a cancelled context, an open breaker and a full bulkhead
// are never retried; nor is anything after the first content, which the
// router never sees as a failure of Complete or Stream.
type Retry struct {
	// Attempts is the number of tries of each target, the first included:
	// 0 and 1 make no retries.
	Attempts int
	// Budget is the share of a provider's recent requests that may be
	// retries (0.1: one in ten), counted over Options.RetryWindow, so that
	// retries never multiply an outage; Options.MinRetries are always
	// allowed. A retry the budget refuses moves on to the next target.
	// Zero means DefaultRetryBudget.
	Budget float64
	// BaseBackoff and MaxBackoff shape the wait before a retry: a random
	// duration up to BaseBackoff×2^(n-1) for the n-th retry, capped at
	// MaxBackoff ("full jitter"). Zero means DefaultBaseBackoff and
	// DefaultMaxBackoff.
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// MaxRetryAfter is the longest Retry-After (sluice.Error.RetryAfter)
	// the router waits for: an upstream asking for more is not retried and
	// the call moves on to the next target. Zero means
	// DefaultMaxRetryAfter. A wait that would pass the context's deadline
	// is never made either.
	MaxRetryAfter time.Duration
}

// The defaults of a Retry's zero fields.
const (
	DefaultRetryBudget   = 0.1
	DefaultBaseBackoff   = 200 * time.Millisecond
	DefaultMaxBackoff    = 5 * time.Second
	DefaultMaxRetryAfter = 10 * time.Second
)

func (r Retry) withDefaults() Retry {
	if r.Budget == 0 {
		r.Budget = DefaultRetryBudget
	}
	if r.BaseBackoff == 0 {
		r.BaseBackoff = DefaultBaseBackoff
	}
	if r.MaxBackoff == 0 {
		r.MaxBackoff = DefaultMaxBackoff
	}
	if r.MaxBackoff < r.BaseBackoff {
		r.MaxBackoff = r.BaseBackoff
	}
	if r.MaxRetryAfter == 0 {
		r.MaxRetryAfter = DefaultMaxRetryAfter
	}
	return r
}

func (r Retry) validate() error {
	switch {
	case r.Attempts < 0:
		return errors.New("retry attempts must not be negative")
	case r.Budget < 0 || r.Budget > 1:
		return errors.New("retry budget must be from 0 to 1")
	case r.BaseBackoff < 0 || r.MaxBackoff < 0 || r.MaxRetryAfter < 0:
		return errors.New("retry durations must not be negative")
	}
	return nil
}

// Hedge turns on hedged requests for a route: when the target called has
// not produced its first content (for Complete: its answer) after a delay,
// the next target of the plan is called too, and the first to answer wins;
// the other is cancelled at once and released. A call makes at most one
// hedge. The zero Hedge is off.
type Hedge struct {
	// After is the delay. With P95 it is the floor of the observed delay,
	// and the delay until enough calls have been observed; a zero After
	// with P95 hedges only once they have.
	After time.Duration
	// P95 hedges after the route's observed 95th percentile time to first
	// content (of the last 128 streams, and separately of the last 128
	// Complete calls), once 20 have been observed.
	P95 bool
}

func (h Hedge) enabled() bool { return h.After > 0 || h.P95 }

// Breaker is the circuit-breaker policy of a route's targets. A breaker
// belongs to a target (a provider name and an upstream model), shared by
// every route that calls it; its policy is that of the first route, in
// the order given to New, that sets one.
//
// Closed, the breaker counts the calls of a sliding Window and opens when
// FailureRate of them failed (once MinRequests were made), or after
// Consecutive failures in a row. Open, it skips its target at once for
// OpenFor: the call moves on to the next target as after a failure. Then it
// is half-open: Probes calls at a time go through; Probes successes close
// it, one failure opens it again.
//
// Only the upstream's failures count (those that move a call on to the next
// target, see Router): not the client's errors, not calls the caller
// cancelled, not calls a bulkhead refused. A failure after the first
// content is not counted either. The zero Breaker is off.
type Breaker struct {
	// FailureRate, from 0 to 1, opens the breaker when at least this share
	// of the calls in Window failed; 0 turns this rule off.
	FailureRate float64
	// Window is the span of the failure rate. Zero means
	// DefaultBreakerWindow.
	Window time.Duration
	// MinRequests is the number of calls in Window below which the rate is
	// not judged. Zero means DefaultBreakerMinRequests.
	MinRequests int
	// Consecutive opens the breaker after this many failures in a row,
	// whatever the rate; 0 turns this rule off.
	Consecutive int
	// OpenFor is how long an open breaker skips its target before letting
	// probes through. Zero means DefaultBreakerOpenFor.
	OpenFor time.Duration
	// Probes is the number of calls let through at a time while half-open,
	// and of successes that close the breaker. Zero means
	// DefaultBreakerProbes.
	Probes int
}

// The defaults of a Breaker's zero fields.
const (
	DefaultBreakerWindow      = 30 * time.Second
	DefaultBreakerMinRequests = 10
	DefaultBreakerOpenFor     = 30 * time.Second
	DefaultBreakerProbes      = 3
)

func (b Breaker) enabled() bool { return b.FailureRate > 0 || b.Consecutive > 0 }

func (b Breaker) withDefaults() Breaker {
	if b.Window == 0 {
		b.Window = DefaultBreakerWindow
	}
	if b.MinRequests == 0 {
		b.MinRequests = DefaultBreakerMinRequests
	}
	if b.OpenFor == 0 {
		b.OpenFor = DefaultBreakerOpenFor
	}
	if b.Probes == 0 {
		b.Probes = DefaultBreakerProbes
	}
	return b
}

func (b Breaker) validate() error {
	switch {
	case b.FailureRate < 0 || b.FailureRate > 1:
		return errors.New("breaker failure rate must be from 0 to 1")
	case b.Window < 0 || b.OpenFor < 0:
		return errors.New("breaker durations must not be negative")
	case b.MinRequests < 0 || b.Consecutive < 0 || b.Probes < 0:
		return errors.New("breaker counts must not be negative")
	}
	return nil
}

// Bulkhead caps the concurrent calls to one provider. A call holds its
// place from the upstream call to the end of its answer (for a stream: until
// it ends or is closed). Past the cap a call waits up to QueueTimeout (and
// no longer than its context), then fails with overloaded and a Retry-After
// of BulkheadRetryAfter: a failure before the first content, so the next
// target is tried, but one the target's breaker does not count and that is
// not retried on the same target.
type Bulkhead struct {
	// MaxConcurrent is the cap; zero means none.
	MaxConcurrent int
	// QueueTimeout is the longest wait for a place; zero means none: a
	// call past the cap fails at once.
	QueueTimeout time.Duration
}

// BulkheadRetryAfter is the Retry-After of a call a bulkhead refused.
const BulkheadRetryAfter = time.Second

// Options configure a Router beyond its routes. The zero Options is valid.
type Options struct {
	// Bulkheads cap the concurrent calls per provider name
	// (Target.ProviderName). Providers not listed have no cap.
	Bulkheads map[string]Bulkhead
	// OnBreakerChange, when set, is called after a breaker changes state,
	// outside the breaker's lock, on the goroutine of the call (or of
	// Router.Breakers) that caused the change. Calls may run
	// concurrently; it must not block.
	OnBreakerChange func(BreakerChange)
	// RetryWindow is the span over which a provider's requests and retries
	// are counted for Retry.Budget. Zero means DefaultRetryWindow.
	RetryWindow time.Duration
	// MinRetries are the retries per RetryWindow a provider may always
	// take, whatever its budget, so that a quiet provider can still retry.
	// Zero means DefaultMinRetries; negative means none.
	MinRetries int
	// Rand returns a pseudo-random number in [0, 1), for backoff jitter
	// and for choosing among equally loaded targets. It must be safe for
	// concurrent use. Nil means math/rand/v2's Float64.
	Rand func() float64
}

// The defaults of the Options' zero fields.
const (
	DefaultRetryWindow = 10 * time.Second
	DefaultMinRetries  = 10
)

func (b Bulkhead) validate() error {
	if b.MaxConcurrent < 0 || b.QueueTimeout < 0 {
		return fmt.Errorf("bulkhead values must not be negative")
	}
	return nil
}
