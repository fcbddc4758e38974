package pipeline

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/contract"
	"github.com/sluice-gw/sluice/guard"
	"github.com/sluice-gw/sluice/router"
	"github.com/sluice-gw/sluice/telemetry"
)

// observe hands rec to the metrics, with bounded labels.
func (p *Pipeline) observe(rec Record, overhead time.Duration) {
	code := rec.Code()
	if code == "" {
		code = "ok"
	}
	p.metrics.Observe(telemetry.Call{
		Route: p.routeLabel(rec), Model: rec.UpstreamModel, Provider: rec.Provider, Dialect: rec.Dialect,
		Stream: rec.Stream, Code: code, Duration: rec.Duration, Overhead: overhead,
		InputTokens: rec.Usage.InputTokens, OutputTokens: rec.Usage.OutputTokens, CachedTokens: rec.Usage.CacheReadTokens,
		CostUSD: rec.Cost, Failovers: rec.Failovers, TTFT: rec.TTFT,
		Retries: rec.Retries, Fallbacks: rec.Fallbacks, Hedges: rec.Hedges,
		Structured:    rec.Structured(),
		ParseFailures: rec.ParseFailures, SchemaFailures: rec.SchemaFailures, Repairs: rec.Repairs, Repaired: rec.Repaired,
	})
}

// routeLabel returns the route a metric names for rec: its contract or its
// model, as configured; "other" for a name the config does not know (a
// client's made-up name must not become a label).
func (p *Pipeline) routeLabel(rec Record) string {
	if rec.Contract != "" {
		if _, ok := p.contracts[rec.Contract]; ok {
			return rec.Contract
		}
		return "other"
	}
	if _, ok := p.router.Route(rec.Model); ok {
		return rec.Model
	}
	return "other"
}

// A Record is what one call consumed and how it ended, reported once when
// it ends: when Complete returns, or when a stream ends, fails or is
// released early. It is what the usage ledger will keep; for now it goes to
// Options.OnRecord, to functions set with WithRecordFunc, and to the log.
type Record struct {
	// Model is the public model name; Contract the named contract called,
	// if any. Dialect is the caller's: "openai" or "anthropic" through
	// the gateway (CallInfo.Dialect), "go" in-process.
	Model    string
	Contract string
	Dialect  string
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

	// Prompt and Completion are the call's prompt (its system text and
	// messages, one "role: text" line each) and its answer's text, for a
	// route that logs them (log_content); empty otherwise. Secret-looking
	// strings in them are redacted (telemetry.Redact), then each is cut at
	// MaxLoggedContent bytes.
	Prompt, Completion string
	logContent         bool

	// RateLimits are the rate limits the call was held to at admission,
	// as its x-ratelimit-* headers said (zero when none applied).
	RateLimits guard.Headers

	whole      bool       // a checked stream's answer came whole (then broke its schema)
	structured bool       // the answer had a schema to meet
	adm        *admission // what admission took, settled when the call ends
	cacheHit   bool       // the answer came from the response cache
	replayed   bool       // the answer was an Idempotency-Key's kept one
	started    bool       // a stream that was handed to its caller
	closed     bool       // the caller left, or released its stream, before the end
	tracked    *attempts  // the call's attempts, for AttemptDetail
	finish     sluice.FinishReason
}

// NumAttemptDetails returns the number of the call's upstream attempts,
// which AttemptDetail returns one by one, in the order the router
// reported them (a hedged race's when it was over).
func (r Record) NumAttemptDetails() int {
	if r.tracked == nil {
		return 0
	}
	return r.tracked.nd + len(r.tracked.more)
}

// AttemptDetail returns the i-th of the call's attempts, 0 ≤ i <
// NumAttemptDetails.
func (r Record) AttemptDetail(i int) AttemptDetail {
	a := r.tracked
	if i < a.nd {
		return a.details[i]
	}
	return a.more[i-a.nd]
}

// Structured reports whether the call's answer had a schema to meet (a
// contract, or a json_schema or json_object request).
func (r Record) Structured() bool {
	return r.structured || r.ParseFailures > 0 || r.SchemaFailures > 0
}

// CodeClientClosed is the Code of a call whose caller left (or released
// its stream) before its end: not a failure of the gateway or the
// upstream, and never an answer's error code.
const CodeClientClosed = "client_closed"

// Code returns how the call ended, as the metrics, the log line, the span
// and the ledger name it: "" for a complete answer, CodeClientClosed when
// its caller left before the end, else the error's code.
func (r Record) Code() string {
	switch {
	case r.Err == nil:
		return ""
	case r.closed:
		return CodeClientClosed
	}
	return string(sluice.ErrorCode(r.Err))
}

type recordKey struct{}

// WithRecordFunc returns a context whose calls report their Record to f as
// well, once each, from the goroutine that ends the call: for a caller that
// wants the usage of its own calls, as the gateway's access log does.
func WithRecordFunc(ctx context.Context, f func(Record)) context.Context {
	return context.WithValue(ctx, recordKey{}, f)
}

// attempts follows the upstream calls of one call, as the router reports
// them, and hands each to the metrics and the trace.
type attempts struct {
	p                             *Pipeline
	ctx                           context.Context // the call's, with its span
	n, retries, fallbacks, hedges int
	provider, model               string
	lost                          sluice.Usage // of hedges that lost
	failed                        bool         // the last attempt failed
	// first and last bound the time spent in upstream calls: from the
	// start of the first to the end of the last.
	first, last time.Time
	// details are the attempts as they went, for AttemptDetail: the
	// first two inline, the rest in more.
	details [2]AttemptDetail
	nd      int
	more    []AttemptDetail
}

// An AttemptDetail is one upstream attempt of a call.
type AttemptDetail struct {
	Provider, Model string
	// Outcome is "ok", the error code, "hedge_lost", "client_closed",
	// "breaker_open" or "bulkhead_full"; Kind "first", "retry",
	// "fallback" or "hedge".
	Outcome, Kind  string
	Duration, Wait time.Duration
}

func (a *attempts) add(at router.Attempt) {
	now := time.Now()
	retry, hedge, fallback := at.Retry, at.Hedge, !at.Retry && !at.Hedge && a.failed
	outcome := a.observe(at, now, fallback)
	kind := "first"
	switch {
	case retry:
		kind = "retry"
	case hedge:
		kind = "hedge"
	case fallback:
		kind = "fallback"
	}
	d := AttemptDetail{Provider: at.Provider, Model: at.Model, Outcome: outcome, Kind: kind, Duration: at.Duration, Wait: at.Wait}
	if a.nd < len(a.details) {
		a.details[a.nd] = d
		a.nd++
	} else {
		a.more = append(a.more, d)
	}
	if at.Skipped {
		// An open breaker or a full bulkhead: the target was not called,
		// and the next one is a fallback.
		a.failed = true
		return
	}
	a.n++
	switch {
	case retry:
		a.retries++
	case hedge:
		a.hedges++
	case fallback:
		a.fallbacks++
	}
	a.failed = at.Err != nil && !at.Lost
	if at.Lost {
		a.lost = a.lost.Add(at.Usage)
	}
	if at.Err == nil {
		a.provider, a.model = at.Provider, at.Model
	}
	if start := now.Add(-at.Duration); a.first.IsZero() || start.Before(a.first) {
		a.first = start
	}
	a.last = now
}

// observe hands one attempt, ended at end, to the metrics and the trace,
// and returns its outcome.
func (a *attempts) observe(at router.Attempt, end time.Time, fallback bool) string {
	p := a.p
	outcome := attemptOutcome(at)
	if at.Err != nil && !at.Lost && a.ctx.Err() != nil && errors.Is(at.Err, context.Canceled) {
		outcome = CodeClientClosed
	}
	if p.metrics != nil {
		p.metrics.Attempt(at.Provider, outcome)
	}
	if p.tracing != nil {
		p.attemptSpan(a.ctx, at, end, outcome, fallback)
	}
	return outcome
}

// attemptOutcome names how an attempt ended, for its metric and span: "ok",
// "hedge_lost", "breaker_open", "bulkhead_full" or the error's code.
func attemptOutcome(at router.Attempt) string {
	switch {
	case at.Err == nil:
		return "ok"
	case at.Lost:
		return "hedge_lost"
	case errors.Is(at.Err, router.ErrBreakerOpen):
		return "breaker_open"
	case errors.Is(at.Err, router.ErrBulkheadFull):
		return "bulkhead_full"
	}
	return string(sluice.ErrorCode(at.Err))
}

// upstream returns the time the call spent in upstream calls so far, and
// whether it made any.
func (a *attempts) upstream() (time.Duration, bool) {
	if a == nil || a.first.IsZero() {
		return 0, false
	}
	return a.last.Sub(a.first), true
}

type attemptsKey struct{}

// track returns ctx with a fresh follower of the call's upstream attempts,
// which record reads, and the call's span when tracing is on.
func (p *Pipeline) track(ctx context.Context, req *sluice.Request, stream bool) context.Context {
	if p.tracing != nil {
		ctx = p.startSpan(ctx, req, stream)
	}
	a := &attempts{p: p}
	ctx = context.WithValue(router.WithAttemptFunc(ctx, a.add), attemptsKey{}, a)
	a.ctx = ctx
	return ctx
}

// newRecord starts the Record of a call of req.
func newRecord(ctx context.Context, req *sluice.Request, start time.Time) Record {
	contract, _ := ctx.Value(contractKey{}).(string)
	info, _ := ctx.Value(infoKey{}).(*CallInfo)
	if info != nil && !info.Received.IsZero() {
		start = info.Received
	}
	return Record{Model: req.Model, Contract: contract, Dialect: dialectOf(info), Stream: req.Stream, ID: req.ID, Caller: req.Caller, Start: start}
}

// dialectOf returns the dialect of a call with info: the gateway's, or "go"
// for an in-process caller.
func dialectOf(info *CallInfo) string {
	if info == nil || info.Dialect == "" {
		return "go"
	}
	return info.Dialect
}

// overhead returns the time rec spent in the gateway outside upstream
// calls (a is the call's attempts, nil if untracked): for a stream that
// started, the part of its time to first token not spent in the upstream
// calls that led to it; for any other call, its duration less its upstream
// calls. Negative means unknown (a stream that sent no content).
func overhead(rec Record, a *attempts) time.Duration {
	total := rec.Duration
	if rec.Stream && rec.started {
		if rec.TTFT <= 0 {
			return -1
		}
		total = rec.TTFT
	}
	up, _ := a.upstream()
	return max(total-up, 0)
}

// MaxLoggedContent is the most of a prompt or an answer a Record keeps.
const MaxLoggedContent = 32 << 10

// promptText returns req's system text and messages, one "role: text"
// line each, redacted and cut at MaxLoggedContent bytes.
func promptText(req *sluice.Request) string {
	var b strings.Builder
	if len(req.System) > 0 {
		b.WriteString("system: ")
		b.WriteString(sluice.JoinText(req.System))
	}
	for i := range req.Messages {
		if b.Len() >= MaxLoggedContent {
			break
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(string(req.Messages[i].Role))
		b.WriteString(": ")
		b.WriteString(req.Messages[i].Text())
	}
	return loggable(b.String())
}

// loggable returns s redacted, then cut at MaxLoggedContent bytes: in this
// order, so that a secret the cut would split is still found.
func loggable(s string) string { return cut(telemetry.Redact(s)) }

// cut returns s cut at MaxLoggedContent bytes (on a rune boundary), marked.
func cut(s string) string {
	if len(s) <= MaxLoggedContent {
		return s
	}
	n := MaxLoggedContent
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + " [cut]"
}

// startRecord returns the Record of a call of req made by p: newRecord's,
// with the prompt when the route logs content.
func (p *Pipeline) startRecord(ctx context.Context, req *sluice.Request) Record {
	rec := newRecord(ctx, req, time.Now())
	if p.logContent[req.Model] {
		rec.logContent = true
		rec.Prompt = promptText(req)
	}
	return rec
}

// answered notes the answer's text in rec when its route logs content.
func (rec *Record) answered(m *sluice.Message) {
	if rec.logContent {
		rec.Completion = loggable(m.Text())
	}
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
	a, _ := ctx.Value(attemptsKey{}).(*attempts)
	rec.tracked = a
	if a != nil {
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
	if rec.Err != nil && (errors.Is(rec.Err, errReleased) || (ctx.Err() != nil && errors.Is(rec.Err, context.Canceled))) {
		rec.closed = true
	}
	if g := p.guards; g != nil {
		model := rec.UpstreamModel
		if model == "" {
			model = g.primary[rec.Model]
		}
		rec.Cost = g.pricing.Cost(model, rec.Usage)
	}
	if rec.adm != nil {
		rec.RateLimits = rec.adm.Headers
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
	if info, ok := ctx.Value(infoKey{}).(*CallInfo); ok {
		info.Ended, info.Usage, info.CostUSD, info.Repairs = true, rec.Usage, rec.Cost, rec.Repairs
	}
	if p.metrics != nil {
		p.observe(rec, overhead(rec, a))
	}
	if p.tracing != nil {
		p.endSpan(ctx, rec)
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
	p.watch.notify(rec)
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
	bytes  int            // content sent, for the estimate
	last   time.Time      // of the last content
	gaps   telemetry.Gaps // the time between tokens
	closed func()         // of the open-streams gauge
	finish *sluice.Event
	err    error
	counts Record // ParseFailures and SchemaFailures, from a checkedStream
	text   []byte // the answer's text, for a route that logs content
}

func (p *Pipeline) meter(ctx context.Context, s sluice.Stream, base Record, schema *contract.Schema) sluice.Stream {
	base.started = true
	m := &meteredStream{p: p, ctx: ctx, base: base}
	if p.metrics != nil {
		route := p.routeLabel(base)
		provider := ""
		if a, ok := ctx.Value(attemptsKey{}).(*attempts); ok {
			provider = a.provider
		}
		m.gaps = p.metrics.Gaps(route, provider)
		m.closed = p.metrics.StreamOpened(route)
	}
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
		if m.base.logContent && ev.Type == sluice.EventText && len(m.text) <= 2*MaxLoggedContent {
			// Beyond the cut, so that a secret across it is still found.
			m.text = append(m.text, ev.Text...)
		}
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

// first notes the time to the first content, and the time since the last.
func (m *meteredStream) first() {
	now := time.Now()
	if m.ttft == 0 {
		m.ttft = max(now.Sub(m.base.Start), 1)
	} else {
		m.gaps.Observe(now.Sub(m.last))
	}
	m.last = now
}

func (m *meteredStream) release() error {
	m.stop()
	if m.closed != nil {
		m.closed()
	}
	rec := m.base
	rec.Usage, rec.Err, rec.TTFT = m.usage, m.err, m.ttft
	if rec.logContent {
		rec.Completion = loggable(string(m.text))
	}
	rec.ParseFailures, rec.SchemaFailures = m.counts.ParseFailures, m.counts.SchemaFailures
	if m.finish != nil {
		rec.Failovers, rec.finish = m.finish.Failovers, m.finish.FinishReason
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
