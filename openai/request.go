package openai

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/sluice-gw/sluice"
)

// The names of the token-cap field, for Config.MaxTokensField.
const (
	MaxTokens           = "max_tokens"
	MaxCompletionTokens = "max_completion_tokens"
)

// The values of Config.StructuredOutput.
const (
	// StructuredNative sends a JSON output request as the server constrains
	// decoding with it (see Config.Server).
	StructuredNative = "native"
	// StructuredPrompt sends no constraint: the request for JSON, with its
	// schema, becomes a system instruction.
	StructuredPrompt = "prompt"
)

// The values of Config.Server.
const (
	ServerOpenAI = "openai"
	ServerVLLM   = "vllm"
	ServerOllama = "ollama"
)

// The system instructions of StructuredPrompt.
const (
	jsonObjectInstruction = "Respond with a single JSON object and nothing else: no prose, no code fences."
	jsonSchemaInstruction = "Respond with a single JSON value that conforms to the JSON Schema below, and nothing else: no prose, no code fences."
)

// promptRequest returns a copy of req whose request for JSON output is a
// system instruction, appended after req's own, instead of a constraint.
// A JSON Schema goes in the instruction, compacted, with its description.
// req must ask for JSON; the copy shares everything else with it.
func promptRequest(req *sluice.Request) (*sluice.Request, error) {
	o := &req.Output
	text := jsonObjectInstruction
	if o.Type == sluice.OutputJSONSchema && len(o.Schema) > 0 {
		var buf bytes.Buffer
		if err := json.Compact(&buf, o.Schema); err != nil {
			return nil, invalid("response_format.json_schema.schema", "schema is not valid JSON.")
		}
		text = jsonSchemaInstruction
		if o.Description != "" {
			text += "\n\nDescription: " + o.Description
		}
		text += "\n\nJSON Schema: " + buf.String()
	}
	cp := *req
	cp.System = append(make([]sluice.Part, 0, len(req.System)+1), req.System...)
	cp.System = append(cp.System, sluice.TextPart(text))
	cp.Output = sluice.Output{}
	return &cp, nil
}

// maxTokensField returns the field that carries the token cap for model.
// OpenAI's reasoning models (o1, o3, o4, gpt-5) refuse max_tokens; most
// OpenAI-compatible servers know only max_tokens.
func maxTokensField(configured, model string) string {
	if configured != "" {
		return configured
	}
	m := strings.ToLower(model)
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		m = m[i+1:] // "openai/gpt-5" on routers
	}
	for _, p := range []string{"o1", "o3", "o4", "gpt-5"} {
		if m == p || strings.HasPrefix(m, p+"-") || strings.HasPrefix(m, p+".") {
			return MaxCompletionTokens
		}
	}
	return MaxTokens
}

// appendRequest appends the chat completion request for req. Fields are
// written in a fixed order; what OpenAI cannot take is left out (see
// docs/dialects.md): thinking parts, top_k, metadata, the caller's key, tenant
// and IP, tool_choice and parallel_tool_calls without tools, images inside
// tool results, and the is-error mark of tool results. server (a Server
// value, "" for ServerOpenAI) says how a JSON output request is spelled.
func appendRequest(b []byte, req *sluice.Request, stream bool, maxField, server string) ([]byte, error) {
	b = append(b, `{"model":`...)
	b = appendString(b, req.Model)
	b = append(b, `,"messages":[`...)
	first := true
	sep := func() {
		if !first {
			b = append(b, ',')
		}
		first = false
	}
	for i := range req.System {
		p := &req.System[i]
		if p.Type != sluice.PartText && p.Type != "" {
			continue
		}
		sep()
		b = append(b, `{"role":"system","content":`...)
		b = appendString(b, p.Text)
		b = append(b, '}')
	}
	for i := range req.Messages {
		m := &req.Messages[i]
		// Tool results go first, each as its own tool message: OpenAI wants
		// them right after the assistant message that made the calls.
		for j := range m.Parts {
			p := &m.Parts[j]
			if p.Type != sluice.PartToolResult {
				continue
			}
			sep()
			b = append(b, `{"role":"tool","tool_call_id":`...)
			b = appendString(b, p.ToolCallID)
			b = append(b, `,"content":`...)
			text := p.Text
			if text == "" && len(p.Content) > 0 {
				text = sluice.JoinText(p.Content)
			}
			b = appendString(b, text)
			b = append(b, '}')
		}
		switch m.Role {
		case sluice.RoleUser:
			if countContent(m.Parts) == 0 && hasResults(m.Parts) {
				continue
			}
			sep()
			var err error
			if b, err = appendUser(b, m, i); err != nil {
				return b, err
			}
		case sluice.RoleAssistant:
			sep()
			var err error
			if b, err = appendAssistant(b, m); err != nil {
				return b, err
			}
		case sluice.RoleTool:
			// Only its results, written above.
		default:
			return b, invalid("messages["+strconv.Itoa(i)+"].role", "Unsupported role "+strconv.Quote(string(m.Role))+".")
		}
	}
	b = append(b, ']')
	if req.MaxOutputTokens > 0 {
		b = append(b, ',', '"')
		b = append(b, maxField...)
		b = append(b, '"', ':')
		b = strconv.AppendInt(b, int64(req.MaxOutputTokens), 10)
	}
	if req.Temperature != nil {
		if !finite(*req.Temperature) {
			return b, invalid("temperature", "temperature must be a finite number.")
		}
		b = append(b, `,"temperature":`...)
		b = appendFloat(b, *req.Temperature)
	}
	if req.TopP != nil {
		if !finite(*req.TopP) {
			return b, invalid("top_p", "top_p must be a finite number.")
		}
		b = append(b, `,"top_p":`...)
		b = appendFloat(b, *req.TopP)
	}
	if len(req.Stop) > 0 {
		b = append(b, `,"stop":[`...)
		for i, s := range req.Stop {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, s)
		}
		b = append(b, ']')
	}
	if req.Seed != nil {
		b = append(b, `,"seed":`...)
		b = strconv.AppendInt(b, *req.Seed, 10)
	}
	if len(req.Tools) > 0 {
		b = append(b, `,"tools":[`...)
		for i := range req.Tools {
			t := &req.Tools[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"type":"function","function":{"name":`...)
			b = appendString(b, t.Name)
			if t.Description != "" {
				b = append(b, `,"description":`...)
				b = appendString(b, t.Description)
			}
			if len(t.Parameters) > 0 {
				if !json.Valid(t.Parameters) {
					return b, invalid("tools["+strconv.Itoa(i)+"].function.parameters", "parameters is not valid JSON.")
				}
				b = append(b, `,"parameters":`...)
				b = append(b, t.Parameters...)
			}
			if t.Strict {
				b = append(b, `,"strict":true`...)
			}
			b = append(b, "}}"...)
		}
		b = append(b, ']')
		switch req.ToolChoice.Mode {
		case sluice.ToolChoiceAuto, sluice.ToolChoiceNone, sluice.ToolChoiceRequired:
			b = append(b, `,"tool_choice":"`...)
			b = append(b, req.ToolChoice.Mode...)
			b = append(b, '"')
		case sluice.ToolChoiceTool:
			b = append(b, `,"tool_choice":{"type":"function","function":{"name":`...)
			b = appendString(b, req.ToolChoice.Name)
			b = append(b, "}}"...)
		}
		if req.ParallelToolCalls != nil {
			b = append(b, `,"parallel_tool_calls":`...)
			b = strconv.AppendBool(b, *req.ParallelToolCalls)
		}
	}
	// ServerOpenAI and ServerOllama get response_format: Ollama's
	// OpenAI-compatible endpoint reads it (and no format field) and turns it
	// into the format of its own API. ServerVLLM gets structured_outputs,
	// vLLM's documented extra parameter since v0.10.2 (its guided_json was
	// deprecated then and removed in v0.12.0).
	switch {
	case req.Output.Type == sluice.OutputText:
	case server == ServerVLLM:
		b = append(b, `,"structured_outputs":{"json":`...)
		if o := &req.Output; o.Type == sluice.OutputJSONSchema && len(o.Schema) > 0 {
			if !json.Valid(o.Schema) {
				return b, invalid("response_format.json_schema.schema", "schema is not valid JSON.")
			}
			b = append(b, o.Schema...)
		} else {
			b = append(b, `{"type":"object"}`...)
		}
		b = append(b, '}')
	case req.Output.Type == sluice.OutputJSONObject:
		b = append(b, `,"response_format":{"type":"json_object"}`...)
	case req.Output.Type == sluice.OutputJSONSchema:
		o := &req.Output
		name := o.Name
		if name == "" {
			name = "response" // OpenAI requires a name
		}
		b = append(b, `,"response_format":{"type":"json_schema","json_schema":{"name":`...)
		b = appendString(b, name)
		if o.Description != "" {
			b = append(b, `,"description":`...)
			b = appendString(b, o.Description)
		}
		if len(o.Schema) > 0 {
			if !json.Valid(o.Schema) {
				return b, invalid("response_format.json_schema.schema", "schema is not valid JSON.")
			}
			b = append(b, `,"schema":`...)
			b = append(b, o.Schema...)
		}
		if o.Strict {
			b = append(b, `,"strict":true`...)
		}
		b = append(b, "}}"...)
	}
	if req.Caller.User != "" {
		b = append(b, `,"user":`...)
		b = appendString(b, req.Caller.User)
	}
	if stream {
		b = append(b, `,"stream":true,"stream_options":{"include_usage":true}`...)
	}
	return append(b, '}'), nil
}

// countContent counts the parts a user message sends as content.
func countContent(parts []sluice.Part) int {
	n := 0
	for i := range parts {
		if t := parts[i].Type; t == sluice.PartText || t == sluice.PartImage {
			n++
		}
	}
	return n
}

func hasResults(parts []sluice.Part) bool {
	for i := range parts {
		if parts[i].Type == sluice.PartToolResult {
			return true
		}
	}
	return false
}

func appendName(b []byte, name string) []byte {
	if name == "" {
		return b
	}
	b = append(b, `,"name":`...)
	return appendString(b, name)
}

// appendUser writes a user message: a single text part as a content string,
// anything else as an array of text and image_url parts.
func appendUser(b []byte, m *sluice.Message, i int) ([]byte, error) {
	b = append(b, `{"role":"user","content":`...)
	n := countContent(m.Parts)
	switch {
	case n == 0:
		b = append(b, `""`...)
	case n == 1 && onlyText(m.Parts):
		for j := range m.Parts {
			if m.Parts[j].Type == sluice.PartText {
				b = appendString(b, m.Parts[j].Text)
			}
		}
	default:
		b = append(b, '[')
		k := 0
		for j := range m.Parts {
			p := &m.Parts[j]
			switch p.Type {
			case sluice.PartText:
				if k > 0 {
					b = append(b, ',')
				}
				k++
				b = append(b, `{"type":"text","text":`...)
				b = appendString(b, p.Text)
				b = append(b, '}')
			case sluice.PartImage:
				if k > 0 {
					b = append(b, ',')
				}
				k++
				b = append(b, `{"type":"image_url","image_url":{"url":`...)
				switch {
				case p.ImageURL != "":
					b = appendString(b, p.ImageURL)
				case len(p.ImageData) > 0:
					b = appendDataURL(b, p.MediaType, p.ImageData)
				default:
					return b, invalid("messages["+strconv.Itoa(i)+"].content["+strconv.Itoa(j)+"]", "An image part has neither a URL nor data.")
				}
				if p.ImageDetail != "" {
					b = append(b, `,"detail":`...)
					b = appendString(b, p.ImageDetail)
				}
				b = append(b, "}}"...)
			}
		}
		b = append(b, ']')
	}
	b = appendName(b, m.Name)
	return append(b, '}'), nil
}

func onlyText(parts []sluice.Part) bool {
	for i := range parts {
		if parts[i].Type == sluice.PartImage {
			return false
		}
	}
	return true
}

// appendDataURL appends "data:<type>;base64,<data>" as a JSON string (base64
// needs no escaping).
func appendDataURL(b []byte, mediaType string, data []byte) []byte {
	if mediaType == "" {
		mediaType = http.DetectContentType(data)
		if i := strings.IndexByte(mediaType, ';'); i >= 0 {
			mediaType = mediaType[:i]
		}
	}
	b = append(b, `"data:`...)
	b = appendEscapedInner(b, mediaType)
	b = append(b, ";base64,"...)
	n := base64.StdEncoding.EncodedLen(len(data))
	b = append(b, make([]byte, n)...)
	base64.StdEncoding.Encode(b[len(b)-n:], data)
	return append(b, '"')
}

// appendEscapedInner appends s JSON-escaped without the surrounding quotes.
func appendEscapedInner(b []byte, s string) []byte {
	start := len(b)
	b = appendString(b, s)
	// Remove the quotes appendString added.
	copy(b[start:], b[start+1:len(b)-1])
	return b[:len(b)-2]
}

// appendAssistant writes an assistant message: the text parts joined as a
// content string (null when there are tool calls and no text), tool calls as
// tool_calls. Thinking parts are not sent back: OpenAI refuses them.
func appendAssistant(b []byte, m *sluice.Message) ([]byte, error) {
	b = append(b, `{"role":"assistant","content":`...)
	var hasText, hasCalls bool
	for j := range m.Parts {
		switch m.Parts[j].Type {
		case sluice.PartText:
			hasText = true
		case sluice.PartToolCall:
			hasCalls = true
		}
	}
	switch {
	case hasText:
		b = appendString(b, sluice.JoinText(m.Parts))
	case hasCalls:
		b = append(b, "null"...)
	default:
		b = append(b, `""`...)
	}
	b = appendName(b, m.Name)
	if hasCalls {
		b = append(b, `,"tool_calls":[`...)
		k := 0
		for j := range m.Parts {
			p := &m.Parts[j]
			if p.Type != sluice.PartToolCall {
				continue
			}
			if k > 0 {
				b = append(b, ',')
			}
			k++
			b = appendToolCall(b, p)
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}
