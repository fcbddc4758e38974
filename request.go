package sluice

import "encoding/json"

// Role is the author of a message in a conversation. System instructions are not
// a role here: they live in Request.System.
type Role string

// The roles a Message may have.
const (
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
	// RoleTool carries the results of tool calls back to the model. Its parts are
	// PartToolResult.
	RoleTool Role = "tool"
)

// PartType says which fields of a Part are meaningful.
type PartType string

// The kinds of Part.
const (
	PartText       PartType = "text"        // Text
	PartImage      PartType = "image"       // ImageURL, or ImageData with MediaType; ImageDetail
	PartToolCall   PartType = "tool_call"   // ToolCallID, ToolName, Arguments
	PartToolResult PartType = "tool_result" // ToolCallID, Text (or Content), IsError
	PartThinking   PartType = "thinking"    // Text, Signature; Redacted with Data
)

// A Part is one typed piece of a message's content. It is a flat struct rather
// than an interface so that messages can be built and copied without allocation
// per part; Type says which fields are in use.
type Part struct {
	Type PartType

	// Text is the text of a text part, the reasoning of a thinking part, or the
	// plain-text content of a tool result.
	Text string

	// ImageURL is an http(s) URL or a data: URL. ImageData holds decoded bytes
	// when the client sent base64 (then MediaType names their type).
	ImageURL    string
	ImageData   []byte
	MediaType   string
	ImageDetail string // OpenAI's "auto", "low" or "high"; empty when unset

	// ToolCallID links a tool call to its result. ToolName is the function's
	// name; Arguments is the JSON text of its arguments (an object).
	ToolCallID string
	ToolName   string
	Arguments  string

	// Content is a tool result's content when it is more than plain text (text
	// and image parts). IsError marks a tool result that reports a failure.
	Content []Part
	IsError bool

	// Signature authenticates a thinking part (Anthropic). Redacted marks an
	// encrypted thinking block whose opaque payload is in Data.
	Signature string
	Redacted  bool
	Data      string
}

// TextPart returns a text part.
func TextPart(s string) Part { return Part{Type: PartText, Text: s} }

// A Message is one turn of a conversation.
type Message struct {
	Role  Role
	Parts []Part
	// Name is an optional participant name (OpenAI's "name" field).
	Name string
}

// Text returns the concatenated text parts of m.
func (m *Message) Text() string {
	return JoinText(m.Parts)
}

// JoinText concatenates the Text of the text parts in parts.
func JoinText(parts []Part) string {
	if len(parts) == 1 && parts[0].Type == PartText {
		return parts[0].Text
	}
	var n int
	for i := range parts {
		if parts[i].Type == PartText {
			n += len(parts[i].Text)
		}
	}
	b := make([]byte, 0, n)
	for i := range parts {
		if parts[i].Type == PartText {
			b = append(b, parts[i].Text...)
		}
	}
	return string(b)
}

// ToolCalls returns the tool-call parts of m.
func (m *Message) ToolCalls() []Part {
	var calls []Part
	for _, p := range m.Parts {
		if p.Type == PartToolCall {
			calls = append(calls, p)
		}
	}
	return calls
}

// A Tool is a function the model may call.
type Tool struct {
	Name        string
	Description string
	// Parameters is the JSON Schema of the function's arguments (an object).
	// Nil means the function takes no arguments.
	Parameters json.RawMessage
	// Strict asks the provider to constrain arguments to Parameters exactly
	// (OpenAI's strict function calling).
	Strict bool
}

// ToolChoiceMode says whether and how the model must call tools.
type ToolChoiceMode string

// The tool-choice modes. The zero value means the provider's default (auto when
// tools are offered).
const (
	ToolChoiceDefault  ToolChoiceMode = ""
	ToolChoiceAuto     ToolChoiceMode = "auto"
	ToolChoiceNone     ToolChoiceMode = "none"
	ToolChoiceRequired ToolChoiceMode = "required" // OpenAI "required", Anthropic "any"
	ToolChoiceTool     ToolChoiceMode = "tool"     // a specific tool, named by Name
)

// ToolChoice controls tool use.
type ToolChoice struct {
	Mode ToolChoiceMode
	Name string // with ToolChoiceTool
}

// OutputType is the requested shape of the model's answer.
type OutputType string

// The output types. The zero value is plain text.
const (
	OutputText       OutputType = ""
	OutputJSONObject OutputType = "json_object"
	OutputJSONSchema OutputType = "json_schema"
)

// Output is the requested answer format.
type Output struct {
	Type        OutputType
	Name        string          // json_schema: the schema's name
	Description string          // json_schema: optional description
	Schema      json.RawMessage // json_schema: the JSON Schema
	Strict      bool            // json_schema: constrain decoding exactly
}

// Caller identifies who sent a request. The gateway fills it from the
// authenticated key and the connection; in-process callers set it themselves.
type Caller struct {
	Key    string // the key's id or name, never the secret
	User   string
	Tenant string
	Tier   string // the key's tier: the limits its calls are held to
	IP     string
}

// A Request is one chat call in provider-neutral form.
type Request struct {
	// Model is the public model name the client asked for. A provider receives a
	// copy whose Model is the upstream model name of its target.
	Model string
	// System holds the system instructions (OpenAI's system and developer
	// messages, Anthropic's system field), as text parts in order.
	System   []Part
	Messages []Message

	Tools             []Tool
	ToolChoice        ToolChoice
	ParallelToolCalls *bool // nil: the provider's default

	Output Output

	// MaxOutputTokens caps generated tokens; zero means the provider's default.
	MaxOutputTokens int

	Temperature *float64
	TopP        *float64
	TopK        *int
	Stop        []string
	Seed        *int64

	// Stream asks for an event stream rather than one response.
	Stream bool

	// ID identifies the request in logs and the usage ledger (the
	// gateway's Request-Id); empty for a caller that has none.
	ID       string
	Caller   Caller
	Metadata map[string]string
}

// SystemText returns the system instructions as one string, parts joined by a
// blank line.
func (r *Request) SystemText() string {
	switch len(r.System) {
	case 0:
		return ""
	case 1:
		return r.System[0].Text
	}
	var b []byte
	for i, p := range r.System {
		if i > 0 {
			b = append(b, "\n\n"...)
		}
		b = append(b, p.Text...)
	}
	return string(b)
}
