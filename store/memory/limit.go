package memory

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/store"
)

// DefaultMaxLimiterKeys bounds the keys a Limiter tracks when
// LimiterOptions.MaxKeys is zero.
const DefaultMaxLimiterKeys = 1 << 20

// LimiterOptions configure a Limiter. The zero value of each field means its
// default.
type LimiterOptions struct {
	// Now returns the current time; nil means time.Now. Times are compared
	// by their monotonic readings when they have them.
	Now func() time.Time
	// MaxKeys bounds the keys tracked (each costs about a hundred bytes).
	// Keys whose limit is full again are forgotten first; past the bound a
	// key that is not full may be forgotten too (of a few, the nearest to
	// full), which gives it its full burst back early. The bound is kept
	// in 64 parts, so it is rounded down to a multiple of 64, at least 64.
	// 0 means DefaultMaxLimiterKeys.
	MaxKeys int
}

// A Limiter is a store.Limiter in process memory, for a single instance. It
// applies the generic cell rate algorithm (GCRA) with exactly the rules of
// the Redis limiter in store/redis:
//
//   - A Limit's emission interval is T = Period/Rate and its tolerance
//     Burst×T (Burst 0 means Rate). Each key has a theoretical arrival time
//     TAT; a key not seen, or whose TAT has passed, is full.
//   - Take(n) computes TAT' = max(TAT, now) + n×T and allows the units if
//     TAT' − now ≤ tolerance (plus a microsecond for rounding), storing
//     TAT'. Decision.Remaining is how many units one Take could have at once
//     after the decision, Reset how long until the limit is full again, and
//     a refused Take's RetryAfter is TAT' − now − tolerance. Take(0) takes
//     nothing and tells whether the key is in debt.
//   - Take(n) with n greater than the burst can never succeed: it is
//     refused with RetryAfter zero (the only refusal with a zero
//     RetryAfter) and changes nothing. Callers check n against the burst
//     first and reject such a request outright, rather than ask the client
//     to retry.
//   - Charge(n) sets TAT = max(TAT, now) + n×T whatever the tolerance (debt),
//     and a negative n moves TAT back, never before now (a full limit).
//
// Durations are computed in microseconds and rounded up to whole
// microseconds, as in Redis. A key whose limit changes keeps its TAT, which
// is then measured against the new tolerance. A key's debt is capped at
// about 31 years.
//
// A Limiter is safe for concurrent use. It runs no goroutine: keys whose
// TAT has passed are forgotten as new keys arrive (amortised over them), and
// their number is bounded by MaxKeys. The context arguments are not used.
type Limiter struct {
	now      func() time.Time
	base     time.Time // times are microseconds since base
	perShard int
	seed     maphash.Seed
	shards   [limiterShards]limiterShard
}

// limiterShards is the number of independently locked parts of a Limiter's
// keys: a Take holds one shard's lock for well under a microsecond, and
// sharding keeps concurrent Takes on different keys from queueing on one
// lock.
const limiterShards = 64

type limiterShard struct {
	mu      sync.Mutex
	tats    map[string]float64 // TAT in µs since base
	sweepAt int                // sweep when len(tats) reaches it
	swept   float64            // when the shard was last swept
	_       [32]byte           // a cache line per shard
}

// limitMinSweep is the fewest keys in a shard that make it sweep.
const limitMinSweep = 64

// limitSweepEvery is the least time between the sweeps of a shard at its
// bound, in µs: a sweep then costs a pass over all the shard's keys.
const limitSweepEvery = 1e6

// limitEvictSample is how many keys are looked at to choose one to forget
// when a shard is at its bound.
const limitEvictSample = 8

var _ store.Limiter = (*Limiter)(nil)

// NewLimiter returns a Limiter tracking no key.
func NewLimiter(opts LimiterOptions) *Limiter {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxKeys <= 0 {
		opts.MaxKeys = DefaultMaxLimiterKeys
	}
	l := &Limiter{
		now:      opts.Now,
		base:     opts.Now(),
		perShard: max(1, opts.MaxKeys/limiterShards),
		seed:     maphash.MakeSeed(),
	}
	for i := range l.shards {
		l.shards[i].tats = map[string]float64{}
		l.shards[i].sweepAt = min(limitMinSweep, l.perShard)
	}
	return l
}

// limitSlack is the rounding allowance of the comparison with the
// tolerance, in µs.
const limitSlack = 1

// limitMaxBacklog caps TAT − now, in µs (about 31.7 years), so that
// durations stay within time.Duration.
const limitMaxBacklog = 1e15

// limitGCRA returns the emission interval and tolerance of l in µs, computed as
// the Redis script computes them.
func limitGCRA(l store.Limit) (interval, tolerance float64, burst int64, err error) {
	if l.Rate <= 0 || l.Period <= 0 || l.Burst < 0 {
		return 0, 0, 0, fmt.Errorf("invalid rate limit %d per %v, burst %d", l.Rate, l.Period, l.Burst)
	}
	burst = l.Burst
	if burst == 0 {
		burst = l.Rate
	}
	interval = float64(l.Period) / 1000 / float64(l.Rate)
	tolerance = float64(burst) * interval
	if tolerance > limitMaxBacklog {
		return 0, 0, 0, fmt.Errorf("rate limit %d per %v, burst %d: a full burst takes too long to refill", l.Rate, l.Period, l.Burst)
	}
	return interval, tolerance, burst, nil
}

// Take implements store.Limiter.
func (l *Limiter) Take(_ context.Context, key string, lim store.Limit, n int64) (store.Decision, error) {
	interval, tolerance, burst, err := limitGCRA(lim)
	if err != nil {
		return store.Decision{}, fmt.Errorf("take from %s: %w", key, err)
	}
	if n < 0 {
		return store.Decision{}, fmt.Errorf("take from %s: %w", key, errNegativeTake)
	}
	now := l.micros()
	remaining := func(backlog float64) int64 {
		return int64(max(0, min(float64(burst), math.Floor((tolerance+limitSlack-backlog)/interval))))
	}
	s := l.shard(key)
	s.mu.Lock()
	tat, ok := s.tats[key]
	backlog := 0.0
	if ok {
		backlog = max(tat-now, 0)
	}
	if n > burst {
		s.mu.Unlock()
		return store.Decision{Remaining: remaining(backlog), Reset: limitDuration(backlog)}, nil
	}
	after := backlog + float64(n)*interval
	if after > tolerance+limitSlack {
		s.mu.Unlock()
		return store.Decision{
			Remaining:  remaining(backlog),
			RetryAfter: limitDuration(after - tolerance),
			Reset:      limitDuration(backlog),
		}, nil
	}
	if n > 0 {
		if ok {
			s.tats[key] = now + after
		} else {
			s.insert(key, now+after, now, l.perShard)
		}
	}
	s.mu.Unlock()
	return store.Decision{Allowed: true, Remaining: remaining(after), Reset: limitDuration(after)}, nil
}

var errNegativeTake = errors.New("cannot take a negative number of units")

// Charge implements store.Limiter.
func (l *Limiter) Charge(_ context.Context, key string, lim store.Limit, n int64) error {
	interval, _, _, err := limitGCRA(lim)
	if err != nil {
		return fmt.Errorf("charge %s: %w", key, err)
	}
	if n == 0 {
		return nil
	}
	now := l.micros()
	s := l.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	tat, ok := s.tats[key]
	backlog := 0.0
	if ok {
		backlog = max(tat-now, 0)
	}
	after := min(backlog+float64(n)*interval, limitMaxBacklog)
	switch {
	case after <= 0:
		if ok {
			delete(s.tats, key)
		}
	case ok:
		s.tats[key] = now + after
	default:
		s.insert(key, now+after, now, l.perShard)
	}
	return nil
}

// micros returns the time in µs since l.base.
func (l *Limiter) micros() float64 {
	return float64(l.now().Sub(l.base)) / 1000
}

// limitDuration returns us µs rounded up to a whole number of microseconds.
func limitDuration(us float64) time.Duration {
	return time.Duration(math.Ceil(us)) * time.Microsecond
}

func (l *Limiter) shard(key string) *limiterShard {
	return &l.shards[maphash.String(l.seed, key)%limiterShards]
}

// insert adds key, not in s, with TAT tat, first forgetting keys whose TAT
// has passed when the shard has grown enough since its last sweep, and a key
// close to full if the shard is at its bound. s.mu is held.
func (s *limiterShard) insert(key string, tat, now float64, bound int) {
	if n := len(s.tats); n >= s.sweepAt && (n < bound || now-s.swept >= limitSweepEvery) {
		for k, t := range s.tats {
			if t <= now {
				delete(s.tats, k)
			}
		}
		s.swept = now
		s.sweepAt = min(max(2*len(s.tats), limitMinSweep), bound)
	}
	if len(s.tats) >= bound {
		// Forget the key nearest to full of a few (map order is random),
		// which changes its limit least.
		var victim string
		least, seen := math.Inf(1), 0
		for k, t := range s.tats {
			if t < least {
				victim, least = k, t
			}
			if seen++; seen == limitEvictSample {
				break
			}
		}
		delete(s.tats, victim)
	}
	s.tats[key] = tat
}
