package openai

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/sluice-gw/sluice"
)

// RequestOptions holds what a client asked of the answer's encoding rather
// than of the model.
type RequestOptions struct {
	IncludeUsage bool // stream_options.include_usage
}

// DecodeRequest decodes a client's chat completion request body.
//
// Unknown fields are ignored, as clients send many; a known field of the wrong
// type, invalid JSON, a missing model, no messages, n greater than 1 and
// content Sluice cannot carry are refused. The error is then a *sluice.Error
// with code invalid_request and, where there is one, Param set to the
// offending field's path in the form "messages[2].tool_calls[0].function.name".
func DecodeRequest(body []byte) (*sluice.Request, RequestOptions, error) {
	var w wireRequest
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, RequestOptions{}, jsonError(body, "", err)
	}
	var opts RequestOptions
	if w.StreamOptions != nil && w.StreamOptions.IncludeUsage != nil {
		opts.IncludeUsage = *w.StreamOptions.IncludeUsage
	}
	if w.Model == "" {
		return nil, opts, invalid("model", "model is required.")
	}
	if len(w.Messages) == 0 {
		return nil, opts, invalid("messages", "messages must contain at least one message.")
	}
	if w.N != nil && *w.N != 1 {
		if *w.N > 1 {
			return nil, opts, invalid("n", "n greater than 1 is not supported: ask for one choice per request.")
		}
		return nil, opts, invalid("n", "n must be 1.")
	}
	req := &sluice.Request{
		Model:             w.Model,
		ParallelToolCalls: w.ParallelToolCalls,
		Temperature:       w.Temperature,
		TopP:              w.TopP,
		Seed:              w.Seed,
		Caller:            sluice.Caller{User: w.User},
		Metadata:          w.Metadata,
	}
	if w.Stream != nil {
		req.Stream = *w.Stream
	}
	if err := decodeMessages(req, w.Messages); err != nil {
		return nil, opts, err
	}
	if err := decodeTools(req, w.Tools); err != nil {
		return nil, opts, err
	}
	if err := decodeToolChoice(req, w.ToolChoice); err != nil {
		return nil, opts, err
	}
	if err := decodeResponseFormat(req, w.ResponseFormat); err != nil {
		return nil, opts, err
	}
	switch {
	case w.MaxCompletionTokens != nil:
		if err := setMaxTokens(req, *w.MaxCompletionTokens, "max_completion_tokens"); err != nil {
			return nil, opts, err
		}
	case w.MaxTokens != nil:
		if err := setMaxTokens(req, *w.MaxTokens, "max_tokens"); err != nil {
			return nil, opts, err
		}
	}
	if w.TopK != nil {
		// top_k is not an OpenAI field, but many compatible clients send it.
		if *w.TopK < 0 || *w.TopK > 1<<31-1 {
			return nil, opts, invalid("top_k", "top_k must be a non-negative integer.")
		}
		k := int(*w.TopK)
		req.TopK = &k
	}
	stop, err := decodeStop(w.Stop)
	if err != nil {
		return nil, opts, err
	}
	req.Stop = stop
	return req, opts, nil
}

func setMaxTokens(req *sluice.Request, n int64, param string) error {
	if n < 0 || n > 1<<31-1 {
		return invalid(param, param+" must be a non-negative integer.")
	}
	req.MaxOutputTokens = int(n)
	return nil
}

// invalid returns an invalid_request error naming param.
func invalid(param, msg string) *sluice.Error {
	return &sluice.Error{Code: sluice.CodeInvalidRequest, Message: msg, Param: param}
}

// jsonError turns an encoding/json error about raw into an invalid_request
// error. prefix is the path of raw within the request body.
func jsonError(raw []byte, prefix string, err error) *sluice.Error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		param := locateTypeError(raw, te)
		if prefix != "" {
			if param == "" {
				param = prefix
			} else if param[0] == '[' {
				param = prefix + param
			} else {
				param = prefix + "." + param
			}
		}
		msg := "Invalid type for " + quoteParam(param) + ": expected " + jsonKind(te.Type.Kind().String()) + ", got " + firstWord(te.Value) + "."
		return &sluice.Error{Code: sluice.CodeInvalidRequest, Message: msg, Param: param, Err: err}
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &sluice.Error{Code: sluice.CodeInvalidRequest, Message: "The request body is not valid JSON: " + se.Error() + " (at byte " + strconv.FormatInt(se.Offset, 10) + ").", Param: prefix, Err: err}
	}
	return &sluice.Error{Code: sluice.CodeInvalidRequest, Message: "The request body could not be decoded as JSON.", Param: prefix, Err: err}
}

func quoteParam(p string) string {
	if p == "" {
		return "the request body"
	}
	return "'" + p + "'"
}

func firstWord(s string) string {
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[:i]
	}
	return s
}

// jsonKind names the JSON type a Go kind decodes from.
func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	}
	return "another type"
}

// locateTypeError finds the path, with array indexes, of the value a type
// error is about. encoding/json reports the path of struct fields only
// ("messages.tool_calls.function.name"), so this walks raw along that path and,
// at each array, picks the first element whose value there has the offending
// JSON type. It runs only on the error path.
func locateTypeError(raw []byte, te *json.UnmarshalTypeError) string {
	var path []string
	if te.Field != "" {
		path = strings.Split(te.Field, ".")
	}
	if p, ok := locate(raw, path, te.Value); ok {
		return strings.TrimPrefix(p, ".")
	}
	return te.Field
}

func locate(raw json.RawMessage, path []string, want string) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(path) == 0 && kindMatches(raw, want) {
		return "", true
	}
	switch firstByte(raw) {
	case '[':
		var elems []json.RawMessage
		if json.Unmarshal(raw, &elems) != nil {
			return "", false
		}
		for i, el := range elems {
			if p, ok := locate(el, path, want); ok {
				return "[" + strconv.Itoa(i) + "]" + p, true
			}
		}
	case '{':
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			return "", false
		}
		if len(path) == 0 {
			// A map's value: encoding/json names the map, not the key.
			keys := slices.Sorted(maps.Keys(obj))
			for _, k := range keys {
				if kindMatches(obj[k], want) {
					return "." + k, true
				}
			}
			return "", false
		}
		key := path[0]
		v, ok := obj[key]
		if !ok {
			// encoding/json matches keys without regard to case.
			for k, kv := range obj {
				if strings.EqualFold(k, key) {
					v, ok = kv, true
					break
				}
			}
		}
		if !ok {
			return "", false
		}
		p, ok := locate(v, path[1:], want)
		return "." + key + p, ok
	}
	return "", false
}

// kindMatches reports whether raw is a JSON value of the kind described by an
// UnmarshalTypeError's Value ("string", "number", "number 1.5", "bool",
// "array", "object").
func kindMatches(raw []byte, want string) bool {
	switch c := firstByte(raw); {
	case c == '"':
		return want == "string"
	case c == '{':
		return want == "object"
	case c == '[':
		return want == "array"
	case c == 't' || c == 'f':
		return want == "bool"
	case c == '-' || (c >= '0' && c <= '9'):
		if want == "number" {
			return true
		}
		lit, ok := strings.CutPrefix(want, "number ")
		return ok && lit == string(raw)
	}
	return false
}

// decodeMessages fills req.System and req.Messages.
func decodeMessages(req *sluice.Request, msgs []wireMessage) error {
	req.Messages = make([]sluice.Message, 0, len(msgs))
	for i := range msgs {
		m := &msgs[i]
		switch m.Role {
		case "system", "developer":
			parts, err := decodeContent(m.Content, i, contentText)
			if err != nil {
				return err
			}
			if parts == nil && isNull(m.Content) {
				return invalid(msgParam(i, "content"), "A "+m.Role+" message needs content.")
			}
			req.System = append(req.System, parts...)
		case "user":
			if isNull(m.Content) {
				return invalid(msgParam(i, "content"), "A user message needs content.")
			}
			parts, err := decodeContent(m.Content, i, contentUser)
			if err != nil {
				return err
			}
			req.Messages = append(req.Messages, sluice.Message{Role: sluice.RoleUser, Parts: parts, Name: m.Name})
		case "assistant":
			msg, err := decodeAssistant(m, i)
			if err != nil {
				return err
			}
			req.Messages = append(req.Messages, msg)
		case "tool":
			if m.ToolCallID == "" {
				return invalid(msgParam(i, "tool_call_id"), "A tool message needs tool_call_id.")
			}
			if isNull(m.Content) {
				return invalid(msgParam(i, "content"), "A tool message needs content.")
			}
			parts, err := decodeContent(m.Content, i, contentText)
			if err != nil {
				return err
			}
			res := sluice.Part{Type: sluice.PartToolResult, ToolCallID: m.ToolCallID, Text: sluice.JoinText(parts)}
			if n := len(req.Messages); n > 0 && req.Messages[n-1].Role == sluice.RoleTool {
				req.Messages[n-1].Parts = append(req.Messages[n-1].Parts, res)
			} else {
				req.Messages = append(req.Messages, sluice.Message{Role: sluice.RoleTool, Parts: []sluice.Part{res}})
			}
		case "":
			return invalid(msgParam(i, "role"), "Each message needs a role.")
		case "function":
			return invalid(msgParam(i, "role"), "The deprecated \"function\" role is not supported; use tool messages.")
		default:
			return invalid(msgParam(i, "role"), "Unsupported role "+strconv.Quote(m.Role)+": use system, developer, user, assistant or tool.")
		}
	}
	return nil
}

func msgParam(i int, field string) string {
	return "messages[" + strconv.Itoa(i) + "]." + field
}

func decodeAssistant(m *wireMessage, i int) (sluice.Message, error) {
	msg := sluice.Message{Role: sluice.RoleAssistant, Name: m.Name}
	n := len(m.ToolCalls)
	if m.ReasoningContent != "" || m.Reasoning != "" {
		n++
	}
	if !isNull(m.Content) {
		n++
	}
	if m.Refusal != "" {
		n++
	}
	msg.Parts = make([]sluice.Part, 0, n)
	if m.ReasoningContent != "" {
		msg.Parts = append(msg.Parts, sluice.Part{Type: sluice.PartThinking, Text: m.ReasoningContent})
	} else if m.Reasoning != "" {
		msg.Parts = append(msg.Parts, sluice.Part{Type: sluice.PartThinking, Text: string(m.Reasoning)})
	}
	parts, err := decodeContent(m.Content, i, contentAssistant)
	if err != nil {
		return msg, err
	}
	msg.Parts = append(msg.Parts, parts...)
	if m.Refusal != "" {
		msg.Parts = append(msg.Parts, sluice.TextPart(m.Refusal))
	}
	for j := range m.ToolCalls {
		tc := &m.ToolCalls[j]
		if tc.Type != "" && tc.Type != "function" {
			return msg, invalid(msgParam(i, "tool_calls["+strconv.Itoa(j)+"].type"), "Unsupported tool call type "+strconv.Quote(tc.Type)+": only function calls are supported.")
		}
		if tc.Function.Name == "" {
			return msg, invalid(msgParam(i, "tool_calls["+strconv.Itoa(j)+"].function.name"), "A tool call needs a function name.")
		}
		args, err := decodeArguments(tc.Function.Arguments)
		if err != nil {
			return msg, invalid(msgParam(i, "tool_calls["+strconv.Itoa(j)+"].function.arguments"), "Tool call arguments must be a JSON string.")
		}
		msg.Parts = append(msg.Parts, sluice.Part{Type: sluice.PartToolCall, ToolCallID: tc.ID, ToolName: tc.Function.Name, Arguments: args})
	}
	return msg, nil
}

// decodeArguments returns a tool call's arguments as JSON text: the string
// OpenAI sends, or the object some clients send in its place.
func decodeArguments(raw json.RawMessage) (string, error) {
	switch firstByte(raw) {
	case 0, 'n':
		if isNull(raw) {
			return "", nil
		}
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		return s, nil
	case '{':
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	return "", errors.New("arguments are neither a string nor an object")
}

// contentKind says which content parts a role may carry.
type contentKind uint8

const (
	contentText      contentKind = iota // system, developer, tool: text only
	contentUser                         // text and images
	contentAssistant                    // text and refusal
)

// decodeContent decodes a message's content: a string or an array of parts.
// Empty text is dropped.
func decodeContent(raw json.RawMessage, i int, kind contentKind) ([]sluice.Part, error) {
	switch firstByte(raw) {
	case 0:
		return nil, nil
	case 'n':
		if isNull(raw) {
			return nil, nil
		}
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, jsonError(raw, msgParam(i, "content"), err)
		}
		if s == "" {
			return nil, nil
		}
		return []sluice.Part{sluice.TextPart(s)}, nil
	case '[':
		var wps []wireContentPart
		if err := json.Unmarshal(raw, &wps); err != nil {
			return nil, jsonError(raw, msgParam(i, "content"), err)
		}
		parts := make([]sluice.Part, 0, len(wps))
		for j := range wps {
			p, err := decodeContentPart(&wps[j], i, j, kind)
			if err != nil {
				return nil, err
			}
			if p.Type == sluice.PartText && p.Text == "" {
				continue
			}
			parts = append(parts, p)
		}
		return parts, nil
	}
	return nil, invalid(msgParam(i, "content"), "content must be a string or an array of content parts.")
}

func partParam(i, j int, field string) string {
	p := msgParam(i, "content["+strconv.Itoa(j)+"]")
	if field != "" {
		p += "." + field
	}
	return p
}

func decodeContentPart(wp *wireContentPart, i, j int, kind contentKind) (sluice.Part, error) {
	switch wp.Type {
	case "text":
		return sluice.TextPart(wp.Text), nil
	case "refusal":
		if kind == contentAssistant {
			return sluice.TextPart(wp.Refusal), nil
		}
	case "image_url":
		if kind == contentUser {
			return decodeImage(wp.ImageURL, i, j)
		}
	case "":
		return sluice.Part{}, invalid(partParam(i, j, "type"), "Each content part needs a type.")
	default:
		return sluice.Part{}, invalid(partParam(i, j, "type"), "Content parts of type "+strconv.Quote(wp.Type)+" are not supported.")
	}
	return sluice.Part{}, invalid(partParam(i, j, "type"), "Content parts of type "+strconv.Quote(wp.Type)+" are not allowed in this message's role.")
}

func decodeImage(raw json.RawMessage, i, j int) (sluice.Part, error) {
	var img wireImageURL
	switch firstByte(raw) {
	case '{':
		if err := json.Unmarshal(raw, &img); err != nil {
			return sluice.Part{}, jsonError(raw, partParam(i, j, "image_url"), err)
		}
	case '"':
		// Some clients send the URL itself.
		if err := json.Unmarshal(raw, &img.URL); err != nil {
			return sluice.Part{}, jsonError(raw, partParam(i, j, "image_url"), err)
		}
	default:
		return sluice.Part{}, invalid(partParam(i, j, "image_url"), "An image_url part needs an image_url object with a url.")
	}
	p := sluice.Part{Type: sluice.PartImage, ImageDetail: img.Detail}
	u := img.URL
	switch {
	case hasPrefixFold(u, "data:"):
		mt, data, err := decodeDataURL(u)
		if err != nil {
			return sluice.Part{}, invalid(partParam(i, j, "image_url.url"), "The image data URL is not valid: "+err.Error()+".")
		}
		p.MediaType, p.ImageData = mt, data
	case hasPrefixFold(u, "https://"), hasPrefixFold(u, "http://"):
		p.ImageURL = u
	case u == "":
		return sluice.Part{}, invalid(partParam(i, j, "image_url.url"), "An image_url part needs a url.")
	default:
		return sluice.Part{}, invalid(partParam(i, j, "image_url.url"), "The image url must be an http(s) URL or a base64 data URL.")
	}
	return p, nil
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// decodeDataURL decodes a base64 data: URL into its media type and bytes.
func decodeDataURL(u string) (string, []byte, error) {
	meta, payload, ok := strings.Cut(u[len("data:"):], ",")
	if !ok {
		return "", nil, errors.New("no comma")
	}
	var isBase64 bool
	mt := meta
	if k := strings.IndexByte(meta, ';'); k >= 0 {
		mt = meta[:k]
		for _, param := range strings.Split(meta[k+1:], ";") {
			if strings.EqualFold(strings.TrimSpace(param), "base64") {
				isBase64 = true
			}
		}
	}
	if !isBase64 {
		return "", nil, errors.New("only base64 data URLs are supported")
	}
	mt = strings.ToLower(strings.TrimSpace(mt))
	if mt == "" {
		return "", nil, errors.New("no media type")
	}
	payload = strings.TrimRight(payload, "=")
	data, err := base64.RawStdEncoding.DecodeString(payload)
	if err != nil {
		data, err = base64.RawURLEncoding.DecodeString(payload)
	}
	if err != nil {
		return "", nil, errors.New("bad base64")
	}
	return mt, data, nil
}

func toolParam(i int, field string) string {
	return "tools[" + strconv.Itoa(i) + "]." + field
}

func decodeTools(req *sluice.Request, tools []wireTool) error {
	if len(tools) == 0 {
		return nil
	}
	req.Tools = make([]sluice.Tool, 0, len(tools))
	for i := range tools {
		t := &tools[i]
		if t.Type != "function" {
			if t.Type == "" {
				return invalid(toolParam(i, "type"), "Each tool needs type \"function\".")
			}
			return invalid(toolParam(i, "type"), "Unsupported tool type "+strconv.Quote(t.Type)+": only function tools are supported.")
		}
		f := t.Function
		if f == nil {
			return invalid(toolParam(i, "function"), "A function tool needs a function object.")
		}
		if f.Name == "" {
			return invalid(toolParam(i, "function.name"), "A function tool needs a name.")
		}
		tool := sluice.Tool{Name: f.Name, Description: f.Description}
		if !isNull(f.Parameters) {
			if firstByte(f.Parameters) != '{' {
				return invalid(toolParam(i, "function.parameters"), "parameters must be a JSON Schema object.")
			}
			tool.Parameters = f.Parameters
		}
		if f.Strict != nil {
			tool.Strict = *f.Strict
		}
		req.Tools = append(req.Tools, tool)
	}
	return nil
}

func decodeToolChoice(req *sluice.Request, raw json.RawMessage) error {
	switch firstByte(raw) {
	case 0:
		return nil
	case 'n':
		if isNull(raw) {
			return nil
		}
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return jsonError(raw, "tool_choice", err)
		}
		switch s {
		case "auto":
			req.ToolChoice.Mode = sluice.ToolChoiceAuto
		case "none":
			req.ToolChoice.Mode = sluice.ToolChoiceNone
		case "required":
			req.ToolChoice.Mode = sluice.ToolChoiceRequired
		default:
			return invalid("tool_choice", "tool_choice must be \"auto\", \"none\", \"required\" or a function object.")
		}
		return nil
	case '{':
		var tc wireToolChoice
		if err := json.Unmarshal(raw, &tc); err != nil {
			return jsonError(raw, "tool_choice", err)
		}
		if tc.Type != "function" {
			return invalid("tool_choice.type", "Unsupported tool_choice type "+strconv.Quote(tc.Type)+": only \"function\" is supported.")
		}
		if tc.Function.Name == "" {
			return invalid("tool_choice.function.name", "tool_choice needs a function name.")
		}
		req.ToolChoice = sluice.ToolChoice{Mode: sluice.ToolChoiceTool, Name: tc.Function.Name}
		return nil
	}
	return invalid("tool_choice", "tool_choice must be a string or an object.")
}

func decodeResponseFormat(req *sluice.Request, rf *wireResponseFormat) error {
	if rf == nil {
		return nil
	}
	switch rf.Type {
	case "text":
	case "json_object":
		req.Output.Type = sluice.OutputJSONObject
	case "json_schema":
		js := rf.JSONSchema
		if js == nil {
			return invalid("response_format.json_schema", "response_format of type json_schema needs a json_schema object.")
		}
		if js.Name == "" {
			return invalid("response_format.json_schema.name", "response_format.json_schema needs a name.")
		}
		out := sluice.Output{Type: sluice.OutputJSONSchema, Name: js.Name, Description: js.Description}
		if !isNull(js.Schema) {
			if firstByte(js.Schema) != '{' {
				return invalid("response_format.json_schema.schema", "schema must be a JSON Schema object.")
			}
			out.Schema = js.Schema
		}
		if js.Strict != nil {
			out.Strict = *js.Strict
		}
		req.Output = out
	case "":
		return invalid("response_format.type", "response_format needs a type.")
	default:
		return invalid("response_format.type", "Unsupported response_format type "+strconv.Quote(rf.Type)+": use text, json_object or json_schema.")
	}
	return nil
}

func decodeStop(raw json.RawMessage) ([]string, error) {
	switch firstByte(raw) {
	case 0:
		return nil, nil
	case 'n':
		if isNull(raw) {
			return nil, nil
		}
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, jsonError(raw, "stop", err)
		}
		if s == "" {
			return nil, nil
		}
		return []string{s}, nil
	case '[':
		var ss []string
		if err := json.Unmarshal(raw, &ss); err != nil {
			return nil, jsonError(raw, "stop", err)
		}
		if len(ss) == 0 {
			return nil, nil
		}
		return ss, nil
	}
	return nil, invalid("stop", "stop must be a string or an array of strings.")
}
