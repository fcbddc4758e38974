package storetest

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/store"
)

// RunLedger runs the Ledger contract against the ledgers open returns. Each
// call of open must return a new, empty ledger.
//
// The times of the rows written are whole microseconds, the precision every
// backend keeps.
func RunLedger(t *testing.T, open func(t testing.TB) store.Ledger) {
	ctx := context.Background()

	t.Run("Empty", func(t *testing.T) {
		l := open(t)
		for _, by := range []string{"", store.ByKey, store.ByTenant, store.ByModel, store.ByDay} {
			got, err := l.Usage(ctx, store.UsageQuery{By: by})
			if err != nil {
				t.Fatalf("Usage by %q: %v", by, err)
			}
			if len(got) != 0 {
				t.Errorf("Usage by %q of an empty ledger = %+v, want no groups", by, got)
			}
		}
		spend, err := l.Spend(ctx, "k1", "", time.Time{})
		if err != nil || spend != 0 {
			t.Errorf("Spend of an empty ledger = %v, %v; want 0", spend, err)
		}
		if err := l.Write(ctx, nil); err != nil {
			t.Errorf("Write of no rows: %v", err)
		}
	})

	t.Run("Usage", func(t *testing.T) {
		l := open(t)
		if err := l.Write(ctx, fixtureRows()); err != nil {
			t.Fatal(err)
		}
		for _, tc := range usageCases() {
			t.Run(tc.name, func(t *testing.T) {
				got, err := l.Usage(ctx, tc.q)
				if err != nil {
					t.Fatal(err)
				}
				checkTotals(t, got, tc.want)
			})
		}
	})

	t.Run("UnknownGrouping", func(t *testing.T) {
		l := open(t)
		if _, err := l.Usage(ctx, store.UsageQuery{By: "week"}); err == nil {
			t.Error("Usage by an unknown grouping succeeded")
		}
	})

	t.Run("Spend", func(t *testing.T) {
		l := open(t)
		if err := l.Write(ctx, fixtureRows()); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name          string
			keyID, tenant string
			since         time.Time
			want          float64
		}{
			{"KeyAll", "k1", "", time.Time{}, 0.75},
			{"KeySince", "k1", "", day(1, 0), 0.25},
			{"KeyWinsOverTenant", "k1", "t2", time.Time{}, 0.75},
			{"Tenant", "", "t1", time.Time{}, 1.75},
			{"TenantSinceInclusive", "", "t1", day(1, 12), 1.0},
			{"TenantAfterLast", "", "t1", day(1, 12).Add(time.Microsecond), 0},
			{"OtherTenant", "", "t2", time.Time{}, 2.0},
			{"UnknownKey", "k9", "", time.Time{}, 0},
			{"NoKeyNoTenant", "", "", time.Time{}, 0.125},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := l.Spend(ctx, tc.keyID, tc.tenant, tc.since)
				if err != nil {
					t.Fatal(err)
				}
				if !closeTo(got, tc.want) {
					t.Errorf("Spend(%q, %q, %v) = %v, want %v", tc.keyID, tc.tenant, tc.since, got, tc.want)
				}
			})
		}
	})

	t.Run("SeveralWrites", func(t *testing.T) {
		// Rows written apart are summed together.
		l := open(t)
		rows := fixtureRows()
		for _, r := range rows {
			if err := l.Write(ctx, []store.LedgerRow{r}); err != nil {
				t.Fatal(err)
			}
		}
		got, err := l.Usage(ctx, store.UsageQuery{})
		if err != nil {
			t.Fatal(err)
		}
		checkTotals(t, got, []store.UsageTotal{total("", rows...)})
	})

	t.Run("CallerKeepsRows", func(t *testing.T) {
		// The ledger keeps its own copy: changing the slice written
		// changes nothing.
		l := open(t)
		rows := fixtureRows()
		if err := l.Write(ctx, rows); err != nil {
			t.Fatal(err)
		}
		want := total("", rows...)
		for i := range rows {
			rows[i].InputTokens = 1e6
			rows[i].KeyID = "changed"
		}
		got, err := l.Usage(ctx, store.UsageQuery{})
		if err != nil {
			t.Fatal(err)
		}
		checkTotals(t, got, []store.UsageTotal{want})
	})

	t.Run("LargeValues", func(t *testing.T) {
		l := open(t)
		row := store.LedgerRow{
			Time: day(0, 1), RequestID: "big", KeyID: "k", Tenant: "t", Route: "m",
			InputTokens: 1 << 40, OutputTokens: 1 << 41, CachedTokens: 1 << 39, ReasoningTokens: 1 << 38,
			CostUSD: 123456.789, Latency: 48 * time.Hour, TTFT: time.Hour, Status: 200,
			Attempts: 1 << 20, Stream: true, Estimated: true,
		}
		if err := l.Write(ctx, []store.LedgerRow{row, row}); err != nil {
			t.Fatal(err)
		}
		got, err := l.Usage(ctx, store.UsageQuery{By: store.ByKey})
		if err != nil {
			t.Fatal(err)
		}
		checkTotals(t, got, []store.UsageTotal{total("k", row, row)})
	})

	t.Run("ManyRows", func(t *testing.T) {
		// One batch larger than a writer's usual one.
		l := open(t)
		rows := make([]store.LedgerRow, 2000)
		for i := range rows {
			rows[i] = store.LedgerRow{
				Time: day(0, 0).Add(time.Duration(i) * time.Minute), RequestID: "r" + strconv.Itoa(i),
				KeyID: "k" + strconv.Itoa(i%3), Tenant: "t", Route: "m",
				InputTokens: int64(i), OutputTokens: 1, CostUSD: 0.001, Status: 200,
			}
		}
		if err := l.Write(ctx, rows); err != nil {
			t.Fatal(err)
		}
		got, err := l.Usage(ctx, store.UsageQuery{By: store.ByDay})
		if err != nil {
			t.Fatal(err)
		}
		// 2000 minutes from midnight: the first day has 1440 rows.
		checkTotals(t, got, []store.UsageTotal{
			total("2030-03-14", rows[:1440]...),
			total("2030-03-15", rows[1440:]...),
		})
	})

	t.Run("CancelledWrite", func(t *testing.T) {
		// A write whose context ended stores nothing: all rows or none.
		l := open(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := l.Write(cctx, fixtureRows()); err == nil {
			t.Error("Write with a cancelled context succeeded")
		}
		got, err := l.Usage(ctx, store.UsageQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Errorf("after a cancelled Write, Usage = %+v, want nothing", got)
		}
	})

	t.Run("ConcurrentWrites", func(t *testing.T) {
		l := open(t)
		const writers, writes, perWrite = 8, 20, 5
		var wg sync.WaitGroup
		errs := make(chan error, writers*writes)
		for w := range writers {
			wg.Go(func() {
				for i := range writes {
					rows := make([]store.LedgerRow, perWrite)
					for j := range rows {
						rows[j] = store.LedgerRow{
							Time:      day(0, 3).Add(time.Duration(i*perWrite+j) * time.Millisecond),
							RequestID: fmt.Sprintf("w%d-%d-%d", w, i, j),
							KeyID:     "k" + strconv.Itoa(w%2), Tenant: "t", Route: "m",
							InputTokens: 10, OutputTokens: 2, CostUSD: 0.5, Status: 200,
						}
					}
					if err := l.Write(ctx, rows); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("concurrent Write: %v", err)
		}
		got, err := l.Usage(ctx, store.UsageQuery{By: store.ByKey})
		if err != nil {
			t.Fatal(err)
		}
		const n = writers / 2 * writes * perWrite
		want := []store.UsageTotal{
			{Group: "k0", Requests: n, InputTokens: 10 * n, OutputTokens: 2 * n, CostUSD: 0.5 * n},
			{Group: "k1", Requests: n, InputTokens: 10 * n, OutputTokens: 2 * n, CostUSD: 0.5 * n},
		}
		checkTotals(t, got, want)
	})
}

// day returns a time on the ledger fixture's days: midnight UTC of
// 2030-03-14 plus d days and h hours.
func day(d, h int) time.Time {
	return time.Date(2030, 3, 14+d, h, 0, 0, 0, time.UTC)
}

// fixtureRows returns the rows the Usage and Spend cases read: three keys
// of two tenants, a request with neither, three models over three UTC
// days, two errors.
func fixtureRows() []store.LedgerRow {
	// A time given in another zone is still grouped by its UTC day: this
	// is 2030-03-14 23:59:59.999999 UTC.
	east := time.FixedZone("UTC+5", 5*3600)
	lastOfDay0 := day(1, 0).Add(-time.Microsecond).In(east)
	return []store.LedgerRow{
		{
			Time: lastOfDay0, RequestID: "r1", KeyID: "k1", Tenant: "t1", Tier: "free", User: "u1",
			Route: "gpt", Provider: "openai", UpstreamModel: "gpt-4o",
			InputTokens: 100, OutputTokens: 10, CachedTokens: 5, ReasoningTokens: 1, CostUSD: 0.5,
			Latency: 1500 * time.Millisecond, Status: 200, Attempts: 1,
		},
		{
			Time: day(1, 0), RequestID: "r2", KeyID: "k1", Tenant: "t1", Tier: "free",
			Route: "claude", Provider: "anthropic", UpstreamModel: "claude-sonnet", Stream: true,
			InputTokens: 200, OutputTokens: 20, CachedTokens: 0, ReasoningTokens: 2, CostUSD: 0.25,
			Latency: time.Second, TTFT: 300 * time.Millisecond, Status: 200, ErrorCode: "stream_interrupted",
			Attempts: 2, Failovers: 1, Estimated: true,
		},
		{
			Time: day(1, 12), RequestID: "r3", KeyID: "k2", Tenant: "t1", Tier: "pro",
			Route: "gpt", Contract: "invoice", Provider: "openai", UpstreamModel: "gpt-4o",
			InputTokens: 300, OutputTokens: 30, CachedTokens: 100, CostUSD: 1.0, Status: 200,
			SchemaFailures: 1, Repairs: 1, Outcome: store.OutcomeRepaired, Attempts: 2,
		},
		{
			Time: day(2, 1), RequestID: "r4", KeyID: "k3", Tenant: "t2", Tier: "pro",
			Route: "gpt", Provider: "openai", UpstreamModel: "gpt-4o",
			InputTokens: 400, OutputTokens: 40, CostUSD: 2.0, Status: 502, ErrorCode: "upstream_error",
			Attempts: 3,
		},
		{
			Time: day(2, 2), RequestID: "r5", Route: "sim", Provider: "sim", UpstreamModel: "echo",
			InputTokens: 1, OutputTokens: 1, CostUSD: 0.125, Status: 200, Attempts: 1,
		},
	}
}

type usageCase struct {
	name string
	q    store.UsageQuery
	want []store.UsageTotal
}

func usageCases() []usageCase {
	r := fixtureRows()
	return []usageCase{
		{"All", store.UsageQuery{}, []store.UsageTotal{total("", r...)}},
		{"ByKey", store.UsageQuery{By: store.ByKey}, []store.UsageTotal{
			total("", r[4]), total("k1", r[0], r[1]), total("k2", r[2]), total("k3", r[3]),
		}},
		{"ByTenant", store.UsageQuery{By: store.ByTenant}, []store.UsageTotal{
			total("", r[4]), total("t1", r[0], r[1], r[2]), total("t2", r[3]),
		}},
		{"ByModel", store.UsageQuery{By: store.ByModel}, []store.UsageTotal{
			total("claude", r[1]), total("gpt", r[0], r[2], r[3]), total("sim", r[4]),
		}},
		{"ByDayUTC", store.UsageQuery{By: store.ByDay}, []store.UsageTotal{
			total("2030-03-14", r[0]), total("2030-03-15", r[1], r[2]), total("2030-03-16", r[3], r[4]),
		}},
		{"FromInclusiveToExclusive", store.UsageQuery{From: day(1, 0), To: day(2, 1)}, []store.UsageTotal{
			total("", r[1], r[2]),
		}},
		{"FromOnly", store.UsageQuery{By: store.ByKey, From: day(1, 12)}, []store.UsageTotal{
			total("", r[4]), total("k2", r[2]), total("k3", r[3]),
		}},
		{"ToOnly", store.UsageQuery{By: store.ByDay, To: day(1, 0)}, []store.UsageTotal{
			total("2030-03-14", r[0]),
		}},
		{"ToBeforeFrom", store.UsageQuery{From: day(2, 0), To: day(1, 0)}, nil},
		{"ToInAnotherZone", store.UsageQuery{To: day(1, 0).In(time.FixedZone("UTC-8", -8*3600))}, []store.UsageTotal{
			total("", r[0]),
		}},
		{"KeyID", store.UsageQuery{By: store.ByModel, KeyID: "k1"}, []store.UsageTotal{
			total("claude", r[1]), total("gpt", r[0]),
		}},
		{"Tenant", store.UsageQuery{By: store.ByKey, Tenant: "t1"}, []store.UsageTotal{
			total("k1", r[0], r[1]), total("k2", r[2]),
		}},
		{"TenantAndDay", store.UsageQuery{By: store.ByDay, Tenant: "t1", From: day(1, 0)}, []store.UsageTotal{
			total("2030-03-15", r[1], r[2]),
		}},
		{"KeyOfOtherTenant", store.UsageQuery{KeyID: "k1", Tenant: "t2"}, nil},
		{"UnknownKey", store.UsageQuery{By: store.ByKey, KeyID: "k9"}, nil},
	}
}

// total sums rows into a group, as a Ledger should.
func total(group string, rows ...store.LedgerRow) store.UsageTotal {
	u := store.UsageTotal{Group: group}
	for _, r := range rows {
		u.Requests++
		if r.ErrorCode != "" {
			u.Errors++
		}
		u.InputTokens += r.InputTokens
		u.OutputTokens += r.OutputTokens
		u.CachedTokens += r.CachedTokens
		u.ReasoningTokens += r.ReasoningTokens
		u.CostUSD += r.CostUSD
	}
	return u
}

// checkTotals compares groups, costs within rounding.
func checkTotals(t testing.TB, got, want []store.UsageTotal) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d groups, want %d:\n got  %+v\n want %+v", len(got), len(want), got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		gc, wc := g.CostUSD, w.CostUSD
		g.CostUSD, w.CostUSD = 0, 0
		if g != w || !closeTo(gc, wc) {
			g.CostUSD, w.CostUSD = gc, wc
			t.Errorf("group %d:\n got  %+v\n want %+v", i, g, w)
		}
	}
}

// closeTo reports whether a and b are equal but for the rounding of sums
// done in another order.
func closeTo(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}
