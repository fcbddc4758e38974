package guard

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-gw/sluice"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestPricingLookup(t *testing.T) {
	p := NewPricing(map[string]Price{"My-Model": {Input: 1, Output: 2}, "gpt-4o": {Input: 99, Output: 99}})
	for _, tc := range []struct {
		model string
		want  float64 // input price
		ok    bool
	}{
		{"gpt-4o", 99, true}, // overridden
		{"gpt-4o-2024-08-06", 99, true},
		{"gpt-4o-2024-05-13", 5, true},
		{"gpt-4o-mini", 0.15, true},
		{"gpt-4o-mini-2024-07-18", 0.15, true},
		{"openai/gpt-4.1-mini", 0.40, true},
		{"GPT-4.1", 2, true},
		{"o3-mini-2025-01-31", 1.10, true},
		{"o3-2025-04-16", 2, true},
		{"claude-sonnet-4-20250514", 3, true},
		{"claude-sonnet-4-5-20250929", 3, true},
		{"claude-opus-4-1-20250805", 15, true},
		{"claude-opus-4-5-20251101", 5, true},
		{"claude-3-5-haiku-latest", 0.80, true},
		{"us.anthropic.claude-3-5-haiku-20241022-v1:0", 0.80, true},
		{"claude-sonnet-4@20250514", 3, true},
		{"my-model", 1, true},
		{"gpt-4.5-preview-2025-02-27", 75, true},
		{"gpt-4o1", 0, false}, // not a version of gpt-4o
		{"mystery-model", 0, false},
		{"", 0, false},
	} {
		price, ok := p.Price(tc.model)
		if ok != tc.ok || price.Input != tc.want {
			t.Errorf("Price(%q) = %+v, %v; want input %v, %v", tc.model, price, ok, tc.want, tc.ok)
		}
	}
}

func TestCost(t *testing.T) {
	p := NewPricing(nil)
	for _, tc := range []struct {
		model string
		u     sluice.Usage
		want  float64
	}{
		// gpt-4o: 2.50 in, 1.25 cached, 10 out.
		{"gpt-4o", sluice.Usage{InputTokens: 1_000_000, OutputTokens: 1_000_000}, 12.50},
		{"gpt-4o", sluice.Usage{InputTokens: 1000, CacheReadTokens: 400, OutputTokens: 200}, (600*2.50 + 400*1.25 + 200*10) / 1e6},
		// Reasoning tokens are part of the output: not charged twice.
		{"o3", sluice.Usage{InputTokens: 100, OutputTokens: 1000, ReasoningTokens: 800}, (100*2 + 1000*8) / 1e6},
		// Claude: cache reads at 0.30, writes at 3.75.
		{"claude-sonnet-4", sluice.Usage{InputTokens: 10000, CacheReadTokens: 6000, CacheWriteTokens: 3000, OutputTokens: 500},
			(1000*3 + 6000*0.30 + 3000*3.75 + 500*15) / 1e6},
		// No cached price: full input price; no write price: 1.25 × input.
		{"gpt-4", sluice.Usage{InputTokens: 100, CacheReadTokens: 100}, 100 * 30 / 1e6},
		{"gpt-4", sluice.Usage{InputTokens: 100, CacheWriteTokens: 100}, 100 * 37.5 / 1e6},
		{"mystery", sluice.Usage{InputTokens: 1e6, OutputTokens: 1e6}, 0},
		// Inconsistent usage does not go negative.
		{"gpt-4o", sluice.Usage{InputTokens: 10, CacheReadTokens: 20}, 20 * 1.25 / 1e6},
	} {
		if got := p.Cost(tc.model, tc.u); !near(got, tc.want) {
			t.Errorf("Cost(%s, %+v) = %v, want %v", tc.model, tc.u, got, tc.want)
		}
	}
	if got := p.Estimate("gpt-4o-mini", 10000, 1000); !near(got, (10000*0.15+1000*0.60)/1e6) {
		t.Errorf("Estimate = %v", got)
	}
	if got := p.Estimate("mystery", 10000, 1000); got != 0 {
		t.Errorf("Estimate(unpriced) = %v", got)
	}
	for name, price := range DefaultPrices() {
		if price.Input <= 0 || price.Output <= 0 || price.CachedInput < 0 || name != strings.ToLower(name) {
			t.Errorf("default price %s: %+v", name, price)
		}
	}
}

func budgetErr(t *testing.T, err error) *sluice.Error {
	t.Helper()
	var e *sluice.Error
	if !errors.As(err, &e) || e.Code != sluice.CodeBudgetExceeded {
		t.Fatalf("err = %v, want budget_exceeded", err)
	}
	return e
}

// TestBudgetMidDay: a key that spent $0.90 of its $1 day before the
// process started runs out during the day, is reconciled with the real
// costs, and starts again the next day while its month goes on.
func TestBudgetMidDay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		// synctest's clock starts at 2000-01-01 00:00 UTC; make it
		// January 15, 15:00.
		time.Sleep(14*24*time.Hour + 15*time.Hour)
		now := time.Now().UTC()
		day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
		month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
		ledger := &fakeLedger{spend: map[string]float64{
			"k1||" + day.Format(time.RFC3339):   0.90,
			"k1||" + month.Format(time.RFC3339): 4.90,
		}}
		b := NewBudgets(BudgetOptions{Ledger: ledger})
		tier := Tier{DailyBudgetUSD: 1, MonthlyBudgetUSD: 5.5}

		release, err := b.Reserve(ctx, "k1", "acme", 0.05, tier)
		if err != nil {
			t.Fatal(err)
		}
		if ledger.calls != 2 {
			t.Errorf("%d ledger calls, want 2 (day and month)", ledger.calls)
		}
		// While 0.05 is held, a request that could cost 0.06 would pass
		// the day's end.
		_, err = b.Reserve(ctx, "k1", "acme", 0.06, tier)
		e := budgetErr(t, err)
		if !strings.Contains(e.Message, "lower max_tokens") || e.RetryAfter != 9*time.Hour {
			t.Errorf("refusal: %q, retry %v (want until midnight, 9h)", e.Message, e.RetryAfter)
		}
		release(0.08) // the real cost
		release(5)    // ignored
		if d, m, _ := b.Spent(ctx, "k1", ""); !near(d, 0.98) || !near(m, 4.98) {
			t.Errorf("spent %v today, %v this month; want 0.98, 4.98", d, m)
		}
		// 0.98 + 0.05 > 1: refused.
		budgetErr(t, func() error { _, err := b.Reserve(ctx, "k1", "acme", 0.05, tier); return err }())
		// A cheap request still fits.
		release, err = b.Reserve(ctx, "k1", "acme", 0.01, tier)
		if err != nil {
			t.Fatal(err)
		}
		release(0.02) // costs more than estimated: the day is used up
		_, err = b.Reserve(ctx, "k1", "acme", 0, tier)
		if e := budgetErr(t, err); !strings.Contains(e.Message, "used up") || !strings.Contains(e.Message, "daily") {
			t.Errorf("exhausted: %q", e.Message)
		}

		// The next day: the day starts from zero, the month goes on.
		time.Sleep(9 * time.Hour)
		release, err = b.Reserve(ctx, "k1", "acme", 0.5, tier)
		if err != nil {
			t.Fatalf("next day: %v", err)
		}
		release(0.5)
		if d, m, _ := b.Spent(ctx, "k1", ""); !near(d, 0.5) || !near(m, 5.5) {
			t.Errorf("spent %v today, %v this month; want 0.5, 5.5", d, m)
		}
		_, err = b.Reserve(ctx, "k1", "acme", 0.01, tier)
		if e := budgetErr(t, err); !strings.Contains(e.Message, "monthly") || e.RetryAfter != 16*24*time.Hour {
			t.Errorf("month used up: %q, retry %v (want 16 days, to Feb 1)", e.Message, e.RetryAfter)
		}
		if ledger.calls != 2 {
			t.Errorf("the ledger was read %d times, want once per account", ledger.calls)
		}
	})
}

// TestBudgetReleaseAcrossMidnight: an estimate held before midnight is not
// charged to the new day.
func TestBudgetReleaseAcrossMidnight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		time.Sleep(23*time.Hour + 59*time.Minute)
		b := NewBudgets(BudgetOptions{})
		tier := Tier{DailyBudgetUSD: 1}
		release, err := b.Reserve(ctx, "k", "", 0.9, tier)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Minute)
		release2, err := b.Reserve(ctx, "k", "", 0.9, tier)
		if err != nil {
			t.Fatalf("the new day still holds yesterday's estimate: %v", err)
		}
		release(0.7)
		release2(0.1)
		if d, _, _ := b.Spent(ctx, "k", ""); !near(d, 0.1) {
			t.Errorf("today %v, want 0.1", d)
		}
	})
}

func TestBudgetTenant(t *testing.T) {
	ctx := context.Background()
	b := NewBudgets(BudgetOptions{Tenants: map[string]Budget{"acme": {DailyUSD: 1}}})
	keyTier := Tier{DailyBudgetUSD: 0.8}
	r1, err := b.Reserve(ctx, "k1", "acme", 0.5, keyTier)
	if err != nil {
		t.Fatal(err)
	}
	r1(0.6)
	r2, err := b.Reserve(ctx, "k2", "acme", 0.3, keyTier)
	if err != nil {
		t.Fatal(err)
	}
	// k3 would fit its own budget but not the tenant's, and gives back
	// what it held on its key.
	_, err = b.Reserve(ctx, "k3", "acme", 0.2, keyTier)
	if e := budgetErr(t, err); !strings.Contains(e.Message, "tenant") {
		t.Errorf("tenant refusal: %q", e.Message)
	}
	r2(0.3)
	if _, err := b.Reserve(ctx, "k3", "acme", 0.1, keyTier); err != nil {
		t.Errorf("k3 held nothing after its refusal: %v", err)
	}
	// Another tenant, and no budgets at all, pass.
	if _, err := b.Reserve(ctx, "k4", "other", 100, Tier{}); err != nil {
		t.Error(err)
	}
	if d, _, _ := b.Spent(ctx, "", "acme"); !near(d, 0.9) {
		t.Errorf("tenant spent %v, want 0.9", d)
	}
}

func TestBudgetLedgerDown(t *testing.T) {
	ctx := context.Background()
	ledger := &fakeLedger{fail: errors.New("no such table: ledger")}
	var reported atomic.Int32
	b := NewBudgets(BudgetOptions{Ledger: ledger, Report: func(error) { reported.Add(1) }})
	tier := Tier{DailyBudgetUSD: 1}
	_, err := b.Reserve(ctx, "k", "", 0.1, tier)
	var e *sluice.Error
	if !errors.As(err, &e) || e.Code != sluice.CodeOverloaded || strings.Contains(e.Message, "table") || reported.Load() != 1 {
		t.Fatalf("ledger down: %v (%d reported)", err, reported.Load())
	}
	ledger.mu.Lock()
	ledger.fail = nil
	ledger.mu.Unlock()
	if _, err := b.Reserve(ctx, "k", "", 0.1, tier); err != nil {
		t.Errorf("ledger back: %v", err)
	}
	if _, _, err := NewBudgets(BudgetOptions{Ledger: &fakeLedger{fail: errors.New("x")}}).Spent(ctx, "k", ""); err == nil {
		t.Error("Spent with the ledger down: no error")
	}
}

// TestBudgetConcurrent: with a $1 day and requests of up to $0.10, no
// more than ten are ever held at once, and the spend adds up.
func TestBudgetConcurrent(t *testing.T) {
	ctx := context.Background()
	b := NewBudgets(BudgetOptions{})
	tier := Tier{DailyBudgetUSD: 1}
	var held, peak, admitted atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 50 {
				release, err := b.Reserve(ctx, "k", "", 0.10, tier)
				if err != nil {
					continue
				}
				admitted.Add(1)
				if n := held.Add(1); n > peak.Load() {
					peak.Store(n)
				}
				held.Add(-1)
				release(0.001)
			}
		})
	}
	wg.Wait()
	if peak.Load() > 10 {
		t.Errorf("%d requests held at once, at most 10 fit", peak.Load())
	}
	d, _, _ := b.Spent(ctx, "k", "")
	if !near(d, float64(admitted.Load())*0.001) {
		t.Errorf("spent %v for %d requests", d, admitted.Load())
	}
}
