package router

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"

	"github.com/sluice-gw/sluice"
)

// ContinueInstruction is the user message that asks a target which cannot
// continue an assistant prefill to go on with a broken answer.
const ContinueInstruction = "Your previous answer was cut off. Continue it from exactly where it stopped: " +
	"do not repeat any of it, do not add a preamble, and keep the same language and format."

// A failoverStream continues a stream that breaks after its first content
// on the route's next targets (failover: mid_stream), so that the caller
// sees one stream: each target after the first is asked to continue the
// text sent so far, as an assistant prefill where the target supports it
// (Target.Prefill), else with ContinueInstruction. Tool-call streams are not
// continued: their arguments cannot be stitched. The usage it reports covers
// every attempt, and its EventFinish counts the failovers.
type failoverStream struct {
	ctx  context.Context
	c    *call
	req  *sluice.Request
	rest []*target // targets not tried yet

	next func() (sluice.Event, error)
	stop func()

	text      strings.Builder // all text sent so far, for the prefill
	chars     int             // text of the current attempt, in bytes
	tools     bool            // a tool call was sent: no failover
	usage     sluice.Usage    // the current attempt's usage so far
	base      sluice.Usage    // the usage of the attempts that broke
	sentUsage bool            // the current attempt reported its usage
	failovers int
	trimLead  bool          // the prefill lost trailing space: drop it from the continuation
	pending   *sluice.Event // a finish held back behind a usage event
}

// withFailover wraps s, the primed stream of one of c's targets; rest are
// the targets after it.
func withFailover(ctx context.Context, c *call, rest []*target, s sluice.Stream) sluice.Stream {
	f := &failoverStream{ctx: ctx, c: c, req: c.req, rest: rest}
	f.next, f.stop = sluice.Pull(s)
	return sluice.NewStream(f.pull, func() error { f.stop(); return nil })
}

func (f *failoverStream) pull() (sluice.Event, error) {
	if f.pending != nil {
		ev := *f.pending
		f.pending = nil
		return ev, nil
	}
	for {
		ev, err := f.next()
		if err != nil {
			if err == io.EOF || !f.canFailOver(err) || !f.failOver() {
				return ev, err
			}
			continue
		}
		switch ev.Type {
		case sluice.EventStart:
			f.usage = ev.Usage
			if f.failovers > 0 {
				continue // the caller's stream has started already
			}
		case sluice.EventText:
			if f.trimLead {
				ev.Text = strings.TrimLeft(ev.Text, " \t\r\n")
				if ev.Text == "" {
					continue
				}
				f.trimLead = false
			}
			f.text.WriteString(ev.Text)
			f.chars += len(ev.Text)
		case sluice.EventToolCall:
			f.tools = true
		case sluice.EventUsage:
			f.usage = ev.Usage
			f.sentUsage = true
			ev.Usage = f.base.Add(ev.Usage)
		case sluice.EventFinish:
			ev.Failovers = f.failovers
			if f.failovers > 0 && !f.sentUsage {
				// The last target reported no usage of its own: report
				// what is known, then the finish.
				f.pending = &ev
				return sluice.Event{Type: sluice.EventUsage, Usage: f.base.Add(f.usage)}, nil
			}
		}
		return ev, nil
	}
}

// canFailOver reports whether a mid-stream failure may be continued on
// another target: the upstream's failure (not the caller's cancellation or
// a refused request), no tool call sent, a target left.
func (f *failoverStream) canFailOver(err error) bool {
	if f.tools || len(f.rest) == 0 || f.ctx.Err() != nil {
		return false
	}
	if sluice.ErrorCode(err) == sluice.CodeStreamInterrupted && !errors.Is(err, context.Canceled) {
		return true
	}
	return fallback(f.ctx, err)
}

// failOver starts the next target that accepts the continuation (through
// its breaker and bulkhead, with the route's retries), and reports whether
// one did.
func (f *failoverStream) failOver() bool {
	broke := f.usage
	if broke.OutputTokens == 0 && f.chars > 0 {
		// The broken attempt reported no output count: estimate it at four
		// bytes a token, as the providers' own rule of thumb has it.
		broke.OutputTokens = (f.chars + 3) / 4
	}
	f.base = f.base.Add(broke)
	f.usage, f.sentUsage, f.chars = sluice.Usage{}, false, 0
	for len(f.rest) > 0 {
		t := f.rest[0]
		f.rest = f.rest[1:]
		req, trimmed := continuation(f.req, t.Target, f.text.String())
		o := f.c.try(f.ctx, t, req, false, f.c.report)
		if o.err != nil {
			if !fallback(f.ctx, o.err) {
				return false
			}
			continue
		}
		f.stop()
		f.next, f.stop = sluice.Pull(o.s)
		f.failovers++
		f.trimLead = trimmed
		return true
	}
	return false
}

// continuation returns the request that asks t to continue req's answer,
// of which text has been sent, and whether trailing white space was cut
// from the prefill (APIs refuse a final assistant message that ends with
// it).
func continuation(req *sluice.Request, t Target, text string) (*sluice.Request, bool) {
	cp := *targetRequest(req, t)
	prefill := text
	if t.Prefill {
		prefill = strings.TrimRight(text, " \t\r\n")
	}
	msgs := slices.Clip(req.Messages)
	msgs = append(msgs, sluice.Message{Role: sluice.RoleAssistant, Parts: []sluice.Part{sluice.TextPart(prefill)}})
	if !t.Prefill {
		msgs = append(msgs, sluice.Message{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart(ContinueInstruction)}})
	}
	cp.Messages = msgs
	return &cp, len(prefill) < len(text)
}
