package memory_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/store"
	"github.com/sluice-gw/sluice/store/memory"
	"github.com/sluice-gw/sluice/store/storetest"
)

func TestLedger(t *testing.T) {
	storetest.RunLedger(t, func(testing.TB) store.Ledger { return memory.NewLedger(memory.LedgerOptions{}) })
}

// TestLedgerRows checks that Rows gives back every field of the rows
// written, times in UTC to the microsecond.
func TestLedgerRows(t *testing.T) {
	l := memory.NewLedger(memory.LedgerOptions{})
	row := store.LedgerRow{
		Time: time.Date(2030, 1, 2, 3, 4, 5, 6789, time.FixedZone("X", 3600)), RequestID: "r", KeyID: "k",
		Tenant: "t", Tier: "free", User: "u", Route: "m", Contract: "c", Provider: "p", UpstreamModel: "um",
		Stream: true, InputTokens: 1, OutputTokens: 2, CachedTokens: 3, ReasoningTokens: 4, Estimated: true,
		CostUSD: 0.5, Latency: 1500*time.Microsecond + 7, TTFT: 3 * time.Microsecond, Status: 200,
		ErrorCode: "e", Attempts: 5, Failovers: 6, ParseFailures: 7, SchemaFailures: 8, Repairs: 9,
		Outcome: store.OutcomeViolation,
	}
	if err := l.Write(context.Background(), []store.LedgerRow{row}); err != nil {
		t.Fatal(err)
	}
	want := row
	want.Time = time.Date(2030, 1, 2, 2, 4, 5, 6000, time.UTC)
	want.Latency = 1500 * time.Microsecond
	got := l.Rows()
	if len(got) != 1 || got[0] != want {
		t.Errorf("Rows = %+v,\nwant [%+v]", got, want)
	}
}

// TestLedgerBound checks that the oldest rows go once the ledger holds
// MaxRows.
func TestLedgerBound(t *testing.T) {
	ctx := context.Background()
	l := memory.NewLedger(memory.LedgerOptions{MaxRows: 3})
	row := func(i int) store.LedgerRow {
		return store.LedgerRow{Time: time.Unix(int64(i), 0), RequestID: strconv.Itoa(i), KeyID: "k", CostUSD: 1}
	}
	for i := range 5 {
		if err := l.Write(ctx, []store.LedgerRow{row(i)}); err != nil {
			t.Fatal(err)
		}
	}
	ids := func() (s string) {
		for _, r := range l.Rows() {
			s += r.RequestID
		}
		return s
	}
	if got := ids(); got != "234" {
		t.Errorf("rows kept = %q, want 234", got)
	}
	if err := l.Write(ctx, []store.LedgerRow{row(5), row(6), row(7), row(8)}); err != nil {
		t.Fatal(err)
	}
	if got := ids(); got != "678" {
		t.Errorf("rows kept after a large write = %q, want 678", got)
	}
	if spend, _ := l.Spend(ctx, "k", "", time.Time{}); spend != 3 {
		t.Errorf("Spend = %v, want 3 (the rows kept)", spend)
	}
}
