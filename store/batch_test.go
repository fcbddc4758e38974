package store_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-gw/sluice/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errLedgerDown = errors.New("ledger down")

// fakeLedger records the rows written. Its fail func, if set, is asked
// before each write (numbered from 1) and may refuse it; a refused write
// stores nothing.
type fakeLedger struct {
	mu      sync.Mutex
	fail    func(ctx context.Context, write int, rows []store.LedgerRow) error
	writes  int
	at      []time.Time // when each write was tried
	batches []int       // sizes of the writes that succeeded
	rows    []store.LedgerRow
}

func (f *fakeLedger) Write(ctx context.Context, rows []store.LedgerRow) error {
	f.mu.Lock()
	f.writes++
	n, fail := f.writes, f.fail
	f.at = append(f.at, time.Now())
	f.mu.Unlock()
	if fail != nil {
		if err := fail(ctx, n, rows); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rows = append(f.rows, rows...)
	f.batches = append(f.batches, len(rows))
	return nil
}

func (f *fakeLedger) Usage(context.Context, store.UsageQuery) ([]store.UsageTotal, error) {
	return nil, nil
}

func (f *fakeLedger) Spend(context.Context, string, string, time.Time) (float64, error) {
	return 0, nil
}

func (f *fakeLedger) setFail(fail func(ctx context.Context, write int, rows []store.LedgerRow) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = fail
}

// ids returns the request ids of the rows written, in order.
func (f *fakeLedger) ids() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for _, r := range f.rows {
		ids = append(ids, r.RequestID)
	}
	return strings.Join(ids, ",")
}

func (f *fakeLedger) sizes() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprint(f.batches)
}

func row(i int) store.LedgerRow {
	return store.LedgerRow{RequestID: strconv.Itoa(i), KeyID: "k", InputTokens: int64(i)}
}

// idRange returns "from,...,to-1".
func idRange(from, to int) string {
	var ids []string
	for i := from; i < to; i++ {
		ids = append(ids, strconv.Itoa(i))
	}
	return strings.Join(ids, ",")
}

// dropCounter counts the rows reported to OnDrop.
type dropCounter struct{ n atomic.Int64 }

func (d *dropCounter) add(n int) { d.n.Add(int64(n)) }

func mustClose(t *testing.T, w *store.LedgerWriter) {
	t.Helper()
	if err := w.Close(context.Background()); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestLedgerWriterInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &fakeLedger{}
		w := store.NewLedgerWriter(l, store.LedgerWriterOptions{MaxBatch: 10})
		defer mustClose(t, w)
		for i := range 3 {
			w.Add(row(i))
		}
		synctest.Wait()
		if got := l.ids(); got != "" {
			t.Fatalf("written before the interval: %q", got)
		}
		time.Sleep(store.DefaultFlushInterval)
		synctest.Wait()
		if got, want := l.ids(), idRange(0, 3); got != want {
			t.Errorf("written after the interval: %q, want %q", got, want)
		}
		if got := l.sizes(); got != "[3]" {
			t.Errorf("batches %s, want [3]", got)
		}
	})
}

func TestLedgerWriterFullBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &fakeLedger{}
		w := store.NewLedgerWriter(l, store.LedgerWriterOptions{MaxBatch: 10, FlushInterval: time.Hour})
		defer mustClose(t, w)
		for i := range 25 {
			w.Add(row(i))
		}
		synctest.Wait() // no time passes: full batches go at once
		if got, want := l.ids(), idRange(0, 20); got != want {
			t.Errorf("written = %q, want %q", got, want)
		}
		if got := l.sizes(); got != "[10 10]" {
			t.Errorf("batches %s, want [10 10]", got)
		}
		if got := w.Pending(); got != 5 {
			t.Errorf("Pending = %d, want 5", got)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if got, want := l.ids(), idRange(0, 25); got != want {
			t.Errorf("written after the interval = %q, want %q", got, want)
		}
	})
}

func TestLedgerWriterRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &fakeLedger{}
		l.setFail(func(_ context.Context, n int, _ []store.LedgerRow) error {
			if n <= 4 {
				return errLedgerDown
			}
			return nil
		})
		var mu sync.Mutex
		var failed []int
		w := store.NewLedgerWriter(l, store.LedgerWriterOptions{
			MaxBatch: 10, MinBackoff: time.Second, MaxBackoff: 4 * time.Second,
			OnError: func(err error, rows int) {
				if !errors.Is(err, errLedgerDown) {
					t.Errorf("OnError(%v)", err)
				}
				mu.Lock()
				failed = append(failed, rows)
				mu.Unlock()
			},
		})
		defer mustClose(t, w)
		for i := range 5 {
			w.Add(row(i))
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if got, want := l.ids(), idRange(0, 5); got != want {
			t.Errorf("written = %q, want %q (each once, in order)", got, want)
		}
		mu.Lock()
		if fmt.Sprint(failed) != "[5 5 5 5]" {
			t.Errorf("OnError told of %v rows, want [5 5 5 5]", failed)
		}
		mu.Unlock()
		// The waits between tries double from MinBackoff to MaxBackoff,
		// less up to half at random.
		l.mu.Lock()
		defer l.mu.Unlock()
		for i, max := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
			if gap := l.at[i+1].Sub(l.at[i]); gap < max/2 || gap > max {
				t.Errorf("wait after failure %d = %v, want in [%v, %v]", i+1, gap, max/2, max)
			}
		}
	})
}

// TestLedgerWriterBound checks that while the ledger fails, the newest
// MaxPending rows are kept and the older ones dropped and reported.
func TestLedgerWriterBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &fakeLedger{}
		var down atomic.Bool
		down.Store(true)
		l.setFail(func(context.Context, int, []store.LedgerRow) error {
			if down.Load() {
				return errLedgerDown
			}
			return nil
		})
		var drops dropCounter
		w := store.NewLedgerWriter(l, store.LedgerWriterOptions{
			MaxBatch: 10, MaxPending: 100, OnDrop: drops.add, MaxBackoff: time.Second,
		})
		defer mustClose(t, w)
		for i := range 150 {
			w.Add(row(i))
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got := drops.n.Load(); got != 50 {
			t.Errorf("dropped %d rows, want 50", got)
		}
		if got := w.Pending(); got != 100 {
			t.Errorf("Pending = %d, want 100", got)
		}
		down.Store(false)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got, want := l.ids(), idRange(50, 150); got != want {
			t.Errorf("written = %q,\nwant %q", got, want)
		}
	})
}

// TestLedgerWriterBoundInFlight checks that rows added while a write is
// in flight count against the bound when that write fails: the failed
// batch, being oldest, goes first.
func TestLedgerWriterBoundInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &fakeLedger{}
		release := make(chan error)
		l.setFail(func(_ context.Context, n int, _ []store.LedgerRow) error {
			if n == 1 {
				return <-release
			}
			return nil
		})
		var drops dropCounter
		w := store.NewLedgerWriter(l, store.LedgerWriterOptions{MaxBatch: 10, MaxPending: 20, OnDrop: drops.add})
		defer mustClose(t, w)
		for i := range 10 {
			w.Add(row(i))
		}
		synctest.Wait() // the first batch is in flight
		for i := 10; i < 25; i++ {
			w.Add(row(i))
		}
		release <- errLedgerDown
		synctest.Wait()
		// 10 back + 15 new = 25 > 20: rows 0-4 go.
		if got := drops.n.Load(); got != 5 {
			t.Errorf("dropped %d rows, want 5", got)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if got, want := l.ids(), idRange(5, 25); got != want {
			t.Errorf("written = %q,\nwant %q", got, want)
		}
	})
}

func TestLedgerWriterFlush(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		l := &fakeLedger{}
		var down atomic.Bool
		l.setFail(func(context.Context, int, []store.LedgerRow) error {
			if down.Load() {
				return errLedgerDown
			}
			return nil
		})
		w := store.NewLedgerWriter(l, store.LedgerWriterOptions{MaxBatch: 4, FlushInterval: time.Hour})
		defer mustClose(t, w)
		for i := range 3 {
			w.Add(row(i))
		}
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if got, want := l.ids(), idRange(0, 3); got != want {
			t.Errorf("written after Flush = %q, want %q", got, want)
		}
		down.Store(true)
		w.Add(row(3))
		if err := w.Flush(ctx); !errors.Is(err, errLedgerDown) {
			t.Errorf("Flush of a failing ledger: err = %v, want %v", err, errLedgerDown)
		}
		if got := w.Pending(); got != 1 {
			t.Errorf("Pending after a failed Flush = %d, want 1 (kept)", got)
		}
		down.Store(false)
		for i := 4; i < 10; i++ {
			w.Add(row(i))
		}
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if got, want := l.ids(), idRange(0, 10); got != want {
			t.Errorf("written after Flush = %q, want %q", got, want)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		w.Add(row(10))
		if err := w.Flush(cctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Flush with a cancelled context: err = %v", err)
		}
	})
}

func TestLedgerWriterClose(t *testing.T) {
	t.Run("WritesAll", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := &fakeLedger{}
			l.setFail(func(_ context.Context, n int, _ []store.LedgerRow) error {
				if n <= 2 {
					return errLedgerDown
				}
				return nil
			})
			w := store.NewLedgerWriter(l, store.LedgerWriterOptions{MaxBatch: 10, FlushInterval: time.Hour})
			for i := range 35 {
				w.Add(row(i))
			}
			if err := w.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got, want := l.ids(), idRange(0, 35); got != want {
				t.Errorf("written = %q,\nwant %q", got, want)
			}
			// Idempotent.
			if err := w.Close(context.Background()); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	})
	t.Run("GivesUp", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := &fakeLedger{}
			l.setFail(func(context.Context, int, []store.LedgerRow) error { return errLedgerDown })
			var drops dropCounter
			w := store.NewLedgerWriter(l, store.LedgerWriterOptions{MaxBatch: 10, OnDrop: drops.add})
			for i := range 15 {
				w.Add(row(i))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := w.Close(ctx)
			if !errors.Is(err, errLedgerDown) || !strings.Contains(err.Error(), "15 rows not written") {
				t.Errorf("Close of a failing ledger: err = %v", err)
			}
			if got := drops.n.Load(); got != 15 {
				t.Errorf("dropped %d rows, want 15", got)
			}
			if err2 := w.Close(context.Background()); err2 == nil || err2.Error() != err.Error() {
				t.Errorf("second Close: %v, want the first's error", err2)
			}
			w.Add(row(99))
			if got := drops.n.Load(); got != 16 {
				t.Errorf("a row added after Close: dropped %d, want 16", got)
			}
		})
	})
	t.Run("CancelsWriteInFlight", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := &fakeLedger{}
			l.setFail(func(ctx context.Context, _ int, _ []store.LedgerRow) error {
				<-ctx.Done() // a ledger that hangs until its context ends
				return ctx.Err()
			})
			var errs atomic.Int32
			w := store.NewLedgerWriter(l, store.LedgerWriterOptions{
				MaxBatch: 5, WriteTimeout: time.Hour,
				OnError: func(error, int) { errs.Add(1) },
			})
			for i := range 5 {
				w.Add(row(i))
			}
			synctest.Wait() // the batch is in flight
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			start := time.Now()
			err := w.Close(ctx)
			if err == nil || !strings.Contains(err.Error(), "5 rows not written") {
				t.Errorf("Close: err = %v", err)
			}
			if d := time.Since(start); d != time.Second {
				t.Errorf("Close took %v, want its context's 1s", d)
			}
			if n := errs.Load(); n != 0 {
				t.Errorf("OnError called %d times for writes cancelled by Close", n)
			}
		})
	})
}

// TestLedgerWriterConcurrent adds rows from many goroutines, with Flushes
// among them, to a ledger that fails at random; every row is written once.
func TestLedgerWriterConcurrent(t *testing.T) {
	l := &fakeLedger{}
	var rmu sync.Mutex
	r := rand.New(rand.NewPCG(1, 2))
	l.setFail(func(context.Context, int, []store.LedgerRow) error {
		rmu.Lock()
		defer rmu.Unlock()
		if r.IntN(3) == 0 {
			return errLedgerDown
		}
		return nil
	})
	var drops dropCounter
	w := store.NewLedgerWriter(l, store.LedgerWriterOptions{
		MaxBatch: 64, FlushInterval: time.Millisecond, MinBackoff: time.Millisecond,
		MaxBackoff: 5 * time.Millisecond, OnDrop: drops.add,
	})
	const adders, perAdder = 8, 2000
	var wg sync.WaitGroup
	for a := range adders {
		wg.Go(func() {
			for i := range perAdder {
				w.Add(store.LedgerRow{RequestID: fmt.Sprintf("%d-%d", a, i)})
				if i%500 == 0 {
					// A Flush may fail with the ledger; the rows stay.
					_ = w.Flush(context.Background())
				}
			}
		})
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := drops.n.Load(); n != 0 {
		t.Errorf("%d rows dropped", n)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[string]int{}
	for _, r := range l.rows {
		seen[r.RequestID]++
	}
	if len(seen) != adders*perAdder || len(l.rows) != adders*perAdder {
		t.Errorf("%d rows written, %d distinct; want %d", len(l.rows), len(seen), adders*perAdder)
	}
	for _, b := range l.batches {
		if b > 64 {
			t.Errorf("a batch of %d rows, over MaxBatch", b)
		}
	}
}

// BenchmarkLedgerWriterAdd measures Add, which every request calls, with
// the batches written as they fill, as when the ledger keeps up: the cost
// per row includes a share of copying the batch out.
func BenchmarkLedgerWriterAdd(b *testing.B) {
	ctx := context.Background()
	w := store.NewLedgerWriter(discard{}, store.LedgerWriterOptions{FlushInterval: time.Hour})
	defer w.Close(ctx)
	r := store.LedgerRow{
		Time: time.Now(), RequestID: "req_123", KeyID: "k_1", Tenant: "acme", Tier: "pro", Route: "gpt-4o",
		Provider: "openai", UpstreamModel: "gpt-4o-2024-08-06", InputTokens: 1200, OutputTokens: 350,
		CostUSD: 0.0042, Latency: 1800 * time.Millisecond, Status: 200, Attempts: 1,
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		w.Add(r)
		if n++; n == store.DefaultMaxBatch {
			n = 0
			if err := w.Flush(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkLedgerWriterAddParallel measures Add from many goroutines at
// once, as fast as they can: the writer's goroutine falls behind, the
// queue grows to MaxPending and then drops rows, so this is the cost of
// Add when the ledger is swamped.
func BenchmarkLedgerWriterAddParallel(b *testing.B) {
	w := store.NewLedgerWriter(discard{}, store.LedgerWriterOptions{})
	defer w.Close(context.Background())
	r := store.LedgerRow{RequestID: "req_123", KeyID: "k_1", Route: "gpt-4o", InputTokens: 1200, Status: 200}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w.Add(r)
		}
	})
}

// discard is a Ledger that keeps nothing.
type discard struct{}

func (discard) Write(context.Context, []store.LedgerRow) error { return nil }
func (discard) Usage(context.Context, store.UsageQuery) ([]store.UsageTotal, error) {
	return nil, nil
}
func (discard) Spend(context.Context, string, string, time.Time) (float64, error) { return 0, nil }
