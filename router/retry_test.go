package router

import (
	"context"
	"errors"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/sim"
)

// TestRetry checks which failures before the first content are retried on
// the same target, and that the rest fall back (or end the call) as
// before, for Complete and Stream, with the simulator and small fakes.
func TestRetry(t *testing.T) {
	refused := sluice.WrapError(sluice.CodeUpstreamUnavailable, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")})
	tests := []struct {
		name      string
		first     func() sluice.Provider
		wantModel string
		wantCode  sluice.Code
		want      []string // attempts
		wantAt    time.Duration
	}{
		{
			name:      "503 then success",
			first:     func() sluice.Provider { return sim.New(sim.Options{Fault: sim.Fault{Status: 503, StatusFirst: 1}}) },
			wantModel: "m-p1", want: []string{"p1 upstream_unavailable", "p1 retry ok wait=100ms"}, wantAt: 100 * time.Millisecond,
		},
		{
			name:      "500 twice, then the next target",
			first:     func() sluice.Provider { return sim.New(sim.Options{Fault: sim.Fault{Status: 500}}) },
			wantModel: "m-p2", want: []string{"p1 upstream_error", "p1 retry upstream_error wait=100ms", "p1 retry upstream_error wait=200ms", "p2 ok"},
			wantAt: 300 * time.Millisecond,
		},
		{
			name: "overloaded without a status (an error event)",
			first: func() sluice.Provider {
				return &fake{name: "f1", fail: failFirst(1, sluice.NewError(sluice.CodeOverloaded, "x"))}
			},
			wantModel: "f1", want: []string{"p1 overloaded", "p1 retry ok wait=100ms"}, wantAt: 100 * time.Millisecond,
		},
		{
			name:      "connection refused",
			first:     func() sluice.Provider { return &fake{name: "f1", fail: failFirst(2, refused)} },
			wantModel: "f1", want: []string{"p1 upstream_unavailable", "p1 retry upstream_unavailable wait=100ms", "p1 retry ok wait=200ms"},
			wantAt: 300 * time.Millisecond,
		},
		{
			name: "first token timeout",
			first: func() sluice.Provider {
				return WithTimeouts(&fake{name: "f1", fail: failFirst(1, nil), ttft: 5 * time.Second}, Timeouts{FirstToken: time.Second, Total: time.Second})
			},
			wantModel: "m-p2", want: []string{"p1 upstream_timeout", "p1 retry upstream_timeout wait=100ms", "p1 retry upstream_timeout wait=200ms", "p2 ok"},
			wantAt: 3300 * time.Millisecond,
		},
		{
			name:     "400 is the client's: no retry, no fallback",
			first:    func() sluice.Provider { return sim.New(sim.Options{Fault: sim.Fault{Status: 400}}) },
			wantCode: sluice.CodeInvalidRequest, want: []string{"p1 invalid_request"},
		},
		{
			name:      "401 is not retried but falls back",
			first:     func() sluice.Provider { return sim.New(sim.Options{Fault: sim.Fault{Status: 401}}) },
			wantModel: "m-p2", want: []string{"p1 upstream_error", "p2 ok"},
		},
		{
			name:      "409 is retried",
			first:     func() sluice.Provider { return sim.New(sim.Options{Fault: sim.Fault{Status: 409, StatusFirst: 1}}) },
			wantModel: "m-p1", want: []string{"p1 upstream_error", "p1 retry ok wait=100ms"}, wantAt: 100 * time.Millisecond,
		},
		{
			name: "a decode failure is not retried",
			first: func() sluice.Provider {
				return &fake{name: "f1", fail: always(sluice.WrapError(sluice.CodeUpstreamError, errors.New("bad json")))}
			},
			wantModel: "m-p2", want: []string{"p1 upstream_error", "p2 ok"},
		},
	}
	for _, tt := range tests {
		for _, stream := range []bool{false, true} {
			name := tt.name
			if stream {
				name += "/stream"
			}
			t.Run(name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					r := mustNew(t, Options{Rand: half}, Route{Name: "m", Retry: Retry{Attempts: 3},
						Targets: targets(tt.first(), sim.New(sim.Options{}))})
					start := time.Now()
					res := do(t.Context(), r, "m", stream)
					if tt.wantCode != "" {
						if got := sluice.ErrorCode(res.err); got != tt.wantCode {
							t.Fatalf("code %q (%v), want %q", got, res.err, tt.wantCode)
						}
					} else if res.err != nil || res.model != tt.wantModel {
						t.Fatalf("model %q, err %v; want %q", res.model, res.err, tt.wantModel)
					}
					if diff := cmp.Diff(tt.want, res.attempts); diff != "" {
						t.Errorf("attempts (-want +got):\n%s", diff)
					}
					if got := time.Since(start); got != tt.wantAt {
						t.Errorf("took %v of fake time, want %v", got, tt.wantAt)
					}
				})
			})
		}
	}
}

// TestRetryNotAfterCancel checks that a call whose context ends is not
// retried, and that a cancellation during the backoff ends it at once.
func TestRetryNotAfterCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &fake{name: "f1", fail: always(upstream(503, 0))}
		r := mustNew(t, Options{Rand: half}, Route{Name: "m", Retry: Retry{Attempts: 5, BaseBackoff: time.Minute, MaxBackoff: time.Minute}, Targets: targets(p)})
		ctx, cancel := context.WithCancel(t.Context())
		go func() {
			time.Sleep(time.Second)
			cancel()
		}()
		start := time.Now()
		res := do(ctx, r, "m", false)
		if res.err == nil || time.Since(start) != time.Second {
			t.Errorf("err %v after %v, want the failure after 1s", res.err, time.Since(start))
		}
		if calls, _ := p.stats(); calls != 1 {
			t.Errorf("%d calls, want 1", calls)
		}
	})
}

// TestRetryAfter checks that an upstream's Retry-After is waited for, unless
// the wait would pass the context's deadline or MaxRetryAfter: then the next
// target is tried at once.
func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name       string
		retryAfter time.Duration
		deadline   time.Duration // 0: none
		want       []string
		wantAt     time.Duration
	}{
		{"honoured", 2 * time.Second, 10 * time.Second, []string{"p1 rate_limited", "p1 retry ok wait=2s"}, 2 * time.Second},
		{"no deadline", 2 * time.Second, 0, []string{"p1 rate_limited", "p1 retry ok wait=2s"}, 2 * time.Second},
		{"past the deadline", 2 * time.Second, time.Second, []string{"p1 rate_limited", "p2 ok"}, 0},
		{"longer than MaxRetryAfter", 20 * time.Second, 0, []string{"p1 rate_limited", "p2 ok"}, 0},
		{"shorter than the backoff", time.Millisecond, 0, []string{"p1 rate_limited", "p1 retry ok wait=100ms"}, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				first := sim.New(sim.Options{Fault: sim.Fault{Status: 429, RetryAfter: tt.retryAfter, StatusFirst: 1}})
				r := mustNew(t, Options{Rand: half}, Route{Name: "m", Retry: Retry{Attempts: 2},
					Targets: targets(first, sim.New(sim.Options{}))})
				ctx := t.Context()
				if tt.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.deadline)
					defer cancel()
				}
				start := time.Now()
				res := do(ctx, r, "m", true)
				if res.err != nil {
					t.Fatal(res.err)
				}
				if diff := cmp.Diff(tt.want, res.attempts); diff != "" {
					t.Errorf("attempts (-want +got):\n%s", diff)
				}
				if got := time.Since(start); got != tt.wantAt {
					t.Errorf("took %v, want %v", got, tt.wantAt)
				}
			})
		})
	}
}

// TestRetryBudget checks that a provider's retries stay within the budget
// (a share of its requests, with a minimum per window), that a refused
// retry moves on to the next target, and that the window forgets.
func TestRetryBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		down := &fake{name: "down", fail: always(upstream(503, 0))}
		backup := &fake{name: "backup"}
		r := mustNew(t, Options{Rand: func() float64 { return 0 }},
			Route{Name: "m", Retry: Retry{Attempts: 2, Budget: 0.5}, Targets: []Target{
				{ProviderName: "down", Provider: down, Model: "a"}, {ProviderName: "backup", Provider: backup, Model: "b"}}},
			// Another route of the same provider shares its budget.
			Route{Name: "other", Retry: Retry{Attempts: 2}, Targets: []Target{{ProviderName: "down", Provider: down, Model: "a"}}},
		)
		// The minimum: 10 retries per window, whatever the share.
		for i := range 10 {
			if res := do(t.Context(), r, "other", false); len(res.attempts) != 2 {
				t.Fatalf("call %d: attempts %v, want a retry", i, res.attempts)
			}
		}
		// 10 requests and 10 retries: over the minimum, each retry needs
		// two more requests at a share of 0.5.
		res := do(t.Context(), r, "m", false)
		if diff := cmp.Diff([]string{"down upstream_unavailable", "backup ok"}, res.attempts); diff != "" {
			t.Errorf("retry beyond the budget (-want +got):\n%s", diff)
		}
		// 11 requests: 11 retries need 22.
		retried := 0
		for range 20 {
			if res := do(t.Context(), r, "m", false); len(res.attempts) == 3 {
				retried++
			} else if len(res.attempts) != 2 || res.model != "backup" {
				t.Fatalf("attempts %v, model %q", res.attempts, res.model)
			}
		}
		// 31 requests allow 15 retries: 5 more.
		if retried != 5 {
			t.Errorf("%d retries in 20 calls, want 5", retried)
		}
		// The window forgets: the minimum is there again.
		time.Sleep(DefaultRetryWindow + time.Second)
		if res := do(t.Context(), r, "other", false); len(res.attempts) != 2 {
			t.Errorf("after the window, attempts %v, want a retry", res.attempts)
		}
	})
}

func TestBackoff(t *testing.T) {
	p := Retry{}.withDefaults()
	err := upstream(503, 0)
	for n, want := range map[int]time.Duration{1: 200 * time.Millisecond, 2: 400 * time.Millisecond, 5: 3200 * time.Millisecond, 6: 5 * time.Second, 60: 5 * time.Second} {
		if got := backoff(&p, n, err, func() float64 { return 0.999999999999 }); got > want || got < want*99/100 {
			t.Errorf("backoff(%d) = %v, want just under %v", n, got, want)
		}
		if got := backoff(&p, n, err, func() float64 { return 0 }); got != 0 {
			t.Errorf("full jitter: backoff(%d) = %v at 0, want 0", n, got)
		}
	}
	if got := backoff(&p, 1, upstream(429, 3*time.Second), half); got != 3*time.Second {
		t.Errorf("Retry-After: backoff = %v, want 3s", got)
	}
}

func TestRetryable(t *testing.T) {
	ctx := context.Background()
	done, cancel := context.WithCancel(ctx)
	cancel()
	for _, tt := range []struct {
		err  error
		ctx  context.Context
		want bool
	}{
		{upstream(408, 0), ctx, true}, {upstream(409, 0), ctx, true}, {upstream(429, 0), ctx, true},
		{upstream(500, 0), ctx, true}, {upstream(502, 0), ctx, true}, {upstream(503, 0), ctx, true},
		{upstream(504, 0), ctx, true}, {upstream(529, 0), ctx, true},
		{upstream(400, 0), ctx, false}, {upstream(401, 0), ctx, false}, {upstream(404, 0), ctx, false},
		{upstream(413, 0), ctx, false}, {upstream(422, 0), ctx, false}, {upstream(501, 0), ctx, false},
		{upstream(503, 0), done, false},
		{sluice.WrapError(sluice.CodeUpstreamTimeout, context.DeadlineExceeded), ctx, true},
		{sluice.WrapError(sluice.CodeUpstreamTimeout, context.Canceled), ctx, true}, // a target's own deadline
		{context.Canceled, ctx, false},
		{sluice.WrapError(sluice.CodeInternal, context.Canceled), ctx, false},
		{sluice.NewError(sluice.CodePromptTooLong, "x"), ctx, false},
		{sluice.NewError(sluice.CodeRateLimited, "x"), ctx, true},
	} {
		if got := retryable(tt.ctx, tt.err); got != tt.want {
			t.Errorf("retryable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
