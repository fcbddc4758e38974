package pipeline

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/contract"
	"github.com/sluice-gw/sluice/router"
	"github.com/sluice-gw/sluice/telemetry"
)

// observe hands rec to the metrics, with bounded labels.
func (p *Pipeline) observe(rec Record) {
	route := rec.Model
	if _, ok := p.router.Route(route); !ok {
		route = "other" // a client's made-up name must not become a label
	}
	code := "ok"
	if rec.Err != nil {
		code = string(sluice.ErrorCode(rec.Err))
	}
	p.metrics.Observe(telemetry.Call{
		Route: route, Provider: rec.Provider, Stream: rec.Stream, Code: code, Duration: rec.Duration,
		InputTokens: rec.Usage.InputTokens, OutputTokens: rec.Usage.OutputTokens,
		Attempts: rec.Attempts, Failovers: rec.Failovers, TTFT: rec.TTFT,
		Retries: rec.Retries, Fallbacks: rec.Fallbacks, Hedges: rec.Hedges,
		ParseFailures: rec.ParseFailures, SchemaFailures: rec.SchemaFailures, Repairs: rec.Repairs, Repaired: rec.Repaired,
	})
}

// A Record is what one call consumed and how it ended, reported once when
// it ends: when Complete returns, or when a stream ends, fails or is
// released early. It is what the usage ledger will keep; for now it goes to
// Options.OnRecord, to functions set with WithRecordFunc, and to the log.
type Record struct {
	// Model is the public model name; Contract the named contract called,
	// if any.
	Model    string
	Contract string
	Stream   bool
	// ID is the request's id (sluice.Request.ID) and Caller who sent it.
	ID     string
	Caller sluice.Caller
	// Provider and UpstreamModel name the target that served the call
	// (the last that answered); empty if none did. Attempts counts the
	// upstream calls made: fallbacks, repairs and failovers included.
	Provider      string
	UpstreamModel string
	Attempts      int
	// Retries, Fallbacks and Hedges count the attempts that retried a
	// target, moved on to the next after a failure, or ran beside a slow
	// one. The usage of a hedge that lost is in Usage.
	Retries, Fallbacks, Hedges int
	// Usage is the call's usage as the upstream reported it. A stream that
	// ended before the upstream reported its output count has it estimated
	// from the content sent (four bytes a token), and Estimated set.
	Usage     sluice.Usage
	Estimated bool
	// Failovers counts the targets that took over a broken stream.
	Failovers int
	// For structured answers (json_schema, json_object): answers that were
	// not JSON, answers that broke the schema, repair requests made, and
	// whether a repair produced the valid answer.
	ParseFailures  int
	SchemaFailures int
	Repairs        int
	Repaired       bool
	// Err is nil for a complete answer, else why the call failed or the
	// stream ended early (a client that left: context.Canceled).
	Err error
	// Start is when the call began and Duration how long it took; TTFT is
	// a stream's time to its first content (zero for other calls).
	Start    time.Time
	Duration time.Duration
	TTFT     time.Duration
	// Status is the HTTP status the answer carries: 200 for an answer or a
	// stream that started (even one that then broke), else the error
	// code's.
	Status int

	// Cost is the call's cost in US dollars, from the price table and the
	// usage (hedges that lost included).
	Cost float64

	whole      bool       // a checked stream's answer came whole (then broke its schema)
	structured bool       // the answer had a schema to meet
	adm        *admission // what admission took, settled when the call ends
	cacheHit   bool       // the answer came from the response cache
	replayed   bool       // the answer was an Idempotency-Key's kept one
	started    bool       // a stream that was handed to its caller
}

type recordKey struct{}

// WithRecordFunc returns a context whose calls report their Record to f as
// well, once each, from the goroutine that ends the call: for a caller that
// wants the usage of its own calls, as the gateway's access log does.
func WithRecordFunc(ctx context.Context, f func(Record)) context.Context {
	return context.WithValue(ctx, recordKey{}, f)
}

// attempts follows the upstream calls of one call, as the router reports
// them.
type attempts struct {
	n, retries, fallbacks, hedges int
	provider, model               string
	lost                          sluice.Usage // of hedges that lost
	failed                        bool         // the last attempt failed
}

func (a *attempts) add(at router.Attempt) {
	if at.Skipped {
		// An open breaker or a full bulkhead: the target was not called,
		// and the next one is a fallback.
		a.failed = true
		return
	}
	a.n++
	switch {
	case at.Retry:
		a.retries++
	case at.Hedge:
		a.hedges++
	case a.failed:
		a.fallbacks++
	}
	a.failed = at.Err != nil && !at.Lost
	if at.Lost {
		a.lost = a.lost.Add(at.Usage)
	}
	if at.Err == nil {
		a.provider, a.model = at.Provider, at.Model
	}
}

type attemptsKey struct{}

// track returns ctx with a fresh follower of the call's upstream attempts,
// which record reads.
func track(ctx context.Context) context.Context {
	a := &attempts{}
	return context.WithValue(router.WithAttemptFunc(ctx, a.add), attemptsKey{}, a)
}

// newRecord starts the Record of a call of req.
func newRecord(ctx context.Context, req *sluice.Request, start time.Time) Record {
	contract, _ := ctx.Value(contractKey{}).(string)
	return Record{Model: req.Model, Contract: contract, Stream: req.Stream, ID: req.ID, Caller: req.Caller, Start: start}
}

type contractKey struct{}

// withContract returns ctx for a call of the named contract.
func withContract(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, contractKey{}, name)
}

// record reports rec, completed with the attempts the call's context saw.
func (p *Pipeline) record(ctx context.Context, rec Record) {
	if !rec.started {
		noteAttempts(ctx)
	}
	if a, ok := ctx.Value(attemptsKey{}).(*attempts); ok {
		rec.Provider, rec.UpstreamModel, rec.Attempts = a.provider, a.model, a.n
		if rec.cacheHit {
			// Served from the cache: the answer's tokens were not used
			// again (failed attempts before it may have been made).
			rec.Provider, rec.UpstreamModel, rec.Usage = "cache", "", sluice.Usage{}
		}
		rec.Retries, rec.Fallbacks, rec.Hedges = a.retries, a.fallbacks, a.hedges
		// A hedge that lost was still an upstream call: its usage counts.
		rec.Usage = rec.Usage.Add(a.lost)
	}
	if rec.replayed {
		rec.Provider = "idempotency"
	}
	if g := p.guards; g != nil {
		model := rec.UpstreamModel
		if model == "" {
			model = g.primary[rec.Model]
		}
		rec.Cost = g.pricing.Cost(model, rec.Usage)
	}
	rec.adm.settle(ctx, rec)
	if rec.Duration == 0 && !rec.Start.IsZero() {
		rec.Duration = time.Since(rec.Start)
	}
	if rec.Status == 0 {
		rec.Status = 200
		if rec.Err != nil && !(rec.Stream && rec.started) {
			rec.Status = sluice.AsError(rec.Err).Code.HTTPStatus()
		}
	}
	if p.metrics != nil {
		p.observe(rec)
	}
	if p.ledger != nil {
		p.ledger.Add(ledgerRow(rec))
	}
	if f, ok := ctx.Value(recordKey{}).(func(Record)); ok {
		f(rec)
	}
	if p.onRecord != nil {
		p.onRecord(context.WithoutCancel(ctx), rec)
	}
	if rec.Stream && rec.Err != nil && p.logger.Enabled(ctx, slog.LevelInfo) {
		p.logger.LogAttrs(ctx, slog.LevelInfo, "stream ended early",
			slog.String("model", rec.Model), slog.Int("input_tokens", rec.Usage.InputTokens),
			slog.Int("output_tokens", rec.Usage.OutputTokens), slog.Bool("estimated", rec.Estimated),
			slog.Any("error", rec.Err))
	}
}

// A meteredStream hands on a stream's events, with the public model name
// in EventStart, and reports its Record when it is released.
type meteredStream struct {
	p    *Pipeline
	ctx  context.Context
	base Record // what was known when the stream started
	ttft time.Duration
	next func() (sluice.Event, error)
	stop func()

	usage  sluice.Usage
	bytes  int // content sent, for the estimate
	finish *sluice.Event
	err    error
	counts Record // ParseFailures and SchemaFailures, from a checkedStream
}

func (p *Pipeline) meter(ctx context.Context, s sluice.Stream, base Record, schema *contract.Schema) sluice.Stream {
	base.started = true
	m := &meteredStream{p: p, ctx: ctx, base: base}
	if schema != nil {
		s = p.checkStream(s, schema, &m.counts)
	}
	m.next, m.stop = sluice.Pull(s)
	return sluice.NewStream(m.pull, m.release)
}

func (m *meteredStream) pull() (sluice.Event, error) {
	ev, err := m.next()
	if err != nil {
		if err != io.EOF {
			m.err = err
		}
		return ev, err
	}
	switch ev.Type {
	case sluice.EventStart:
		ev.Model = m.base.Model
		m.usage = ev.Usage
	case sluice.EventText, sluice.EventThinking:
		m.bytes += len(ev.Text)
		m.first()
	case sluice.EventToolCall:
		m.bytes += len(ev.ToolName) + len(ev.Arguments)
		m.first()
	case sluice.EventUsage:
		m.usage = ev.Usage
	case sluice.EventFinish:
		f := ev
		m.finish = &f
	}
	return ev, nil
}

// first notes the time to the first content.
func (m *meteredStream) first() {
	if m.ttft == 0 {
		m.ttft = max(time.Since(m.base.Start), 1)
	}
}

func (m *meteredStream) release() error {
	m.stop()
	rec := m.base
	rec.Usage, rec.Err, rec.TTFT = m.usage, m.err, m.ttft
	rec.ParseFailures, rec.SchemaFailures = m.counts.ParseFailures, m.counts.SchemaFailures
	if m.finish != nil {
		rec.Failovers = m.finish.Failovers
	} else if m.counts.whole {
		rec.Failovers = m.counts.Failovers
	} else if rec.Err == nil {
		rec.Err = context.Cause(m.ctx)
		if rec.Err == nil {
			rec.Err = errReleased
		}
	}
	if est := (m.bytes + 3) / 4; m.finish == nil && !m.counts.whole && est > rec.Usage.OutputTokens {
		// Cut short before the upstream counted all it sent.
		rec.Usage.OutputTokens = est
		rec.Estimated = true
	}
	m.p.record(m.ctx, rec)
	return nil
}

// errReleased is the Record error of a stream its caller released before
// its end.
var errReleased = errors.New("stream released before its end")
