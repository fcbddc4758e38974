package anthropic

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/internal/jsonw"
)

// wireRequest is a client's Messages request. Fields that are not listed
// (thinking, service_tier, container, mcp_servers, output_config.effort, ...)
// are ignored.
type wireRequest struct {
	Model         *string         `json:"model"`
	Messages      []wireMessage   `json:"messages"`
	System        json.RawMessage `json:"system"`
	MaxTokens     *int            `json:"max_tokens"`
	StopSequences []string        `json:"stop_sequences"`
	Temperature   *float64        `json:"temperature"`
	TopP          *float64        `json:"top_p"`
	TopK          *int            `json:"top_k"`
	Stream        bool            `json:"stream"`
	Tools         []wireTool      `json:"tools"`
	ToolChoice    *wireToolChoice `json:"tool_choice"`
	Metadata      *wireMetadata   `json:"metadata"`
	OutputConfig  *struct {
		Format *struct {
			Type   string          `json:"type"`
			Schema json.RawMessage `json:"schema"`
		} `json:"format"`
	} `json:"output_config"`
}

type wireMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type wireTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
}

type wireToolChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name"`
	DisableParallelToolUse *bool  `json:"disable_parallel_tool_use"`
}

type wireMetadata struct {
	UserID string `json:"user_id"`
}

// invalid returns an invalid_request error naming param.
func invalid(param, msg string) *sluice.Error {
	return &sluice.Error{Code: sluice.CodeInvalidRequest, Message: msg, Param: param}
}

func invalidf(param, format string, args ...any) *sluice.Error {
	return invalid(param, fmt.Sprintf(format, args...))
}

// DecodeRequest decodes a client's Messages request body. Bad input returns an
// *sluice.Error with code invalid_request and, where one field is to blame,
// Param naming it the way Anthropic does ("messages.0.content.1.source").
//
// Required: model, max_tokens (at least 1) and a non-empty messages array of
// user and assistant turns (in any order: a final assistant turn is a
// prefill). A user message whose content mixes tool_result blocks with other
// blocks becomes alternating RoleTool and RoleUser messages in the original
// order. Unknown fields are ignored; content block types that the core model
// cannot carry (documents, server tools, ...) are rejected rather than
// silently dropped.
func DecodeRequest(body []byte) (*sluice.Request, error) {
	var w wireRequest
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, jsonError(body, "", err)
	}
	if w.Model == nil || *w.Model == "" {
		return nil, invalid("model", "model: a model name is required.")
	}
	if w.MaxTokens == nil {
		return nil, invalid("max_tokens", "max_tokens: this field is required.")
	}
	if *w.MaxTokens < 1 {
		return nil, invalid("max_tokens", "max_tokens: must be at least 1.")
	}
	if len(w.Messages) == 0 {
		return nil, invalid("messages", "messages: at least one message is required.")
	}
	req := &sluice.Request{
		Model:           *w.Model,
		MaxOutputTokens: *w.MaxTokens,
		Stop:            w.StopSequences,
		Temperature:     w.Temperature,
		TopP:            w.TopP,
		TopK:            w.TopK,
		Stream:          w.Stream,
	}
	if t := w.Temperature; t != nil && (*t < 0 || *t > 1) {
		return nil, invalid("temperature", "temperature: must be between 0 and 1.")
	}
	if p := w.TopP; p != nil && (*p < 0 || *p > 1) {
		return nil, invalid("top_p", "top_p: must be between 0 and 1.")
	}
	if k := w.TopK; k != nil && *k < 0 {
		return nil, invalid("top_k", "top_k: must not be negative.")
	}
	if w.Metadata != nil {
		req.Caller.User = w.Metadata.UserID
	}
	if oc := w.OutputConfig; oc != nil && oc.Format != nil {
		// Structured outputs: output_config.format constrains the answer to a
		// JSON Schema.
		f := oc.Format
		if f.Type != "json_schema" {
			return nil, invalid("output_config.format.type", `output_config.format.type: must be "json_schema".`)
		}
		if len(f.Schema) == 0 || f.Schema[0] != '{' {
			return nil, invalid("output_config.format.schema", "output_config.format.schema: a JSON Schema object is required.")
		}
		req.Output = sluice.Output{Type: sluice.OutputJSONSchema, Schema: f.Schema, Strict: true}
	}
	var err *sluice.Error
	if req.System, err = decodeSystem(w.System); err != nil {
		return nil, err
	}
	if req.Messages, err = decodeMessages(w.Messages); err != nil {
		return nil, err
	}
	if req.Tools, err = decodeTools(w.Tools); err != nil {
		return nil, err
	}
	if tc := w.ToolChoice; tc != nil {
		switch tc.Type {
		case "auto":
			req.ToolChoice.Mode = sluice.ToolChoiceAuto
		case "any":
			req.ToolChoice.Mode = sluice.ToolChoiceRequired
		case "none":
			req.ToolChoice.Mode = sluice.ToolChoiceNone
		case "tool":
			if tc.Name == "" {
				return nil, invalid("tool_choice.name", "tool_choice.name: required when type is \"tool\".")
			}
			req.ToolChoice = sluice.ToolChoice{Mode: sluice.ToolChoiceTool, Name: tc.Name}
		default:
			return nil, invalid("tool_choice.type", `tool_choice.type: must be one of "auto", "any", "tool" or "none".`)
		}
		if d := tc.DisableParallelToolUse; d != nil {
			parallel := !*d
			req.ParallelToolCalls = &parallel
		}
	}
	return req, nil
}

// jsonError turns an encoding/json error into an invalid_request error. For
// a wrong type inside an array it finds the element, so Param can name its
// index, which encoding/json's field path leaves out. prefix is the param of
// the value data was decoded from ("" for the body).
func jsonError(data []byte, prefix string, err error) *sluice.Error {
	var ute *json.UnmarshalTypeError
	if !errors.As(err, &ute) {
		if prefix == "" {
			return &sluice.Error{Code: sluice.CodeInvalidRequest, Message: "The request body is not valid JSON.", Err: err}
		}
		return &sluice.Error{Code: sluice.CodeInvalidRequest, Message: prefix + ": not valid JSON.", Param: prefix, Err: err}
	}
	if ute.Field == "" && prefix == "" {
		return &sluice.Error{Code: sluice.CodeInvalidRequest, Message: "The request body must be a JSON object.", Err: err}
	}
	param := ute.Field
	if prefix == "" {
		param = locate(data, ute.Field)
	} else if param == "" {
		param = prefix
	} else {
		param = prefix + "." + param
	}
	return &sluice.Error{
		Code:    sluice.CodeInvalidRequest,
		Message: fmt.Sprintf("%s: expected %s, got %s.", param, jsonw.KindName(ute.Type), valueName(ute.Value)),
		Param:   param,
		Err:     err,
	}
}

// locate turns encoding/json's path of a wrong-typed field of the body
// ("messages.role") into one with the array index ("messages.2.role") by
// decoding the array's elements one at a time. It runs on the error path only.
func locate(body []byte, field string) string {
	head, rest, _ := strings.Cut(field, ".")
	var probe func(json.RawMessage) error
	switch head {
	case "messages":
		probe = func(r json.RawMessage) error { var m wireMessage; return json.Unmarshal(r, &m) }
	case "tools":
		probe = func(r json.RawMessage) error { var t wireTool; return json.Unmarshal(r, &t) }
	default:
		return field
	}
	var top struct {
		Messages []json.RawMessage `json:"messages"`
		Tools    []json.RawMessage `json:"tools"`
	}
	// An error here means some other field is broken too; the elements that
	// did decode are still searched.
	_ = json.Unmarshal(body, &top)
	elems := top.Messages
	if head == "tools" {
		elems = top.Tools
	}
	for i, e := range elems {
		if probe(e) != nil {
			p := head + "." + strconv.Itoa(i)
			if rest != "" {
				p += "." + rest
			}
			return p
		}
	}
	return field
}

// valueName words encoding/json's description of a JSON value ("number 1.5",
// "string"). Only a number's literal is echoed.
func valueName(v string) string {
	kind, detail, _ := strings.Cut(v, " ")
	switch kind {
	case "bool":
		return "a boolean"
	case "array", "object":
		return "an " + kind
	case "string":
		return "a string"
	case "number":
		if detail != "" && len(detail) <= 32 {
			return "the number " + detail // a JSON number literal: safe to echo
		}
		return "a number"
	}
	return "another type"
}

// isNull reports whether raw is absent or JSON null.
func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// decodeBlocks decodes a JSON array of content blocks, naming the element at
// fault in a type error.
func decodeBlocks(raw json.RawMessage, param string) ([]wireBlock, *sluice.Error) {
	var blocks []wireBlock
	if err := json.Unmarshal(raw, &blocks); err != nil {
		var elems []json.RawMessage
		if json.Unmarshal(raw, &elems) == nil {
			for i, e := range elems {
				var b wireBlock
				if err := json.Unmarshal(e, &b); err != nil {
					return nil, jsonError(e, param+"."+strconv.Itoa(i), err)
				}
			}
		}
		return nil, jsonError(raw, param, err)
	}
	return blocks, nil
}

func decodeSystem(raw json.RawMessage) ([]sluice.Part, *sluice.Error) {
	if isNull(raw) {
		return nil, nil
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, jsonError(raw, "system", err)
		}
		if s == "" {
			return nil, nil
		}
		return []sluice.Part{sluice.TextPart(s)}, nil
	case '[':
		blocks, err := decodeBlocks(raw, "system")
		if err != nil {
			return nil, err
		}
		parts := make([]sluice.Part, 0, len(blocks))
		for i := range blocks {
			if blocks[i].Type != "text" {
				return nil, invalidf("system."+strconv.Itoa(i)+".type", "system.%d.type: system blocks must be text blocks.", i)
			}
			parts = append(parts, sluice.TextPart(blocks[i].Text))
		}
		return parts, nil
	}
	return nil, invalid("system", "system: expected a string or an array of text blocks.")
}

func decodeMessages(ws []wireMessage) ([]sluice.Message, *sluice.Error) {
	msgs := make([]sluice.Message, 0, len(ws))
	for i := range ws {
		param := "messages." + strconv.Itoa(i)
		var role sluice.Role
		switch ws[i].Role {
		case "user":
			role = sluice.RoleUser
		case "assistant":
			role = sluice.RoleAssistant
		case "":
			return nil, invalid(param+".role", param+".role: this field is required.")
		case "system":
			return nil, invalid(param+".role", param+`.role: "system" is not a message role; use the top-level system field.`)
		default:
			return nil, invalid(param+".role", param+`.role: must be "user" or "assistant".`)
		}
		raw := ws[i].Content
		if isNull(raw) {
			return nil, invalid(param+".content", param+".content: this field is required.")
		}
		switch raw[0] {
		case '"':
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return nil, jsonError(raw, param+".content", err)
			}
			m := sluice.Message{Role: role}
			if s != "" {
				m.Parts = []sluice.Part{sluice.TextPart(s)}
			}
			msgs = append(msgs, m)
		case '[':
			blocks, err := decodeBlocks(raw, param+".content")
			if err != nil {
				return nil, err
			}
			if msgs, err = appendBlockMessages(msgs, role, blocks, param+".content"); err != nil {
				return nil, err
			}
		default:
			return nil, invalid(param+".content", param+".content: expected a string or an array of content blocks.")
		}
	}
	return msgs, nil
}

// appendBlockMessages appends the message(s) made of one wire message's
// blocks. In a user message, each run of tool_result blocks becomes a RoleTool
// message and each run of other blocks a RoleUser message, in order.
func appendBlockMessages(msgs []sluice.Message, role sluice.Role, blocks []wireBlock, param string) ([]sluice.Message, *sluice.Error) {
	if len(blocks) == 0 {
		return append(msgs, sluice.Message{Role: role}), nil
	}
	start := len(msgs)
	for i := range blocks {
		bp := param + "." + strconv.Itoa(i)
		p, err := decodeBlock(&blocks[i], role, bp)
		if err != nil {
			return nil, err
		}
		r := role
		if p.Type == sluice.PartToolResult {
			r = sluice.RoleTool
		}
		if n := len(msgs); n == start || msgs[n-1].Role != r {
			msgs = append(msgs, sluice.Message{Role: r, Parts: make([]sluice.Part, 0, len(blocks)-i)})
		}
		m := &msgs[len(msgs)-1]
		m.Parts = append(m.Parts, p)
	}
	return msgs, nil
}

// decodeBlock converts one content block of a message with the given role.
func decodeBlock(b *wireBlock, role sluice.Role, param string) (sluice.Part, *sluice.Error) {
	switch b.Type {
	case "text":
		return sluice.TextPart(b.Text), nil
	case "image":
		return decodeImage(b, param)
	case "tool_use":
		if role != sluice.RoleAssistant {
			return sluice.Part{}, invalid(param+".type", param+".type: tool_use blocks belong in assistant messages.")
		}
		if b.ID == "" {
			return sluice.Part{}, invalid(param+".id", param+".id: this field is required.")
		}
		if b.Name == "" {
			return sluice.Part{}, invalid(param+".name", param+".name: this field is required.")
		}
		args, ok := compactObject(nullToEmpty(b.Input))
		if !ok {
			return sluice.Part{}, invalid(param+".input", param+".input: expected an object.")
		}
		return sluice.Part{Type: sluice.PartToolCall, ToolCallID: b.ID, ToolName: b.Name, Arguments: args}, nil
	case "tool_result":
		if role != sluice.RoleUser {
			return sluice.Part{}, invalid(param+".type", param+".type: tool_result blocks belong in user messages.")
		}
		if b.ToolUseID == "" {
			return sluice.Part{}, invalid(param+".tool_use_id", param+".tool_use_id: this field is required.")
		}
		p := sluice.Part{Type: sluice.PartToolResult, ToolCallID: b.ToolUseID, IsError: b.IsError}
		if err := decodeToolResultContent(&p, b.Content, param+".content"); err != nil {
			return sluice.Part{}, err
		}
		return p, nil
	case "thinking", "redacted_thinking":
		if role != sluice.RoleAssistant {
			return sluice.Part{}, invalidf(param+".type", "%s.type: %s blocks belong in assistant messages.", param, b.Type)
		}
		if b.Type == "redacted_thinking" {
			return sluice.Part{Type: sluice.PartThinking, Redacted: true, Data: b.Data}, nil
		}
		return sluice.Part{Type: sluice.PartThinking, Text: b.Thinking, Signature: b.Signature}, nil
	case "":
		return sluice.Part{}, invalid(param+".type", param+".type: this field is required.")
	}
	return sluice.Part{}, invalidf(param+".type", "%s.type: content blocks of type %q are not supported.", param, b.Type)
}

func nullToEmpty(raw json.RawMessage) json.RawMessage {
	if string(raw) == "null" {
		return nil
	}
	return raw
}

func decodeImage(b *wireBlock, param string) (sluice.Part, *sluice.Error) {
	s := b.Source
	if s == nil {
		return sluice.Part{}, invalid(param+".source", param+".source: this field is required.")
	}
	switch s.Type {
	case "base64":
		if s.MediaType == "" {
			return sluice.Part{}, invalid(param+".source.media_type", param+".source.media_type: this field is required.")
		}
		data, err := base64.StdEncoding.DecodeString(s.Data)
		if err != nil || len(data) == 0 {
			return sluice.Part{}, invalid(param+".source.data", param+".source.data: expected non-empty base64 data.")
		}
		return sluice.Part{Type: sluice.PartImage, ImageData: data, MediaType: s.MediaType}, nil
	case "url":
		if s.URL == "" {
			return sluice.Part{}, invalid(param+".source.url", param+".source.url: this field is required.")
		}
		return sluice.Part{Type: sluice.PartImage, ImageURL: s.URL}, nil
	}
	return sluice.Part{}, invalid(param+".source.type", param+`.source.type: must be "base64" or "url".`)
}

// decodeToolResultContent fills a tool result's Text (a string, or a single
// text block) or Content (several blocks, or any image).
func decodeToolResultContent(p *sluice.Part, raw json.RawMessage, param string) *sluice.Error {
	if isNull(raw) {
		return nil
	}
	switch raw[0] {
	case '"':
		if err := json.Unmarshal(raw, &p.Text); err != nil {
			return jsonError(raw, param, err)
		}
		return nil
	case '[':
	default:
		return invalid(param, param+": expected a string or an array of content blocks.")
	}
	blocks, err := decodeBlocks(raw, param)
	if err != nil {
		return err
	}
	switch {
	case len(blocks) == 0:
		return nil
	case len(blocks) == 1 && blocks[0].Type == "text":
		p.Text = blocks[0].Text
		return nil
	}
	p.Content = make([]sluice.Part, 0, len(blocks))
	for i := range blocks {
		bp := param + "." + strconv.Itoa(i)
		switch blocks[i].Type {
		case "text":
			p.Content = append(p.Content, sluice.TextPart(blocks[i].Text))
		case "image":
			img, err := decodeImage(&blocks[i], bp)
			if err != nil {
				return err
			}
			p.Content = append(p.Content, img)
		default:
			return invalidf(bp+".type", "%s.type: tool results may hold text and image blocks only.", bp)
		}
	}
	return nil
}

func decodeTools(ws []wireTool) ([]sluice.Tool, *sluice.Error) {
	if len(ws) == 0 {
		return nil, nil
	}
	tools := make([]sluice.Tool, 0, len(ws))
	for i := range ws {
		t := &ws[i]
		param := "tools." + strconv.Itoa(i)
		if t.Type != "" && t.Type != "custom" {
			return nil, invalidf(param+".type", "%s.type: tools of type %q are not supported; only custom tools are.", param, t.Type)
		}
		if t.Name == "" {
			return nil, invalid(param+".name", param+".name: this field is required.")
		}
		var schema json.RawMessage
		if !isNull(t.InputSchema) {
			if t.InputSchema[0] != '{' {
				return nil, invalid(param+".input_schema", param+".input_schema: expected an object.")
			}
			schema = t.InputSchema
		}
		tools = append(tools, sluice.Tool{Name: t.Name, Description: t.Description, Parameters: schema})
	}
	return tools, nil
}

// CheckVersion checks the anthropic-version header. A missing header means
// 2023-06-01. Any date from 2023-06-01 on, in the form YYYY-MM-DD, is
// accepted: newer SDKs send newer dates, and this gateway speaks the wire
// format they all share. Anything else is invalid_request naming the header.
func CheckVersion(h http.Header) *sluice.Error {
	v := h.Get("anthropic-version")
	if v == "" {
		return nil
	}
	const minVersion = "2023-06-01"
	if len(v) == len(minVersion) && v >= minVersion {
		if _, err := time.Parse(time.DateOnly, v); err == nil {
			return nil
		}
	}
	return invalid("anthropic-version", "anthropic-version: expected a date in the form YYYY-MM-DD, 2023-06-01 or later.")
}

// APIKey returns the client's key: the x-api-key header, or the token of an
// "Authorization: Bearer" header (anthropic-sdk-go v2 sends its key that way).
// It returns "" when there is neither.
func APIKey(h http.Header) string {
	if k := strings.TrimSpace(h.Get("x-api-key")); k != "" {
		return k
	}
	a := strings.TrimSpace(h.Get("Authorization"))
	if len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return ""
}
