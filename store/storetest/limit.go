package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/store"
)

// RunLimiter runs the Limiter contract against the limiters open returns.
// Each call of open may return a new handle on the same backend; the keys
// of one test are told apart by random ids.
//
// The suite runs in real time, as it must on a shared backend whose clock
// cannot be set. Values are checked against long periods (a unit every six
// seconds), where the few milliseconds a test takes move them by a known
// bound; refill is checked with short periods, by waiting the time the
// limiter says and then taking. No test asserts how fast anything is.
//
// Beyond store.Limiter's documentation, the contract is that of the
// generic cell rate algorithm as store/memory.Limiter describes it:
// Remaining is how many units one Take could have after the decision, Reset
// how long until the limit is full, RetryAfter how long until the refused
// Take would be allowed; Take(0) takes nothing and is refused only in debt;
// a Take of more than the burst is refused with RetryAfter zero and changes
// nothing; a negative n is an error for Take, a refund for Charge.
func RunLimiter(t *testing.T, open func(t testing.TB) store.Limiter) {
	ctx := context.Background()
	// slow emits a unit every 6s: tests take far less than that.
	const T = 6 * time.Second
	slow := store.Limit{Rate: 10, Period: time.Minute, Burst: 5}

	// check compares d with want, knowing that elapsed has passed since the
	// limiter's state was as the test computed it.
	type clock struct{ start time.Time }
	begin := func() clock { return clock{time.Now()} }
	check := func(t *testing.T, c clock, what string, got store.Decision, allowed bool, remaining int64, retry, reset time.Duration) {
		t.Helper()
		elapsed := time.Since(c.start)
		if got.Allowed != allowed || got.Remaining != remaining {
			t.Errorf("%s: Allowed %v, Remaining %d; want %v, %d (%+v)", what, got.Allowed, got.Remaining, allowed, remaining, got)
		}
		near := func(name string, got, want time.Duration) {
			t.Helper()
			// The state drained for at most elapsed since the test's
			// reckoning; values are rounded up to microseconds.
			lo, hi := want-elapsed-time.Millisecond, want+time.Millisecond
			if want == 0 {
				lo, hi = 0, 0
			}
			if got < lo || got > hi {
				t.Errorf("%s: %s = %v, want %v (within [%v, %v])", what, name, got, want, lo, hi)
			}
		}
		near("RetryAfter", got.RetryAfter, retry)
		near("Reset", got.Reset, reset)
	}
	take := func(t *testing.T, l store.Limiter, key string, lim store.Limit, n int64) store.Decision {
		t.Helper()
		d, err := l.Take(ctx, key, lim, n)
		if err != nil {
			t.Fatalf("Take(%d): %v", n, err)
		}
		return d
	}
	charge := func(t *testing.T, l store.Limiter, key string, lim store.Limit, n int64) {
		t.Helper()
		if err := l.Charge(ctx, key, lim, n); err != nil {
			t.Fatalf("Charge(%d): %v", n, err)
		}
	}

	t.Run("Burst", func(t *testing.T) {
		l, key := open(t), newID()
		c := begin()
		for i := int64(1); i <= 5; i++ {
			check(t, c, "Take(1)", take(t, l, key, slow, 1), true, 5-i, 0, time.Duration(i)*T)
		}
		check(t, c, "Take(1) past the burst", take(t, l, key, slow, 1), false, 0, T, 5*T)
		check(t, c, "Take(3) past the burst", take(t, l, key, slow, 3), false, 0, 3*T, 5*T)
	})

	t.Run("TakeMany", func(t *testing.T) {
		l, key := open(t), newID()
		c := begin()
		check(t, c, "Take(4)", take(t, l, key, slow, 4), true, 1, 0, 4*T)
		check(t, c, "Take(2)", take(t, l, key, slow, 2), false, 1, T, 4*T)
		check(t, c, "Take(1)", take(t, l, key, slow, 1), true, 0, 0, 5*T)
	})

	t.Run("BurstDefaultsToRate", func(t *testing.T) {
		l, key := open(t), newID()
		lim := store.Limit{Rate: 3, Period: time.Minute}
		c := begin()
		for i := int64(1); i <= 3; i++ {
			check(t, c, "Take(1)", take(t, l, key, lim, 1), true, 3-i, 0, time.Duration(i)*20*time.Second)
		}
		check(t, c, "Take(1) past the burst", take(t, l, key, lim, 1), false, 0, 20*time.Second, time.Minute)
	})

	t.Run("FractionalInterval", func(t *testing.T) {
		// Intervals that are no whole number of microseconds still give
		// exactly the burst, in one Take or many.
		l := open(t)
		lim := store.Limit{Rate: 7, Period: time.Minute} // T = 8.571428...s
		T := time.Minute / 7
		key := newID()
		c := begin()
		for i := int64(1); i <= 7; i++ {
			check(t, c, "Take(1)", take(t, l, key, lim, 1), true, 7-i, 0, time.Duration(i)*T+time.Microsecond)
		}
		check(t, c, "Take(1) past the burst", take(t, l, key, lim, 1), false, 0, T+time.Microsecond, time.Minute)

		// A unit every 666.67µs: Remaining may grow by the units the
		// test's own time gave back.
		tokens := store.Limit{Rate: 90_000, Period: time.Minute, Burst: 9_000}
		key = newID()
		start := time.Now()
		for i := int64(1); i <= 3; i++ {
			d := take(t, l, key, tokens, 3_000)
			lo := 9_000 - 3_000*i
			hi := lo + int64(time.Since(start)/(time.Minute/90_000)) + 1
			if !d.Allowed || d.Remaining < lo || d.Remaining > hi || d.Reset > time.Duration(i)*2*time.Second+time.Millisecond {
				t.Errorf("Take(3000) #%d = %+v, want allowed, Remaining in [%d, %d], Reset at most %v", i, d, lo, hi, time.Duration(i)*2*time.Second)
			}
		}
		if d := take(t, l, key, tokens, 1_000); d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > 666_667*time.Microsecond {
			t.Errorf("Take(1000) past the burst = %+v, want refused with RetryAfter in (0, 666.667ms]", d)
		}
	})

	t.Run("MoreThanBurst", func(t *testing.T) {
		l, key := open(t), newID()
		c := begin()
		check(t, c, "Take(6) of a fresh key", take(t, l, key, slow, 6), false, 5, 0, 0)
		check(t, c, "Take(2)", take(t, l, key, slow, 2), true, 3, 0, 2*T)
		check(t, c, "Take(6) after Take(2)", take(t, l, key, slow, 6), false, 3, 0, 2*T)
		check(t, c, "Take(3)", take(t, l, key, slow, 3), true, 0, 0, 5*T)
	})

	t.Run("TakeZero", func(t *testing.T) {
		l, key := open(t), newID()
		c := begin()
		check(t, c, "Take(0) of a fresh key", take(t, l, key, slow, 0), true, 5, 0, 0)
		check(t, c, "Take(0) again", take(t, l, key, slow, 0), true, 5, 0, 0)
		check(t, c, "Take(5)", take(t, l, key, slow, 5), true, 0, 0, 5*T)
		check(t, c, "Take(0) of an empty limit", take(t, l, key, slow, 0), true, 0, 0, 5*T)
		charge(t, l, key, slow, 2)
		check(t, c, "Take(0) in debt", take(t, l, key, slow, 0), false, 0, 2*T, 7*T)
	})

	t.Run("Refill", func(t *testing.T) {
		// A unit every 10ms.
		l, key := open(t), newID()
		fast := store.Limit{Rate: 10, Period: 100 * time.Millisecond, Burst: 10}
		d := take(t, l, key, fast, 10)
		if !d.Allowed || d.Remaining != 0 {
			t.Fatalf("Take(10) of a fresh key = %+v, want allowed with 0 remaining", d)
		}
		// Take until refused; time passing may let a few more through.
		for i := 0; ; i++ {
			if i == 1000 {
				t.Fatal("1000 Takes of a 10-per-100ms limit were all allowed")
			}
			if d = take(t, l, key, fast, 1); !d.Allowed {
				break
			}
		}
		if d.RetryAfter <= 0 || d.RetryAfter > 10*time.Millisecond+time.Millisecond {
			t.Errorf("refused Take(1): RetryAfter = %v, want in (0, 10ms]", d.RetryAfter)
		}
		time.Sleep(d.RetryAfter + 2*time.Millisecond)
		if d = take(t, l, key, fast, 1); !d.Allowed {
			t.Fatalf("Take(1) after waiting RetryAfter was refused: %+v", d)
		}
		if d.Reset <= 0 || d.Reset > 100*time.Millisecond+time.Millisecond {
			t.Errorf("Reset = %v, want in (0, 100ms]", d.Reset)
		}
		time.Sleep(d.Reset + 2*time.Millisecond)
		if d = take(t, l, key, fast, 0); !d.Allowed || d.Remaining != 10 || d.Reset != 0 {
			t.Errorf("Take(0) after waiting Reset = %+v, want a full limit", d)
		}
		if d = take(t, l, key, fast, 10); !d.Allowed {
			t.Errorf("Take(10) after waiting Reset was refused: %+v", d)
		}
	})

	t.Run("ChargeDebt", func(t *testing.T) {
		l, key := open(t), newID()
		c := begin()
		charge(t, l, key, slow, 20)
		// 20 units taken of a burst of 5: a unit is available again
		// after 16 intervals.
		check(t, c, "Take(1) in debt", take(t, l, key, slow, 1), false, 0, 16*T, 20*T)
		charge(t, l, key, slow, 1)
		check(t, c, "Take(1) in more debt", take(t, l, key, slow, 1), false, 0, 17*T, 21*T)
	})

	t.Run("ChargeRefund", func(t *testing.T) {
		l, key := open(t), newID()
		c := begin()
		check(t, c, "Take(5)", take(t, l, key, slow, 5), true, 0, 0, 5*T)
		charge(t, l, key, slow, -3)
		check(t, c, "Take(0) after a refund of 3", take(t, l, key, slow, 0), true, 3, 0, 2*T)
		charge(t, l, key, slow, -100)
		check(t, c, "Take(0) after a refund of 100", take(t, l, key, slow, 0), true, 5, 0, 0)
		// The refund went no further than a full limit.
		check(t, c, "Take(5) after refunds", take(t, l, key, slow, 5), true, 0, 0, 5*T)
		check(t, c, "Take(1) after refunds", take(t, l, key, slow, 1), false, 0, T, 5*T)
	})

	t.Run("ChargeRefundFresh", func(t *testing.T) {
		l, key := open(t), newID()
		c := begin()
		charge(t, l, key, slow, -5)
		check(t, c, "Take(0) after refunding a full limit", take(t, l, key, slow, 0), true, 5, 0, 0)
		check(t, c, "Take(5)", take(t, l, key, slow, 5), true, 0, 0, 5*T)
		check(t, c, "Take(1)", take(t, l, key, slow, 1), false, 0, T, 5*T)
	})

	t.Run("ChargeSettles", func(t *testing.T) {
		// Reserve at admission, then settle with the real usage: more
		// (debt) or less (refund) than reserved.
		l, key := open(t), newID()
		lim := store.Limit{Rate: 100, Period: time.Minute, Burst: 100} // 0.6s a unit
		const U = 600 * time.Millisecond
		c := begin()
		check(t, c, "reserve 30", take(t, l, key, lim, 30), true, 70, 0, 30*U)
		charge(t, l, key, lim, 50) // used 80
		check(t, c, "reserve 30 more", take(t, l, key, lim, 30), false, 20, 10*U, 80*U)
		charge(t, l, key, lim, -60) // another call used 20 of 80 reserved
		check(t, c, "after settling", take(t, l, key, lim, 0), true, 80, 0, 20*U)
		charge(t, l, key, lim, 0)
		check(t, c, "after Charge(0)", take(t, l, key, lim, 0), true, 80, 0, 20*U)
	})

	t.Run("Keys", func(t *testing.T) {
		l := open(t)
		a, b := newID(), newID()
		c := begin()
		check(t, c, "Take(5) of a", take(t, l, a, slow, 5), true, 0, 0, 5*T)
		charge(t, l, a, slow, 10)
		check(t, c, "Take(1) of b", take(t, l, b, slow, 1), true, 4, 0, T)
		check(t, c, "Take(0) of a", take(t, l, a, slow, 0), false, 0, 10*T, 15*T)
	})

	t.Run("SharedBackend", func(t *testing.T) {
		// Two handles on one backend share their limits.
		l1, key := open(t), newID()
		l2 := open(t)
		c := begin()
		check(t, c, "Take(3) through one", take(t, l1, key, slow, 3), true, 2, 0, 3*T)
		check(t, c, "Take(3) through another", take(t, l2, key, slow, 3), false, 2, T, 3*T)
	})

	t.Run("Invalid", func(t *testing.T) {
		l, key := open(t), newID()
		for _, lim := range []store.Limit{
			{Rate: 0, Period: time.Second},
			{Rate: -1, Period: time.Second},
			{Rate: 1, Period: 0},
			{Rate: 1, Period: -time.Second},
			{Rate: 1, Period: time.Second, Burst: -1},
			{Rate: 1, Period: 1 << 62, Burst: 1 << 40}, // refills in ages
		} {
			if d, err := l.Take(ctx, key, lim, 1); err == nil {
				t.Errorf("Take with limit %+v = %+v, want an error", lim, d)
			}
			if err := l.Charge(ctx, key, lim, 1); err == nil {
				t.Errorf("Charge with limit %+v succeeded", lim)
			}
		}
		if d, err := l.Take(ctx, key, slow, -1); err == nil {
			t.Errorf("Take(-1) = %+v, want an error", d)
		}
		c := begin()
		check(t, c, "Take(0) after the errors", take(t, l, key, slow, 0), true, 5, 0, 0)
	})

	t.Run("Concurrent", func(t *testing.T) {
		// Many goroutines at once never get more than the limit allows.
		l, key := open(t), newID()
		lim := store.Limit{Rate: 100, Period: time.Second, Burst: 10}
		const goroutines, takes = 8, 100
		var allowed atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, goroutines)
		start := time.Now()
		for range goroutines {
			wg.Go(func() {
				for range takes {
					d, err := l.Take(ctx, key, lim, 1)
					if err != nil {
						errs <- err
						return
					}
					if d.Allowed {
						allowed.Add(1)
						if d.RetryAfter != 0 {
							errs <- fmt.Errorf("allowed with RetryAfter %v", d.RetryAfter)
							return
						}
					}
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		most := lim.Burst + int64(elapsed.Seconds()*float64(lim.Rate)) + 1
		if got := allowed.Load(); got < lim.Burst || got > most {
			t.Errorf("%d×%d concurrent Takes in %v: %d allowed, want in [%d, %d]", goroutines, takes, elapsed, got, lim.Burst, most)
		}
	})
}
