package memory

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/store"
	"github.com/sluice-gw/sluice/store/storetest"
)

func TestLimiter(t *testing.T) {
	l := NewLimiter(LimiterOptions{})
	storetest.RunLimiter(t, func(testing.TB) store.Limiter { return l })
}

// fakeClock is a clock that moves only when told.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_780_000_000, 0)} }

// TestLimiterExact checks decisions to the microsecond, on a clock that
// stands still between steps.
func TestLimiterExact(t *testing.T) {
	ctx := context.Background()
	const us = time.Microsecond
	type step struct {
		advance time.Duration
		charge  int64 // Charge(charge) if take is -1
		take    int64
		want    store.Decision
	}
	for _, tc := range []struct {
		name  string
		limit store.Limit
		steps []step
	}{{
		name:  "ThirdOfASecond", // T = 333333.33µs, not a whole number
		limit: store.Limit{Rate: 3, Period: time.Second},
		steps: []step{
			{take: 1, want: store.Decision{Allowed: true, Remaining: 2, Reset: 333334 * us}},
			{take: 1, want: store.Decision{Allowed: true, Remaining: 1, Reset: 666667 * us}},
			{take: 1, want: store.Decision{Allowed: true, Remaining: 0, Reset: time.Second}},
			{take: 1, want: store.Decision{RetryAfter: 333334 * us, Reset: time.Second}},
			{take: 3, want: store.Decision{RetryAfter: time.Second, Reset: time.Second}},
			{advance: 300 * time.Millisecond, take: 1, want: store.Decision{RetryAfter: 33334 * us, Reset: 700 * time.Millisecond}},
			{advance: 34 * time.Millisecond, take: 1, want: store.Decision{Allowed: true, Reset: 999334 * us}},
			{advance: time.Second, take: 0, want: store.Decision{Allowed: true, Remaining: 3}},
		},
	}, {
		name:  "Tokens", // 90k a minute: T = 666.67µs
		limit: store.Limit{Rate: 90_000, Period: time.Minute, Burst: 9_000},
		steps: []step{
			{take: 9_000, want: store.Decision{Allowed: true, Reset: 6 * time.Second}},
			{take: 1, want: store.Decision{RetryAfter: 667 * us, Reset: 6 * time.Second}},
			{advance: time.Second, take: 0, want: store.Decision{Allowed: true, Remaining: 1500, Reset: 5 * time.Second}},
			{take: -1, charge: 3_000},
			{take: 0, want: store.Decision{RetryAfter: time.Second, Reset: 7 * time.Second}},
			{take: -1, charge: -4_500},
			{take: 0, want: store.Decision{Allowed: true, Remaining: 3000, Reset: 4 * time.Second}},
			{take: -1, charge: -1_000_000},
			{take: 9_000, want: store.Decision{Allowed: true, Reset: 6 * time.Second}},
		},
	}, {
		name:  "MoreThanBurst",
		limit: store.Limit{Rate: 10, Period: time.Second, Burst: 2},
		steps: []step{
			{take: 3, want: store.Decision{Remaining: 2}},
			{take: 1, want: store.Decision{Allowed: true, Remaining: 1, Reset: 100 * time.Millisecond}},
			{take: 3, want: store.Decision{Remaining: 1, Reset: 100 * time.Millisecond}},
			{take: -1, charge: 30},
			{take: 3, want: store.Decision{Reset: 3100 * time.Millisecond}},
			{take: 1, want: store.Decision{RetryAfter: 3 * time.Second, Reset: 3100 * time.Millisecond}},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newFakeClock()
			l := NewLimiter(LimiterOptions{Now: c.now})
			for i, s := range tc.steps {
				c.advance(s.advance)
				if s.take < 0 {
					if err := l.Charge(ctx, "k", tc.limit, s.charge); err != nil {
						t.Fatalf("step %d: Charge(%d): %v", i, s.charge, err)
					}
					continue
				}
				got, err := l.Take(ctx, "k", tc.limit, s.take)
				if err != nil {
					t.Fatalf("step %d: Take(%d): %v", i, s.take, err)
				}
				if got != s.want {
					t.Errorf("step %d: Take(%d) = %+v, want %+v", i, s.take, got, s.want)
				}
			}
		})
	}
}

// TestLimiterClockBack checks that a clock going back makes the limiter no
// more generous.
func TestLimiterClockBack(t *testing.T) {
	ctx := context.Background()
	c := newFakeClock()
	l := NewLimiter(LimiterOptions{Now: c.now})
	lim := store.Limit{Rate: 1, Period: time.Second, Burst: 2}
	if d, _ := l.Take(ctx, "k", lim, 2); !d.Allowed {
		t.Fatalf("Take(2) = %+v", d)
	}
	c.advance(-time.Hour)
	if d, _ := l.Take(ctx, "k", lim, 1); d.Allowed {
		t.Errorf("Take(1) after the clock went back = %+v, want refused", d)
	}
}

func (l *Limiter) len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.tats)
		s.mu.Unlock()
	}
	return n
}

// TestLimiterSweep checks that keys whose limit is full again are
// forgotten as new keys come, and live ones kept.
func TestLimiterSweep(t *testing.T) {
	ctx := context.Background()
	c := newFakeClock()
	l := NewLimiter(LimiterOptions{Now: c.now})
	lim := store.Limit{Rate: 1, Period: time.Second}
	const n = 10_000
	for round := range 5 {
		for i := range n {
			key := strconv.Itoa(round) + ":" + strconv.Itoa(i)
			if d, err := l.Take(ctx, key, lim, 1); err != nil || !d.Allowed {
				t.Fatalf("Take of %s = %+v, %v", key, d, err)
			}
		}
		c.advance(2 * time.Second)
	}
	// Each round's keys are full by the next: at most about twice a
	// round's keys are left.
	if got := l.len(); got > 2*n+limiterShards*limitMinSweep {
		t.Errorf("%d keys tracked after 5 rounds of %d", got, n)
	}
	// Refunding a key to full forgets it at once.
	if err := l.Charge(ctx, "r", lim, 1); err != nil {
		t.Fatal(err)
	}
	before := l.len()
	if err := l.Charge(ctx, "r", lim, -1); err != nil {
		t.Fatal(err)
	}
	if got := l.len(); got != before-1 {
		t.Errorf("%d keys after a refund to full, want %d", got, before-1)
	}
}

// TestLimiterBound checks that MaxKeys bounds the keys tracked even when
// none is full, and that the newest key is kept.
func TestLimiterBound(t *testing.T) {
	ctx := context.Background()
	l := NewLimiter(LimiterOptions{MaxKeys: 4 * limiterShards})
	lim := store.Limit{Rate: 1, Period: time.Hour}
	for i := range 5000 {
		key := strconv.Itoa(i)
		if d, err := l.Take(ctx, key, lim, 1); err != nil || !d.Allowed {
			t.Fatalf("Take of %s = %+v, %v", key, d, err)
		}
		if d, _ := l.Take(ctx, key, lim, 1); d.Allowed {
			t.Fatalf("second Take of %s allowed: the new key was not kept", key)
		}
		if got := l.len(); got > 4*limiterShards {
			t.Fatalf("%d keys tracked, bound %d", got, 4*limiterShards)
		}
	}
}

// BenchmarkLimiterTake measures a Take on the request path: many
// goroutines, each call on one of many keys.
func BenchmarkLimiterTake(b *testing.B) {
	l := NewLimiter(LimiterOptions{})
	lim := store.Limit{Rate: 1_000_000, Period: time.Second}
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "key:k_" + strconv.Itoa(i) + ":rpm"
	}
	var next atomic.Uint32
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		i := int(next.Add(7919))
		for pb.Next() {
			i++
			if _, err := l.Take(ctx, keys[i%len(keys)], lim, 1); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkLimiterTakeHotKey measures concurrent Takes on one key.
func BenchmarkLimiterTakeHotKey(b *testing.B) {
	l := NewLimiter(LimiterOptions{})
	lim := store.Limit{Rate: 1_000_000, Period: time.Second}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := l.Take(ctx, "key:k_1:rpm", lim, 1); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
