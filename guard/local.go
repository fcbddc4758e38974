package guard

import (
	"context"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/store"
)

// localLimiter is a store.Limiter in this process's memory, by the generic
// cell rate algorithm (GCRA) that the Redis limiter runs too: each key
// keeps a theoretical arrival time (TAT); a unit costs Period/Rate of it,
// and units are allowed while the TAT is at most Burst units ahead of now.
// It serves a single instance, and several instances when the shared
// limiter fails and LimiterLocal is chosen. It is safe for concurrent use.
type localLimiter struct {
	now func() time.Time

	mu        sync.Mutex
	tat       map[string]time.Time
	nextSweep int
}

// localSweepMin is the size from which the map is swept of full limits.
const localSweepMin = 1024

func newLocalLimiter(now func() time.Time) *localLimiter {
	if now == nil {
		now = time.Now
	}
	return &localLimiter{now: now, tat: make(map[string]time.Time), nextSweep: localSweepMin}
}

var _ store.Limiter = (*localLimiter)(nil)

// gcra returns the emission interval (the cost of one unit) and the burst
// tolerance of l.
func gcra(l store.Limit) (interval float64, tolerance time.Duration) {
	burst := l.Burst
	if burst <= 0 {
		burst = l.Rate
	}
	interval = float64(l.Period) / float64(l.Rate)
	return interval, time.Duration(interval * float64(burst))
}

func units(interval float64, n int64) time.Duration {
	return time.Duration(interval * float64(n))
}

// Take implements store.Limiter.
func (ll *localLimiter) Take(_ context.Context, key string, l store.Limit, n int64) (store.Decision, error) {
	if l.Rate <= 0 || l.Period <= 0 {
		return store.Decision{Allowed: true}, nil
	}
	interval, tolerance := gcra(l)
	now := ll.now()
	ll.mu.Lock()
	defer ll.mu.Unlock()
	tat := ll.tat[key]
	if tat.Before(now) {
		tat = now
	}
	newTAT := tat.Add(units(interval, n))
	allowAt := newTAT.Add(-tolerance)
	if now.Before(allowAt) {
		return store.Decision{
			Remaining:  remaining(now, tat, tolerance, interval),
			RetryAfter: allowAt.Sub(now),
			Reset:      tat.Sub(now),
		}, nil
	}
	ll.tat[key] = newTAT
	ll.sweep(now)
	return store.Decision{
		Allowed:   true,
		Remaining: remaining(now, newTAT, tolerance, interval),
		Reset:     newTAT.Sub(now),
	}, nil
}

// remaining is how many units could be taken at now with the limit at tat.
func remaining(now, tat time.Time, tolerance time.Duration, interval float64) int64 {
	free := tolerance - tat.Sub(now)
	if free <= 0 {
		return 0
	}
	return int64(float64(free) / interval)
}

// Charge implements store.Limiter.
func (ll *localLimiter) Charge(_ context.Context, key string, l store.Limit, n int64) error {
	if l.Rate <= 0 || l.Period <= 0 || n == 0 {
		return nil
	}
	interval, _ := gcra(l)
	now := ll.now()
	ll.mu.Lock()
	defer ll.mu.Unlock()
	tat := ll.tat[key]
	if tat.Before(now) {
		tat = now
	}
	tat = tat.Add(units(interval, n))
	if !tat.After(now) {
		delete(ll.tat, key) // full: the same as never used
		return nil
	}
	ll.tat[key] = tat
	ll.sweep(now)
	return nil
}

// sweep drops the keys whose limits are full again, once the map has
// doubled since the last sweep, so that it holds only recently used keys.
func (ll *localLimiter) sweep(now time.Time) {
	if len(ll.tat) < ll.nextSweep {
		return
	}
	for k, tat := range ll.tat {
		if !tat.After(now) {
			delete(ll.tat, k)
		}
	}
	ll.nextSweep = max(2*len(ll.tat), localSweepMin)
}
