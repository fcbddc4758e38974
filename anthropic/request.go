package anthropic

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/sluice-gw/sluice"
)

// jsonObjectInstruction asks for a JSON object, which the Messages API has no
// schema-less request field for. It is appended to the system prompt.
const jsonObjectInstruction = "Respond with a single JSON object and nothing else: no prose, no code fences."

// The values of Config.StructuredOutput.
const (
	// StructuredNative sends a JSON Schema as output_config.format: the API
	// constrains decoding to it.
	StructuredNative = "native"
	// StructuredTool sends a JSON Schema as the input schema of one tool the
	// model is made to call; the call's input is the answer.
	StructuredTool = "tool"
	// StructuredPrompt sends a JSON Schema in a system instruction, with no
	// constraint.
	StructuredPrompt = "prompt"
)

// respondTool is the name of StructuredTool's tool when the schema's own
// name is not a valid tool name.
const respondTool = "respond"

// respondDescription describes StructuredTool's tool when the schema has no
// description.
const respondDescription = "Respond to the user. The input is the complete answer."

// jsonSchemaInstruction asks for a value of a JSON Schema, which follows it,
// under StructuredPrompt.
const jsonSchemaInstruction = "Respond with a single JSON value that conforms to the JSON Schema below, and nothing else: no prose, no code fences."

// structuredRequest returns the request to encode for req under mode (a
// StructuredOutput value) and, when the answer comes as a tool call to
// unwrap, the tool's name. Only a JSON Schema output is affected: a JSON
// object is always asked for in the system prompt (see appendSystem).
//
// StructuredTool needs a schema of type object, which input_schema must be,
// and a request without tools of its own, so that the one forced call is
// the answer; otherwise it falls back to StructuredPrompt. The copy shares
// everything else with req.
func structuredRequest(req *sluice.Request, mode string) (*sluice.Request, string, error) {
	o := &req.Output
	native := mode == "" || mode == StructuredNative
	if o.Type != sluice.OutputJSONSchema || native && len(o.Schema) > 0 {
		return req, "", nil
	}
	cp := *req
	cp.Output = sluice.Output{}
	if len(o.Schema) == 0 {
		// No schema: Sluice checks for an object, asked for as a JSON
		// object output is.
		cp.Output.Type = sluice.OutputJSONObject
		return &cp, "", nil
	}
	if !json.Valid(o.Schema) {
		return nil, "", invalid("output_config.format.schema", "output_config.format.schema: the JSON Schema is not valid JSON.")
	}
	if mode == StructuredTool && len(req.Tools) == 0 && objectSchema(o.Schema) {
		name := respondTool
		if validToolName(o.Name) {
			name = o.Name
		}
		desc := o.Description
		if desc == "" {
			desc = respondDescription
		}
		cp.Tools = []sluice.Tool{{Name: name, Description: desc, Parameters: o.Schema}}
		cp.ToolChoice = sluice.ToolChoice{Mode: sluice.ToolChoiceTool, Name: name}
		single := false
		cp.ParallelToolCalls = &single // exactly one call: one answer
		return &cp, name, nil
	}
	text := jsonSchemaInstruction
	if o.Description != "" {
		text += "\n\nDescription: " + o.Description
	}
	text += "\n\nJSON Schema: " + compactSchema(o.Schema)
	cp.System = append(make([]sluice.Part, 0, len(req.System)+1), req.System...)
	cp.System = append(cp.System, sluice.TextPart(text))
	return &cp, "", nil
}

// objectSchema reports whether schema says its value is an object.
func objectSchema(schema json.RawMessage) bool {
	var s struct {
		Type json.RawMessage `json:"type"`
	}
	return json.Unmarshal(schema, &s) == nil && string(bytes.TrimSpace(s.Type)) == `"object"`
}

// validToolName reports whether name is a tool name the API takes:
// 1 to 64 letters, digits, underscores or hyphens.
func validToolName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// turn is one wire message being built: consecutive core messages with the
// same wire role merge into one, since the API wants user and assistant
// turns to alternate. In a user turn, tool results come first.
type turn struct {
	role    string
	results []*sluice.Part
	others  []*sluice.Part
}

// encodeRequest returns the Messages request body for req. maxTokens is used
// when req has no MaxOutputTokens. Errors are invalid_request: a part the wire
// cannot carry faithfully, or a number JSON cannot hold.
func encodeRequest(req *sluice.Request, maxTokens int, stream bool) ([]byte, error) {
	turns := buildTurns(req.Messages)
	var err error
	b := make([]byte, 0, 512+requestSize(req))
	b = append(b, `{"model":`...)
	b = appendString(b, req.Model)
	b = append(b, `,"max_tokens":`...)
	if req.MaxOutputTokens > 0 {
		maxTokens = req.MaxOutputTokens
	}
	b = strconv.AppendInt(b, int64(maxTokens), 10)

	b = appendSystem(b, req)

	b = append(b, `,"messages":[`...)
	for i := range turns {
		if i > 0 {
			b = append(b, ',')
		}
		if b, err = appendTurn(b, &turns[i]); err != nil {
			return nil, err
		}
	}
	b = append(b, ']')

	if len(req.Stop) > 0 {
		b = append(b, `,"stop_sequences":[`...)
		for i, s := range req.Stop {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, s)
		}
		b = append(b, ']')
	}
	if req.Temperature != nil {
		if b, err = appendFloat(b, "temperature", *req.Temperature); err != nil {
			return nil, err
		}
	}
	if req.TopP != nil {
		if b, err = appendFloat(b, "top_p", *req.TopP); err != nil {
			return nil, err
		}
	}
	if req.TopK != nil {
		b = append(b, `,"top_k":`...)
		b = strconv.AppendInt(b, int64(*req.TopK), 10)
	}
	if len(req.Tools) > 0 {
		if b, err = appendTools(b, req); err != nil {
			return nil, err
		}
	}
	if req.Output.Type == sluice.OutputJSONSchema {
		if !json.Valid(req.Output.Schema) {
			return nil, invalid("output_config.format.schema", "output_config.format.schema: the JSON Schema is not valid JSON.")
		}
		// Native structured outputs: the API constrains decoding to the
		// schema.
		b = append(b, `,"output_config":{"format":{"type":"json_schema","schema":`...)
		b = append(b, compactSchema(req.Output.Schema)...)
		b = append(b, `}}`...)
	}
	if req.Caller.User != "" {
		b = append(b, `,"metadata":{"user_id":`...)
		b = appendString(b, req.Caller.User)
		b = append(b, '}')
	}
	if stream {
		b = append(b, `,"stream":true`...)
	}
	return append(b, '}'), nil
}

// requestSize estimates the bytes of req's content, to size the buffer once.
func requestSize(req *sluice.Request) int {
	n := 0
	for i := range req.System {
		n += len(req.System[i].Text) + 32
	}
	for i := range req.Messages {
		for j := range req.Messages[i].Parts {
			p := &req.Messages[i].Parts[j]
			n += 64 + len(p.Text) + len(p.Arguments) + len(p.Signature) + len(p.Data) + len(p.ImageURL) + len(p.ImageData)*4/3
			for k := range p.Content {
				n += 32 + len(p.Content[k].Text) + len(p.Content[k].ImageData)*4/3
			}
		}
	}
	for i := range req.Tools {
		n += 64 + len(req.Tools[i].Description) + len(req.Tools[i].Parameters)
	}
	return n + n/8
}

func appendFloat(b []byte, name string, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, invalid(name, name+": must be a finite number.")
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return strconv.AppendFloat(b, f, 'g', -1, 64), nil
}

// appendSystem appends the system field: a string for one text, an array of
// text blocks for several. A requested JSON object (no schema) adds an
// instruction at the end, since output_config.format needs a schema; a JSON
// Schema goes in output_config.format instead.
func appendSystem(b []byte, req *sluice.Request) []byte {
	var extra string
	switch req.Output.Type {
	case sluice.OutputJSONObject:
		extra = jsonObjectInstruction
	}
	n := 0
	for i := range req.System {
		if req.System[i].Text != "" {
			n++
		}
	}
	if extra != "" {
		n++
	}
	switch n {
	case 0:
		return b
	case 1:
		b = append(b, `,"system":`...)
		text := extra
		for i := range req.System {
			if req.System[i].Text != "" {
				text = req.System[i].Text
			}
		}
		return appendString(b, text)
	}
	b = append(b, `,"system":[`...)
	first := true
	for i := range req.System {
		if req.System[i].Text == "" {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, `{"type":"text","text":`...)
		b = appendString(b, req.System[i].Text)
		b = append(b, '}')
	}
	if extra != "" {
		b = append(b, `,{"type":"text","text":`...)
		b = appendString(b, extra)
		b = append(b, '}')
	}
	return append(b, ']')
}

// compactSchema returns schema compacted, or as it is when it is not JSON.
func compactSchema(schema json.RawMessage) string {
	if len(schema) == 0 {
		return "{}"
	}
	var buf bytes.Buffer
	if json.Compact(&buf, schema) != nil {
		return string(schema)
	}
	return buf.String()
}

// encodable reports whether p becomes a content block on this wire: empty
// text and thinking without a signature (which Anthropic would refuse) do
// not.
func encodable(p *sluice.Part) bool {
	switch p.Type {
	case sluice.PartText:
		return p.Text != ""
	case sluice.PartImage:
		return len(p.ImageData) > 0 || p.ImageURL != ""
	case sluice.PartThinking:
		return p.Redacted || p.Signature != ""
	case sluice.PartToolCall, sluice.PartToolResult:
		return true
	}
	return false
}

// buildTurns groups messages into alternating wire turns.
func buildTurns(msgs []sluice.Message) []turn {
	turns := make([]turn, 0, len(msgs))
	for i := range msgs {
		m := &msgs[i]
		role := "user"
		if m.Role == sluice.RoleAssistant {
			role = "assistant"
		}
		for j := range m.Parts {
			p := &m.Parts[j]
			if !encodable(p) {
				continue
			}
			if n := len(turns); n == 0 || turns[n-1].role != role {
				turns = append(turns, turn{role: role})
			}
			t := &turns[len(turns)-1]
			if role == "user" && p.Type == sluice.PartToolResult {
				t.results = append(t.results, p)
			} else {
				t.others = append(t.others, p)
			}
		}
	}
	return turns
}

// appendTurn appends one wire message. A turn of a single text part is sent
// as a string.
func appendTurn(b []byte, t *turn) ([]byte, error) {
	b = append(b, `{"role":"`...)
	b = append(b, t.role...)
	b = append(b, `","content":`...)
	if len(t.results) == 0 && len(t.others) == 1 && t.others[0].Type == sluice.PartText {
		b = appendString(b, t.others[0].Text)
		return append(b, '}'), nil
	}
	b = append(b, '[')
	n := 0
	var err error
	for _, list := range [2][]*sluice.Part{t.results, t.others} {
		for _, p := range list {
			if n > 0 {
				b = append(b, ',')
			}
			n++
			if b, err = appendBlock(b, p); err != nil {
				return nil, err
			}
		}
	}
	return append(b, "]}"...), nil
}

// appendBlock appends the request content block of p, which is encodable.
func appendBlock(b []byte, p *sluice.Part) ([]byte, error) {
	switch p.Type {
	case sluice.PartText:
		b = append(b, `{"type":"text","text":`...)
		b = appendString(b, p.Text)
		return append(b, '}'), nil
	case sluice.PartImage:
		return appendImage(b, p), nil
	case sluice.PartToolCall:
		b, ok := appendToolUse(b, p)
		if !ok {
			return nil, invalid("messages", "messages: the arguments of a tool call are not a JSON object.")
		}
		return b, nil
	case sluice.PartToolResult:
		b = append(b, `{"type":"tool_result","tool_use_id":`...)
		b = appendString(b, p.ToolCallID)
		switch {
		case resultBlocks(p) > 0:
			b = append(b, `,"content":[`...)
			n := 0
			for i := range p.Content {
				c := &p.Content[i]
				if !resultBlock(c) {
					continue
				}
				if n > 0 {
					b = append(b, ',')
				}
				n++
				b, _ = appendBlock(b, c)
			}
			b = append(b, ']')
		case p.Text != "":
			b = append(b, `,"content":`...)
			b = appendString(b, p.Text)
		}
		if p.IsError {
			b = append(b, `,"is_error":true`...)
		}
		return append(b, '}'), nil
	case sluice.PartThinking:
		if p.Redacted {
			b = append(b, `{"type":"redacted_thinking","data":`...)
			b = appendString(b, p.Data)
			return append(b, '}'), nil
		}
		b = append(b, `{"type":"thinking","thinking":`...)
		b = appendString(b, p.Text)
		b = append(b, `,"signature":`...)
		b = appendString(b, p.Signature)
		return append(b, '}'), nil
	}
	return b, nil
}

// resultBlock reports whether c, a part of a tool result's Content, is sent:
// non-empty text and images are.
func resultBlock(c *sluice.Part) bool {
	return (c.Type == sluice.PartText || c.Type == sluice.PartImage) && encodable(c)
}

// resultBlocks counts the parts of a tool result's Content that are sent.
// With none, the result's Text is sent instead.
func resultBlocks(p *sluice.Part) int {
	n := 0
	for i := range p.Content {
		if resultBlock(&p.Content[i]) {
			n++
		}
	}
	return n
}

// appendImage appends an image block: bytes and data: URLs as a base64
// source, other URLs as a url source.
func appendImage(b []byte, p *sluice.Part) []byte {
	if len(p.ImageData) > 0 {
		mt := p.MediaType
		if mt == "" {
			mt = http.DetectContentType(p.ImageData)
		}
		b = append(b, `{"type":"image","source":{"type":"base64","media_type":`...)
		b = appendString(b, mt)
		b = append(b, `,"data":"`...)
		b = base64.StdEncoding.AppendEncode(b, p.ImageData)
		return append(b, `"}}`...)
	}
	if mt, data, ok := parseDataURL(p.ImageURL); ok {
		b = append(b, `{"type":"image","source":{"type":"base64","media_type":`...)
		b = appendString(b, mt)
		b = append(b, `,"data":`...)
		b = appendString(b, data)
		return append(b, "}}"...)
	}
	b = append(b, `{"type":"image","source":{"type":"url","url":`...)
	b = appendString(b, p.ImageURL)
	return append(b, "}}"...)
}

// parseDataURL splits a base64 data: URL into its media type and data.
func parseDataURL(u string) (mediaType, data string, ok bool) {
	rest, ok := strings.CutPrefix(u, "data:")
	if !ok {
		return "", "", false
	}
	meta, data, ok := strings.Cut(rest, ",")
	if !ok {
		return "", "", false
	}
	mediaType, ok = strings.CutSuffix(meta, ";base64")
	if !ok {
		return "", "", false
	}
	if i := strings.IndexByte(mediaType, ';'); i >= 0 {
		mediaType = mediaType[:i]
	}
	return mediaType, data, true
}

// appendTools appends tools and, when set, tool_choice. A tool without
// parameters gets an empty object schema, since input_schema is required.
func appendTools(b []byte, req *sluice.Request) ([]byte, error) {
	b = append(b, `,"tools":[`...)
	for i := range req.Tools {
		t := &req.Tools[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendString(b, t.Name)
		if t.Description != "" {
			b = append(b, `,"description":`...)
			b = appendString(b, t.Description)
		}
		b = append(b, `,"input_schema":`...)
		if len(t.Parameters) == 0 {
			b = append(b, `{"type":"object","properties":{}}`...)
		} else {
			var ok bool
			if b, ok = appendObject(b, string(t.Parameters)); !ok {
				param := "tools." + strconv.Itoa(i) + ".parameters"
				return nil, invalid(param, param+": expected a JSON Schema object.")
			}
		}
		b = append(b, '}')
	}
	b = append(b, ']')

	tc, par := req.ToolChoice, req.ParallelToolCalls
	var typ string
	switch tc.Mode {
	case sluice.ToolChoiceDefault:
		if par == nil {
			return b, nil
		}
		typ = "auto"
	case sluice.ToolChoiceAuto:
		typ = "auto"
	case sluice.ToolChoiceRequired:
		typ = "any"
	case sluice.ToolChoiceTool:
		typ = "tool"
	case sluice.ToolChoiceNone:
		return append(b, `,"tool_choice":{"type":"none"}`...), nil
	default:
		return nil, invalid("tool_choice", "tool_choice: unknown mode.")
	}
	b = append(b, `,"tool_choice":{"type":"`...)
	b = append(b, typ...)
	b = append(b, '"')
	if typ == "tool" {
		b = append(b, `,"name":`...)
		b = appendString(b, tc.Name)
	}
	if par != nil {
		b = append(b, `,"disable_parallel_tool_use":`...)
		b = strconv.AppendBool(b, !*par)
	}
	return append(b, '}'), nil
}
