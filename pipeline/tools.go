package pipeline

import (
	"fmt"
	"io"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/contract"
	"github.com/sluice-gw/sluice/guard"
)

// toolGate checks the tool calls of an answer: a call of a tool that was
// not offered (or that the route's allowlist does not allow) is never
// handed to the client as callable, and a call's arguments must satisfy
// the schema of the tool it calls.
type toolGate struct {
	p       *Pipeline
	tier    guard.Tier
	offered map[string]sluice.Tool
}

// newToolGate returns the gate of req's answer, or nil when req offers no
// tools (an answer then has no tool calls to check).
func (p *Pipeline) newToolGate(req *sluice.Request, t guard.Tier) *toolGate {
	if len(req.Tools) == 0 {
		return nil
	}
	g := &toolGate{p: p, tier: t, offered: make(map[string]sluice.Tool, len(req.Tools))}
	for _, tool := range req.Tools {
		g.offered[tool.Name] = tool
	}
	return g
}

// allowed reports whether the model may call the tool name.
func (g *toolGate) allowed(name string) bool {
	_, ok := g.offered[name]
	return ok && g.tier.AllowsTool(name)
}

// drop reports whether calls of tools that are not allowed are dropped
// (else they are an error).
func (g *toolGate) drop() bool { return g.tier.ToolPolicy == guard.ToolDrop }

// refusal is the error of an answer that called a tool it may not.
func refusal(name string) error {
	return &sluice.Error{Code: sluice.CodeUpstreamError, Param: "tools",
		Message: fmt.Sprintf("The model called the tool %q, which this request did not offer or this route does not allow.", name)}
}

// checkArgs validates a tool call's arguments against its tool's schema.
func (g *toolGate) checkArgs(name, args string) error {
	tool := g.offered[name]
	if len(tool.Parameters) == 0 {
		return nil
	}
	s, err := g.p.schemas.Compile(tool.Parameters)
	if err != nil {
		return nil // the request's own schema was checked when it was sent
	}
	if args == "" {
		args = "{}"
	}
	if _, vs := s.Check(args); len(vs) > 0 {
		e := contract.ViolationError(vs, 1)
		e.Message = fmt.Sprintf("The arguments of the model's call of %q do not match the tool's schema.", name)
		return e
	}
	return nil
}

// message checks the tool calls of a complete answer, dropping the calls
// that are not allowed when the route says so.
func (g *toolGate) message(m *sluice.Message) error {
	if g == nil {
		return nil
	}
	kept := m.Parts[:0:0] // a new array: m's parts may be shared (caches, replays)
	dropped := false
	for _, part := range m.Parts {
		if part.Type == sluice.PartToolCall {
			if !g.allowed(part.ToolName) {
				if !g.drop() {
					return refusal(part.ToolName)
				}
				dropped = true
				continue
			}
			if err := g.checkArgs(part.ToolName, part.Arguments); err != nil {
				return err
			}
		}
		kept = append(kept, part)
	}
	if dropped {
		m.Parts = kept
	}
	return nil
}

// stream returns s with its tool calls checked: the deltas of a call that
// is not allowed are dropped (or the stream ends with the error), and each
// call's arguments are validated when the stream finishes.
func (g *toolGate) stream(s sluice.Stream) sluice.Stream {
	if g == nil {
		return s
	}
	next, stop := sluice.Pull(s)
	type call struct {
		name    string
		args    []byte
		dropped bool
	}
	calls := map[int]*call{}
	var order []int
	return sluice.NewStream(func() (sluice.Event, error) {
		for {
			ev, err := next()
			if err == io.EOF {
				return ev, err
			}
			if err != nil {
				return ev, err
			}
			switch ev.Type {
			case sluice.EventToolCall:
				c, ok := calls[ev.Index]
				if !ok {
					c = &call{name: ev.ToolName}
					calls[ev.Index] = c
					order = append(order, ev.Index)
					if !g.allowed(c.name) {
						if !g.drop() {
							return sluice.Event{}, refusal(c.name)
						}
						c.dropped = true
					}
				}
				if c.dropped {
					continue
				}
				c.args = append(c.args, ev.Arguments...)
			case sluice.EventFinish:
				for _, i := range order {
					if c := calls[i]; !c.dropped {
						if err := g.checkArgs(c.name, string(c.args)); err != nil {
							return sluice.Event{}, err
						}
					}
				}
			}
			return ev, nil
		}
	}, func() error { stop(); return nil })
}
