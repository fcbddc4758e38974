package config

import (
	"strings"
	"testing"
	"time"
)

// TestPolicies parses the resilience and cost-control sections and checks
// the mistakes that are refused with their place.
func TestPolicies(t *testing.T) {
	src := `state: {sqlite: /tmp/x.db, postgres: "postgres://u@h/db", idempotency_ttl: 1h}
auth: {admin_key: adm, default_tier: free, limiter_failure: local}
ip_limits: {rpm: 600, trusted_proxies: [10.0.0.0/8, 127.0.0.1]}
pricing:
  my-model: {input: 1.5, output: 6, cached_input: 0.5}
tiers:
  - name: free
    models: [m]
    max_prompt_tokens: 4000
    max_output_tokens: 1000
    max_output_policy: refuse
    rpm: 60
    tpm: 100000
    daily_budget_usd: 1.5
providers:
  - {name: a, type: sim, max_concurrent: 10, queue_timeout: 2s}
  - {name: b, type: sim}
models:
  - name: m
    targets: [{provider: a, model: x, weight: 3}, {provider: b, model: x, weight: 1}]
    retry: {attempts: 3, budget: 0.2}
    hedge: {after: p95}
    breaker: {failure_rate: 0.5, window: 30s, min_requests: 20, open_for: 15s}
    cache: {ttl: 10m, serve: always}
    limits: {max_output_tokens: 500}
    tools: [get_weather]
    tool_policy: drop
    expose_raw_output: true
`
	c, err := Parse([]byte(src), envFunc(nil))
	if err != nil {
		t.Fatal(err)
	}
	m := c.Models[0]
	if m.Targets[0].Weight != 3 || m.Retry.Attempts != 3 || m.Retry.Budget != 0.2 || m.Breaker.OpenFor.D() != 15*time.Second ||
		m.Cache.TTL.D() != 10*time.Minute || m.Limits.MaxOutputTokens != 500 || m.ToolPolicy != "drop" || !m.ExposeRawOutput {
		t.Errorf("model parsed to %+v", m)
	}
	if _, p95, ok := m.Hedge.Delay(); !ok || !p95 {
		t.Errorf("hedge p95 not read: %+v", m.Hedge)
	}
	if c.Providers[0].MaxConcurrent != 10 || c.Providers[0].QueueTimeout.D() != 2*time.Second {
		t.Errorf("provider bulkhead: %+v", c.Providers[0])
	}
	tier := c.Tiers[0]
	if tier.MaxPromptTokens != 4000 || tier.MaxOutputPolicy != "refuse" || tier.RPM != 60 || tier.DailyBudgetUSD != 1.5 || tier.Models[0] != "m" {
		t.Errorf("tier parsed to %+v", tier)
	}
	if c.Pricing["my-model"].CachedInput != 0.5 || c.Auth.AdminKey.Value() != "adm" || c.IPLimits.RPM != 600 ||
		c.State.Postgres.Value() != "postgres://u@h/db" || c.State.IdempotencyTTL.D() != time.Hour {
		t.Errorf("config parsed to %+v", c)
	}
	if d, p95, ok := (Hedge{After: "750ms"}).Delay(); !ok || p95 || d != 750*time.Millisecond {
		t.Errorf("hedge 750ms: %v %v %v", d, p95, ok)
	}

	bad := `state: {postgres: "mysql://x"}
auth: {default_tier: gold, limiter_failure: open}
ip_limits: {trusted_proxies: [nope]}
tiers:
  - {name: t, max_output_policy: trim, rpm: -1}
providers:
  - {name: a, type: sim, queue_timeout: 1s}
models:
  - name: m
    targets: [{provider: a, model: x, weight: -1}]
    retry: {attempts: 11}
    hedge: {after: soon}
    breaker: {window: 10s}
    cache: {serve: never}
    tool_policy: ignore
`
	_, err = Parse([]byte(bad), envFunc(nil))
	if err == nil {
		t.Fatal("bad policies accepted")
	}
	for _, want := range []string{
		"state.postgres: want a postgres:// URL",
		`auth.default_tier: unknown tier "gold"`,
		`auth.limiter_failure: unknown limiter_failure "open"`,
		"ip_limits.trusted_proxies[0]: want an IP address or CIDR prefix",
		`tiers[0].max_output_policy: unknown max_output_policy "trim"`,
		"tiers[0].rpm: must not be negative",
		"providers[0].queue_timeout: queue_timeout needs max_concurrent",
		"models[0].targets[0].weight: must not be negative",
		"models[0].retry.attempts: must be from 1 to 10",
		`models[0].hedge.after: want a positive duration`,
		"models[0].breaker: set failure_rate or consecutive",
		"models[0].cache.ttl: a positive ttl is required",
		`models[0].cache.serve: unknown serve "never"`,
		`models[0].tool_policy: unknown tool_policy "ignore"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestContractTemplate(t *testing.T) {
	_, err := Parse([]byte("providers: [{name: s, type: sim}]\nmodels: [{name: m, targets: [{provider: s, model: m}]}]\ncontracts: [{name: c, model: m, schema: {type: object}, system: \"Hi {{.Input\"}]\n"), envFunc(nil))
	if err == nil || !strings.Contains(err.Error(), "contracts[0].system: the prompt template does not parse") {
		t.Errorf("bad template: err = %v", err)
	}
}
