package pipeline_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/config"
	"github.com/sluice-gw/sluice/pipeline"
	"github.com/sluice-gw/sluice/store"
	"github.com/sluice-gw/sluice/telemetry"
)

// downLimiter is a shared rate-limit store that cannot be reached.
type downLimiter struct{}

func (downLimiter) Take(context.Context, string, store.Limit, int64) (store.Decision, error) {
	return store.Decision{}, errors.New("dial tcp 10.0.0.9:6379: connect: connection refused")
}
func (downLimiter) Charge(context.Context, string, store.Limit, int64) error {
	return errors.New("dial tcp 10.0.0.9:6379: connect: connection refused")
}

// TestLimiterDown checks what happens when the shared rate-limit store is
// unreachable: refused with overloaded (the default, fail closed), or held
// to this instance's own limits (limiter_failure: local); either way the
// failure is counted.
func TestLimiterDown(t *testing.T) {
	for _, tc := range []struct{ policy, want string }{{"closed", "overloaded"}, {"local", ""}} {
		t.Run(tc.policy, func(t *testing.T) {
			cfg, err := config.Parse([]byte(`
auth: {allow_open: true, limiter_failure: `+tc.policy+`}
tiers: [{name: t, rpm: 100}]
providers: [{name: s, type: sim}]
models: [{name: m, targets: [{provider: s, model: m}]}]
`), func(string) string { return "" })
			if err != nil {
				t.Fatal(err)
			}
			reg := prometheus.NewRegistry()
			m, err := telemetry.New(reg)
			if err != nil {
				t.Fatal(err)
			}
			p, err := pipeline.New(context.Background(), cfg, pipeline.Options{Limiter: downLimiter{}, Metrics: m})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			req := userRequest("m", "Hello.")
			req.Caller = sluice.Caller{Key: "k", Tier: "t"}
			_, err = p.Complete(context.Background(), req)
			if got := string(sluice.ErrorCode(err)); got != tc.want {
				t.Fatalf("limiter down, %s: err %v, want %q", tc.policy, err, tc.want)
			}
			if err != nil && strings.Contains(sluice.AsError(err).Message, "10.0.0.9") {
				t.Errorf("the store's address reached the client: %v", err)
			}
			n, err := testutil.GatherAndCount(reg, "sluice_guard_store_failures_total")
			if err != nil || n != 1 {
				t.Errorf("failures counted: %d series, %v", n, err)
			}
		})
	}
}

// TestTenantBudget: two keys of one tenant share the tenant's budget; a
// key of another tenant does not.
func TestTenantBudget(t *testing.T) {
	cfg, err := config.Parse([]byte(`
tenants: [{name: acme, daily_budget_usd: 0.05}]
tiers: [{name: t}]
pricing: {m: {input: 1000, output: 1000}}
providers: [{name: s, type: sim}]
models: [{name: m, targets: [{provider: s, model: m}]}]
`), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(context.Background(), cfg, pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	call := func(key, tenant string) error {
		req := userRequest("m", "Hello.")
		req.MaxOutputTokens = 20
		req.Caller = sluice.Caller{Key: key, Tenant: tenant, Tier: "t"}
		_, err := p.Complete(context.Background(), req)
		return err
	}
	if err := call("k1", "acme"); err != nil {
		t.Fatalf("first call of the tenant: %v", err)
	}
	if err := call("k2", "acme"); sluice.ErrorCode(err) != sluice.CodeBudgetExceeded {
		t.Errorf("another key of the spent tenant: %v, want budget_exceeded", err)
	}
	if err := call("k3", "other"); err != nil {
		t.Errorf("a key of another tenant: %v", err)
	}
}
