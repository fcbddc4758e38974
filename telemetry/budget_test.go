package telemetry

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestBudgetGauge checks that a budget's ratio only rises within its
// period (reports may arrive out of order) and reads 0 once the period is
// over.
func TestBudgetGauge(t *testing.T) {
	now := time.Date(2026, 11, 27, 23, 0, 0, 0, time.UTC)
	m, err := New(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	m.budget.now = func() time.Time { return now }
	read := func() float64 { return testutil.ToFloat64(m.budget) }
	m.BudgetUsed("tenant", "acme", "day", 0.95)
	m.BudgetUsed("tenant", "acme", "day", 0.90) // an earlier charge, reported late
	if got := read(); got != 0.95 {
		t.Errorf("after out-of-order reports: %v, want 0.95", got)
	}
	now = now.Add(2 * time.Hour) // the next UTC day
	if got := read(); got != 0 {
		t.Errorf("the next day: %v, want 0", got)
	}
	m.BudgetUsed("tenant", "acme", "day", 0.01)
	if got := read(); got != 0.01 {
		t.Errorf("the next day's first charge: %v, want 0.01", got)
	}
}
