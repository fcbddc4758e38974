package telemetry_test

import (
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/sluice-gw/sluice/telemetry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestObserve checks what one call adds to each metric.
func TestObserve(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := telemetry.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.Observe(telemetry.Call{Route: "r", Provider: "p", Code: "ok", Duration: 2 * time.Second,
		InputTokens: 10, OutputTokens: 20, Attempts: 2, ParseFailures: 1, Repairs: 1, Repaired: true})
	m.Observe(telemetry.Call{Route: "r", Provider: "p", Stream: true, Code: "schema_violation", SchemaFailures: 2, Attempts: 1})
	for _, tc := range []struct {
		name string
		got  float64
		want float64
	}{
		{"requests ok", testutil.ToFloat64(mustCounter(t, reg, "sluice_requests_total", "r", "p", "false", "ok")), 1},
		{"output tokens", testutil.ToFloat64(mustCounter(t, reg, "sluice_tokens_total", "r", "p", "output")), 20},
		{"parse failures", testutil.ToFloat64(mustCounter(t, reg, "sluice_structured_failures_total", "r", "p", "parse")), 1},
		{"schema failures", testutil.ToFloat64(mustCounter(t, reg, "sluice_structured_failures_total", "r", "p", "schema")), 2},
		{"repairs attempted", testutil.ToFloat64(mustCounter(t, reg, "sluice_structured_repairs_total", "r", "p", "attempted")), 1},
		{"repairs succeeded", testutil.ToFloat64(mustCounter(t, reg, "sluice_structured_repairs_total", "r", "p", "succeeded")), 1},
		{"attempts", testutil.ToFloat64(mustCounter(t, reg, "sluice_upstream_attempts_total", "r")), 3},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if n := testutil.CollectAndCount(reg, "sluice_request_duration_seconds"); n != 2 {
		t.Errorf("%d duration series, want 2 (stream and not)", n)
	}
}

// mustCounter finds the counter of a metric with these label values.
func mustCounter(t *testing.T, reg *prometheus.Registry, name string, labels ...string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		want := slices.Sorted(slices.Values(labels))
		for _, mt := range mf.GetMetric() {
			var got []string
			for _, l := range mt.GetLabel() {
				got = append(got, l.GetValue())
			}
			slices.Sort(got) // gathered labels come sorted by name
			if slices.Equal(got, want) {
				return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x"}, func() float64 { return mt.GetCounter().GetValue() })
			}
		}
	}
	t.Fatalf("no %s%v", name, labels)
	return nil
}
