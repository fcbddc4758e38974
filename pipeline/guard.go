package pipeline

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/config"
	"github.com/sluice-gw/sluice/guard"
	"github.com/sluice-gw/sluice/store"
	"github.com/sluice-gw/sluice/telemetry"
)

// guards is the admission path: tiers and route limits, rate limits,
// budgets and concurrent streams, and the prices that make cost.
type guards struct {
	tiers       map[string]guard.Tier
	defaultTier string
	routes      map[string]guard.Tier // the limits model routes tighten
	primary     map[string]string     // route → its primary target's upstream model
	tenants     map[string]bool       // tenants with budgets of their own
	ip          guard.Rate
	limits      *guard.Limits
	budgets     *guard.Budgets
	pricing     *guard.Pricing
	streams     guard.Streams
}

func tierOf(name string, models []string, l config.Limits) guard.Tier {
	return guard.Tier{
		Name: name, Models: models,
		MaxPromptTokens: l.MaxPromptTokens, MaxOutputTokens: l.MaxOutputTokens,
		MaxOutputPolicy: guard.OutputPolicy(l.MaxOutputPolicy), MaxMessages: l.MaxMessages, MaxBodyBytes: l.MaxBodyBytes,
		RPM: l.RPM, TPM: l.TPM, UserRPM: l.UserRPM, UserTPM: l.UserTPM, MaxStreams: l.MaxStreams,
		DailyBudgetUSD: l.DailyBudgetUSD, MonthlyBudgetUSD: l.MonthlyBudgetUSD,
	}
}

// newGuards builds the admission path from cfg over the pipeline's stores.
func (p *Pipeline) newGuards(cfg *config.Config) *guards {
	g := &guards{tiers: map[string]guard.Tier{}, routes: map[string]guard.Tier{}, primary: map[string]string{},
		ip: guard.Rate{RPM: cfg.IPLimits.RPM}}
	for _, t := range cfg.Tiers {
		g.tiers[t.Name] = tierOf(t.Name, t.Models, t.Limits)
	}
	failure := guard.LimiterClosed
	if cfg.Auth != nil {
		g.defaultTier = cfg.Auth.DefaultTier
		if cfg.Auth.LimiterFailure == "local" {
			failure = guard.LimiterLocal
		}
	}
	for _, m := range cfg.Models {
		var rt guard.Tier
		if m.Limits != nil {
			rt = tierOf("", nil, *m.Limits)
		}
		if m.Tools != nil {
			rt.Tools = m.Tools
			rt.ToolPolicy = guard.ToolPolicy(m.ToolPolicy)
		}
		g.routes[m.Name] = rt
		g.primary[m.Name] = m.Targets[0].Model
	}
	g.pricing = pricingOf(cfg)
	g.limits = guard.NewLimits(p.limiter, guard.LimitsOptions{OnFailure: failure, Report: func(err error) {
		p.logger.Warn("rate limit store failed", "error", err, "fallback", string(failure))
		if p.metrics != nil {
			p.metrics.GuardStoreFailed("limiter")
		}
	}})
	tenants := map[string]guard.Budget{}
	g.tenants = map[string]bool{}
	for _, tn := range cfg.Tenants {
		tenants[tn.Name] = guard.Budget{DailyUSD: tn.DailyBudgetUSD, MonthlyUSD: tn.MonthlyBudgetUSD}
		if tn.DailyBudgetUSD > 0 || tn.MonthlyBudgetUSD > 0 {
			g.tenants[tn.Name] = true
		}
	}
	var onSpend func(guard.Spend)
	if p.metrics != nil {
		bg := &budgetGauges{m: p.metrics, tiers: map[string]*tierPeak{}}
		onSpend = bg.spent
	}
	g.budgets = guard.NewBudgets(guard.BudgetOptions{Ledger: p.ledgerStore, Tenants: tenants, OnSpend: onSpend, Report: func(err error) {
		p.logger.Warn("budget ledger unreadable", "error", err)
		if p.metrics != nil {
			p.metrics.GuardStoreFailed("budget")
		}
	}})
	return g
}

// pricingOf returns the price table of cfg: the built-in one with cfg's
// pricing over it.
func pricingOf(cfg *config.Config) *guard.Pricing {
	prices := map[string]guard.Price{}
	for name, pr := range cfg.Pricing {
		prices[name] = guard.Price{Input: pr.Input, Output: pr.Output, CachedInput: pr.CachedInput}
	}
	return guard.NewPricing(prices)
}

// RouteCost returns the cost of a call of a model route of cfg from its
// usage, priced at the route's primary target's model, as the gateway
// prices a call before it knows which target will answer.
func RouteCost(cfg *config.Config) func(route string, u sluice.Usage) float64 {
	pricing := pricingOf(cfg)
	primary := map[string]string{}
	for _, m := range cfg.Models {
		primary[m.Name] = m.Targets[0].Model
	}
	return func(route string, u sluice.Usage) float64 { return pricing.Cost(primary[route], u) }
}

// budgetGauges set the budget gauges (sluice_budget_used_ratio): a
// tenant's spend over its budget, and the highest of a tier's keys this
// UTC day and month (kept until a key of the tier spends in the next).
type budgetGauges struct {
	m     *telemetry.Metrics
	mu    sync.Mutex
	tiers map[string]*tierPeak
}

type tierPeak struct {
	day, month           int64
	dayRatio, monthRatio float64
}

func (bg *budgetGauges) spent(s guard.Spend) {
	var day, month float64
	if s.Budget.DailyUSD > 0 {
		day = s.DayUSD / s.Budget.DailyUSD
	}
	if s.Budget.MonthlyUSD > 0 {
		month = s.MonthUSD / s.Budget.MonthlyUSD
	}
	if s.Scope == "key" {
		now := time.Now().UTC()
		d, m := now.Unix()/86400, int64(now.Year())*12+int64(now.Month())
		bg.mu.Lock()
		pk := bg.tiers[s.Name]
		if pk == nil {
			pk = &tierPeak{}
			bg.tiers[s.Name] = pk
		}
		if pk.day != d {
			pk.day, pk.dayRatio = d, 0
		}
		if pk.month != m {
			pk.month, pk.monthRatio = m, 0
		}
		pk.dayRatio, pk.monthRatio = max(pk.dayRatio, day), max(pk.monthRatio, month)
		day, month = pk.dayRatio, pk.monthRatio
		bg.mu.Unlock()
		s.Scope = "tier"
	}
	if s.Budget.DailyUSD > 0 {
		bg.m.BudgetUsed(s.Scope, s.Name, "day", day)
	}
	if s.Budget.MonthlyUSD > 0 {
		bg.m.BudgetUsed(s.Scope, s.Name, "month", month)
	}
}

// counts reports whether some call may need its prompt counted: then the
// tokenizers are loaded at start rather than by the first such call.
func (g *guards) counts() bool {
	if len(g.tenants) > 0 {
		return true
	}
	for _, t := range g.tiers {
		if t.NeedsCount() {
			return true
		}
	}
	for _, t := range g.routes {
		if t.NeedsCount() {
			return true
		}
	}
	return false
}

// tier returns the tier a call is held to: its caller's, else the default
// tier, tightened by its route's limits.
func (g *guards) tier(req *sluice.Request) guard.Tier {
	name := req.Caller.Tier
	if name == "" {
		name = g.defaultTier
	}
	t := g.tiers[name]
	if rt, ok := g.routes[req.Model]; ok {
		t = t.Tighten(rt)
	}
	return t
}

// AnonymousKey is the key id under which calls without a key (when keys
// are not required) are limited and budgeted together.
const AnonymousKey = "anonymous"

// An admission is what a call took at admission, to give back or settle
// when it ends.
type admission struct {
	tier    guard.Tier
	res     *guard.Reservation
	release func(actual float64)
	stream  func()
	Headers guard.Headers
}

// admit holds req to its caller's tier before any upstream call: tokens,
// messages, body size, models and tools, then rate limits and budgets. It
// may lower req's max output tokens or drop tools, as the tier says. The
// returned admission must be settled (settle) when the call ends.
func (p *Pipeline) admit(ctx context.Context, req *sluice.Request) (*sluice.Request, *admission, error) {
	req, a, err := p.admitCall(ctx, req)
	if err != nil && p.metrics != nil {
		var r guard.Refusal
		if errors.As(err, &r) {
			p.metrics.Refused(string(r))
		}
	}
	return req, a, err
}

func (p *Pipeline) admitCall(ctx context.Context, req *sluice.Request) (*sluice.Request, *admission, error) {
	g := p.guards
	if name := req.Caller.Tier; name != "" {
		if _, ok := g.tiers[name]; !ok {
			// A key of a tier since removed from the config is held to
			// nothing rather than to no limits.
			return nil, nil, &sluice.Error{Code: sluice.CodePermissionDenied, Message: "This key's tier is not configured on this gateway."}
		}
	}
	t := g.tier(req)
	info, _ := ctx.Value(infoKey{}).(*CallInfo)
	body := 0
	if info != nil {
		body = info.BodyBytes
	}
	upstream := g.primary[req.Model]
	_, tenantBudget := g.tenants[req.Caller.Tenant]
	count := t.NeedsCount() || g.ip.TPM > 0 || tenantBudget
	adm, err := guard.AdmitCounting(req, upstream, t, body, count)
	if err != nil {
		return nil, nil, err
	}
	if adm.Clamped || len(adm.Dropped) > 0 || adm.MaxOutputTokens != req.MaxOutputTokens {
		cp := *req // the caller's request stays as it was
		req = &cp
		adm.Apply(req)
	}
	a := &admission{tier: t}
	who := guard.Identity{KeyID: req.Caller.Key, User: req.Caller.User, Tenant: req.Caller.Tenant, IP: req.Caller.IP}
	if who.KeyID == "" {
		// Callers without a key (keys not required) share one key's
		// limits, budgets and streams: the default tier's.
		who.KeyID = AnonymousKey
	}
	res, hdrs, err := g.limits.Reserve(ctx, who, t, g.ip, adm.PromptTokens, adm.OutputReserve())
	a.Headers = hdrs
	if info != nil {
		info.RateLimits = hdrs
	}
	if err != nil {
		return nil, nil, err
	}
	a.res = res
	if t.DailyBudgetUSD > 0 || t.MonthlyBudgetUSD > 0 || tenantBudget {
		cost := g.pricing.Estimate(upstream, adm.PromptTokens, adm.OutputReserve())
		release, err := g.budgets.Reserve(ctx, who.KeyID, req.Caller.Tenant, cost, t)
		if err != nil {
			res.Settle(context.WithoutCancel(ctx), 0)
			return nil, nil, err
		}
		a.release = release
	}
	if req.Stream && t.MaxStreams > 0 {
		release, err := g.streams.Acquire(who.KeyID, t.MaxStreams)
		if err != nil {
			res.Settle(context.WithoutCancel(ctx), 0)
			if a.release != nil {
				a.release(0)
			}
			return nil, nil, err
		}
		a.stream = release
	}
	return req, a, nil
}

// settle gives back what the call took beyond what it used.
func (a *admission) settle(ctx context.Context, rec Record) {
	if a == nil || (a.res == nil && a.release == nil && a.stream == nil) {
		return
	}
	ctx = context.WithoutCancel(ctx)
	a.res.Settle(ctx, rec.Usage.TotalTokens())
	if a.release != nil {
		a.release(rec.Cost)
	}
	if a.stream != nil {
		a.stream()
	}
}

type infoKey struct{}

// CallInfo is what a caller may learn of its call as soon as its answer
// starts, for the answer's headers.
type CallInfo struct {
	// BodyBytes is the size of the request body the call came in (set by
	// the caller, for the tiers' max_body_bytes; 0 when unknown).
	BodyBytes int
	// RateLimits are the rate limits the call was held to (the
	// x-ratelimit-* headers); set at admission.
	RateLimits guard.Headers
	// Attempts counts the upstream calls made before the answer (or the
	// error) came: retries, fallbacks and hedges included.
	Attempts int
	// CacheHit reports that the answer came from the route's response
	// cache (the Sluice-Cache: hit header).
	CacheHit bool
	// Dialect is the caller's dialect ("openai", "anthropic"), for the
	// metrics; empty means an in-process caller ("go").
	Dialect string
	// Ended reports that the call has ended and Usage, CostUSD and
	// Repairs are its own (set when its record is made: before Complete
	// or Contract returns, when a stream is released).
	Ended   bool
	Usage   sluice.Usage
	CostUSD float64
	Repairs int
	// Received is when the request arrived (set by the caller): the
	// call's Record starts there, so that its duration and overhead
	// count the decoding before it. Zero: when the pipeline got the call.
	Received time.Time
}

// WithCallInfo returns a context whose Complete, Stream or contract call
// fills *info: the rate limits at admission, the attempts when the answer
// starts.
func WithCallInfo(ctx context.Context, info *CallInfo) context.Context {
	return context.WithValue(ctx, infoKey{}, info)
}

// noteAttempts copies the call's attempts so far into its CallInfo.
func noteAttempts(ctx context.Context) {
	info, ok := ctx.Value(infoKey{}).(*CallInfo)
	if !ok {
		return
	}
	if a, ok := ctx.Value(attemptsKey{}).(*attempts); ok {
		info.Attempts = a.n
	}
}

// ledgerRow returns the usage ledger's row of rec.
func ledgerRow(rec Record) store.LedgerRow {
	row := store.LedgerRow{
		Time: rec.Start, RequestID: rec.ID, KeyID: rec.Caller.Key, Tenant: rec.Caller.Tenant, Tier: rec.Caller.Tier, User: rec.Caller.User,
		Route: rec.Model, Contract: rec.Contract, Provider: rec.Provider, UpstreamModel: rec.UpstreamModel, Stream: rec.Stream,
		InputTokens: int64(rec.Usage.InputTokens), OutputTokens: int64(rec.Usage.OutputTokens),
		CachedTokens: int64(rec.Usage.CacheReadTokens), ReasoningTokens: int64(rec.Usage.ReasoningTokens),
		Estimated: rec.Estimated, CostUSD: rec.Cost, Latency: rec.Duration, TTFT: rec.TTFT, Status: rec.Status,
		Attempts: rec.Attempts, Failovers: rec.Failovers,
		ParseFailures: rec.ParseFailures, SchemaFailures: rec.SchemaFailures, Repairs: rec.Repairs,
	}
	if row.Time.IsZero() {
		row.Time = time.Now()
	}
	if rec.Err != nil {
		row.ErrorCode = rec.Code()
	}
	switch {
	case rec.ParseFailures == 0 && rec.SchemaFailures == 0 && !rec.structured:
	case sluice.ErrorCode(rec.Err) == sluice.CodeSchemaViolation:
		row.Outcome = store.OutcomeViolation
	case rec.Repaired:
		row.Outcome = store.OutcomeRepaired
	case rec.Err == nil:
		row.Outcome = store.OutcomeValid
	}
	return row
}
