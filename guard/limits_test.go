package guard

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/store"
)

// TestLocalLimiter checks the GCRA semantics store/limit.go documents:
// bursts up to Burst, Remaining, RetryAfter, Reset, and Charge's debt and
// refunds (never beyond a full limit).
func TestLocalLimiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		l := newLocalLimiter(nil)
		lim := store.Limit{Rate: 60, Period: time.Minute} // Burst 0 means Rate
		for i := range 60 {
			d, _ := l.Take(ctx, "k", lim, 1)
			if !d.Allowed || d.Remaining != int64(59-i) {
				t.Fatalf("take %d: %+v", i, d)
			}
		}
		d, _ := l.Take(ctx, "k", lim, 1)
		if d.Allowed || d.RetryAfter != time.Second || d.Remaining != 0 || d.Reset != time.Minute {
			t.Fatalf("61st: %+v, want refused, retry 1s, reset 1m", d)
		}
		time.Sleep(time.Second)
		if d, _ := l.Take(ctx, "k", lim, 1); !d.Allowed {
			t.Fatalf("after 1s: %+v", d)
		}
		// Another key is independent.
		if d, _ := l.Take(ctx, "other", lim, 60); !d.Allowed || d.Remaining != 0 {
			t.Fatalf("other key: %+v", d)
		}
		// More than the burst is never allowed.
		if d, _ := l.Take(ctx, "big", lim, 61); d.Allowed {
			t.Fatalf("61 units at once: %+v", d)
		}

		// Charge: debt makes later requests wait; refunds stop at full.
		l.Charge(ctx, "debt", lim, 120) // two minutes of units
		d, _ = l.Take(ctx, "debt", lim, 1)
		if d.Allowed || d.RetryAfter != time.Minute+time.Second {
			t.Fatalf("in debt: %+v, want retry 1m1s", d)
		}
		l.Charge(ctx, "debt", lim, -1000)
		if d, _ := l.Take(ctx, "debt", lim, 60); !d.Allowed {
			t.Fatalf("after refund: %+v", d)
		}
		l.Charge(ctx, "debt", lim, -1000)
		if d, _ := l.Take(ctx, "debt", lim, 1); !d.Allowed || d.Remaining != 59 {
			t.Fatalf("refund beyond full: %+v, want 59 remaining", d)
		}

		// A custom burst.
		b := store.Limit{Rate: 10, Period: time.Second, Burst: 2}
		l.Take(ctx, "b", b, 2)
		if d, _ := l.Take(ctx, "b", b, 1); d.Allowed || d.RetryAfter != 100*time.Millisecond {
			t.Fatalf("burst 2: %+v", d)
		}
	})
}

func TestLocalLimiterSweeps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		l := newLocalLimiter(nil)
		lim := store.Limit{Rate: 1, Period: time.Second}
		for i := range 5000 {
			l.Take(ctx, string(rune('a'+i%26))+time.Duration(i).String(), lim, 1)
			if i%100 == 0 {
				time.Sleep(time.Second)
			}
		}
		l.mu.Lock()
		n := len(l.tat)
		l.mu.Unlock()
		if n > 2*localSweepMin {
			t.Errorf("%d keys kept, want few (full limits are swept)", n)
		}
	})
}

func rateErr(t *testing.T, err error) *sluice.Error {
	t.Helper()
	var e *sluice.Error
	if !errors.As(err, &e) || e.Code != sluice.CodeRateLimited || e.RetryAfter <= 0 {
		t.Fatalf("err = %v, want rate_limited with Retry-After", err)
	}
	return e
}

func TestReserveRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		l := NewLimits(nil, LimitsOptions{})
		who := Identity{KeyID: "k1", User: "u1", Tenant: "acme", IP: "10.0.0.1"}
		tier := Tier{RPM: 30} // bursts of 3
		for i := range 3 {
			r, h, err := l.Reserve(ctx, who, tier, Rate{}, 10, 10)
			if err != nil {
				t.Fatal(err)
			}
			r.Settle(ctx, 20)
			if h.LimitRequests != 30 || h.RemainingRequests != int64(2-i) || h.LimitTokens != 0 {
				t.Errorf("request %d: headers %+v", i, h)
			}
		}
		_, h, err := l.Reserve(ctx, who, tier, Rate{}, 10, 10)
		e := rateErr(t, err)
		if e.RetryAfter != 2*time.Second || h.RemainingRequests != 0 || h.LimitRequests != 30 {
			t.Errorf("refusal: retry %v, headers %+v", e.RetryAfter, h)
		}
		// Another key of the same tier is not limited by k1.
		if _, _, err := l.Reserve(ctx, Identity{KeyID: "k2"}, tier, Rate{}, 10, 10); err != nil {
			t.Errorf("k2: %v", err)
		}
		time.Sleep(2 * time.Second)
		if _, _, err := l.Reserve(ctx, who, tier, Rate{}, 10, 10); err != nil {
			t.Errorf("after the wait: %v", err)
		}
	})
}

func TestReserveTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		l := NewLimits(nil, LimitsOptions{})
		who := Identity{KeyID: "k1"}
		tier := Tier{TPM: 10000}

		// Reserve prompt + max output; settle with the real use.
		r, h, err := l.Reserve(ctx, who, tier, Rate{}, 1000, 4000)
		if err != nil {
			t.Fatal(err)
		}
		if h.LimitTokens != 10000 || h.RemainingTokens != 5000 {
			t.Errorf("after reserving 5000: %+v", h)
		}
		r.Settle(ctx, 1500) // gives 3500 back
		r.Settle(ctx, 0)    // a second settle does nothing
		_, h, err = l.Reserve(ctx, who, tier, Rate{}, 8000, 500)
		if err != nil || h.RemainingTokens != 0 {
			t.Fatalf("8500 after settling at 1500: %+v, %v", h, err)
		}
		// Refused: tokens are short.
		_, h, err = l.Reserve(ctx, who, tier, Rate{}, 100, 100)
		e := rateErr(t, err)
		if e.RetryAfter != 1200*time.Millisecond || h.LimitTokens != 10000 {
			t.Errorf("refusal: retry %v headers %+v", e.RetryAfter, h)
		}
	})
}

// TestReserveOverMinute: a request needing more tokens than a minute
// allows waits for a full limit, then its excess becomes debt.
func TestReserveOverMinute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		l := NewLimits(nil, LimitsOptions{})
		tier := Tier{TPM: 1000}
		r, _, err := l.Reserve(ctx, Identity{KeyID: "k"}, tier, Rate{}, 3000, 1000)
		if err != nil {
			t.Fatalf("a request larger than the minute on a full limit: %v", err)
		}
		r.Settle(ctx, 2500) // 1500 beyond the limit: 90s of debt
		_, _, err = l.Reserve(ctx, Identity{KeyID: "k"}, tier, Rate{}, 10, 0)
		if e := rateErr(t, err); e.RetryAfter != 90*time.Second+600*time.Millisecond {
			t.Errorf("in debt: retry %v, want 1m30.6s", e.RetryAfter)
		}
	})
}

// TestReserveGivesBack: when one limit refuses, the others get back what
// they gave.
func TestReserveGivesBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		l := NewLimits(nil, LimitsOptions{})
		tier := Tier{RPM: 100, TPM: 100000, UserRPM: 1}
		ip := Rate{RPM: 1000}
		u1 := Identity{KeyID: "k", User: "u1", Tenant: "acme", IP: "10.0.0.1"}
		if _, _, err := l.Reserve(ctx, u1, tier, ip, 100, 100); err != nil {
			t.Fatal(err)
		}
		// u1's second request is refused by the user limit...
		for range 5 {
			_, h, err := l.Reserve(ctx, u1, tier, ip, 100, 100)
			rateErr(t, err)
			if h.LimitRequests != 1 || h.RemainingRequests != 0 {
				t.Errorf("headers name the refusing limit: %+v", h)
			}
		}
		// ...and gave back the key's units it took: 99 requests and 99800
		// tokens are left for the key's other users.
		_, h, err := l.Reserve(ctx, Identity{KeyID: "k", User: "u2", Tenant: "acme"}, tier, ip, 100, 100)
		if err != nil {
			t.Fatal(err)
		}
		if h.RemainingRequests != 0 || h.LimitRequests != 1 {
			// The tightest limit is u2's own (1 per minute, now used).
			t.Errorf("headers %+v", h)
		}
		_, h, _ = l.Reserve(ctx, Identity{KeyID: "k"}, tier, Rate{}, 0, 0)
		// Bursts of requests are a tenth of the minute's: 10, of which
		// three are used.
		if h.RemainingRequests != 7 || h.RemainingTokens != 99600 {
			t.Errorf("the key has %d requests and %d tokens left, want 7 and 99600", h.RemainingRequests, h.RemainingTokens)
		}
		// Users are per tenant; the same user name in another tenant is
		// someone else.
		if _, _, err := l.Reserve(ctx, Identity{KeyID: "k", User: "u1", Tenant: "other"}, tier, ip, 1, 1); err != nil {
			t.Errorf("u1 of another tenant: %v", err)
		}
		// The address limit: one request so far came from 10.0.0.1 (u1's
		// refused ones gave back what they took).
		for range 999 {
			l.Reserve(ctx, Identity{IP: "10.0.0.1"}, Tier{}, ip, 0, 0)
		}
		if _, _, err := l.Reserve(ctx, Identity{IP: "10.0.0.1"}, Tier{}, ip, 0, 0); err == nil {
			t.Error("the address limit did not refuse")
		}
	})
}

func TestReserveNoLimits(t *testing.T) {
	l := NewLimits(&failingLimiter{}, LimitsOptions{})
	r, h, err := l.Reserve(context.Background(), Identity{KeyID: "k"}, Tier{}, Rate{}, 100, 100)
	if err != nil || h != (Headers{}) {
		t.Fatalf("%+v %v", h, err)
	}
	r.Settle(context.Background(), 5)
	var nilRes *Reservation
	nilRes.Settle(context.Background(), 1) // safe
}

func TestReserveLimiterDown(t *testing.T) {
	ctx := context.Background()
	tier := Tier{RPM: 1, TPM: 1000}
	who := Identity{KeyID: "k"}

	var reported atomic.Int32
	report := func(error) { reported.Add(1) }
	closed := NewLimits(&failingLimiter{}, LimitsOptions{Report: report})
	_, _, err := closed.Reserve(ctx, who, tier, Rate{}, 1, 1)
	var e *sluice.Error
	if !errors.As(err, &e) || e.Code != sluice.CodeOverloaded || e.RetryAfter != time.Second || e.Message != sluice.CodeOverloaded.DefaultMessage() {
		t.Fatalf("fail closed: %#v", err)
	}
	if reported.Load() != 1 {
		t.Errorf("reported %d errors, want 1", reported.Load())
	}

	reported.Store(0)
	down := &failingLimiter{}
	local := NewLimits(down, LimitsOptions{OnFailure: LimiterLocal, Report: report})
	r, h, err := local.Reserve(ctx, who, tier, Rate{}, 1, 1)
	if err != nil || h.LimitRequests != 1 {
		t.Fatalf("fall back to local: %+v %v", h, err)
	}
	r.Settle(ctx, 1) // settles on the local limiter: no error to report
	if reported.Load() != 1 {
		t.Errorf("reported %d errors, want 1", reported.Load())
	}
	// The local limiter enforces the limit.
	if _, _, err := local.Reserve(ctx, who, tier, Rate{}, 1, 1); sluice.ErrorCode(err) != sluice.CodeRateLimited {
		t.Errorf("second request on the local limiter: %v", err)
	}

	// A canceled request is not a limiter failure.
	reported.Store(0)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := local.Reserve(cctx, Identity{KeyID: "other"}, tier, Rate{}, 1, 1); err == nil || reported.Load() != 0 {
		t.Errorf("canceled: %v, %d reported", err, reported.Load())
	}
}

// flakyLimiter works for Take and fails for Charge.
type flakyLimiter struct{ store.Limiter }

func (flakyLimiter) Charge(context.Context, string, store.Limit, int64) error {
	return errors.New("connection reset")
}

func TestSettleReportsErrors(t *testing.T) {
	var got []error
	var mu sync.Mutex
	l := NewLimits(flakyLimiter{newLocalLimiter(nil)}, LimitsOptions{Report: func(err error) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, err)
	}})
	r, _, err := l.Reserve(context.Background(), Identity{KeyID: "k"}, Tier{TPM: 100}, Rate{}, 10, 10)
	if err != nil {
		t.Fatal(err)
	}
	r.Settle(context.Background(), 5)
	if len(got) != 1 {
		t.Errorf("reported %v, want one settle error", got)
	}
}

func TestHeadersSet(t *testing.T) {
	h := Headers{
		LimitRequests: 60, RemainingRequests: 59, ResetRequests: time.Second,
		LimitTokens: 150000, RemainingTokens: 149984, ResetTokens: 6*time.Millisecond + 400*time.Microsecond,
	}
	hdr := http.Header{}
	h.Set(hdr)
	want := http.Header{
		"X-Ratelimit-Limit-Requests":     {"60"},
		"X-Ratelimit-Remaining-Requests": {"59"},
		"X-Ratelimit-Reset-Requests":     {"1s"},
		"X-Ratelimit-Limit-Tokens":       {"150000"},
		"X-Ratelimit-Remaining-Tokens":   {"149984"},
		"X-Ratelimit-Reset-Tokens":       {"6ms"},
	}
	if diff := cmp.Diff(want, hdr); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	hdr = http.Header{}
	Headers{LimitTokens: 10, ResetTokens: 6*time.Minute + 30*time.Millisecond}.Set(hdr)
	if len(hdr) != 3 || hdr.Get("X-Ratelimit-Reset-Tokens") != "6m0s" {
		t.Errorf("tokens only: %v", hdr)
	}
}

func TestStreams(t *testing.T) {
	var s Streams
	r1, err := s.Acquire("k", 2)
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := s.Acquire("k", 2)
	if _, err := s.Acquire("k", 2); sluice.ErrorCode(err) != sluice.CodeRateLimited {
		t.Fatalf("third stream: %v", err)
	}
	if _, err := s.Acquire("other", 2); err != nil {
		t.Fatalf("another key: %v", err)
	}
	r1()
	r1() // idempotent
	if s.Open("k") != 1 {
		t.Fatalf("open %d, want 1", s.Open("k"))
	}
	r3, err := s.Acquire("k", 2)
	if err != nil {
		t.Fatal(err)
	}
	r2()
	r3()
	if s.Open("k") != 0 {
		t.Errorf("open %d after releases", s.Open("k"))
	}
	free, err := s.Acquire("k", 0)
	if err != nil {
		t.Fatal(err)
	}
	free()
}

// TestConcurrentLimits: many goroutines against one key admit exactly
// the limit, and streams never exceed theirs.
func TestConcurrentLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		l := NewLimits(nil, LimitsOptions{})
		tier := Tier{RPM: 1000, TPM: 1_000_000, MaxStreams: 3} // bursts of 100 requests
		var s Streams
		var admitted, open, peak atomic.Int64
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				for range 20 {
					r, _, err := l.Reserve(ctx, Identity{KeyID: "k", User: "u", Tenant: "t"}, tier, Rate{}, 10, 10)
					if err == nil {
						admitted.Add(1)
						r.Settle(ctx, 15)
					}
					release, err := s.Acquire("k", tier.MaxStreams)
					if err != nil {
						continue
					}
					if n := open.Add(1); n > peak.Load() {
						peak.Store(n)
					}
					open.Add(-1)
					release()
				}
			})
		}
		wg.Wait()
		// 320 attempts at one instant of the fake clock: the burst of 100.
		if n := admitted.Load(); n != 100 {
			t.Errorf("admitted %d, want about 100", n)
		}
		if peak.Load() > 3 {
			t.Errorf("%d streams open at once, limit 3", peak.Load())
		}
	})
}
