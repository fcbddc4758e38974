// Package sim is Sluice's simulator: a sluice.Provider that needs no network
// and no key, and (in server.go) an HTTP server speaking the upstream
// dialects, both able to misbehave on demand.
//
// # Answers
//
// An answer is derived from a hash of the request (model, system, messages,
// tools, tool choice, output format and seed), so the same request always
// gets the same answer (and the same response ID) and a different seed gets
// a different one.
// MaxOutputTokens is not part of the hash: a lower limit cuts the same answer
// shorter. What the answer is:
//
//   - Tool calls, when tools are offered, the tool choice is not none and the
//     last message is the user's. ToolChoiceTool calls the named tool;
//     otherwise the first tool is called, or the first two when the user's
//     last message contains the word "parallel", two or more tools are
//     offered and ParallelToolCalls is not false. Ids look like
//     "call_<hex>"; arguments are JSON satisfying the tool's parameters
//     schema. The finish reason is tool_calls.
//   - JSON, for OutputJSONSchema (satisfying the schema) and OutputJSONObject
//     (a small object with answer, confidence and tags), unless the fault
//     asks for prose.
//   - After tool results (the last message has RoleTool), text that names
//     each tool and quotes the start of its result.
//   - Otherwise English-like sentences from a built-in word list.
//
// Text is Tokens words long (a request's Fault.Tokens, else Options.Tokens,
// else 24); each word is one output token and one text event, carrying its
// leading space. JSON and tool arguments stream in fragments of two to six
// characters, one per event and one token each. When MaxOutputTokens is
// smaller than the answer, the answer is cut there and finishes with length.
// InputTokens estimates the prompt: the words and punctuation marks of the
// system text, messages, tool definitions and output schema, 85 per image,
// at least 1.
//
// # JSON Schema
//
// The generator understands type (and type lists, taking the first type that
// is not null), properties (every property is filled, in schema order;
// beyond six levels of nesting only the required ones), required,
// additionalProperties, min/maxProperties, items, prefixItems, min/maxItems,
// uniqueItems, enum, const, minimum, maximum, exclusiveMinimum and
// exclusiveMaximum (numeric and draft-4 boolean forms), multipleOf,
// min/maxLength, pattern, format (date-time, date, time, email, uri,
// hostname, uuid, ipv4, ipv6, duration), anyOf and oneOf (the first branch
// that is not only null), allOf (merged), and $ref to any local pointer such
// as #/$defs/x or #/definitions/x. For a pattern it tries strings generated
// from the expression itself, then a few plain candidates; when none matches
// (or the pattern uses syntax Go's regexp lacks, such as lookahead) it writes
// an ordinary string that may not match. Recursive schemas end because deep
// levels generate only what is required. Since schemas come from clients,
// generation is bounded (256 KiB of JSON, 10000 items per array, minLength
// up to 65536, a fixed amount of work for $ref and allOf): past a bound the
// answer stays valid JSON but may not satisfy the schema.
//
// # Faults
//
// Fault describes misbehaviour: latency before the answer, time to first
// token, delay between chunks, a stall or a dropped connection after some
// chunks, an upstream error status with Retry-After, prose instead of JSON,
// and truncation. Options.Fault applies to every call; a fault put in the
// context with WithFault overrides it field by field.
package sim

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice"
)

// Options configures a Provider. The zero value is usable.
type Options struct {
	// Name is the provider's configured name, reported in upstream errors.
	// Default "sim".
	Name string
	// Fault is applied to every call. A fault in the call's context
	// (WithFault) overrides it field by field.
	Fault Fault
	// Tokens is the default length of text answers in tokens (words) when
	// the fault sets none. Zero means 24; at most MaxTokens.
	Tokens int
	// Sleep waits for d or until ctx ends, returning ctx.Err() in that case.
	// Nil means a timer; tests inject a fake that records durations.
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand returns a pseudo-random number in [0, 1), for Fault.TailP. It
	// must be safe for concurrent use. Nil means math/rand/v2's Float64.
	Rand func() float64
}

// Provider is the simulated provider. It is safe for concurrent use.
type Provider struct {
	name   string
	fault  Fault
	tokens int
	sleep  func(ctx context.Context, d time.Duration) error
	rand   func() float64
	open   atomic.Int64
	// statusCalls counts the calls that carried a Fault.StatusFirst.
	statusCalls atomic.Int64
}

var _ sluice.Provider = (*Provider)(nil)

// New returns a Provider configured by opts.
func New(opts Options) *Provider {
	p := &Provider{name: opts.Name, fault: opts.Fault, tokens: opts.Tokens, sleep: opts.Sleep, rand: opts.Rand}
	if p.name == "" {
		p.name = "sim"
	}
	if p.tokens <= 0 {
		p.tokens = defaultTokens
	}
	if p.sleep == nil {
		p.sleep = sleep
	}
	if p.rand == nil {
		p.rand = rand.Float64
	}
	return p
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// OpenStreams returns the number of streams started and not yet released.
func (p *Provider) OpenStreams() int { return int(p.open.Load()) }

// Complete answers req in one response. It collects the same event stream
// that Stream returns, so both give the same answer and honour the same
// faults.
func (p *Provider) Complete(ctx context.Context, req *sluice.Request) (*sluice.Response, error) {
	s, err := p.Stream(ctx, req)
	if err != nil {
		return nil, err
	}
	resp, err := sluice.Collect(s)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// Stream starts an answer to req. It sleeps the fault's Latency first, then
// fails with the fault's Status if set (and, with StatusFirst, the call is
// one of the first that many), or with an invalid_request error for
// a request it cannot answer (no messages, a tool choice naming a tool not
// offered, a schema that is not JSON). Errors from ctx are returned as they
// are.
//
// The stream yields EventStart (ID "sim-<hex>", Model req.Model and the input
// tokens), the content events, EventUsage and EventFinish. Within it, a
// cancelled ctx ends the stream with an error wrapping ctx.Err().
func (p *Provider) Stream(ctx context.Context, req *sluice.Request) (sluice.Stream, error) {
	f := p.fault
	if rf, ok := FaultFrom(ctx); ok {
		f = f.Merge(rf)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if f.Latency > 0 {
		if err := p.sleep(ctx, f.Latency); err != nil {
			return nil, err
		}
	}
	if f.Status != 0 && f.StatusFirst > 0 && p.statusCalls.Add(1) > int64(f.StatusFirst) {
		f.Status = 0 // the upstream has recovered
	}
	if f.Status != 0 {
		return nil, sluice.FromUpstream(&sluice.UpstreamError{
			Provider:   p.name,
			StatusCode: f.Status,
			Type:       errorType(f.Status),
			Message:    "simulated",
			RetryAfter: f.RetryAfter,
		})
	}
	a, err := p.plan(req, f)
	if err != nil {
		return nil, err
	}
	if f.TailP > 0 && f.Tail > 0 && p.rand() < f.TailP {
		f.TTFT += f.Tail
	}
	s := &stream{p: p, a: a, f: f, model: req.Model}
	p.open.Add(1)
	return sluice.NewStream(func() (sluice.Event, error) { return s.next(ctx) }, s.release), nil
}

// errorType returns the error type an upstream sends with status, in
// Anthropic's words (OpenAI's are similar).
func errorType(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return "invalid_request_error"
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case 529:
		return "overloaded_error"
	case http.StatusGatewayTimeout, http.StatusRequestTimeout:
		return "timeout_error"
	}
	return "api_error"
}

// The phases of a stream.
const (
	phaseStart = iota
	phaseContent
	phaseUsage
	phaseFinish
	phaseDone
)

// stream paces out one answer. It is pulled by sluice.NewStream, one event
// per call, on the caller's goroutine.
type stream struct {
	p     *Provider
	a     *answer
	f     Fault
	model string
	phase int
	i     int // pieces sent
}

func (s *stream) next(ctx context.Context) (sluice.Event, error) {
	if s.phase == phaseDone {
		return sluice.Event{}, io.EOF
	}
	if err := ctx.Err(); err != nil {
		return sluice.Event{}, fmt.Errorf("sim: stream ended: %w", err)
	}
	switch s.phase {
	case phaseStart:
		s.phase = phaseContent
		return sluice.Event{Type: sluice.EventStart, ID: s.a.id, Model: s.model,
			Usage: sluice.Usage{InputTokens: s.a.inputTokens}}, nil
	case phaseContent:
		if s.f.StallAfter > 0 && s.i == s.f.StallAfter {
			<-ctx.Done()
			return sluice.Event{}, fmt.Errorf("sim: stream stalled after %d chunks: %w", s.i, ctx.Err())
		}
		if s.f.ErrorAt > 0 && s.i == s.f.ErrorAt-1 && s.i < len(s.a.pieces) {
			return sluice.Event{}, &sluice.Error{
				Code: sluice.CodeOverloaded, Message: sluice.CodeOverloaded.DefaultMessage(),
				Err: &sluice.UpstreamError{Provider: s.p.name, Type: "overloaded_error", Message: fmt.Sprintf("simulated error event at chunk %d", s.i+1)},
			}
		}
		if s.f.DropAfter > 0 && s.i == s.f.DropAfter {
			return sluice.Event{}, &sluice.Error{
				Code:    sluice.CodeStreamInterrupted,
				Message: sluice.CodeStreamInterrupted.DefaultMessage(),
				Err:     fmt.Errorf("sim: %s: simulated drop after %d chunks", s.p.name, s.i),
			}
		}
		if s.i < len(s.a.pieces) {
			d := s.f.ChunkDelay
			if s.i == 0 {
				d = s.f.TTFT
			}
			if d > 0 {
				if err := s.p.sleep(ctx, d); err != nil {
					return sluice.Event{}, fmt.Errorf("sim: stream ended: %w", err)
				}
			}
			pc := &s.a.pieces[s.i]
			s.i++
			if pc.call < 0 {
				return sluice.Event{Type: sluice.EventText, Text: pc.text}, nil
			}
			ev := sluice.Event{Type: sluice.EventToolCall, Index: pc.call, Arguments: pc.text}
			if pc.head {
				ev.ToolCallID, ev.ToolName = s.a.calls[pc.call].id, s.a.calls[pc.call].name
			}
			return ev, nil
		}
		s.phase = phaseUsage
		fallthrough
	case phaseUsage:
		s.phase = phaseFinish
		return sluice.Event{Type: sluice.EventUsage,
			Usage: sluice.Usage{InputTokens: s.a.inputTokens, OutputTokens: s.i}}, nil
	default: // phaseFinish
		s.phase = phaseDone
		return sluice.Event{Type: sluice.EventFinish, FinishReason: s.a.finish}, nil
	}
}

func (s *stream) release() error {
	s.p.open.Add(-1)
	return nil
}
