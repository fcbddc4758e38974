package store

import (
	"context"
	"time"
)

// A Limit is a rate: Rate units per Period, with bursts of up to Burst
// units (Burst 0 means Rate).
type Limit struct {
	Rate   int64
	Period time.Duration
	Burst  int64
}

// A Decision is a Limiter's answer.
type Decision struct {
	// Allowed reports whether the units were taken.
	Allowed bool
	// Remaining is how many units could be taken at once now (after this
	// decision).
	Remaining int64
	// RetryAfter is how long until the refused request would be allowed
	// (zero when allowed); Reset how long until the limit is back to full.
	RetryAfter time.Duration
	Reset      time.Duration
}

// A Limiter enforces rate limits by key (for example "key:k_123:rpm"). Every
// user of the same backend shares the same limits, so several gateway
// instances on one Redis enforce one limit. Implementations are safe for
// concurrent use.
type Limiter interface {
	// Take takes n units from key's limit if they are available, and says
	// whether they were.
	Take(ctx context.Context, key string, l Limit, n int64) (Decision, error)
	// Charge adjusts key's limit by n units whether or not they are
	// available (the limit may go into debt, so later requests wait); a
	// negative n gives units back, never beyond a full limit. It settles a
	// reservation taken at admission with the real usage.
	Charge(ctx context.Context, key string, l Limit, n int64) error
}
