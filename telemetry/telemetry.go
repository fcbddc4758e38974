// Package telemetry holds Sluice's Prometheus metrics: what each call cost
// and how it ended, observed once per call from the pipeline's record of
// it. Label values are bounded: routes are the configured model names (the
// pipeline maps any other to "other"), providers the configured provider
// names, codes the closed set of error codes.
package telemetry

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// A Call is what the metrics observe of one finished call.
type Call struct {
	Route    string // the public model name, or "other"
	Provider string // the provider that served it; "" if none did
	Stream   bool
	Code     string // "ok", or the client-safe error code
	Duration time.Duration

	InputTokens, OutputTokens int
	// Attempts counts upstream calls (fallbacks, repairs and failovers
	// included); Failovers the mid-stream takeovers; Retries, Fallbacks
	// and Hedges the attempts that retried a target, moved on to another,
	// or ran beside a slow one.
	Attempts, Failovers        int
	Retries, Fallbacks, Hedges int
	// TTFT is a stream's time to its first content; zero if none.
	TTFT time.Duration
	// Structured answers: answers that were not JSON, answers that broke
	// their schema, repair requests, and whether a repair succeeded.
	ParseFailures, SchemaFailures, Repairs int
	Repaired                               bool
}

// Metrics are the gateway's metrics, registered on the Registerer given to
// New (never the global one). It is safe for concurrent use.
type Metrics struct {
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	tokens     *prometheus.CounterVec
	attempts   *prometheus.CounterVec
	failovers  *prometheus.CounterVec
	structured *prometheus.CounterVec
	repairs    *prometheus.CounterVec
	kinds      *prometheus.CounterVec
	ttft       *prometheus.HistogramVec
	breaker    *prometheus.GaugeVec
	changes    *prometheus.CounterVec
	storeFails *prometheus.CounterVec
}

// Buckets are the latency buckets, in seconds: LLM calls run from tens of
// milliseconds to many minutes.
var Buckets = prometheus.ExponentialBucketsRange(0.01, 600, 20)

// New returns Metrics registered on reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_requests_total", Help: "Calls by route, provider, streaming and outcome (ok or the error code).",
		}, []string{"route", "provider", "stream", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sluice_request_duration_seconds", Help: "Time from the call's start to its end, streams included.", Buckets: Buckets,
		}, []string{"route", "stream"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_tokens_total", Help: "Tokens by route, provider and direction (input, output).",
		}, []string{"route", "provider", "direction"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_upstream_attempts_total", Help: "Upstream calls made, fallbacks, repairs and failovers included.",
		}, []string{"route"}),
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_stream_failovers_total", Help: "Broken streams continued on another target.",
		}, []string{"route"}),
		structured: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_structured_failures_total", Help: "Structured answers that were not JSON (parse) or broke their schema (schema).",
		}, []string{"route", "provider", "kind"}),
		repairs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_structured_repairs_total", Help: "Repair requests made (attempted) and calls a repair made valid (succeeded).",
		}, []string{"route", "provider", "outcome"}),
		kinds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_upstream_attempt_kinds_total", Help: "Upstream attempts that retried a target (retry), moved on to the next (fallback) or hedged a slow one (hedge).",
		}, []string{"route", "kind"}),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sluice_time_to_first_token_seconds", Help: "Time from a stream's start to its first content.", Buckets: Buckets,
		}, []string{"route"}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_breaker_state", Help: "Circuit breaker state of a target: 0 closed, 1 open, 2 half-open.",
		}, []string{"provider", "upstream_model"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_breaker_transitions_total", Help: "Circuit breaker state changes, by the state entered.",
		}, []string{"provider", "upstream_model", "to"}),
		storeFails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_guard_store_failures_total", Help: "Failures of the stores admission relies on: the shared rate limiter (limiter) and the ledger budgets read (budget).",
		}, []string{"store"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.tokens, m.attempts, m.failovers, m.structured, m.repairs,
		m.kinds, m.ttft, m.breaker, m.changes, m.storeFails} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Observe records one finished call.
func (m *Metrics) Observe(c Call) {
	stream := strconv.FormatBool(c.Stream)
	m.requests.WithLabelValues(c.Route, c.Provider, stream, c.Code).Inc()
	m.duration.WithLabelValues(c.Route, stream).Observe(c.Duration.Seconds())
	if c.InputTokens > 0 {
		m.tokens.WithLabelValues(c.Route, c.Provider, "input").Add(float64(c.InputTokens))
	}
	if c.OutputTokens > 0 {
		m.tokens.WithLabelValues(c.Route, c.Provider, "output").Add(float64(c.OutputTokens))
	}
	if c.Attempts > 0 {
		m.attempts.WithLabelValues(c.Route).Add(float64(c.Attempts))
	}
	if c.Failovers > 0 {
		m.failovers.WithLabelValues(c.Route).Add(float64(c.Failovers))
	}
	if c.Retries > 0 {
		m.kinds.WithLabelValues(c.Route, "retry").Add(float64(c.Retries))
	}
	if c.Fallbacks > 0 {
		m.kinds.WithLabelValues(c.Route, "fallback").Add(float64(c.Fallbacks))
	}
	if c.Hedges > 0 {
		m.kinds.WithLabelValues(c.Route, "hedge").Add(float64(c.Hedges))
	}
	if c.TTFT > 0 {
		m.ttft.WithLabelValues(c.Route).Observe(c.TTFT.Seconds())
	}
	if c.ParseFailures > 0 {
		m.structured.WithLabelValues(c.Route, c.Provider, "parse").Add(float64(c.ParseFailures))
	}
	if c.SchemaFailures > 0 {
		m.structured.WithLabelValues(c.Route, c.Provider, "schema").Add(float64(c.SchemaFailures))
	}
	if c.Repairs > 0 {
		m.repairs.WithLabelValues(c.Route, c.Provider, "attempted").Add(float64(c.Repairs))
	}
	if c.Repaired {
		m.repairs.WithLabelValues(c.Route, c.Provider, "succeeded").Inc()
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
