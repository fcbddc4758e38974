package pipeline

import (
	"context"
	"log/slog"

	"github.com/sluice-gw/sluice/config"
	"github.com/sluice-gw/sluice/router"
	"github.com/sluice-gw/sluice/telemetry"
)

// routePolicies returns the router's Route for model m, its policies set
// (its targets are added by the caller).
func routePolicies(m config.Model) router.Route {
	rt := router.Route{Name: m.Name, MidStreamFailover: m.Failover == config.FailoverMidStream}
	rt.Retry.Attempts = config.DefaultRetryAttempts
	if r := m.Retry; r != nil {
		if r.Attempts > 0 {
			rt.Retry.Attempts = r.Attempts
		}
		rt.Retry.Budget = r.Budget
	}
	if h := m.Hedge; h != nil {
		d, p95, _ := h.Delay()
		rt.Hedge = router.Hedge{After: d, P95: p95}
	}
	if b := m.Breaker; b != nil {
		rt.Breaker = router.Breaker{
			FailureRate: b.FailureRate, Window: b.Window.D(), MinRequests: b.MinRequests,
			Consecutive: b.Consecutive, OpenFor: b.OpenFor.D(),
		}
	}
	return rt
}

// routerOptions returns the router's options: the providers' bulkheads,
// and breaker changes reported to the log and the metrics.
func routerOptions(cfg *config.Config, logger *slog.Logger, m *telemetry.Metrics) router.Options {
	opts := router.Options{Bulkheads: map[string]router.Bulkhead{}}
	for _, pc := range cfg.Providers {
		if pc.MaxConcurrent > 0 {
			opts.Bulkheads[pc.Name] = router.Bulkhead{MaxConcurrent: pc.MaxConcurrent, QueueTimeout: pc.QueueTimeout.D()}
		}
	}
	opts.OnBreakerChange = func(c router.BreakerChange) {
		level := slog.LevelWarn
		if c.To == router.BreakerClosed {
			level = slog.LevelInfo
		}
		logger.LogAttrs(context.Background(), level, "circuit breaker "+c.To.String(),
			slog.String("provider", c.Provider), slog.String("upstream_model", c.Model),
			slog.String("from", c.From.String()), slog.String("to", c.To.String()))
		if m != nil {
			m.BreakerChanged(c.Provider, c.Model, c.To.String())
		}
	}
	return opts
}
