package router

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-gw/sluice"
)

// changes records breaker changes.
type changes struct {
	mu  sync.Mutex
	got []string
}

func (c *changes) add(ch BreakerChange) {
	c.mu.Lock()
	c.got = append(c.got, ch.Provider+"/"+ch.Model+" "+ch.From.String()+"→"+ch.To.String())
	c.mu.Unlock()
}

func (c *changes) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	got := c.got
	c.got = nil
	return got
}

// switchable fails with its err while it is set.
type switchable struct {
	mu  sync.Mutex
	err error
}

func (s *switchable) set(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

func (s *switchable) fail(int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// TestBreakerConsecutive walks a breaker through its states: consecutive
// failures open it, an open breaker skips its target (which is not called)
// for OpenFor, then probes go through; a failed probe opens it again, the
// probes' successes close it.
func TestBreakerConsecutive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var sw switchable
		sw.set(upstream(503, 0))
		p1 := &fake{name: "f1", fail: sw.fail}
		var ch changes
		r := mustNew(t, Options{OnBreakerChange: ch.add},
			Route{Name: "m", Breaker: Breaker{Consecutive: 3, OpenFor: 10 * time.Second, Probes: 2}, Targets: targets(p1, &fake{name: "f2"})})
		for i := range 3 {
			if res := do(t.Context(), r, "m", i%2 == 0); res.model != "f2" {
				t.Fatalf("call %d: %+v", i, res)
			}
		}
		if diff := cmp.Diff([]string{"p1/m-p1 closed→open"}, ch.take()); diff != "" {
			t.Errorf("changes (-want +got):\n%s", diff)
		}
		res := do(t.Context(), r, "m", true)
		if diff := cmp.Diff([]string{"p1 skipped upstream_unavailable", "p2 ok"}, res.attempts); diff != "" {
			t.Errorf("open: attempts (-want +got):\n%s", diff)
		}
		if calls, _ := p1.stats(); calls != 3 {
			t.Errorf("open breaker let a call through: %d calls", calls)
		}
		time.Sleep(4 * time.Second)
		want := []BreakerStatus{{Provider: "p1", Model: "m-p1", State: BreakerOpen, Remaining: 6 * time.Second}, {Provider: "p2", Model: "m-p2"}}
		if diff := cmp.Diff(want, r.Breakers()); diff != "" {
			t.Errorf("Breakers (-want +got):\n%s", diff)
		}

		// Half-open: a failed probe opens it again.
		time.Sleep(6 * time.Second)
		if got := r.Breakers()[0].State; got != BreakerHalfOpen {
			t.Errorf("after OpenFor: %v, want half-open", got)
		}
		if res := do(t.Context(), r, "m", false); res.model != "f2" || len(res.attempts) != 2 {
			t.Errorf("failed probe: %+v", res)
		}
		if diff := cmp.Diff([]string{"p1/m-p1 open→half-open", "p1/m-p1 half-open→open"}, ch.take()); diff != "" {
			t.Errorf("changes (-want +got):\n%s", diff)
		}

		// Two successful probes close it.
		sw.set(nil)
		time.Sleep(10 * time.Second)
		for i := range 2 {
			if res := do(t.Context(), r, "m", false); res.model != "f1" {
				t.Fatalf("probe %d: %+v", i, res)
			}
		}
		if diff := cmp.Diff([]string{"p1/m-p1 open→half-open", "p1/m-p1 half-open→closed"}, ch.take()); diff != "" {
			t.Errorf("changes (-want +got):\n%s", diff)
		}
		// Closed: a success reset the count of failures in a row.
		sw.set(upstream(500, 0))
		for range 2 {
			do(t.Context(), r, "m", false)
		}
		if got := r.Breakers()[0].State; got != BreakerClosed {
			t.Errorf("two failures opened it: %v", got)
		}
	})
}

// TestBreakerRate checks the failure-rate rule: judged only from
// MinRequests calls, over a sliding window that forgets old failures.
func TestBreakerRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var sw switchable
		p1 := &fake{name: "f1", fail: sw.fail}
		r := mustNew(t, Options{}, Route{Name: "m", Breaker: Breaker{FailureRate: 0.5, MinRequests: 4, Window: 10 * time.Second},
			Targets: targets(p1, &fake{name: "f2"})})
		state := func() BreakerState { return r.Breakers()[0].State }
		call := func(err error) {
			sw.set(err)
			do(t.Context(), r, "m", false)
		}
		bad := upstream(502, 0)
		call(bad)
		call(bad)
		call(bad)
		if state() != BreakerClosed {
			t.Fatalf("opened below MinRequests")
		}
		// The window forgets those three.
		time.Sleep(11 * time.Second)
		call(nil)
		call(nil)
		call(bad)
		call(nil)
		if state() != BreakerClosed {
			t.Fatalf("opened at 1 failure in 4 (the old ones counted)")
		}
		call(bad) // 2 in 5
		if state() != BreakerClosed {
			t.Fatalf("opened at 2 failures in 5")
		}
		call(bad) // 3 in 6
		if state() != BreakerOpen {
			t.Fatalf("still %v at 3 failures in 6", state())
		}
	})
}

// TestBreakerNotTheUpstreams checks that the client's errors and the
// caller's cancellations do not count against a target.
func TestBreakerNotTheUpstreams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var sw switchable
		p1 := &fake{name: "f1", fail: sw.fail, ttft: time.Minute}
		r := mustNew(t, Options{}, Route{Name: "m", Breaker: Breaker{Consecutive: 2, FailureRate: 0.1, MinRequests: 1}, Targets: targets(p1)})
		sw.set(upstream(400, 0))
		for range 5 {
			if res := do(t.Context(), r, "m", false); sluice.ErrorCode(res.err) != sluice.CodeInvalidRequest {
				t.Fatalf("err %v", res.err)
			}
		}
		sw.set(sluice.NewError(sluice.CodePromptTooLong, "x"))
		do(t.Context(), r, "m", true)
		sw.set(nil)
		for range 3 {
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			if res := do(ctx, r, "m", true); !errors.Is(res.err, context.DeadlineExceeded) {
				t.Fatalf("err %v, want the caller's deadline", res.err)
			}
			cancel()
			ctx, cancel = context.WithCancel(t.Context())
			go func() { time.Sleep(time.Second); cancel() }()
			if res := do(ctx, r, "m", false); !errors.Is(res.err, context.Canceled) {
				t.Fatalf("err %v, want the caller's cancellation", res.err)
			}
		}
		if got := r.Breakers()[0].State; got != BreakerClosed {
			t.Errorf("breaker %v after the client's errors", got)
		}
		if calls, _ := p1.stats(); calls != 12 {
			t.Errorf("%d calls, want 12", calls)
		}
	})
}

// TestBreakerAllOpen checks that a call whose every target is skipped fails
// with upstream_unavailable and the shortest remaining open time, and that
// routes sharing a target share its breaker.
func TestBreakerAllOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		down := always(upstream(503, 0))
		p1, p2 := &fake{name: "f1", fail: down}, &fake{name: "f2", fail: down}
		ts := targets(p1, p2)
		r := mustNew(t, Options{},
			Route{Name: "a", Breaker: Breaker{Consecutive: 1, OpenFor: 30 * time.Second}, Targets: ts[:1]},
			Route{Name: "b", Breaker: Breaker{Consecutive: 1, OpenFor: 20 * time.Second}, Targets: ts[1:]},
			Route{Name: "both", Targets: []Target{ts[0], ts[1]}}, // no breaker of its own: shares theirs
		)
		do(t.Context(), r, "a", false) // opens p1's breaker for 30s
		time.Sleep(5 * time.Second)
		do(t.Context(), r, "b", false) // opens p2's breaker for 20s
		time.Sleep(5 * time.Second)
		res := do(t.Context(), r, "both", true)
		var e *sluice.Error
		if !errors.As(res.err, &e) || e.Code != sluice.CodeUpstreamUnavailable || e.RetryAfter != 15*time.Second || !errors.Is(e, ErrBreakerOpen) {
			t.Fatalf("err %v (%+v), want upstream_unavailable with Retry-After 15s", res.err, e)
		}
		if diff := cmp.Diff([]string{"p1 skipped upstream_unavailable", "p2 skipped upstream_unavailable"}, res.attempts); diff != "" {
			t.Errorf("attempts (-want +got):\n%s", diff)
		}
	})
}

// TestBreakerProbes checks the half-open state directly: Probes calls at
// a time, results of calls from an earlier state ignored, a neutral probe
// giving its place back.
func TestBreakerProbes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ch changes
		b := newBreaker("p", "m", Breaker{Consecutive: 1, OpenFor: time.Second, Probes: 2}, ch.add)
		now := time.Now
		old, _, _ := b.allow(now())
		g, _, _ := b.allow(now())
		b.done(g, failure, now())
		b.done(old, failure, now()) // from before the change: ignored
		time.Sleep(time.Second)
		g1, _, ok1 := b.allow(now())
		g2, _, ok2 := b.allow(now())
		_, rem, ok3 := b.allow(now())
		if !ok1 || !ok2 || ok3 || rem <= 0 {
			t.Fatalf("half-open let through %v %v %v (remaining %v), want two probes", ok1, ok2, ok3, rem)
		}
		b.done(g1, neutral, now()) // gives its place back
		g3, _, ok := b.allow(now())
		if !ok {
			t.Fatal("a neutral probe kept its place")
		}
		b.done(g2, success, now())
		b.done(g3, success, now())
		if s := b.status(now()); s.State != BreakerClosed {
			t.Errorf("state %v, want closed", s.State)
		}
		want := []string{"p/m closed→open", "p/m open→half-open", "p/m half-open→closed"}
		if diff := cmp.Diff(want, ch.take()); diff != "" {
			t.Errorf("changes (-want +got):\n%s", diff)
		}
	})
}

func TestNewRejectsPolicies(t *testing.T) {
	p := &fake{name: "f"}
	ts := []Target{{ProviderName: "p", Provider: p, Model: "a"}}
	for name, tt := range map[string]struct {
		rt   Route
		opts Options
	}{
		"negative attempts": {rt: Route{Name: "m", Targets: ts, Retry: Retry{Attempts: -1}}},
		"budget over 1":     {rt: Route{Name: "m", Targets: ts, Retry: Retry{Budget: 2}}},
		"failure rate":      {rt: Route{Name: "m", Targets: ts, Breaker: Breaker{FailureRate: 1.5}}},
		"negative open":     {rt: Route{Name: "m", Targets: ts, Breaker: Breaker{Consecutive: 1, OpenFor: -1}}},
		"negative hedge":    {rt: Route{Name: "m", Targets: ts, Hedge: Hedge{After: -1}}},
		"negative weight":   {rt: Route{Name: "m", Targets: []Target{{ProviderName: "p", Provider: p, Model: "a", Weight: -1}}}},
		"negative bulkhead": {rt: Route{Name: "m", Targets: ts}, opts: Options{Bulkheads: map[string]Bulkhead{"p": {MaxConcurrent: -1}}}},
	} {
		if _, err := NewWithOptions([]Route{tt.rt}, tt.opts); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
