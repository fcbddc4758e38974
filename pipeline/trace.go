package pipeline

import (
	"context"
	"net/http"
	"time"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/router"
	"github.com/sluice-gw/sluice/telemetry"
)

// startSpan starts the span of a call of req (its route is its contract
// or its model, as the metrics name it), returning ctx carrying it.
func (p *Pipeline) startSpan(ctx context.Context, req *sluice.Request, stream bool) context.Context {
	info, _ := ctx.Value(infoKey{}).(*CallInfo)
	contract, _ := ctx.Value(contractKey{}).(string)
	route := p.routeLabel(Record{Model: req.Model, Contract: contract})
	return p.tracing.StartCall(ctx, telemetry.CallStart{
		Operation: "chat", Route: route, RequestModel: req.Model, Stream: stream,
		MaxTokens: req.MaxOutputTokens, RequestID: req.ID, Dialect: dialectOf(info),
	})
}

// attemptSpan records one upstream attempt, ended at end, under the call's
// span in ctx.
func (p *Pipeline) attemptSpan(ctx context.Context, at router.Attempt, end time.Time, outcome string, fallback bool) {
	p.tracing.Attempt(ctx, telemetry.AttemptSpan{
		Provider: at.Provider, Model: at.Model, Start: end.Add(-at.Duration), Duration: at.Duration, Wait: at.Wait,
		Outcome: outcome, Retry: at.Retry, Fallback: fallback, Hedge: at.Hedge, Lost: at.Lost, Skipped: at.Skipped,
		InputTokens: at.Usage.InputTokens, OutputTokens: at.Usage.OutputTokens,
	})
}

// endSpan ends the call's span with rec.
func (p *Pipeline) endSpan(ctx context.Context, rec Record) {
	end := telemetry.CallEnd{
		Provider: rec.Provider, ResponseModel: rec.UpstreamModel,
		InputTokens: rec.Usage.InputTokens, OutputTokens: rec.Usage.OutputTokens,
		CostUSD: rec.Cost, TTFT: rec.TTFT, Code: "ok",
	}
	switch code := rec.Code(); code {
	case "":
	case CodeClientClosed:
		// The caller's doing, not a failure: the span ends as it would.
	default:
		end.Code = code
	}
	if rec.finish != "" {
		end.FinishReasons = []string{string(rec.finish)}
	}
	p.tracing.EndCall(ctx, end)
}

// traced returns c sending the trace context of each call upstream when
// t is on; c itself otherwise.
func traced(t *telemetry.Tracing, c *http.Client) *http.Client {
	if t == nil {
		return c
	}
	if c == nil {
		c = &http.Client{}
	}
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	cp := *c
	cp.Transport = t.Transport(base)
	return &cp
}
