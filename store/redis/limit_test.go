package redis_test

import (
	"context"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/store"
	"github.com/sluice-gw/sluice/store/redis"
	"github.com/sluice-gw/sluice/store/storetest"
)

func TestLimiter(t *testing.T) {
	// Every handle of one test is a new DB (its own pool), as another
	// instance has, on the keys of one prefix.
	prefix := ""
	storetest.RunLimiter(t, func(t testing.TB) store.Limiter {
		if prefix == "" {
			prefix = testPrefix(t)
		}
		return redis.NewLimiter(openDB(t, prefix), prefix)
	})
}

// TestLimiterTwoInstances hammers one key from two DBs (two gateway
// instances on one Redis) at far more than its rate for a few seconds, and
// checks that together they were allowed what the limit allows, within 5%.
func TestLimiterTwoInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for 3s")
	}
	prefix := testPrefix(t)
	instances := []*redis.Limiter{
		redis.NewLimiter(openDB(t, prefix), prefix),
		redis.NewLimiter(openDB(t, prefix), prefix),
	}
	lim := store.Limit{Rate: 100, Period: time.Second, Burst: 10}
	const key, perInstance, run = "two-instances", 8, 3 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var allowed, refused atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, len(instances)*perInstance)
	start := time.Now()
	deadline := start.Add(run)
	for _, l := range instances {
		for range perInstance {
			wg.Go(func() {
				for time.Now().Before(deadline) {
					d, err := l.Take(ctx, key, lim, 1)
					if err != nil {
						errs <- err
						cancel()
						return
					}
					if d.Allowed {
						allowed.Add(1)
					} else {
						refused.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := float64(lim.Burst) + elapsed.Seconds()*float64(lim.Rate)
	got := allowed.Load()
	t.Logf("%v: %d allowed, %d refused; the limit allows %.1f", elapsed, got, refused.Load(), want)
	if refused.Load() < got {
		// Requests came at less than twice the rate: the count says
		// little about the limiter.
		t.Errorf("only %d refused for %d allowed: the test did not press hard enough", refused.Load(), got)
	}
	if math.Abs(float64(got)-want) > 0.05*want || float64(got) > want+1 {
		t.Errorf("%d allowed in %v, want %.1f within 5%% (and at most %.0f)", got, elapsed, want, want+1)
	}
}

// TestLimiterLayout checks the key of a limit and its expiry, as the
// Limiter's documentation describes them.
func TestLimiterLayout(t *testing.T) {
	ctx := context.Background()
	prefix := testPrefix(t)
	l := redis.NewLimiter(openDB(t, prefix), prefix)
	c := rawClient(t)
	key := prefix + "limit:key:k_1:rpm"
	lim := store.Limit{Rate: 10, Period: time.Minute, Burst: 5}
	d, err := l.Take(ctx, "key:k_1:rpm", lim, 3)
	if err != nil || !d.Allowed {
		t.Fatalf("Take(3) = %+v, %v", d, err)
	}
	ttl, err := c.PTTL(ctx, key).Result()
	if err != nil || ttl < 17*time.Second || ttl > 18*time.Second {
		t.Errorf("PTTL %s = %v, %v; want about 18s (the Reset %v)", key, ttl, err, d.Reset)
	}
	s, err := c.Get(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	tat, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("TAT %q: %v", s, err)
	}
	now, err := c.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Duration(tat-float64(now.UnixMicro())) * time.Microsecond; left < 17*time.Second || left > 18*time.Second {
		t.Errorf("TAT %s is %v after the server's now, want about 18s", s, left)
	}
	// A refund to full deletes the key.
	if err := l.Charge(ctx, "key:k_1:rpm", lim, -3); err != nil {
		t.Fatal(err)
	}
	if n := c.Exists(ctx, key).Val(); n != 0 {
		t.Errorf("key %s exists after a refund to full", key)
	}
	// So does the passing of its TAT.
	short := store.Limit{Rate: 1, Period: 20 * time.Millisecond}
	if _, err := l.Take(ctx, "short", short, 1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.Exists(ctx, prefix+"limit:short").Val() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the key of a full limit did not expire")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLimiterCancelled checks that a cancelled context ends the call with
// an error.
func TestLimiterCancelled(t *testing.T) {
	prefix := testPrefix(t)
	l := redis.NewLimiter(openDB(t, prefix), prefix)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	lim := store.Limit{Rate: 1, Period: time.Second}
	if d, err := l.Take(ctx, "k", lim, 1); err == nil {
		t.Errorf("Take with a cancelled context = %+v, want an error", d)
	}
	if err := l.Charge(ctx, "k", lim, 1); err == nil {
		t.Error("Charge with a cancelled context succeeded")
	}
}

// BenchmarkLimiterTake measures one Take on Redis, the round trip a request
// pays per limit when limits are shared.
func BenchmarkLimiterTake(b *testing.B) {
	prefix := testPrefix(b)
	l := redis.NewLimiter(openDB(b, prefix), prefix)
	ctx := context.Background()
	lim := store.Limit{Rate: 1_000_000_000, Period: time.Second}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Take(ctx, "key:k_1:rpm", lim, 1); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLimiterTakeParallel measures Takes from many goroutines of one
// instance on a few keys.
func BenchmarkLimiterTakeParallel(b *testing.B) {
	prefix := testPrefix(b)
	l := redis.NewLimiter(openDB(b, prefix), prefix)
	lim := store.Limit{Rate: 1_000_000_000, Period: time.Second}
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		key := "key:k_" + strconv.FormatInt(next.Add(1)%16, 10) + ":rpm"
		for pb.Next() {
			if _, err := l.Take(ctx, key, lim, 1); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
