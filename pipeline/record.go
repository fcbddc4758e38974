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
		Attempts: rec.Attempts, Failovers: rec.Failovers,
		ParseFailures: rec.ParseFailures, SchemaFailures: rec.SchemaFailures, Repairs: rec.Repairs, Repaired: rec.Repaired,
	})
}

// A Record is what one call consumed and how it ended, reported once when
// it ends: when Complete returns, or when a stream ends, fails or is
// released early. It is what the usage ledger will keep; for now it goes to
// Options.OnRecord, to functions set with WithRecordFunc, and to the log.
type Record struct {
	// Model is the public model name.
	Model  string
	Stream bool
	// Provider and UpstreamModel name the target that served the call
	// (the last that answered); empty if none did. Attempts counts the
	// upstream calls made: fallbacks, repairs and failovers included.
	Provider      string
	UpstreamModel string
	Attempts      int
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
	Err      error
	Duration time.Duration

	whole bool // a checked stream's answer came whole (then broke its schema)
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
	n               int
	provider, model string
}

func (a *attempts) add(at router.Attempt) {
	a.n++
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

// record reports rec, completed with the attempts the call's context saw.
func (p *Pipeline) record(ctx context.Context, rec Record) {
	if a, ok := ctx.Value(attemptsKey{}).(*attempts); ok {
		rec.Provider, rec.UpstreamModel, rec.Attempts = a.provider, a.model, a.n
	}
	if p.metrics != nil {
		p.observe(rec)
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
	p     *Pipeline
	ctx   context.Context
	model string
	start time.Time
	next  func() (sluice.Event, error)
	stop  func()

	usage  sluice.Usage
	bytes  int // content sent, for the estimate
	finish *sluice.Event
	err    error
	counts Record // ParseFailures and SchemaFailures, from a checkedStream
}

func (p *Pipeline) meter(ctx context.Context, s sluice.Stream, model string, start time.Time, schema *contract.Schema) sluice.Stream {
	m := &meteredStream{p: p, ctx: ctx, model: model, start: start}
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
		ev.Model = m.model
		m.usage = ev.Usage
	case sluice.EventText, sluice.EventThinking:
		m.bytes += len(ev.Text)
	case sluice.EventToolCall:
		m.bytes += len(ev.ToolName) + len(ev.Arguments)
	case sluice.EventUsage:
		m.usage = ev.Usage
	case sluice.EventFinish:
		f := ev
		m.finish = &f
	}
	return ev, nil
}

func (m *meteredStream) release() error {
	m.stop()
	rec := Record{Model: m.model, Stream: true, Usage: m.usage, Err: m.err, Duration: time.Since(m.start),
		ParseFailures: m.counts.ParseFailures, SchemaFailures: m.counts.SchemaFailures}
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
