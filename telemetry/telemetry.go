// Package telemetry holds Sluice's Prometheus metrics, its OpenTelemetry
// traces and the redaction of logged text. Metrics are observed once per
// call from the pipeline's record of it, plus a few live gauges (open
// streams, breaker states, budgets). Label values are bounded: routes are
// the configured model and contract names (the pipeline maps any other to
// "other"), models and providers the configured ones, codes the closed set
// of error codes; never a key, user or request id.
package telemetry

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// A Call is what the metrics observe of one finished call.
type Call struct {
	Route    string // the public model or contract name, or "other"
	Model    string // the upstream model that served it; "" if none did
	Provider string // the provider that served it; "" if none did
	Dialect  string // the client's dialect: "openai", "anthropic" or "go"
	Stream   bool
	Code     string // "ok", or the client-safe error code
	Duration time.Duration
	// Overhead is the time the gateway spent outside the upstream call:
	// admission before it, and for a whole answer the checks and
	// encoding after it; for a stream, the part of the time to first
	// token not spent waiting on the upstream. Negative means unknown.
	Overhead time.Duration

	InputTokens, OutputTokens, CachedTokens int
	CostUSD                                 float64
	// Failovers counts the mid-stream takeovers; Retries, Fallbacks and
	// Hedges the attempts that retried a target, moved on to another, or
	// ran beside a slow one.
	Failovers                  int
	Retries, Fallbacks, Hedges int
	// TTFT is a stream's time to its first content; zero if none.
	TTFT time.Duration
	// Structured reports whether the answer had a schema to meet; then
	// ParseFailures and SchemaFailures count answers that were not JSON
	// or broke the schema, Repairs the repair requests made, Repaired
	// whether a repair produced the valid answer.
	Structured                             bool
	ParseFailures, SchemaFailures, Repairs int
	Repaired                               bool
}

// Metrics are the gateway's metrics, registered on the Registerer given to
// New (never the global one). It is safe for concurrent use.
type Metrics struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	ttft          *prometheus.HistogramVec
	tbt           *prometheus.HistogramVec
	overhead      *prometheus.HistogramVec
	tokens        *prometheus.CounterVec
	cost          *prometheus.CounterVec
	attempts      *prometheus.CounterVec
	kinds         *prometheus.CounterVec
	contractCalls *prometheus.CounterVec
	contractFails *prometheus.CounterVec
	repairs       *prometheus.CounterVec
	breaker       *prometheus.GaugeVec
	changes       *prometheus.CounterVec
	refusals      *prometheus.CounterVec
	budget        *budgetGauge
	streams       *prometheus.GaugeVec
	storeFails    *prometheus.CounterVec
}

// Buckets are the latency buckets of whole calls and of the time to first
// token, in seconds: LLM calls run from tens of milliseconds to many
// minutes (10 ms to 10 min).
var Buckets = prometheus.ExponentialBucketsRange(0.01, 600, 20)

// GapBuckets are the buckets of the time between tokens: 1 ms to 10 s.
var GapBuckets = prometheus.ExponentialBucketsRange(0.001, 10, 15)

// OverheadBuckets are the buckets of the gateway's own added latency: 50 µs
// to 1 s.
var OverheadBuckets = prometheus.ExponentialBucketsRange(0.00005, 1, 16)

// metric names, in the order New registers them.
var names = []string{
	"sluice_requests_total", "sluice_request_duration_seconds", "sluice_time_to_first_token_seconds",
	"sluice_time_between_tokens_seconds", "sluice_overhead_seconds", "sluice_tokens_total", "sluice_cost_usd_total",
	"sluice_upstream_attempts_total", "sluice_upstream_attempt_kinds_total", "sluice_contract_calls_total",
	"sluice_contract_failures_total", "sluice_contract_repairs_total", "sluice_breaker_state",
	"sluice_breaker_transitions_total", "sluice_limit_refusals_total", "sluice_budget_used_ratio",
	"sluice_open_streams", "sluice_guard_store_failures_total",
}

// MetricNames returns the names of the metric families New registers.
func MetricNames() []string { return append([]string(nil), names...) }

// New returns Metrics registered on reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	}
	m := &Metrics{
		requests: counter(names[0], "Calls by route, upstream model, provider, client dialect, streaming and outcome (ok or the error code).",
			"route", "model", "provider", "dialect", "stream", "code"),
		duration: histogram(names[1], "Time from a call's start to its end, streams included.", Buckets, "route", "dialect", "stream"),
		ttft:     histogram(names[2], "Time from a stream's start to its first content.", Buckets, "route", "provider"),
		tbt:      histogram(names[3], "Time between a stream's successive pieces of content.", GapBuckets, "route", "provider"),
		overhead: histogram(names[4], "Time a call spent in the gateway outside the upstream call (for a stream: of its time to first token).",
			OverheadBuckets, "route", "stream"),
		tokens: counter(names[5], "Tokens by route, upstream model, provider and direction (input, output, cached_input).",
			"route", "model", "provider", "direction"),
		cost:     counter(names[6], "Cost in US dollars, from the price table and the usage.", "route", "model", "provider"),
		attempts: counter(names[7], "Upstream attempts by provider and outcome: ok, the error code, hedge_lost, breaker_open or bulkhead_full.", "provider", "outcome"),
		kinds: counter(names[8], "Upstream attempts that retried a target (retry), moved on to the next (fallback), hedged a slow one (hedge) or took over a broken stream (failover).",
			"route", "kind"),
		contractCalls: counter(names[9], "Calls with a schema to meet that got an answer to check, by outcome: valid, repaired or violation.", "route", "outcome"),
		contractFails: counter(names[10], "Structured answers that were not JSON (parse) or broke their schema (validation), calls a repair made valid (repaired) and calls that broke it after every repair (exhausted).",
			"route", "kind"),
		repairs:  counter(names[11], "Repair requests made.", "route"),
		breaker:  gauge(names[12], "Circuit breaker state of a target: 0 closed, 1 open, 2 half-open.", "provider", "upstream_model"),
		changes:  counter(names[13], "Circuit breaker state changes, by the state entered.", "provider", "upstream_model", "to"),
		refusals: counter(names[14], "Calls refused by a limit, a budget or the tier before any upstream call, by limit.", "limit"),
		budget: &budgetGauge{desc: prometheus.NewDesc(names[15], "Spend over budget this UTC day or month: of a tenant, or the highest of a tier's keys seen by this instance.",
			[]string{"scope", "name", "period"}, nil), vals: map[[3]string]budgetValue{}, now: time.Now},
		streams:    gauge(names[16], "Streams open now.", "route"),
		storeFails: counter(names[17], "Failures of the stores admission relies on: the shared rate limiter (limiter) and the ledger budgets read (budget).", "store"),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.ttft, m.tbt, m.overhead, m.tokens, m.cost,
		m.attempts, m.kinds, m.contractCalls, m.contractFails, m.repairs, m.breaker, m.changes, m.refusals,
		m.budget, m.streams, m.storeFails} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Observe records one finished call.
func (m *Metrics) Observe(c Call) {
	stream := strconv.FormatBool(c.Stream)
	m.requests.WithLabelValues(c.Route, c.Model, c.Provider, c.Dialect, stream, c.Code).Inc()
	m.duration.WithLabelValues(c.Route, c.Dialect, stream).Observe(c.Duration.Seconds())
	if c.Overhead >= 0 {
		m.overhead.WithLabelValues(c.Route, stream).Observe(c.Overhead.Seconds())
	}
	if c.InputTokens > 0 {
		m.tokens.WithLabelValues(c.Route, c.Model, c.Provider, "input").Add(float64(c.InputTokens))
	}
	if c.OutputTokens > 0 {
		m.tokens.WithLabelValues(c.Route, c.Model, c.Provider, "output").Add(float64(c.OutputTokens))
	}
	if c.CachedTokens > 0 {
		m.tokens.WithLabelValues(c.Route, c.Model, c.Provider, "cached_input").Add(float64(c.CachedTokens))
	}
	if c.CostUSD > 0 {
		m.cost.WithLabelValues(c.Route, c.Model, c.Provider).Add(c.CostUSD)
	}
	for _, k := range [...]struct {
		n    int
		kind string
	}{{c.Retries, "retry"}, {c.Fallbacks, "fallback"}, {c.Hedges, "hedge"}, {c.Failovers, "failover"}} {
		if k.n > 0 {
			m.kinds.WithLabelValues(c.Route, k.kind).Add(float64(k.n))
		}
	}
	if c.TTFT > 0 {
		m.ttft.WithLabelValues(c.Route, c.Provider).Observe(c.TTFT.Seconds())
	}
	if !c.Structured {
		return
	}
	// The outcome of a call with an answer to check; a call that failed
	// otherwise (or was refused) had none.
	switch {
	case c.Code == "schema_violation":
		m.contractCalls.WithLabelValues(c.Route, "violation").Inc()
		m.contractFails.WithLabelValues(c.Route, "exhausted").Inc()
	case c.Code != "ok":
	case c.Repaired:
		m.contractCalls.WithLabelValues(c.Route, "repaired").Inc()
		m.contractFails.WithLabelValues(c.Route, "repaired").Inc()
	default:
		m.contractCalls.WithLabelValues(c.Route, "valid").Inc()
	}
	if c.ParseFailures > 0 {
		m.contractFails.WithLabelValues(c.Route, "parse").Add(float64(c.ParseFailures))
	}
	if c.SchemaFailures > 0 {
		m.contractFails.WithLabelValues(c.Route, "validation").Add(float64(c.SchemaFailures))
	}
	if c.Repairs > 0 {
		m.repairs.WithLabelValues(c.Route).Add(float64(c.Repairs))
	}
}

// Attempt records one upstream attempt of provider and how it ended: "ok",
// an error code, "hedge_lost", "breaker_open" or "bulkhead_full".
func (m *Metrics) Attempt(provider, outcome string) {
	m.attempts.WithLabelValues(provider, outcome).Inc()
}

// A Gaps observes the time between a stream's pieces of content.
type Gaps struct{ o prometheus.Observer }

// Gaps returns the observer of the time between tokens of a stream of
// route served by provider. The zero Gaps observes nothing.
func (m *Metrics) Gaps(route, provider string) Gaps {
	return Gaps{m.tbt.WithLabelValues(route, provider)}
}

// Observe records one gap.
func (g Gaps) Observe(d time.Duration) {
	if g.o != nil {
		g.o.Observe(d.Seconds())
	}
}

// StreamOpened counts a stream of route as open, until the function it
// returns is called (once).
func (m *Metrics) StreamOpened(route string) (closed func()) {
	g := m.streams.WithLabelValues(route)
	g.Inc()
	return g.Dec
}

// Refused records a call refused by limit (see sluice_limit_refusals_total).
func (m *Metrics) Refused(limit string) { m.refusals.WithLabelValues(limit).Inc() }

// BudgetUsed sets the spend over budget of a tenant ("tenant") or of a
// tier's most spent key ("tier") for period "day" or "month" (UTC), now.
// Within a period the gauge only rises (spend does; reports may come out
// of order); it reads 0 once the period is over, until the next report.
func (m *Metrics) BudgetUsed(scope, name, period string, ratio float64) {
	m.budget.set([3]string{scope, name, period}, ratio)
}

// budgetGauge is sluice_budget_used_ratio: the highest ratio reported in
// the current period of each series.
type budgetGauge struct {
	desc *prometheus.Desc
	now  func() time.Time
	mu   sync.Mutex
	vals map[[3]string]budgetValue
}

type budgetValue struct {
	period int64 // periodOf when it was reported
	ratio  float64
}

// periodOf returns the number of the UTC day or month t is in.
func periodOf(period string, t time.Time) int64 {
	t = t.UTC()
	if period == "month" {
		return int64(t.Year())*12 + int64(t.Month())
	}
	return t.Unix() / 86400
}

func (b *budgetGauge) set(key [3]string, ratio float64) {
	p := periodOf(key[2], b.now())
	b.mu.Lock()
	defer b.mu.Unlock()
	if v, ok := b.vals[key]; ok && v.period == p && v.ratio >= ratio {
		return
	}
	b.vals[key] = budgetValue{p, ratio}
}

// Describe implements prometheus.Collector.
func (b *budgetGauge) Describe(ch chan<- *prometheus.Desc) { ch <- b.desc }

// Collect implements prometheus.Collector.
func (b *budgetGauge) Collect(ch chan<- prometheus.Metric) {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, v := range b.vals {
		ratio := v.ratio
		if v.period != periodOf(k[2], now) {
			ratio = 0 // a new period: nothing spent in it yet, as far as reported
		}
		ch <- prometheus.MustNewConstMetric(b.desc, prometheus.GaugeValue, ratio, k[0], k[1], k[2])
	}
}

// BreakerChanged records that the circuit breaker of a target entered
// state to ("closed", "open" or "half-open").
func (m *Metrics) BreakerChanged(provider, model, to string) {
	v := 0.0
	switch to {
	case "open":
		v = 1
	case "half-open":
		v = 2
	}
	m.breaker.WithLabelValues(provider, model).Set(v)
	m.changes.WithLabelValues(provider, model, to).Inc()
}

// GuardStoreFailed records a failure of a store admission relies on
// ("limiter" or "budget").
func (m *Metrics) GuardStoreFailed(store string) { m.storeFails.WithLabelValues(store).Inc() }
