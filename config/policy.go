package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Retry is a model route's retry policy: how often one target is tried
// again after a failure before the first byte, and how many retries a
// provider may take.
type Retry struct {
	// Attempts is the number of tries of each target, the first included:
	// 1 turns retries off. Unset means DefaultRetryAttempts (1: the
	// official SDKs retry on their own, and a gateway that retries too
	// multiplies their retries).
	Attempts int `yaml:"attempts"`
	// Budget is the share of a provider's recent requests that may be
	// retries (0.1: one in ten), so retries never multiply an outage. Unset
	// means DefaultRetryBudget.
	Budget float64 `yaml:"budget"`
}

// Hedge turns on hedged requests for a model route: when the first target
// has not produced its first token after After, the next target is started
// too and the first to answer wins.
type Hedge struct {
	// After is a duration ("800ms") or "p95": the route's observed 95th
	// percentile time to first token.
	After string `yaml:"after"`
}

// HedgeP95 is the Hedge.After value that hedges after the route's observed
// p95 time to first token.
const HedgeP95 = "p95"

// Delay returns the fixed delay of h, or p95 true for HedgeP95. ok is false
// when h is not set or not valid.
func (h Hedge) Delay() (d time.Duration, p95 bool, ok bool) {
	switch h.After {
	case "":
		return 0, false, false
	case HedgeP95:
		return 0, true, true
	}
	d, err := time.ParseDuration(h.After)
	if err != nil || d <= 0 {
		return 0, false, false
	}
	return d, false, true
}

// Breaker is the circuit breaker of each target of a model route (one per
// provider and upstream model).
type Breaker struct {
	// FailureRate opens the breaker when at least this share (0 to 1] of
	// the calls in Window failed, once MinRequests calls were made.
	FailureRate float64  `yaml:"failure_rate"`
	Window      Duration `yaml:"window"`
	MinRequests int      `yaml:"min_requests"`
	// Consecutive opens the breaker after this many failures in a row
	// whatever the rate; 0 turns that rule off.
	Consecutive int `yaml:"consecutive"`
	// OpenFor is how long an open breaker skips its target before letting
	// probes through (half-open).
	OpenFor Duration `yaml:"open_for"`
}

// Cache is a model route's exact-match response cache.
type Cache struct {
	// TTL is how long an answer is kept. Set it to turn the cache on.
	TTL Duration `yaml:"ttl"`
	// MaxTemperature: requests with a higher temperature are not cached
	// (they ask for variety). Unset means DefaultCacheMaxTemperature.
	MaxTemperature *float64 `yaml:"max_temperature"`
	// Serve is "down" (default: answer from the cache only when every
	// target failed) or "always" (a normal cache, marked Sluice-Cache: hit).
	Serve string `yaml:"serve"`
}

// Limits are what a tier allows; a model route's limits tighten its
// callers' tier for that route. Zero means no limit (or the tier's).
type Limits struct {
	MaxPromptTokens int `yaml:"max_prompt_tokens"`
	MaxOutputTokens int `yaml:"max_output_tokens"`
	// MaxOutputPolicy says what happens to a request asking for more than
	// MaxOutputTokens: "clamp" (default) lowers it, "refuse" refuses it.
	MaxOutputPolicy  string  `yaml:"max_output_policy"`
	MaxMessages      int     `yaml:"max_messages"`
	MaxBodyBytes     int64   `yaml:"max_body_bytes"`
	RPM              int64   `yaml:"rpm"`
	TPM              int64   `yaml:"tpm"`
	UserRPM          int64   `yaml:"user_rpm"`
	UserTPM          int64   `yaml:"user_tpm"`
	MaxStreams       int     `yaml:"max_streams"`
	DailyBudgetUSD   float64 `yaml:"daily_budget_usd"`
	MonthlyBudgetUSD float64 `yaml:"monthly_budget_usd"`
}

// A Tier names a set of limits that API keys are given.
type Tier struct {
	Name string `yaml:"name"`
	// Models are the public model names (and contract names) the tier may
	// call; empty allows every one.
	Models []string `yaml:"models"`
	Limits `yaml:",inline"`
}

// A Tenant is a budget shared by every key of a tenant, on top of each
// key's own (its tier's).
type Tenant struct {
	Name             string  `yaml:"name"`
	DailyBudgetUSD   float64 `yaml:"daily_budget_usd"`
	MonthlyBudgetUSD float64 `yaml:"monthly_budget_usd"`
}

// IPLimits limit requests by client address.
type IPLimits struct {
	RPM int64 `yaml:"rpm"`
	// TrustedProxies are the addresses or CIDR prefixes of proxies whose
	// X-Forwarded-For is believed; from anyone else it is ignored.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// Auth configures API keys.
type Auth struct {
	// AdminKey protects the admin API and dashboard.
	AdminKey Secret `yaml:"admin_key"`
	// AllowOpen lets the gateway serve on a non-loopback address with no
	// keys required. Off: such a start is refused.
	AllowOpen bool `yaml:"allow_open"`
	// DefaultTier is the tier of requests when keys are not required (the
	// embedded default); empty means no limits.
	DefaultTier string `yaml:"default_tier"`
	// LimiterFailure is what happens when the shared rate-limit store
	// cannot be reached: "closed" (default: refuse) or "local" (fall back
	// to this instance's own counters).
	LimiterFailure string `yaml:"limiter_failure"`
}

// KeysRequired reports whether requests must carry an API key: when the
// auth section is present and does not allow_open.
func (c *Config) KeysRequired() bool { return c.Auth != nil && !c.Auth.AllowOpen }

// Price is a model's list price in US dollars per million tokens.
type Price struct {
	Input       float64 `yaml:"input"`
	Output      float64 `yaml:"output"`
	CachedInput float64 `yaml:"cached_input"`
}

// Policy defaults.
const (
	DefaultRetryAttempts       = 1
	DefaultRetryBudget         = 0.1
	DefaultCacheMaxTemperature = 0.0
	DefaultSQLitePath          = "./sluice.db"
	DefaultIdempotencyTTL      = 24 * time.Hour
)

// validatePolicies checks the sections of resilience and cost control.
func (c *Config) validatePolicies(v *validator) {
	if pg := c.State.Postgres.Value(); pg != "" {
		if u, err := url.Parse(pg); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			v.add("want a postgres:// URL", "state", "postgres")
		}
	}
	if c.State.IdempotencyTTL < 0 {
		v.add("must not be negative", "state", "idempotency_ttl")
	}
	for i, p := range c.Providers {
		at := []any{"providers", i}
		if p.MaxConcurrent < 0 {
			v.add("must not be negative", append(at, "max_concurrent")...)
		}
		if p.QueueTimeout < 0 {
			v.add("must not be negative", append(at, "queue_timeout")...)
		}
		if p.QueueTimeout > 0 && p.MaxConcurrent == 0 {
			v.add("queue_timeout needs max_concurrent", append(at, "queue_timeout")...)
		}
	}
	tiers := map[string]int{}
	for i, t := range c.Tiers {
		at := []any{"tiers", i}
		if t.Name == "" {
			v.add("required", append(at, "name")...)
		} else if j, dup := tiers[t.Name]; dup {
			v.add(fmt.Sprintf("duplicate tier name %q (also tiers[%d])", t.Name, j), append(at, "name")...)
		} else {
			tiers[t.Name] = i
		}
		checkLimits(v, t.Limits, at)
	}
	if c.Auth != nil {
		if dt := c.Auth.DefaultTier; dt != "" {
			if _, ok := tiers[dt]; !ok {
				v.add(fmt.Sprintf("unknown tier %q", dt), "auth", "default_tier")
			}
		}
		switch c.Auth.LimiterFailure {
		case "", "closed", "local":
		default:
			v.add(fmt.Sprintf("unknown limiter_failure %q (want closed or local)", c.Auth.LimiterFailure), "auth", "limiter_failure")
		}
	}
	tenants := map[string]int{}
	for i, tn := range c.Tenants {
		at := []any{"tenants", i}
		if tn.Name == "" {
			v.add("required", append(at, "name")...)
		} else if j, dup := tenants[tn.Name]; dup {
			v.add(fmt.Sprintf("duplicate tenant name %q (also tenants[%d])", tn.Name, j), append(at, "name")...)
		} else {
			tenants[tn.Name] = i
		}
		if tn.DailyBudgetUSD < 0 || tn.MonthlyBudgetUSD < 0 {
			v.add("budgets must not be negative", at...)
		}
	}
	if c.IPLimits.RPM < 0 {
		v.add("must not be negative", "ip_limits", "rpm")
	}
	for i, p := range c.IPLimits.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				v.add("want an IP address or CIDR prefix", "ip_limits", "trusted_proxies", i)
			}
		}
	}
	for _, name := range sortedKeys(c.Pricing) {
		p := c.Pricing[name]
		if p.Input < 0 || p.Output < 0 || p.CachedInput < 0 {
			v.add("prices must not be negative", "pricing", name)
		}
	}
	for i, m := range c.Models {
		at := []any{"models", i}
		weighted := 0
		for k, t := range m.Targets {
			if t.Weight < 0 {
				v.add("must not be negative", append(at, "targets", k, "weight")...)
			}
			if t.Weight > 0 {
				weighted++
			}
		}
		if m.Retry != nil {
			if m.Retry.Attempts < 0 || m.Retry.Attempts > 10 {
				v.add("must be from 1 to 10 (1: no retries)", append(at, "retry", "attempts")...)
			}
			if m.Retry.Budget < 0 || m.Retry.Budget > 1 {
				v.add("must be from 0 to 1", append(at, "retry", "budget")...)
			}
		}
		if m.Hedge != nil {
			if _, _, ok := m.Hedge.Delay(); !ok {
				v.add(`want a positive duration ("800ms") or p95`, append(at, "hedge", "after")...)
			} else if len(m.Targets) < 2 {
				v.add("hedging needs at least two targets", append(at, "hedge")...)
			}
		}
		if b := m.Breaker; b != nil {
			if b.FailureRate < 0 || b.FailureRate > 1 {
				v.add("must be from 0 to 1", append(at, "breaker", "failure_rate")...)
			}
			if b.Window < 0 || b.OpenFor < 0 {
				v.add("durations must not be negative", append(at, "breaker")...)
			}
			if b.MinRequests < 0 || b.Consecutive < 0 {
				v.add("counts must not be negative", append(at, "breaker")...)
			}
			if b.FailureRate == 0 && b.Consecutive == 0 {
				v.add("set failure_rate or consecutive", append(at, "breaker")...)
			}
		}
		if ca := m.Cache; ca != nil {
			if ca.TTL <= 0 {
				v.add("a positive ttl is required", append(at, "cache", "ttl")...)
			}
			if ca.Serve != "" && ca.Serve != "down" && ca.Serve != "always" {
				v.add(fmt.Sprintf("unknown serve %q (want down or always)", ca.Serve), append(at, "cache", "serve")...)
			}
		}
		if m.Limits != nil {
			checkLimits(v, *m.Limits, append(at, "limits"))
		}
		switch m.ToolPolicy {
		case "", "refuse", "drop":
		default:
			v.add(fmt.Sprintf("unknown tool_policy %q (want refuse or drop)", m.ToolPolicy), append(at, "tool_policy")...)
		}
	}
}

func checkLimits(v *validator, l Limits, at []any) {
	for _, f := range []struct {
		key string
		neg bool
	}{
		{"max_prompt_tokens", l.MaxPromptTokens < 0}, {"max_output_tokens", l.MaxOutputTokens < 0},
		{"max_messages", l.MaxMessages < 0}, {"max_body_bytes", l.MaxBodyBytes < 0},
		{"rpm", l.RPM < 0}, {"tpm", l.TPM < 0}, {"user_rpm", l.UserRPM < 0}, {"user_tpm", l.UserTPM < 0}, {"max_streams", l.MaxStreams < 0},
		{"daily_budget_usd", l.DailyBudgetUSD < 0}, {"monthly_budget_usd", l.MonthlyBudgetUSD < 0},
	} {
		if f.neg {
			v.add("must not be negative", append(slices.Clone(at), f.key)...)
		}
	}
	switch l.MaxOutputPolicy {
	case "", "clamp", "refuse":
	default:
		v.add(fmt.Sprintf("unknown max_output_policy %q (want clamp or refuse)", l.MaxOutputPolicy), append(slices.Clone(at), "max_output_policy")...)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, strings.Compare)
	return keys
}
