// Package router turns a public model name into a plan of upstream targets and
// runs a call along it.
//
// A route's targets are tried in order. A failure before the first content
// (the error of Provider.Complete or Provider.Stream, a first-token timeout,
// or an error event before any content, as Anthropic's overloaded_error after
// a 200) moves on to the next target when it is the upstream's fault; a
// failure after the first content never does, because the client may already
// hold part of the answer. The client's own errors (invalid_request) and a
// cancelled context end the call at once.
//
// Around that plan the router applies the route's resilience policies, all
// before the first content:
//
//   - Balancing: consecutive targets with a Weight form a rank whose
//     least loaded target (outstanding calls per weight) is tried first, the
//     rest of the rank next (see Target.Weight).
//   - Breakers (Breaker), one per target, shared by the routes that use it:
//     an open breaker skips its target as if it had failed.
//   - Bulkheads (Bulkhead, in Options), one per provider, cap its
//     concurrent calls; a call refused by a full bulkhead moves on.
//   - Retries (Retry) of the same target on transient failures, with
//     backoff, within a per-provider retry budget.
//   - Hedging (Hedge): a slow target gets a second target called beside
//     it, and the first to answer wins.
//
// Each try of a target is reported to the function set with
// WithAttemptFunc, as an Attempt.
package router

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice"
)

// A Target is one upstream: a provider and the model name it knows.
type Target struct {
	ProviderName string
	Provider     sluice.Provider
	Model        string
	// Prefill reports whether the target continues a final assistant
	// message (Anthropic does; OpenAI's API does not), for mid-stream
	// failover.
	Prefill bool
	// Weight, when positive, makes the target part of a balanced rank:
	// consecutive targets with a Weight share the load. A call tries first
	// the rank's target with the fewest outstanding calls per unit of
	// weight (outstanding/Weight, counted across routes; equals are chosen
	// at random in proportion to Weight, so an idle rank splits calls by
	// weight), then the rest of the rank in the same order, then the next
	// rank. A zero Weight is a rank of its own, tried in its place.
	Weight int
}

// A Route maps a public model name to its targets.
type Route struct {
	Name    string
	Targets []Target
	// MidStreamFailover continues a stream that breaks after its first
	// content on the next targets (see failoverStream); without it such a
	// stream ends with its error.
	MidStreamFailover bool
	// Retry retries a target on its transient failures; the zero Retry
	// makes none.
	Retry Retry
	// Breaker guards each target with a circuit breaker; the zero Breaker
	// is none (but a target shares the breaker another route gave it).
	Breaker Breaker
	// Hedge turns on hedged requests; the zero Hedge is off.
	Hedge Hedge
}

// A Router holds the routes. It is safe for concurrent use; routes do not
// change after New.
type Router struct {
	routes    map[string]*route
	providers map[string]*providerState
	names     []string
	breakers  []*breaker // sorted by provider and model
	rand      func() float64
}

// route is a Route with what the router keeps for it.
type route struct {
	Route
	targets  []*target
	ranks    []rank // the balanced ranks (two or more targets)
	retry    Retry  // with defaults
	hedge    bool
	ttft     [2]*sampler // complete, stream: for Hedge.P95
	balanced bool
}

// A rank is targets[lo:hi] of a route.
type rank struct{ lo, hi int }

// target is a route's Target with its shared state.
type target struct {
	Target
	ts *targetState
	ps *providerState
}

// targetState is what the routes calling one target share.
type targetState struct {
	out   atomic.Int64 // outstanding calls, when counted
	count bool         // the target is in a balanced rank: count its calls
	br    *breaker     // nil: none
}

// providerState is what the targets of one provider share.
type providerState struct {
	bh     semaphore // nil: no cap
	queue  time.Duration
	budget *retryBudget // nil: no route retries this provider
}

// New returns a Router over routes, with no Options. Names must be unique
// and every route needs a target.
func New(routes []Route) (*Router, error) { return NewWithOptions(routes, Options{}) }

// NewWithOptions returns a Router over routes, with opts. Names must be
// unique, every route needs a target, and policies must be valid (no
// negative counts or durations, rates and shares from 0 to 1).
func NewWithOptions(routes []Route, opts Options) (*Router, error) {
	r := &Router{routes: make(map[string]*route, len(routes)), rand: opts.Rand}
	if r.rand == nil {
		r.rand = rand.Float64
	}
	for name, b := range opts.Bulkheads {
		if err := b.validate(); err != nil {
			return nil, fmt.Errorf("provider %q: %w", name, err)
		}
	}
	window := cmp.Or(opts.RetryWindow, DefaultRetryWindow)
	minRetries := cmp.Or(opts.MinRetries, DefaultMinRetries)
	type key struct{ provider, model string }
	targets := map[key]*targetState{}
	providers := map[string]*providerState{}
	for i := range routes {
		rt := &route{Route: routes[i]}
		if rt.Name == "" {
			return nil, fmt.Errorf("route %d: empty name", i)
		}
		if _, dup := r.routes[rt.Name]; dup {
			return nil, fmt.Errorf("route %q: duplicate name", rt.Name)
		}
		if len(rt.Targets) == 0 {
			return nil, fmt.Errorf("route %q: no targets", rt.Name)
		}
		if err := rt.Retry.validate(); err != nil {
			return nil, fmt.Errorf("route %q: %w", rt.Name, err)
		}
		if err := rt.Breaker.validate(); err != nil {
			return nil, fmt.Errorf("route %q: %w", rt.Name, err)
		}
		if rt.Hedge.After < 0 {
			return nil, fmt.Errorf("route %q: hedge delay must not be negative", rt.Name)
		}
		rt.Targets = slices.Clone(rt.Targets)
		rt.retry = rt.Retry.withDefaults()
		rt.hedge = rt.Hedge.enabled() && len(rt.Targets) > 1
		if rt.hedge && rt.Hedge.P95 {
			rt.ttft = [2]*sampler{{}, {}}
		}
		for j, t := range rt.Targets {
			if t.Provider == nil {
				return nil, fmt.Errorf("route %q: target %d: nil provider", rt.Name, j)
			}
			if t.Weight < 0 {
				return nil, fmt.Errorf("route %q: target %d: negative weight", rt.Name, j)
			}
			ts := targets[key{t.ProviderName, t.Model}]
			if ts == nil {
				ts = &targetState{}
				targets[key{t.ProviderName, t.Model}] = ts
			}
			if ts.br == nil && rt.Breaker.enabled() {
				ts.br = newBreaker(t.ProviderName, t.Model, rt.Breaker, opts.OnBreakerChange)
				r.breakers = append(r.breakers, ts.br)
			}
			ps := providers[t.ProviderName]
			if ps == nil {
				ps = &providerState{}
				if b := opts.Bulkheads[t.ProviderName]; b.MaxConcurrent > 0 {
					ps.bh = make(semaphore, b.MaxConcurrent)
					ps.queue = b.QueueTimeout
				}
				providers[t.ProviderName] = ps
			}
			if ps.budget == nil && rt.Retry.Attempts > 1 {
				ps.budget = newRetryBudget(window, minRetries)
			}
			rt.targets = append(rt.targets, &target{Target: t, ts: ts, ps: ps})
		}
		for lo := 0; lo < len(rt.targets); {
			hi := lo + 1
			for rt.targets[lo].Weight > 0 && hi < len(rt.targets) && rt.targets[hi].Weight > 0 {
				hi++
			}
			if hi-lo > 1 {
				rt.ranks = append(rt.ranks, rank{lo, hi})
				for _, t := range rt.targets[lo:hi] {
					t.ts.count = true
				}
			}
			lo = hi
		}
		rt.balanced = len(rt.ranks) > 0
		r.routes[rt.Name] = rt
		r.names = append(r.names, rt.Name)
	}
	slices.SortFunc(r.breakers, func(a, b *breaker) int {
		return cmp.Or(cmp.Compare(a.provider, b.provider), cmp.Compare(a.model, b.model))
	})
	r.providers = providers
	return r, nil
}

// Models returns the public model names in configuration order.
func (r *Router) Models() []string { return slices.Clone(r.names) }

// Route returns the route of a public model name.
func (r *Router) Route(model string) (*Route, bool) {
	rt, ok := r.routes[model]
	if !ok {
		return nil, false
	}
	return &rt.Route, true
}

// Breakers returns the state of every target's breaker, sorted by provider
// and model: for a gauge. An open breaker whose time is up is half-opened
// by the call (and Options.OnBreakerChange told).
func (r *Router) Breakers() []BreakerStatus {
	now := time.Now()
	out := make([]BreakerStatus, len(r.breakers))
	for i, b := range r.breakers {
		out[i] = b.status(now)
	}
	return out
}

// A BulkheadStatus is a provider's calls in flight against its bulkhead.
type BulkheadStatus struct {
	Provider                string
	InFlight, MaxConcurrent int
}

// Bulkheads returns the providers that have a bulkhead, by name.
func (r *Router) Bulkheads() []BulkheadStatus {
	var out []BulkheadStatus
	for name, ps := range r.providers {
		if ps.bh != nil {
			out = append(out, BulkheadStatus{Provider: name, InFlight: len(ps.bh), MaxConcurrent: cap(ps.bh)})
		}
	}
	slices.SortFunc(out, func(a, b BulkheadStatus) int { return strings.Compare(a.Provider, b.Provider) })
	return out
}

func (r *Router) lookup(model string) (*route, error) {
	rt, ok := r.routes[model]
	if !ok {
		if len(model) > 100 {
			model = model[:100] + "..."
		}
		return nil, &sluice.Error{Code: sluice.CodeNotFound, Param: "model",
			Message: fmt.Sprintf("The model %q does not exist on this gateway.", model)}
	}
	return rt, nil
}

// Complete runs a non-streaming call along the route of req.Model. The
// response's Model is the upstream's; callers report the public name.
//
// When every target was skipped by its open breaker, the call fails with
// upstream_unavailable and a Retry-After of the shortest time one stays
// open.
func (r *Router) Complete(ctx context.Context, req *sluice.Request) (*sluice.Response, error) {
	rt, err := r.lookup(req.Model)
	if err != nil {
		return nil, err
	}
	c := call{r: r, rt: rt, req: req, report: reporter(ctx)}
	plan := rt.plan(r.rand)
	if rt.hedge {
		if delay := rt.hedgeDelay(false); delay > 0 {
			h := c // its runs' goroutines take h to the heap; c stays put
			o, _ := h.hedged(ctx, plan, delay)
			return o.resp, o.err
		}
	}
	var f failures
	for _, t := range plan {
		o := c.try(ctx, t, targetRequest(req, t.Target), false, c.report)
		if o.err == nil {
			return o.resp, nil
		}
		f.add(o)
		if !fallback(ctx, o.err) {
			break
		}
	}
	return nil, f.err()
}

// Stream starts a streaming call along the route of req.Model. It returns once
// a target's stream has produced its first content (or finished without
// any), so that a failure before it can still fall back to the next target,
// be retried or be hedged; the events read so far are replayed. Errors inside
// the returned stream are the caller's to report. The stream holds its
// target's bulkhead place until it ends or is closed.
func (r *Router) Stream(ctx context.Context, req *sluice.Request) (sluice.Stream, error) {
	rt, err := r.lookup(req.Model)
	if err != nil {
		return nil, err
	}
	c := call{r: r, rt: rt, req: req, stream: true, report: reporter(ctx)}
	plan := rt.plan(r.rand)
	if rt.hedge {
		if delay := rt.hedgeDelay(true); delay > 0 {
			h := c
			o, next := h.hedged(ctx, plan, delay)
			if o.err != nil {
				return nil, o.err
			}
			return c.failover(ctx, o.s, plan[next:]), nil
		}
	}
	var f failures
	for i, t := range plan {
		o := c.try(ctx, t, targetRequest(req, t.Target), false, c.report)
		if o.err == nil {
			return c.failover(ctx, o.s, plan[i+1:]), nil
		}
		f.add(o)
		if !fallback(ctx, o.err) {
			break
		}
	}
	return nil, f.err()
}

// failover wraps s for mid-stream failover to rest, when the route asks for
// it.
func (c *call) failover(ctx context.Context, s sluice.Stream, rest []*target) sluice.Stream {
	if !c.rt.MidStreamFailover || len(rest) == 0 {
		return s
	}
	cp := *c // outlives the call
	return withFailover(ctx, &cp, rest, s)
}

// failures keeps what a call needs to say why it failed: the last error of
// a target that was tried, else the breaker error of the target that opens
// first.
type failures struct {
	last error
	open *sluice.Error
}

func (f *failures) add(o outcome) {
	if !o.open {
		f.last = o.err
		return
	}
	if e := sluice.AsError(o.err); f.open == nil || e.RetryAfter < f.open.RetryAfter {
		f.open = e
	}
}

func (f *failures) err() error {
	if f.last != nil || f.open == nil {
		return f.last
	}
	return f.open
}

// call is one Complete or Stream along a route.
type call struct {
	r      *Router
	rt     *route
	req    *sluice.Request
	stream bool
	report func(Attempt) // nil: nobody listens
}

// An outcome is how the tries of one target ended.
type outcome struct {
	resp   *sluice.Response // Complete's answer
	s      sluice.Stream    // Stream's primed stream
	err    error
	usage  sluice.Usage  // what the upstream reported before it failed
	queued time.Duration // the wait for the bulkhead
	took   time.Duration // from the upstream call to its answer or failure
	open   bool          // skipped: the breaker is open
	full   bool          // refused: the bulkhead is full
	cut    bool          // a wait for a retry was cut short by ctx
}

// try calls t, retrying it as the route's Retry allows, and reports each
// attempt to rep.
func (c *call) try(ctx context.Context, t *target, req *sluice.Request, hedge bool, rep func(Attempt)) outcome {
	p := &c.rt.retry
	var wait time.Duration
	for n := 1; ; n++ {
		o := c.once(ctx, t, req)
		if n == 1 && t.ps.budget != nil && !o.open && !o.full {
			t.ps.budget.request(time.Now()) // a request the provider saw
		}
		if rep != nil {
			a := Attempt{Provider: t.ProviderName, Model: t.Model, Err: o.err, Retry: n > 1, Hedge: hedge,
				Skipped: o.open || o.full, Wait: wait + o.queued, Duration: o.took}
			if o.err != nil {
				a.Usage = o.usage
			}
			rep(a)
		}
		if o.err == nil || o.open || o.full || n >= p.Attempts || !retryable(ctx, o.err) {
			return o
		}
		d := backoff(p, n, o.err, c.r.rand)
		if sluice.AsError(o.err).RetryAfter > p.MaxRetryAfter {
			return o // longer than we wait: the next target
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
			return o // the wait would outlive the call
		}
		if t.ps.budget == nil || !t.ps.budget.retry(time.Now(), p.Budget) {
			return o
		}
		if !sleep(ctx, d) {
			o.cut = true
			return o
		}
		wait = d
	}
}

// once calls t one time, through its breaker and its provider's bulkhead.
func (c *call) once(ctx context.Context, t *target, req *sluice.Request) (o outcome) {
	ts, ps := t.ts, t.ps
	var gen uint64
	if ts.br != nil {
		var remaining time.Duration
		var ok bool
		if gen, remaining, ok = ts.br.allow(time.Now()); !ok {
			return outcome{err: breakerError(t, remaining), open: true}
		}
	}
	if ts.count {
		ts.out.Add(1)
	}
	if ps.bh != nil {
		start := time.Now()
		err := ps.bh.acquire(ctx, ps.queue)
		o.queued = time.Since(start)
		if err != nil {
			if ts.count {
				ts.out.Add(-1)
			}
			if ts.br != nil {
				ts.br.done(gen, neutral, time.Now())
			}
			o.err = err
			if err == ErrBulkheadFull {
				o.full = true
				o.err = &sluice.Error{Code: sluice.CodeOverloaded, Message: sluice.CodeOverloaded.DefaultMessage(),
					RetryAfter: BulkheadRetryAfter, Err: fmt.Errorf("%w: provider %s", ErrBulkheadFull, t.ProviderName)}
			}
			return o
		}
	}
	var release func() // gives back what the call holds, once it is over
	if ts.count || ps.bh != nil {
		release = func() {
			if ts.count {
				ts.out.Add(-1)
			}
			if ps.bh != nil {
				ps.bh.release()
			}
		}
	}
	// Time is read only when someone needs it: it is most of the cost of
	// a call without policies.
	samples := c.rt.ttft[b2i(c.stream)]
	timed := c.report != nil || samples != nil || ts.br != nil
	var start time.Time
	if timed {
		start = time.Now()
	}
	if c.stream {
		s, err := t.Provider.Stream(ctx, req)
		if err == nil && s == nil {
			err = sluice.WrapError(sluice.CodeInternal, fmt.Errorf("provider %s returned no stream and no error", t.ProviderName))
		}
		if err == nil {
			o.s, o.usage, err = prime(s, release)
		} else if release != nil {
			release()
		}
		o.err = err
	} else {
		o.resp, o.err = t.Provider.Complete(ctx, req)
		if o.err == nil && o.resp == nil {
			o.err = sluice.WrapError(sluice.CodeInternal, fmt.Errorf("provider %s returned no response and no error", t.ProviderName))
		}
		if release != nil {
			release()
		}
	}
	var now time.Time
	if timed {
		now = time.Now()
		o.took = now.Sub(start)
	}
	if o.err == nil && samples != nil {
		samples.add(o.took)
	}
	if ts.br != nil {
		r := neutral
		switch {
		case o.err == nil:
			r = success
		case fallback(ctx, o.err):
			r = failure
		}
		ts.br.done(gen, r, now)
	}
	return o
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// prime reads s up to its first content event (or its end) and returns a
// stream that replays what it read, then goes on with s, and the usage
// reported so far. An error before the first content releases s and is
// returned instead. release, when not nil, runs once s is released.
func prime(s sluice.Stream, release func()) (sluice.Stream, sluice.Usage, error) {
	next, stop := sluice.Pull(s)
	var held []sluice.Event
	var usage sluice.Usage
	for {
		ev, err := next()
		if err == io.EOF {
			break
		}
		if err != nil {
			stop()
			if release != nil {
				release()
			}
			return nil, usage, err
		}
		held = append(held, ev)
		if ev.Type == sluice.EventUsage || ev.Type == sluice.EventStart && ev.Usage != (sluice.Usage{}) {
			usage = ev.Usage
		}
		if ev.Type != sluice.EventStart && ev.Type != sluice.EventUsage {
			break
		}
	}
	return sluice.NewStream(func() (sluice.Event, error) {
		if len(held) > 0 {
			ev := held[0]
			held = held[1:]
			return ev, nil
		}
		return next()
	}, func() error {
		stop()
		if release != nil {
			release()
		}
		return nil
	}), usage, nil
}

// An Attempt is one call of a target, as the router reports it.
type Attempt struct {
	Provider string // the provider's configured name
	Model    string // the upstream model name
	// Err is nil when the target answered (for a stream: produced its
	// first content, or took over a broken stream), else why not.
	Err error
	// Retry reports whether the attempt retried the same target after its
	// failure.
	Retry bool
	// Hedge reports whether the attempt was started as a hedge, beside a
	// slow one.
	Hedge bool
	// Lost reports whether the attempt lost a hedged race: it was
	// cancelled because the other answered first (or answered after it,
	// and was released). Err is then ErrHedgeLost. Its upstream may have
	// done work all the same: see Usage.
	Lost bool
	// Skipped reports whether the target was not called: its breaker is
	// open (Err wraps ErrBreakerOpen) or its provider's bulkhead stayed
	// full (Err wraps ErrBulkheadFull).
	Skipped bool
	// Wait is the time spent before the call: the backoff before a retry
	// and the wait in the bulkhead's queue.
	Wait time.Duration
	// Duration is the time from the call to its answer (for a stream: its
	// first content) or its failure.
	Duration time.Duration
	// Usage is what the upstream reported of an attempt that did not
	// answer, or lost, before it ended (often the input tokens of a
	// stream's start; a lost Complete's whole usage): to meter it. The
	// usage of the answer is in the answer.
	Usage sluice.Usage
}

// ErrHedgeLost is the Err of an Attempt that lost a hedged race.
var ErrHedgeLost = errors.New("router: hedge lost")

type attemptKey struct{}

// WithAttemptFunc returns a context whose calls report each target they
// try to f, on the calling goroutine (for a stream: the one that
// called Stream or pulls the stream), one call at a time: how the pipeline
// learns which provider served a call and how many attempts it took. The
// attempts of one target come in order; those of a hedged call are
// reported when the race is over, in the order they started.
func WithAttemptFunc(ctx context.Context, f func(Attempt)) context.Context {
	return context.WithValue(ctx, attemptKey{}, f)
}

func reporter(ctx context.Context) func(Attempt) {
	f, _ := ctx.Value(attemptKey{}).(func(Attempt))
	return f
}

// targetRequest returns a shallow copy of req addressed to t's model.
func targetRequest(req *sluice.Request, t Target) *sluice.Request {
	if req.Model == t.Model {
		return req
	}
	cp := *req
	cp.Model = t.Model
	return &cp
}

// fallback reports whether a failure before the first byte should move on to
// the next target: the upstream's failures do, the client's do not.
// UpstreamFailed reports whether err, the failure of a call, is the
// upstream's (one another target, a cached answer or a later try may cure)
// rather than the client's own mistake or its leaving: the failures the
// router falls back on.
func UpstreamFailed(ctx context.Context, err error) bool { return fallback(ctx, err) }

func fallback(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	code := sluice.ErrorCode(err)
	// A target's own deadline cancels its call: that is its timeout, not the
	// caller's cancellation.
	if code != sluice.CodeUpstreamTimeout && errors.Is(err, context.Canceled) {
		return false
	}
	switch code {
	case sluice.CodeUpstreamError, sluice.CodeUpstreamUnavailable, sluice.CodeUpstreamTimeout,
		sluice.CodeOverloaded, sluice.CodeRateLimited:
		return true
	}
	return false
}
