package telemetry_test

import (
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/sluice-gw/sluice/telemetry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestObserve checks what calls add to each metric.
func TestObserve(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := telemetry.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.Observe(telemetry.Call{Route: "r", Model: "m", Provider: "p", Dialect: "openai", Code: "ok", Duration: 2 * time.Second,
		Overhead: time.Millisecond, InputTokens: 10, OutputTokens: 20, CachedTokens: 4, CostUSD: 0.5,
		Retries: 1, Hedges: 2, Structured: true, ParseFailures: 1, Repairs: 1, Repaired: true})
	m.Observe(telemetry.Call{Route: "r", Model: "m", Provider: "p", Dialect: "anthropic", Stream: true, Code: "schema_violation",
		Overhead: -1, TTFT: time.Second, CostUSD: 0.25, Structured: true, SchemaFailures: 2, Failovers: 1})
	m.Observe(telemetry.Call{Route: "r", Dialect: "go", Code: "rate_limited", Overhead: -1})
	m.Attempt("p", "ok")
	m.Attempt("p", "upstream_timeout")
	m.Attempt("p", "ok")
	m.Refused("rpm")
	closed := m.StreamOpened("r")
	m.Gaps("r", "p").Observe(20 * time.Millisecond)
	telemetry.Gaps{}.Observe(time.Second) // the zero Gaps observes nothing
	for _, tc := range []struct {
		name string
		got  float64
		want float64
	}{
		{"requests ok", counter(t, reg, "sluice_requests_total", "r", "m", "p", "openai", "false", "ok"), 1},
		{"requests refused", counter(t, reg, "sluice_requests_total", "r", "", "", "go", "false", "rate_limited"), 1},
		{"output tokens", counter(t, reg, "sluice_tokens_total", "r", "m", "p", "output"), 20},
		{"cached tokens", counter(t, reg, "sluice_tokens_total", "r", "m", "p", "cached_input"), 4},
		{"cost", counter(t, reg, "sluice_cost_usd_total", "r", "m", "p"), 0.75},
		{"parse failures", counter(t, reg, "sluice_contract_failures_total", "r", "parse"), 1},
		{"validation failures", counter(t, reg, "sluice_contract_failures_total", "r", "validation"), 2},
		{"repaired", counter(t, reg, "sluice_contract_failures_total", "r", "repaired"), 1},
		{"exhausted", counter(t, reg, "sluice_contract_failures_total", "r", "exhausted"), 1},
		{"calls repaired", counter(t, reg, "sluice_contract_calls_total", "r", "repaired"), 1},
		{"calls violation", counter(t, reg, "sluice_contract_calls_total", "r", "violation"), 1},
		{"repairs", counter(t, reg, "sluice_contract_repairs_total", "r"), 1},
		{"retries", counter(t, reg, "sluice_upstream_attempt_kinds_total", "r", "retry"), 1},
		{"hedges", counter(t, reg, "sluice_upstream_attempt_kinds_total", "r", "hedge"), 2},
		{"failovers", counter(t, reg, "sluice_upstream_attempt_kinds_total", "r", "failover"), 1},
		{"attempts ok", counter(t, reg, "sluice_upstream_attempts_total", "p", "ok"), 2},
		{"attempts timed out", counter(t, reg, "sluice_upstream_attempts_total", "p", "upstream_timeout"), 1},
		{"refusals", counter(t, reg, "sluice_limit_refusals_total", "rpm"), 1},
		{"open streams", gauge(t, reg, "sluice_open_streams", "r"), 1},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	closed()
	if got := gauge(t, reg, "sluice_open_streams", "r"); got != 0 {
		t.Errorf("open streams after close = %v", got)
	}
	if n := testutil.CollectAndCount(reg, "sluice_request_duration_seconds"); n != 3 {
		t.Errorf("%d duration series, want 3", n)
	}
	if n := testutil.CollectAndCount(reg, "sluice_overhead_seconds"); n != 1 {
		t.Errorf("%d overhead series, want 1 (unknown overheads are not observed)", n)
	}
	if n := testutil.CollectAndCount(reg, "sluice_time_between_tokens_seconds"); n != 1 {
		t.Errorf("%d time-between-tokens series, want 1", n)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mf := range mfs {
		got = append(got, mf.GetName())
	}
	for _, name := range got {
		if !slices.Contains(telemetry.MetricNames(), name) {
			t.Errorf("%s registered but not in MetricNames", name)
		}
	}
}

// counter returns the value of the counter of a metric with these label
// values.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	return find(t, reg, name, labels).GetCounter().GetValue()
}

// gauge returns the value of the gauge of a metric with these label values.
func gauge(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	return find(t, reg, name, labels).GetGauge().GetValue()
}

func find(t *testing.T, reg *prometheus.Registry, name string, labels []string) *dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Sorted(slices.Values(labels))
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mt := range mf.GetMetric() {
			var got []string
			for _, l := range mt.GetLabel() {
				got = append(got, l.GetValue())
			}
			slices.Sort(got) // gathered labels come sorted by name
			if slices.Equal(got, want) {
				return mt
			}
		}
	}
	t.Fatalf("no %s%v", name, labels)
	return nil
}
