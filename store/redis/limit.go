package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sluice-gw/sluice/store"
)

// A Limiter is a store.Limiter kept in Redis, so that every instance using
// the same server and prefix enforces one limit per key. It applies the
// generic cell rate algorithm (GCRA) with exactly the rules of the memory
// limiter (see store/memory.Limiter for them in full):
//
//   - A Limit's emission interval is T = Period/Rate and its tolerance
//     Burst×T (Burst 0 means Rate); each key has a theoretical arrival time
//     TAT, and a key that does not exist is full.
//   - Take(n) allows the units if max(TAT, now) + n×T − now ≤ tolerance
//     (plus a microsecond for rounding) and then stores that TAT.
//   - Take(n) with n greater than the burst can never succeed: it is refused
//     with RetryAfter zero and changes nothing. Callers check n against the
//     burst first.
//   - Charge(n) moves TAT by n×T from max(TAT, now) whatever the tolerance,
//     never before now.
//
// Each Take and Charge is one Lua script, atomic on the server, reading the
// time with the server's TIME: instances whose clocks disagree still agree
// on every limit. Scripts calling TIME before writing need Redis 5 or later
// (or Redis 3.2 and later, which they ask for effects replication).
//
// The TAT of key is kept at <prefix>limit:<key> as a decimal number of
// microseconds since the Unix epoch (by the server's clock), with an expiry
// at that time: a key whose limit is full does not exist. Durations are
// computed in microseconds and rounded up to whole microseconds. A key's
// debt is capped at about 31 years.
//
// A Limiter is safe for concurrent use.
type Limiter struct {
	db     *DB
	prefix string
}

var _ store.Limiter = (*Limiter)(nil)

// NewLimiter returns a Limiter on db whose keys start with prefix (""
// means DefaultPrefix).
func NewLimiter(db *DB, prefix string) *Limiter {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Limiter{db: db, prefix: prefix}
}

func (l *Limiter) key(key string) string { return l.prefix + "limit:" + key }

// limitPrelude is the start of both limit scripts: it reads the arguments
// and the key. KEYS: the key. ARGV: rate, period in ns, burst (0 is
// rate), n. All times are in µs.
const limitPrelude = `
if redis.replicate_commands then
	redis.replicate_commands()
end
local slack = 1
local max_backlog = 1e15
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rate = tonumber(ARGV[1])
local interval = tonumber(ARGV[2]) / 1000 / rate
local burst = tonumber(ARGV[3])
if burst == 0 then
	burst = rate
end
local n = tonumber(ARGV[4])
local tolerance = burst * interval
local tat = redis.call('GET', KEYS[1])
local backlog = 0
if tat then
	backlog = math.max(tonumber(tat) - now, 0)
end
local function store(after)
	redis.call('SET', KEYS[1], string.format('%.17g', now + after),
		'PX', string.format('%.0f', math.ceil(after / 1000)))
end
`

// takeScript takes n units if the limit allows. Returns {allowed (0 or 1),
// remaining, retry after in µs, reset in µs}.
var takeScript = goredis.NewScript(limitPrelude + `
local function remaining(b)
	return math.max(0, math.min(burst, math.floor((tolerance + slack - b) / interval)))
end
if n > burst then
	return {0, remaining(backlog), 0, math.ceil(backlog)}
end
local after = backlog + n * interval
if after > tolerance + slack then
	return {0, remaining(backlog), math.ceil(after - tolerance), math.ceil(backlog)}
end
if n > 0 then
	store(after)
end
return {1, remaining(after), 0, math.ceil(after)}
`)

// chargeScript moves the TAT by n units, deleting the key when the limit is
// full. Returns 1.
var chargeScript = goredis.NewScript(limitPrelude + `
local after = math.min(backlog + n * interval, max_backlog)
if after <= 0 then
	if tat then
		redis.call('DEL', KEYS[1])
	end
else
	store(after)
end
return 1
`)

// maxBacklog mirrors max_backlog of the scripts: the longest a full burst
// may take to refill, in µs.
const maxBacklog = 1e15

// checkLimit returns an error if lim is not a valid limit, computing its
// tolerance as the scripts do.
func checkLimit(lim store.Limit) error {
	if lim.Rate <= 0 || lim.Period <= 0 || lim.Burst < 0 {
		return fmt.Errorf("invalid rate limit %d per %v, burst %d", lim.Rate, lim.Period, lim.Burst)
	}
	burst := lim.Burst
	if burst == 0 {
		burst = lim.Rate
	}
	if float64(burst)*(float64(lim.Period)/1000/float64(lim.Rate)) > maxBacklog {
		return fmt.Errorf("rate limit %d per %v, burst %d: a full burst takes too long to refill", lim.Rate, lim.Period, lim.Burst)
	}
	return nil
}

// Take implements store.Limiter.
func (l *Limiter) Take(ctx context.Context, key string, lim store.Limit, n int64) (store.Decision, error) {
	if err := checkLimit(lim); err != nil {
		return store.Decision{}, fmt.Errorf("take from %s: %w", key, err)
	}
	if n < 0 {
		return store.Decision{}, fmt.Errorf("take from %s: %w", key, errNegativeTake)
	}
	res, err := takeScript.Run(ctx, l.db.client, []string{l.key(key)},
		lim.Rate, int64(lim.Period), lim.Burst, n).Int64Slice()
	if err != nil {
		return store.Decision{}, fmt.Errorf("take from %s: %w", key, err)
	}
	if len(res) != 4 {
		return store.Decision{}, fmt.Errorf("take from %s: unexpected script reply %v", key, res)
	}
	return store.Decision{
		Allowed:    res[0] == 1,
		Remaining:  res[1],
		RetryAfter: time.Duration(res[2]) * time.Microsecond,
		Reset:      time.Duration(res[3]) * time.Microsecond,
	}, nil
}

var errNegativeTake = errors.New("cannot take a negative number of units")

// Charge implements store.Limiter.
func (l *Limiter) Charge(ctx context.Context, key string, lim store.Limit, n int64) error {
	if err := checkLimit(lim); err != nil {
		return fmt.Errorf("charge %s: %w", key, err)
	}
	if n == 0 {
		return nil
	}
	err := chargeScript.Run(ctx, l.db.client, []string{l.key(key)},
		lim.Rate, int64(lim.Period), lim.Burst, n).Err()
	if err != nil {
		return fmt.Errorf("charge %s: %w", key, err)
	}
	return nil
}
