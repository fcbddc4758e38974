package pipeline

import (
	"context"
	"slices"
	"strings"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/contract"
)

// DefaultRepairAttempts is how many times a structured answer that breaks
// its schema is asked again, when the route says nothing.
const DefaultRepairAttempts = 1

// outputSchema returns the compiled schema a request's answer must satisfy,
// nil for a text answer, or an invalid_request error for a schema that
// does not compile.
func (p *Pipeline) outputSchema(req *sluice.Request) (*contract.Schema, error) {
	switch req.Output.Type {
	case sluice.OutputJSONSchema:
		if len(req.Output.Schema) == 0 {
			return p.schemas.Compile(contract.ObjectSchema)
		}
		return p.schemas.Compile(req.Output.Schema)
	case sluice.OutputJSONObject:
		return p.schemas.Compile(contract.ObjectSchema)
	}
	return nil, nil
}

// repairAttempts returns the route's repair attempts.
func (p *Pipeline) repairAttempts(model string) int {
	if n, ok := p.repairs[model]; ok {
		return n
	}
	return DefaultRepairAttempts
}

// completeChecked runs a structured call: each answer is parsed and
// validated; one that fails is asked again with the violations, up to the
// route's repair attempts, within the call's context. The usage of every
// attempt is counted. When repair is exhausted the error is
// schema_violation with the last answer's violations.
func (p *Pipeline) completeChecked(ctx context.Context, req *sluice.Request, schema *contract.Schema, repairs int, rec *Record) (*sluice.Response, error) {
	attempts := 1 + repairs
	r := req
	var last []contract.Violation
	var lastText string
	for i := range attempts {
		if i > 0 {
			rec.Repairs++
		}
		resp, err := p.router.Complete(ctx, r)
		if err != nil {
			return nil, err
		}
		rec.Usage = rec.Usage.Add(resp.Usage)
		if len(resp.Message.ToolCalls()) > 0 {
			// The model called a tool instead of answering: the answer
			// comes after the tool's result, in a later call.
			out := *resp
			out.Usage = rec.Usage
			return &out, nil
		}
		text := resp.Message.Text()
		value, vs := schema.Check(text)
		if len(vs) == 0 {
			rec.Repaired = i > 0
			out := *resp
			out.Usage = rec.Usage
			out.Message.Parts = withText(resp.Message.Parts, string(value))
			return &out, nil
		}
		if contract.Unparsed(vs) {
			rec.ParseFailures++
		} else {
			rec.SchemaFailures++
		}
		last, lastText = vs, text
		if i+1 < attempts {
			r = repairRequest(req, text, vs)
		}
	}
	verr := contract.ViolationError(last, attempts)
	if p.rawOutput[req.Model] {
		verr.Output = lastText
	}
	return nil, verr
}

// withText returns parts with its text replaced by text (the validated JSON
// without any fence around it); other parts (thinking) stay.
func withText(parts []sluice.Part, text string) []sluice.Part {
	out := make([]sluice.Part, 0, len(parts))
	for _, p := range parts {
		if p.Type != sluice.PartText {
			out = append(out, p)
		}
	}
	return append(out, sluice.TextPart(text))
}

// repairRequest asks again: the conversation, the broken answer, and what
// was wrong with it.
func repairRequest(req *sluice.Request, answer string, vs []contract.Violation) *sluice.Request {
	var b strings.Builder
	b.WriteString("Your answer does not satisfy the required JSON Schema:\n")
	for _, v := range vs {
		p := v.Path
		if p == "" {
			p = "(root)"
		}
		b.WriteString("- " + p + ": " + v.Hint + "\n")
	}
	b.WriteString("Reply again with only the corrected JSON value: no prose, no code fence.")
	cp := *req
	cp.Messages = append(slices.Clip(req.Messages),
		sluice.Message{Role: sluice.RoleAssistant, Parts: []sluice.Part{sluice.TextPart(answer)}},
		sluice.Message{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart(b.String())}},
	)
	return &cp
}

// A checkedStream hands on a structured stream's events and validates the
// whole answer at its end: one that breaks its schema ends the stream with
// schema_violation instead of its finish (the text already went out, so it
// cannot be asked again).
type checkedStream struct {
	schema *contract.Schema
	rec    *Record
	next   func() (sluice.Event, error)
	stop   func()
	text   strings.Builder
	tools  bool
}

func (p *Pipeline) checkStream(s sluice.Stream, schema *contract.Schema, rec *Record) sluice.Stream {
	c := &checkedStream{schema: schema, rec: rec}
	c.next, c.stop = sluice.Pull(s)
	return sluice.NewStream(c.pull, func() error { c.stop(); return nil })
}

func (c *checkedStream) pull() (sluice.Event, error) {
	ev, err := c.next()
	if err != nil {
		return ev, err
	}
	switch ev.Type {
	case sluice.EventText:
		c.text.WriteString(ev.Text)
	case sluice.EventToolCall:
		c.tools = true
	case sluice.EventFinish:
		if c.tools {
			break // the model called a tool instead of answering
		}
		if _, vs := c.schema.Check(c.text.String()); len(vs) > 0 {
			if contract.Unparsed(vs) {
				c.rec.ParseFailures++
			} else {
				c.rec.SchemaFailures++
			}
			// The answer came whole: its usage is as reported.
			c.rec.Failovers, c.rec.whole = ev.Failovers, true
			c.stop()
			return sluice.Event{}, contract.ViolationError(vs, 1)
		}
	}
	return ev, nil
}
