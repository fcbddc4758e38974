// Package guard admits requests: it authenticates API keys, applies a
// key's tier (models, prompt and output tokens, messages, body size, tool
// allowlists), counts prompt tokens before the call, enforces requests and
// tokens per minute per key, user and client address, and keeps spend
// within daily and monthly budgets priced from a table.
//
// The pieces are plain values the pipeline calls in order, each safe for
// concurrent use:
//
//	key, err := auth.Authenticate(ctx, guard.KeyFromHeader(r.Header)) // Authenticator
//	tier := tiers[key.Tier].Tighten(routeLimits)                        // Tier
//	adm, err := guard.Admit(req, upstreamModel, tier, bodyBytes)        // Admission
//	res, hdrs, err := limits.Reserve(ctx, who, tier, ipRate, adm.PromptTokens, adm.OutputReserve())
//	release, err := budgets.Reserve(ctx, key.ID, key.Tenant, pricing.Estimate(upstreamModel, adm.PromptTokens, adm.OutputReserve()), tier)
//	// ... the call ...
//	res.Settle(ctx, usage.TotalTokens())
//	release(pricing.Cost(upstreamModel, usage))
//
// Every refusal is a *sluice.Error with a client-safe message.
package guard
