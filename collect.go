package sluice

import "strings"

// An Accumulator builds a Response from a stream's events. The zero value is
// ready to use. It is not safe for concurrent use.
type Accumulator struct {
	resp     Response
	text     strings.Builder
	thinking strings.Builder
	sig      strings.Builder
	redacted []Part
	calls    []Part   // by Index
	args     [][]byte // arguments by Index; not Builders, which must not be copied as the slice grows
}

// Add folds one event into the response being built.
func (a *Accumulator) Add(ev Event) {
	switch ev.Type {
	case EventStart:
		a.resp.ID, a.resp.Model = ev.ID, ev.Model
		if ev.Usage != (Usage{}) {
			a.resp.Usage = ev.Usage
		}
	case EventText:
		a.text.WriteString(ev.Text)
	case EventThinking:
		if ev.Redacted {
			a.redacted = append(a.redacted, Part{Type: PartThinking, Redacted: true, Data: ev.Data})
			break
		}
		a.thinking.WriteString(ev.Text)
		a.sig.WriteString(ev.Signature)
	case EventToolCall:
		// Indexes arrive densely from 0; one past the last starts a new call.
		// Anything else is ignored rather than growing without bound.
		if ev.Index < 0 || ev.Index > len(a.calls) {
			return
		}
		for len(a.calls) <= ev.Index {
			a.calls = append(a.calls, Part{Type: PartToolCall})
			a.args = append(a.args, nil)
		}
		c := &a.calls[ev.Index]
		if ev.ToolCallID != "" {
			c.ToolCallID = ev.ToolCallID
		}
		if ev.ToolName != "" {
			c.ToolName = ev.ToolName
		}
		a.args[ev.Index] = append(a.args[ev.Index], ev.Arguments...)
	case EventUsage:
		a.resp.Usage = ev.Usage
	case EventFinish:
		a.resp.FinishReason = ev.FinishReason
		a.resp.StopSequence = ev.StopSequence
	}
}

// Response returns the response built so far. Content parts come in the order
// thinking, text, tool calls.
func (a *Accumulator) Response() *Response {
	r := a.resp
	r.Message.Role = RoleAssistant
	var parts []Part
	if a.thinking.Len() > 0 || a.sig.Len() > 0 {
		parts = append(parts, Part{Type: PartThinking, Text: a.thinking.String(), Signature: a.sig.String()})
	}
	parts = append(parts, a.redacted...)
	if a.text.Len() > 0 {
		parts = append(parts, TextPart(a.text.String()))
	}
	for i, c := range a.calls {
		c.Arguments = string(a.args[i])
		parts = append(parts, c)
	}
	r.Message.Parts = parts
	return &r
}

// Collect ranges over s to the end and returns the response its events make.
// On a mid-stream error it returns the partial response and the error.
func Collect(s Stream) (*Response, error) {
	var a Accumulator
	for ev, err := range s.All() {
		if err != nil {
			return a.Response(), err
		}
		a.Add(ev)
	}
	return a.Response(), nil
}
