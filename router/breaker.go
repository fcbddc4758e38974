package router

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sluice-gw/sluice"
)

// The breaker (like the bulkhead) is our own rather than failsafe-go's,
// whose packages need a module this one does not require
// (bits-and-blooms/bitset, through failsafe-go's internal/util); and its
// circuitbreaker fights this model in two places: it judges either a failure rate over a
// time window or a failure count, not both (Breaker.Consecutive beside
// FailureRate), and a half-open permit is released only by recording a
// success or a failure, so a probe the caller cancels (which must count as
// neither) would hold its permit for good and leave the breaker half-open.

// BreakerState is the state of a circuit breaker.
type BreakerState int8

// The states of a breaker.
const (
	BreakerClosed   BreakerState = iota // calls go through and are counted
	BreakerOpen                         // calls skip the target
	BreakerHalfOpen                     // a few probe calls go through
)

func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half-open"
	}
	return "unknown"
}

// A BreakerChange is one transition of a target's breaker, as
// Options.OnBreakerChange receives it.
type BreakerChange struct {
	Provider string // the provider's configured name
	Model    string // the upstream model name
	From, To BreakerState
}

// A BreakerStatus is the state of one target's breaker, as Router.Breakers
// reports it.
type BreakerStatus struct {
	Provider string
	Model    string
	State    BreakerState
	// Remaining is how long an open breaker stays open; zero otherwise.
	Remaining time.Duration
}

// ErrBreakerOpen is the cause (in a *sluice.Error with code
// upstream_unavailable) of a target skipped because its breaker is open.
var ErrBreakerOpen = errors.New("router: circuit breaker open")

// result is how a call ended, for a breaker.
type result int8

const (
	neutral result = iota // not the upstream's doing: not counted
	success
	failure
)

// breaker is one target's circuit breaker. It is safe for concurrent use.
type breaker struct {
	provider, model string
	cfg             Breaker
	notify          func(BreakerChange)

	mu       sync.Mutex
	state    BreakerState
	gen      uint64 // changes with every transition: results of older calls are dropped
	calls    window // closed: calls (n) and failures (m)
	consec   int    // closed: failures in a row
	openedAt time.Time
	probes   int // half-open: probes in flight
	passed   int // half-open: probes that succeeded
}

func newBreaker(provider, model string, cfg Breaker, notify func(BreakerChange)) *breaker {
	cfg = cfg.withDefaults()
	return &breaker{provider: provider, model: model, cfg: cfg, notify: notify,
		calls: window{span: cfg.Window / windowBuckets}}
}

// allow reports whether a call may go through now, and the generation its
// result must be recorded with; when not, remaining is how long the breaker
// stays open.
func (b *breaker) allow(now time.Time) (gen uint64, remaining time.Duration, ok bool) {
	b.mu.Lock()
	ch := b.advance(now)
	switch b.state {
	case BreakerClosed:
		ok = true
	case BreakerOpen:
		remaining = b.cfg.OpenFor - now.Sub(b.openedAt)
	case BreakerHalfOpen:
		if b.probes < b.cfg.Probes {
			b.probes++
			ok = true
		} else {
			remaining = time.Second // the probes will tell soon
		}
	}
	gen = b.gen
	b.mu.Unlock()
	b.tell(ch)
	return gen, remaining, ok
}

// done records the result of a call allow let through with gen.
func (b *breaker) done(gen uint64, r result, now time.Time) {
	b.mu.Lock()
	var ch []BreakerChange
	if gen == b.gen {
		switch b.state {
		case BreakerClosed:
			switch r {
			case success:
				b.consec = 0
				b.calls.add(now, 1, 0)
			case failure:
				b.consec++
				b.calls.add(now, 1, 1)
				n, m := b.calls.sum(now)
				if b.cfg.Consecutive > 0 && b.consec >= b.cfg.Consecutive ||
					b.cfg.FailureRate > 0 && n >= int64(b.cfg.MinRequests) && float64(m) >= b.cfg.FailureRate*float64(n) {
					ch = b.to(BreakerOpen, now, ch)
				}
			}
		case BreakerHalfOpen:
			b.probes--
			switch r {
			case success:
				b.passed++
				if b.passed >= b.cfg.Probes {
					ch = b.to(BreakerClosed, now, ch)
				}
			case failure:
				ch = b.to(BreakerOpen, now, ch)
			}
		}
	}
	b.mu.Unlock()
	b.tell(ch)
}

// status returns the breaker's state now.
func (b *breaker) status(now time.Time) BreakerStatus {
	b.mu.Lock()
	ch := b.advance(now)
	st := BreakerStatus{Provider: b.provider, Model: b.model, State: b.state}
	if b.state == BreakerOpen {
		st.Remaining = b.cfg.OpenFor - now.Sub(b.openedAt)
	}
	b.mu.Unlock()
	b.tell(ch)
	return st
}

// advance half-opens an open breaker whose time is up. b.mu is held.
func (b *breaker) advance(now time.Time) []BreakerChange {
	if b.state == BreakerOpen && now.Sub(b.openedAt) >= b.cfg.OpenFor {
		return b.to(BreakerHalfOpen, now, nil)
	}
	return nil
}

// to moves the breaker to state s and appends the change to ch. b.mu is
// held.
func (b *breaker) to(s BreakerState, now time.Time, ch []BreakerChange) []BreakerChange {
	from := b.state
	b.state = s
	b.gen++
	b.probes, b.passed, b.consec = 0, 0, 0
	switch s {
	case BreakerOpen:
		b.openedAt = now
	case BreakerClosed:
		b.calls.reset()
	}
	if b.notify == nil {
		return ch
	}
	return append(ch, BreakerChange{Provider: b.provider, Model: b.model, From: from, To: s})
}

func (b *breaker) tell(ch []BreakerChange) {
	for _, c := range ch {
		b.notify(c)
	}
}

// breakerError is the error of a target skipped by its open breaker.
func breakerError(t *target, remaining time.Duration) *sluice.Error {
	return &sluice.Error{
		Code:       sluice.CodeUpstreamUnavailable,
		Message:    sluice.CodeUpstreamUnavailable.DefaultMessage(),
		RetryAfter: remaining,
		Err:        fmt.Errorf("%w: provider %s model %s", ErrBreakerOpen, t.ProviderName, t.Model),
	}
}

// windowBuckets is the number of slices of a sliding window: it forgets its
// oldest tenth at a time.
const windowBuckets = 10

// A window counts two numbers over a sliding span of time, in
// windowBuckets buckets of span each. It is not safe for concurrent use.
type window struct {
	span time.Duration
	b    [windowBuckets]bucket
}

type bucket struct {
	idx  int64 // the bucket's number: time / span
	n, m int64
}

func (w *window) index(now time.Time) int64 {
	span := int64(w.span)
	if span <= 0 {
		span = 1
	}
	return now.UnixNano() / span
}

// add adds n and m to the bucket of now.
func (w *window) add(now time.Time, n, m int64) {
	idx := w.index(now)
	b := &w.b[idx%windowBuckets]
	if b.idx != idx {
		b.idx, b.n, b.m = idx, 0, 0
	}
	b.n += n
	b.m += m
}

// sum returns the counts of the buckets within the span that ends now.
func (w *window) sum(now time.Time) (n, m int64) {
	idx := w.index(now)
	for i := range w.b {
		if b := &w.b[i]; b.idx <= idx && idx-b.idx < windowBuckets {
			n += b.n
			m += b.m
		}
	}
	return n, m
}

func (w *window) reset() { w.b = [windowBuckets]bucket{} }
