package anthropic

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/sluice-gw/sluice"
)

func ptr[T any](v T) *T { return &v }

// base wraps messages (and extra top-level fields) in a minimal valid body.
func base(extra string) string {
	return `{"model":"claude-x","max_tokens":100,` + extra + `}`
}

func userHi() []sluice.Message {
	return []sluice.Message{{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart("hi")}}}
}

func TestDecodeRequest(t *testing.T) {
	hiMsgs := `"messages":[{"role":"user","content":"hi"}]`
	tests := []struct {
		name string
		body string
		want *sluice.Request
	}{
		{
			name: "minimal",
			body: base(hiMsgs),
			want: &sluice.Request{Model: "claude-x", MaxOutputTokens: 100, Messages: userHi()},
		},
		{
			name: "system string",
			body: base(`"system":"be brief",` + hiMsgs),
			want: &sluice.Request{Model: "claude-x", MaxOutputTokens: 100, System: []sluice.Part{sluice.TextPart("be brief")}, Messages: userHi()},
		},
		{
			name: "system blocks with cache_control ignored",
			body: base(`"system":[{"type":"text","text":"a","cache_control":{"type":"ephemeral"}},{"type":"text","text":"b"}],` + hiMsgs),
			want: &sluice.Request{Model: "claude-x", MaxOutputTokens: 100, System: []sluice.Part{sluice.TextPart("a"), sluice.TextPart("b")}, Messages: userHi()},
		},
		{
			name: "empty system and null fields",
			body: base(`"system":"","temperature":null,"tools":null,"tool_choice":null,"metadata":null,` + hiMsgs),
			want: &sluice.Request{Model: "claude-x", MaxOutputTokens: 100, Messages: userHi()},
		},
		{
			name: "user blocks: text and images",
			body: base(`"messages":[{"role":"user","content":[
				{"type":"text","text":"look"},
				{"type":"image","source":{"type":"base64","media_type":"image/png","data":"aGk="}},
				{"type":"image","source":{"type":"url","url":"https://example.com/a.jpg"}}]}]`),
			want: &sluice.Request{Model: "claude-x", MaxOutputTokens: 100, Messages: []sluice.Message{{Role: sluice.RoleUser, Parts: []sluice.Part{
				sluice.TextPart("look"),
				{Type: sluice.PartImage, ImageData: []byte("hi"), MediaType: "image/png"},
				{Type: sluice.PartImage, ImageURL: "https://example.com/a.jpg"},
			}}}},
		},
		{
			name: "assistant blocks: thinking, redacted, text, tool_use",
			body: base(`"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[
				{"type":"thinking","thinking":"hmm","signature":"sig"},
				{"type":"redacted_thinking","data":"opaque"},
				{"type":"text","text":"calling"},
				{"type":"tool_use","id":"toolu_1","name":"get","input":{ "a" : [1, 2] }},
				{"type":"tool_use","id":"toolu_2","name":"now","input":{}}]}]`),
			want: &sluice.Request{Model: "claude-x", MaxOutputTokens: 100, Messages: append(userHi(), sluice.Message{Role: sluice.RoleAssistant, Parts: []sluice.Part{
				{Type: sluice.PartThinking, Text: "hmm", Signature: "sig"},
				{Type: sluice.PartThinking, Redacted: true, Data: "opaque"},
				sluice.TextPart("calling"),
				{Type: sluice.PartToolCall, ToolCallID: "toolu_1", ToolName: "get", Arguments: `{"a":[1,2]}`},
				{Type: sluice.PartToolCall, ToolCallID: "toolu_2", ToolName: "now", Arguments: `{}`},
			}})},
		},
		{
			name: "tool results split from text in order",
			body: base(`"messages":[{"role":"user","content":[
				{"type":"text","text":"before"},
				{"type":"tool_result","tool_use_id":"t1","content":"sunny"},
				{"type":"tool_result","tool_use_id":"t2","content":[{"type":"text","text":"one block"}],"is_error":true},
				{"type":"tool_result","tool_use_id":"t3","content":[{"type":"text","text":"a"},{"type":"image","source":{"type":"url","url":"https://x/y.png"}}]},
				{"type":"tool_result","tool_use_id":"t4"},
				{"type":"text","text":"after"}]}]`),
			want: &sluice.Request{Model: "claude-x", MaxOutputTokens: 100, Messages: []sluice.Message{
				{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart("before")}},
				{Role: sluice.RoleTool, Parts: []sluice.Part{
					{Type: sluice.PartToolResult, ToolCallID: "t1", Text: "sunny"},
					{Type: sluice.PartToolResult, ToolCallID: "t2", Text: "one block", IsError: true},
					{Type: sluice.PartToolResult, ToolCallID: "t3", Content: []sluice.Part{sluice.TextPart("a"), {Type: sluice.PartImage, ImageURL: "https://x/y.png"}}},
					{Type: sluice.PartToolResult, ToolCallID: "t4"},
				}},
				{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart("after")}},
			}},
		},
		{
			name: "tools and tool_choice tool with parallel disabled",
			body: base(hiMsgs + `,"tools":[{"name":"get","description":"d","input_schema":{"type":"object"}},{"type":"custom","name":"now"}],
				"tool_choice":{"type":"tool","name":"get","disable_parallel_tool_use":true}`),
			want: &sluice.Request{Model: "claude-x", MaxOutputTokens: 100, Messages: userHi(),
				Tools: []sluice.Tool{
					{Name: "get", Description: "d", Parameters: json.RawMessage(`{"type":"object"}`)},
					{Name: "now"},
				},
				ToolChoice:        sluice.ToolChoice{Mode: sluice.ToolChoiceTool, Name: "get"},
				ParallelToolCalls: ptr(false),
			},
		},
		{
			name: "tool_choice any, parallel explicitly allowed",
			body: base(hiMsgs + `,"tools":[{"name":"get","input_schema":{}}],"tool_choice":{"type":"any","disable_parallel_tool_use":false}`),
			want: &sluice.Request{Model: "claude-x", MaxOutputTokens: 100, Messages: userHi(),
				Tools:             []sluice.Tool{{Name: "get", Parameters: json.RawMessage(`{}`)}},
				ToolChoice:        sluice.ToolChoice{Mode: sluice.ToolChoiceRequired},
				ParallelToolCalls: ptr(true),
			},
		},
		{
			name: "tool_choice none and auto",
			body: base(hiMsgs + `,"tool_choice":{"type":"none"}`),
			want: &sluice.Request{Model: "claude-x", MaxOutputTokens: 100, Messages: userHi(), ToolChoice: sluice.ToolChoice{Mode: sluice.ToolChoiceNone}},
		},
		{
			name: "sampling, metadata, stream",
			body: base(hiMsgs + `,"stop_sequences":["END","\n\n"],"temperature":0.5,"top_p":0.9,"top_k":40,"metadata":{"user_id":"u-1"},"stream":true`),
			want: &sluice.Request{Model: "claude-x", MaxOutputTokens: 100, Messages: userHi(),
				Stop: []string{"END", "\n\n"}, Temperature: ptr(0.5), TopP: ptr(0.9), TopK: ptr(40),
				Caller: sluice.Caller{User: "u-1"}, Stream: true,
			},
		},
		{
			name: "unknown fields ignored",
			body: base(hiMsgs + `,"thinking":{"type":"enabled","budget_tokens":2048},"service_tier":"auto","future":{"x":[1]}`),
			want: &sluice.Request{Model: "claude-x", MaxOutputTokens: 100, Messages: userHi()},
		},
		{
			name: "assistant first and prefill last",
			body: base(`"messages":[{"role":"assistant","content":"hello"},{"role":"user","content":"hi"},{"role":"assistant","content":"The answer is"}]`),
			want: &sluice.Request{Model: "claude-x", MaxOutputTokens: 100, Messages: []sluice.Message{
				{Role: sluice.RoleAssistant, Parts: []sluice.Part{sluice.TextPart("hello")}},
				{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart("hi")}},
				{Role: sluice.RoleAssistant, Parts: []sluice.Part{sluice.TextPart("The answer is")}},
			}},
		},
		{
			name: "empty content",
			body: base(`"messages":[{"role":"user","content":""},{"role":"user","content":[]}]`),
			want: &sluice.Request{Model: "claude-x", MaxOutputTokens: 100, Messages: []sluice.Message{{Role: sluice.RoleUser}, {Role: sluice.RoleUser}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeRequest([]byte(tt.body))
			if err != nil {
				t.Fatalf("DecodeRequest: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeRequestErrors(t *testing.T) {
	msg := func(content string) string { return base(`"messages":[{"role":"user","content":` + content + `}]`) }
	asst := func(content string) string {
		return base(`"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":` + content + `}]`)
	}
	hi := `"messages":[{"role":"user","content":"hi"}]`
	tests := []struct {
		name, body, param string
	}{
		{"not JSON", `{"model":`, ""},
		{"empty body", ``, ""},
		{"not an object", `[1,2]`, ""},
		{"missing model", `{"max_tokens":1,` + hi + `}`, "model"},
		{"empty model", `{"model":"","max_tokens":1,` + hi + `}`, "model"},
		{"model not a string", `{"model":5,"max_tokens":1,` + hi + `}`, "model"},
		{"missing max_tokens", `{"model":"m",` + hi + `}`, "max_tokens"},
		{"zero max_tokens", `{"model":"m","max_tokens":0,` + hi + `}`, "max_tokens"},
		{"fractional max_tokens", `{"model":"m","max_tokens":1.5,` + hi + `}`, "max_tokens"},
		{"string max_tokens", `{"model":"m","max_tokens":"10",` + hi + `}`, "max_tokens"},
		{"missing messages", base(`"system":"x"`), "messages"},
		{"empty messages", base(`"messages":[]`), "messages"},
		{"messages not an array", base(`"messages":"hi"`), "messages"},
		{"message not an object", base(`"messages":[{"role":"user","content":"a"},"hi"]`), "messages.1"},
		{"missing role", base(`"messages":[{"content":"hi"}]`), "messages.0.role"},
		{"system role", base(`"messages":[{"role":"system","content":"hi"}]`), "messages.0.role"},
		{"bad role", base(`"messages":[{"role":"tool","content":"hi"}]`), "messages.0.role"},
		{"role not a string", base(`"messages":[{"role":"user","content":"a"},{"role":5,"content":"hi"}]`), "messages.1.role"},
		{"missing content", base(`"messages":[{"role":"user"}]`), "messages.0.content"},
		{"null content", msg(`null`), "messages.0.content"},
		{"number content", msg(`5`), "messages.0.content"},
		{"block not an object", msg(`[{"type":"text","text":"a"},7]`), "messages.0.content.1"},
		{"block without type", msg(`[{"text":"a"}]`), "messages.0.content.0.type"},
		{"unsupported block", msg(`[{"type":"document","source":{}}]`), "messages.0.content.0.type"},
		{"text not a string", msg(`[{"type":"text","text":"a"},{"type":"text","text":5}]`), "messages.0.content.1.text"},
		{"image without source", msg(`[{"type":"image"}]`), "messages.0.content.0.source"},
		{"image file source", msg(`[{"type":"image","source":{"type":"file","file_id":"f"}}]`), "messages.0.content.0.source.type"},
		{"image bad base64", msg(`[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"!!"}}]`), "messages.0.content.0.source.data"},
		{"image without media type", msg(`[{"type":"image","source":{"type":"base64","data":"aGk="}}]`), "messages.0.content.0.source.media_type"},
		{"image url missing", msg(`[{"type":"image","source":{"type":"url"}}]`), "messages.0.content.0.source.url"},
		{"tool_use in user message", msg(`[{"type":"tool_use","id":"t","name":"n","input":{}}]`), "messages.0.content.0.type"},
		{"tool_use without id", asst(`[{"type":"tool_use","name":"n","input":{}}]`), "messages.1.content.0.id"},
		{"tool_use without name", asst(`[{"type":"tool_use","id":"t","input":{}}]`), "messages.1.content.0.name"},
		{"tool_use input not an object", asst(`[{"type":"tool_use","id":"t","name":"n","input":[1]}]`), "messages.1.content.0.input"},
		{"tool_result in assistant message", asst(`[{"type":"tool_result","tool_use_id":"t"}]`), "messages.1.content.0.type"},
		{"tool_result without id", msg(`[{"type":"tool_result","content":"x"}]`), "messages.0.content.0.tool_use_id"},
		{"tool_result content number", msg(`[{"type":"tool_result","tool_use_id":"t","content":5}]`), "messages.0.content.0.content"},
		{"tool_result unsupported block", msg(`[{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":"a"},{"type":"document"}]}]`), "messages.0.content.0.content.1.type"},
		{"tool_result block wrong type", msg(`[{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":"a"},{"type":"text","text":[]}]}]`), "messages.0.content.0.content.1.text"},
		{"is_error not a bool", msg(`[{"type":"tool_result","tool_use_id":"t","is_error":"yes"}]`), "messages.0.content.0.is_error"},
		{"thinking in user message", msg(`[{"type":"thinking","thinking":"x","signature":"s"}]`), "messages.0.content.0.type"},
		{"system number", base(`"system":5,` + hi), "system"},
		{"system image block", base(`"system":[{"type":"image"}],` + hi), "system.0.type"},
		{"system block text wrong type", base(`"system":[{"type":"text","text":1}],` + hi), "system.0.text"},
		{"tool without name", base(hi + `,"tools":[{"input_schema":{}}]`), "tools.0.name"},
		{"server tool", base(hi + `,"tools":[{"type":"web_search_20250305","name":"web_search"}]`), "tools.0.type"},
		{"input_schema not an object", base(hi + `,"tools":[{"name":"a","input_schema":"x"}]`), "tools.0.input_schema"},
		{"tool name wrong type", base(hi + `,"tools":[{"name":"a"},{"name":5}]`), "tools.1.name"},
		{"tools not an array", base(hi + `,"tools":{}`), "tools"},
		{"tool_choice bad type", base(hi + `,"tool_choice":{"type":"required"}`), "tool_choice.type"},
		{"tool_choice tool without name", base(hi + `,"tool_choice":{"type":"tool"}`), "tool_choice.name"},
		{"tool_choice string", base(hi + `,"tool_choice":"auto"`), "tool_choice"},
		{"tool_choice disable wrong type", base(hi + `,"tool_choice":{"type":"auto","disable_parallel_tool_use":"yes"}`), "tool_choice.disable_parallel_tool_use"},
		{"temperature too high", base(hi + `,"temperature":1.5`), "temperature"},
		{"temperature string", base(hi + `,"temperature":"hot"`), "temperature"},
		{"top_p too high", base(hi + `,"top_p":2`), "top_p"},
		{"top_k negative", base(hi + `,"top_k":-1`), "top_k"},
		{"stream string", base(hi + `,"stream":"yes"`), "stream"},
		{"user_id number", base(hi + `,"metadata":{"user_id":5}`), "metadata.user_id"},
		{"stop_sequences string", base(hi + `,"stop_sequences":"END"`), "stop_sequences"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := DecodeRequest([]byte(tt.body))
			if err == nil {
				t.Fatalf("DecodeRequest = %+v, want an error", req)
			}
			var se *sluice.Error
			if !errors.As(err, &se) {
				t.Fatalf("error %T %v is not a *sluice.Error", err, err)
			}
			if se.Code != sluice.CodeInvalidRequest {
				t.Errorf("code = %s, want invalid_request", se.Code)
			}
			if se.Param != tt.param {
				t.Errorf("param = %q, want %q (message %q)", se.Param, tt.param, se.Message)
			}
			if se.Message == "" {
				t.Error("empty message")
			}
		})
	}
}

func TestDecodeRequestTypeErrorMessage(t *testing.T) {
	_, err := DecodeRequest([]byte(`{"model":"m","max_tokens":1.5,"messages":[{"role":"user","content":"hi"}]}`))
	want := "max_tokens: expected an integer, got the number 1.5."
	if se := sluice.AsError(err); se.Message != want {
		t.Errorf("message = %q, want %q", se.Message, want)
	}
}

func TestCheckVersion(t *testing.T) {
	tests := []struct {
		name, value string
		ok          bool
	}{
		{"missing", "", true},
		{"classic", "2023-06-01", true},
		{"newer", "2026-10-21", true},
		{"older", "2023-01-01", false},
		{"not a date", "latest", false},
		{"impossible date", "2024-13-45", false},
		{"extra text", "2023-06-01-beta", false},
		{"short", "2024-1-1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.value != "" {
				h.Set("anthropic-version", tt.value)
			}
			err := CheckVersion(h)
			if tt.ok {
				if err != nil {
					t.Fatalf("CheckVersion(%q) = %v, want nil", tt.value, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckVersion(%q) = nil, want an error", tt.value)
			}
			if err.Code != sluice.CodeInvalidRequest || err.Param != "anthropic-version" {
				t.Errorf("error = %+v, want invalid_request naming anthropic-version", err)
			}
		})
	}
}

func TestAPIKey(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		want    string
	}{
		{"none", nil, ""},
		{"x-api-key", map[string]string{"X-Api-Key": "sk-1"}, "sk-1"},
		{"bearer", map[string]string{"Authorization": "Bearer sk-2"}, "sk-2"},
		{"bearer any case", map[string]string{"Authorization": "bearer  sk-3 "}, "sk-3"},
		{"x-api-key wins", map[string]string{"X-Api-Key": "sk-1", "Authorization": "Bearer sk-2"}, "sk-1"},
		{"basic is not a key", map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}, ""},
		{"bare bearer", map[string]string{"Authorization": "Bearer"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.headers {
				h.Set(k, v)
			}
			if got := APIKey(h); got != tt.want {
				t.Errorf("APIKey = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDecodeOutputConfig(t *testing.T) {
	req, err := DecodeRequest([]byte(`{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}],"output_config":{"effort":"low","format":{"type":"json_schema","schema":{"type":"object","required":["a"]}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if req.Output.Type != sluice.OutputJSONSchema || string(req.Output.Schema) != `{"type":"object","required":["a"]}` {
		t.Fatalf("output = %+v", req.Output)
	}
	for _, body := range []string{
		`{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}],"output_config":{"format":{"type":"text"}}}`,
		`{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}],"output_config":{"format":{"type":"json_schema"}}}`,
	} {
		_, err := DecodeRequest([]byte(body))
		var e *sluice.Error
		if !errors.As(err, &e) || e.Code != sluice.CodeInvalidRequest || !strings.HasPrefix(e.Param, "output_config.format") {
			t.Errorf("%s: err = %v, want invalid_request on output_config.format", body, err)
		}
	}
}
