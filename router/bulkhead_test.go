package router

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-gw/sluice"
)

// TestBulkhead checks that a provider's concurrent calls are capped, a
// stream holding its place until it is closed; that a call waits in the
// queue up to QueueTimeout, then moves on to the next target with
// overloaded (and fails with it, Retry-After set, when there is none); and
// that the refusal neither counts against the breaker nor is retried.
func TestBulkhead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p1 := &fake{name: "f1"}
		ts := targets(p1, &fake{name: "f2"})
		r := mustNew(t, Options{Rand: half, Bulkheads: map[string]Bulkhead{"p1": {MaxConcurrent: 1, QueueTimeout: time.Second}}},
			Route{Name: "m", Targets: ts, Breaker: Breaker{Consecutive: 1}, Retry: Retry{Attempts: 3}},
			Route{Name: "solo", Targets: ts[:1]},
		)
		held, err := r.Stream(t.Context(), &sluice.Request{Model: "m"})
		if err != nil {
			t.Fatal(err)
		}

		start := time.Now()
		res := do(t.Context(), r, "m", false)
		if diff := cmp.Diff([]string{"p1 skipped overloaded wait=1s", "p2 ok"}, res.attempts); diff != "" {
			t.Errorf("full: attempts (-want +got):\n%s", diff)
		}
		if got := time.Since(start); got != time.Second {
			t.Errorf("waited %v, want the queue timeout", got)
		}
		if got := r.Breakers()[0]; got.Provider != "p1" || got.State != BreakerClosed {
			t.Errorf("breaker %+v, want p1 closed", got)
		}

		res = do(t.Context(), r, "solo", true)
		var e *sluice.Error
		if !errors.As(res.err, &e) || e.Code != sluice.CodeOverloaded || e.RetryAfter != BulkheadRetryAfter || !errors.Is(e, ErrBulkheadFull) {
			t.Errorf("err %v, want overloaded with Retry-After", res.err)
		}

		// A place that comes free in time is taken.
		go func() {
			time.Sleep(500 * time.Millisecond)
			held.Close()
		}()
		res = do(t.Context(), r, "solo", true)
		if diff := cmp.Diff([]string{"p1 ok wait=500ms"}, res.attempts); diff != "" {
			t.Errorf("queued: attempts (-want +got):\n%s", diff)
		}
		// Streams read to the end and Complete calls gave their place back.
		for _, stream := range []bool{false, true, false} {
			if res := do(t.Context(), r, "solo", stream); res.err != nil || len(res.attempts) != 1 {
				t.Errorf("attempts %v, err %v", res.attempts, res.err)
			}
		}

		// The caller's deadline ends the wait.
		held, err = r.Stream(t.Context(), &sluice.Request{Model: "solo"})
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		if res := do(ctx, r, "m", false); !errors.Is(res.err, context.DeadlineExceeded) || len(res.attempts) != 1 {
			t.Errorf("err %v, attempts %v; want the deadline, no fallback", res.err, res.attempts)
		}
		if n := p1.open.Load(); n != 1 {
			t.Errorf("%d streams open, want the one held", n)
		}
	})
}

func TestSemaphore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := make(semaphore, 2)
		for range 2 {
			if err := s.acquire(t.Context(), 0); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.acquire(t.Context(), 0); err != ErrBulkheadFull {
			t.Errorf("no wait: %v, want full", err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := s.acquire(ctx, time.Second); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled: %v", err)
		}
		start := time.Now()
		if err := s.acquire(t.Context(), time.Second); err != ErrBulkheadFull || time.Since(start) != time.Second {
			t.Errorf("timed out: %v after %v", err, time.Since(start))
		}
		s.release()
		if err := s.acquire(t.Context(), 0); err != nil {
			t.Errorf("after release: %v", err)
		}
	})
}
