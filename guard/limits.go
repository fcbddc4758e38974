package guard

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/store"
)

// An Identity says whom a request counts against.
type Identity struct {
	// KeyID is the API key's id; empty when the gateway runs without keys.
	KeyID string
	// User is the end user: the key's own user, else the one the request
	// names. Users are counted per tenant.
	User   string
	Tenant string
	// IP is the client's address.
	IP string
}

// A Rate is a per-minute limit of requests and tokens; zero fields do not
// limit.
type Rate struct {
	RPM, TPM int64
}

// LimiterFailure says what Limits does when its shared limiter fails.
type LimiterFailure string

// The limiter failure policies.
const (
	// LimiterClosed refuses the request with overloaded (503, Retry-After
	// 1s): the safe choice when limits protect money or an upstream quota.
	// It is the default.
	LimiterClosed LimiterFailure = "closed"
	// LimiterLocal counts the request on this instance's own limiter
	// instead, as if it were alone: with N instances, clients may get up to
	// N times their limits while the shared limiter is down.
	LimiterLocal LimiterFailure = "local"
)

// LimitsOptions configure Limits. The zero value of each field means its
// default.
type LimitsOptions struct {
	// OnFailure says what happens when the shared limiter fails:
	// LimiterClosed (default) or LimiterLocal.
	OnFailure LimiterFailure
	// Local is the limiter used under LimiterLocal (and for everything
	// when Limits has no shared limiter); nil means an in-process GCRA
	// limiter.
	Local store.Limiter
	// Report, when set, is called with every error of the shared limiter
	// (from Reserve and Settle), to be logged and counted. It must not
	// block.
	Report func(error)
	// Now returns the current time, for the in-process limiter; nil means
	// time.Now.
	Now func() time.Time
}

// Limits enforces requests and tokens per minute for keys, users and
// client addresses over a store.Limiter, which several instances may
// share (Redis). Tokens are reserved at admission, the estimated prompt
// plus the output cap, and settled with the real usage when the request
// ends. Limits is safe for concurrent use.
//
// Limiter keys are "key:<id>:rpm", "key:<id>:tpm", "user:<tenant>:<user>:…"
// and "ip:<address>:…", with the tenant and user path-escaped.
type Limits struct {
	shared store.Limiter // nil: local only
	local  store.Limiter
	opts   LimitsOptions
}

// NewLimits returns Limits over shared; nil shared means this instance's
// own limiter only.
func NewLimits(shared store.Limiter, opts LimitsOptions) *Limits {
	if opts.OnFailure == "" {
		opts.OnFailure = LimiterClosed
	}
	local := opts.Local
	if local == nil {
		local = newLocalLimiter(opts.Now)
	}
	return &Limits{shared: shared, local: local, opts: opts}
}

// Headers are the x-ratelimit-* values of a response: for requests and
// tokens, the limit, what remains and how long until the limit is full
// again. When several limits apply (key, user, address), each figure is
// that of the one with the least remaining. Zero limits are not reported.
type Headers struct {
	LimitRequests     int64
	RemainingRequests int64
	ResetRequests     time.Duration
	LimitTokens       int64
	RemainingTokens   int64
	ResetTokens       time.Duration
}

// Set writes h into hdr: x-ratelimit-limit-requests,
// x-ratelimit-remaining-requests, x-ratelimit-reset-requests and the
// -tokens triple, durations as OpenAI writes them ("1s", "6m0s", "20ms").
// Retry-After belongs to the error (sluice.Error.RetryAfter) and is not
// written here.
func (h Headers) Set(hdr http.Header) {
	if h.LimitRequests > 0 {
		hdr.Set("X-Ratelimit-Limit-Requests", strconv.FormatInt(h.LimitRequests, 10))
		hdr.Set("X-Ratelimit-Remaining-Requests", strconv.FormatInt(h.RemainingRequests, 10))
		hdr.Set("X-Ratelimit-Reset-Requests", resetString(h.ResetRequests))
	}
	if h.LimitTokens > 0 {
		hdr.Set("X-Ratelimit-Limit-Tokens", strconv.FormatInt(h.LimitTokens, 10))
		hdr.Set("X-Ratelimit-Remaining-Tokens", strconv.FormatInt(h.RemainingTokens, 10))
		hdr.Set("X-Ratelimit-Reset-Tokens", resetString(h.ResetTokens))
	}
}

func resetString(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// A Reservation is the tokens Reserve took, until Settle trues them up.
type Reservation struct {
	limits  *Limits
	limiter store.Limiter
	tokens  []taken
	settled atomic.Bool
}

// taken is what one token limit charged at admission.
type taken struct {
	key   string
	limit store.Limit
	n     int64
}

// check is one limit Reserve takes from.
type check struct {
	key    string
	name   Refusal // rpm, tpm, user_rpm, ...
	limit  store.Limit
	n      int64
	tokens bool
}

// Reserve takes, for each limit that applies, one request and the tokens
// of promptTokens plus maxOutput: per key (t.RPM, t.TPM), per user of the
// tenant (t.UserRPM, t.UserTPM) and per address (ip). A request needing
// more tokens than a whole minute allows takes the minute's worth, once
// the limit is full, and Settle charges the rest as debt, so that it is
// not refused forever.
//
// A refusal is an *sluice.Error with code rate_limited and RetryAfter set,
// and gives back what was taken from the other limits. Headers are
// returned either way, to be sent with the answer. When the shared limiter
// fails, OnFailure decides: overloaded, or this instance's limiter. With
// no limit to apply, Reserve returns a nil Reservation, whose Settle does
// nothing.
func (l *Limits) Reserve(ctx context.Context, who Identity, t Tier, ip Rate, promptTokens, maxOutput int) (*Reservation, Headers, error) {
	checks := make([]check, 0, 6)
	tokens := int64(max(promptTokens, 0) + max(maxOutput, 0))
	add := func(prefix string, rpm, tpm Refusal, r Rate) {
		if r.RPM > 0 {
			checks = append(checks, check{key: prefix + ":rpm", name: rpm, limit: requestsPerMinute(r.RPM), n: 1})
		}
		if r.TPM > 0 {
			checks = append(checks, check{key: prefix + ":tpm", name: tpm, limit: perMinute(r.TPM), n: min(tokens, r.TPM), tokens: true})
		}
	}
	if who.KeyID != "" {
		add("key:"+who.KeyID, RefusedRPM, RefusedTPM, Rate{t.RPM, t.TPM})
	}
	if who.User != "" {
		add("user:"+url.PathEscape(who.Tenant)+":"+url.PathEscape(who.User), RefusedUserRPM, RefusedUserTPM, Rate{t.UserRPM, t.UserTPM})
	}
	if who.IP != "" {
		add("ip:"+who.IP, RefusedIPRPM, RefusedIPTPM, ip)
	}
	if len(checks) == 0 {
		return nil, Headers{}, nil // nothing to settle: Settle on nil does nothing
	}
	limiter := l.local
	if l.shared != nil {
		limiter = l.shared
	}
	r, h, err := l.take(ctx, limiter, checks)
	if err == nil || limiter == l.local || sluice.ErrorCode(err) == sluice.CodeRateLimited {
		return r, h, err
	}
	if ctx.Err() != nil {
		return nil, Headers{}, err // the caller gave up; the limiter did not fail
	}
	l.report(err)
	if l.opts.OnFailure != LimiterLocal {
		return nil, Headers{}, &sluice.Error{Code: sluice.CodeOverloaded, Message: sluice.CodeOverloaded.DefaultMessage(),
			RetryAfter: time.Second, Err: fmt.Errorf("%w: %w", RefusedLimiterDown, err)}
	}
	return l.take(ctx, l.local, checks)
}

// perMinute is a limit of n tokens a minute, a whole minute's worth of
// which may be taken at once.
func perMinute(n int64) store.Limit {
	return store.Limit{Rate: n, Period: time.Minute, Burst: n}
}

// requestsPerMinute is a limit of n requests a minute. Bursts are a tenth
// of the minute's requests (at least one): a key hammering its limit gets
// about n in any minute, not the 2n a full minute's burst plus the
// minute's refill would let through.
func requestsPerMinute(n int64) store.Limit {
	return store.Limit{Rate: n, Period: time.Minute, Burst: max(1, n/10)}
}

// take runs checks on limiter in order. On a refusal or an error it gives
// back what it took.
func (l *Limits) take(ctx context.Context, limiter store.Limiter, checks []check) (*Reservation, Headers, error) {
	r := &Reservation{limits: l, limiter: limiter}
	var h Headers
	giveBack := func(upTo int) {
		for _, c := range checks[:upTo] {
			if err := limiter.Charge(ctx, c.key, c.limit, -c.n); err != nil && limiter != l.local {
				l.report(fmt.Errorf("give back %s: %w", c.key, err))
			}
		}
	}
	for i, c := range checks {
		d, err := limiter.Take(ctx, c.key, c.limit, c.n)
		if err != nil {
			giveBack(i)
			return nil, Headers{}, fmt.Errorf("rate limiter: take %s: %w", c.key, err)
		}
		h.note(c, d)
		if !d.Allowed {
			giveBack(i)
			what := "requests"
			if c.tokens {
				what = "tokens"
			}
			wait := max(d.RetryAfter, time.Millisecond)
			return nil, h, &sluice.Error{Code: sluice.CodeRateLimited, RetryAfter: wait, Err: c.name,
				Message: fmt.Sprintf("Rate limit of %d %s per minute reached; try again in %s.", c.limit.Rate, what, retryString(wait))}
		}
		if c.tokens {
			r.tokens = append(r.tokens, taken{c.key, c.limit, c.n})
		}
	}
	return r, h, nil
}

// note records d in h when it is the tightest of its kind so far.
func (h *Headers) note(c check, d store.Decision) {
	if c.tokens {
		if h.LimitTokens == 0 || d.Remaining < h.RemainingTokens || !d.Allowed {
			h.LimitTokens, h.RemainingTokens, h.ResetTokens = c.limit.Rate, d.Remaining, d.Reset
		}
		return
	}
	if h.LimitRequests == 0 || d.Remaining < h.RemainingRequests || !d.Allowed {
		h.LimitRequests, h.RemainingRequests, h.ResetRequests = c.limit.Rate, d.Remaining, d.Reset
	}
}

// retryString renders a wait in whole seconds, at least one.
func retryString(d time.Duration) string {
	s := int64(math.Ceil(d.Seconds()))
	return strconv.FormatInt(max(s, 1), 10) + "s"
}

func (l *Limits) report(err error) {
	if l.opts.Report != nil {
		l.opts.Report(err)
	}
}

// Settle trues up the reservation with the tokens the request really used
// (input plus output; sluice.Usage.TotalTokens): it charges the
// difference, which gives tokens back when the request used fewer.
// Call it once the request has ended, whatever its outcome (0 if no
// upstream call was made); later calls do nothing. Errors of the limiter
// are reported, not returned: the request has been answered.
func (r *Reservation) Settle(ctx context.Context, realTokens int) {
	if r == nil || !r.settled.CompareAndSwap(false, true) {
		return
	}
	for _, t := range r.tokens {
		diff := int64(max(realTokens, 0)) - t.n
		if diff == 0 {
			continue
		}
		if err := r.limiter.Charge(ctx, t.key, t.limit, diff); err != nil {
			r.limits.report(fmt.Errorf("rate limiter: settle %s: %w", t.key, err))
		}
	}
}

// Streams counts the streams each key has open, on this instance only: a
// limit of N streams lets a key open up to N on each instance. (A shared
// counter would need leases that expire when an instance dies, which the
// store.Limiter interface does not offer.) The zero value is ready to use;
// it is safe for concurrent use.
type Streams struct {
	mu   sync.Mutex
	open map[string]int
}

// Acquire counts one more open stream of key keyID, or refuses with
// rate_limited when it has limit open (limit 0: no limit). release, which
// must be called when the stream ends, is idempotent.
func (s *Streams) Acquire(keyID string, limit int) (release func(), err error) {
	if limit <= 0 {
		return func() {}, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[keyID] >= limit {
		return nil, &sluice.Error{Code: sluice.CodeRateLimited, RetryAfter: time.Second, Err: RefusedStreams,
			Message: fmt.Sprintf("This key has %d streams open, the most it may; try again when one ends.", limit)}
	}
	if s.open == nil {
		s.open = make(map[string]int)
	}
	s.open[keyID]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.open[keyID]--; s.open[keyID] <= 0 {
				delete(s.open, keyID)
			}
		})
	}, nil
}

// Open returns the streams key keyID has open.
func (s *Streams) Open(keyID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open[keyID]
}
