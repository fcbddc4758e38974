package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"text/template"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/config"
	"github.com/sluice-gw/sluice/contract"
)

// A namedContract is a configured contract, its schema compiled.
type namedContract struct {
	cfg    config.Contract
	schema *contract.Schema
	system *template.Template // the system prompt, when it is a template
}

// promptData is what a contract's system prompt template sees.
type promptData struct {
	Name        string
	Description string
	Schema      string // the JSON Schema, as JSON
	Input       any    // the input: a string, or the decoded JSON value
}

// parseSystem returns the template of a contract's system prompt, or nil
// when the prompt has no template actions and is sent as written.
func parseSystem(ct config.Contract) (*template.Template, error) {
	if !strings.Contains(ct.System, "{{") {
		return nil, nil
	}
	return template.New(ct.Name).Option("missingkey=error").Parse(ct.System)
}

// ContractInfo describes a named contract: what GET /v1/contracts/{name}
// shows, so that the contract documents the boundary.
type ContractInfo struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Model       string          `json:"model"`
	Schema      json.RawMessage `json:"schema"`
}

// Contracts returns the named contracts in config order.
func (p *Pipeline) Contracts() []ContractInfo {
	out := make([]ContractInfo, 0, len(p.names))
	for _, n := range p.names {
		out = append(out, p.contracts[n].info())
	}
	return out
}

// ContractInfo returns the named contract, if there is one.
func (p *Pipeline) ContractInfo(name string) (ContractInfo, bool) {
	c, ok := p.contracts[name]
	if !ok {
		return ContractInfo{}, false
	}
	return c.info(), true
}

func (c *namedContract) info() ContractInfo {
	return ContractInfo{Name: c.cfg.Name, Description: c.cfg.Description, Model: c.cfg.Model, Schema: c.schema.Raw()}
}

// Contract runs the named contract on input, a JSON value: a string is the
// user's message as it is, anything else is sent as its JSON text. It
// returns the answer, validated against the contract's schema (repaired
// within the contract's or its route's attempts). Errors: not_found for an
// unknown contract, invalid_request for a missing input, schema_violation
// when repair is exhausted, and the call's own.
func (p *Pipeline) Contract(ctx context.Context, name string, input json.RawMessage) (json.RawMessage, error) {
	c, req, err := p.contractRequest(ctx, name, input)
	if err != nil {
		p.refused(withContract(ctx, contractName(name)), req, err)
		return nil, err
	}
	repairs := p.repairAttempts(c.cfg.Model)
	if c.cfg.RepairAttempts != nil {
		repairs = *c.cfg.RepairAttempts
	}
	ctx = p.track(withContract(ctx, name), req, false)
	rec := p.startRecord(ctx, req)
	rec.structured = true
	req, rec.adm, err = p.admit(ctx, req)
	if err != nil {
		rec.Err = err
		p.record(ctx, rec)
		return nil, err
	}
	resp, err := p.completeChecked(ctx, req, c.schema, repairs, &rec)
	rec.Err = err
	if resp != nil {
		rec.finish = resp.FinishReason
		rec.answered(&resp.Message)
	}
	p.record(ctx, rec)
	if err != nil {
		return nil, err
	}
	return json.RawMessage(resp.Message.Text()), nil
}

// StreamContract runs the named contract on input as a stream: the
// answer's events, its text the JSON as it is generated. The whole answer
// is validated at the end; one that breaks the schema ends the stream with
// schema_violation (a stream cannot be repaired: its text went out).
// Errors before the first content are returned as for Contract.
func (p *Pipeline) StreamContract(ctx context.Context, name string, input json.RawMessage) (sluice.Stream, error) {
	_, req, err := p.contractRequest(ctx, name, input)
	if err != nil {
		p.refused(withContract(ctx, contractName(name)), req, err)
		return nil, err
	}
	req.Stream = true
	return p.Stream(withContract(ctx, name), req)
}

// contractRequest returns the named contract and its call for input.
func (p *Pipeline) contractRequest(ctx context.Context, name string, input json.RawMessage) (*namedContract, *sluice.Request, error) {
	c, ok := p.contracts[name]
	if !ok {
		req := &sluice.Request{}
		if who, ok := ctx.Value(callerKey{}).(caller); ok {
			req.ID, req.Caller = who.id, who.caller
		}
		return nil, req, &sluice.Error{Code: sluice.CodeNotFound, Message: "There is no such contract."}
	}
	req, err := c.request(input)
	if err != nil {
		// The refusal is still a call of the contract's route, for the
		// record.
		req = &sluice.Request{Model: c.cfg.Model}
	}
	if who, ok := ctx.Value(callerKey{}).(caller); ok {
		req.ID, req.Caller = who.id, who.caller
	}
	return c, req, err
}

// contractName bounds a contract name the client made up, for the
// record.
func contractName(name string) string {
	if len(name) > 64 {
		return name[:64]
	}
	return name
}

type callerKey struct{}

type caller struct {
	id     string
	caller sluice.Caller
}

// WithCaller returns a context whose contract calls carry request id id
// and caller c, as sluice.Request.ID and Caller carry them for Complete
// and Stream: who is limited, charged and named in the ledger.
func WithCaller(ctx context.Context, id string, c sluice.Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, caller{id, c})
}

// request builds the call of the contract for input.
func (c *namedContract) request(input json.RawMessage) (*sluice.Request, error) {
	input = bytes.TrimSpace(input)
	if len(input) == 0 || string(input) == "null" {
		return nil, &sluice.Error{Code: sluice.CodeInvalidRequest, Param: "input", Message: "An input is required."}
	}
	text := string(input)
	var s string
	if input[0] == '"' {
		if err := json.Unmarshal(input, &s); err != nil {
			return nil, &sluice.Error{Code: sluice.CodeInvalidRequest, Param: "input", Message: "The input is not valid JSON.", Err: err}
		}
		text = s
	} else if !json.Valid(input) {
		return nil, &sluice.Error{Code: sluice.CodeInvalidRequest, Param: "input", Message: "The input is not valid JSON."}
	}
	system := c.cfg.System
	if c.system != nil {
		var err error
		if system, err = c.prompt(input, text); err != nil {
			return nil, err
		}
	}
	return &sluice.Request{
		Model:    c.cfg.Model,
		System:   systemParts(system),
		Messages: []sluice.Message{{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart(text)}}},
		Output: sluice.Output{Type: sluice.OutputJSONSchema, Name: c.cfg.Name, Description: c.cfg.Description,
			Schema: c.schema.Raw(), Strict: true},
	}, nil
}

// prompt executes the system prompt template for an input (raw JSON, and
// its text when it is a string).
func (c *namedContract) prompt(input json.RawMessage, text string) (string, error) {
	data := promptData{Name: c.cfg.Name, Description: c.cfg.Description, Schema: string(c.schema.Raw()), Input: text}
	if input[0] != '"' {
		d := json.NewDecoder(bytes.NewReader(input))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			return "", &sluice.Error{Code: sluice.CodeInvalidRequest, Param: "input", Message: "The input is not valid JSON.", Err: err}
		}
		data.Input = v
	}
	var b strings.Builder
	if err := c.system.Execute(&b, data); err != nil {
		// The template's error names the prompt's own fields and text: the
		// client learns only that its input does not fit.
		return "", &sluice.Error{Code: sluice.CodeInvalidRequest, Param: "input",
			Message: "The input lacks a field the contract's prompt uses, or has the wrong kind of value there.", Err: err}
	}
	return b.String(), nil
}

// systemParts returns a system prompt as parts; none when empty.
func systemParts(s string) []sluice.Part {
	if s == "" {
		return nil
	}
	return []sluice.Part{sluice.TextPart(s)}
}
