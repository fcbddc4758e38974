package openai

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/sluice-gw/sluice"
)

// pngBytes is the start of a PNG file, enough for content sniffing.
var pngBytes = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")

func TestDecodeRequest(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		want     *sluice.Request
		wantOpts RequestOptions
	}{
		{
			name: "minimal",
			body: `{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}`,
			want: &sluice.Request{Model: "gpt-4o", Messages: []sluice.Message{{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart("Hi")}}}},
		},
		{
			name: "system and developer messages go to System in order",
			body: `{"model":"m","messages":[
				{"role":"system","content":"Be brief."},
				{"role":"user","content":"Hi","name":"ann"},
				{"role":"developer","content":[{"type":"text","text":"One"},{"type":"text","text":"Two"}]}]}`,
			want: &sluice.Request{
				Model:    "m",
				System:   []sluice.Part{sluice.TextPart("Be brief."), sluice.TextPart("One"), sluice.TextPart("Two")},
				Messages: []sluice.Message{{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart("Hi")}, Name: "ann"}},
			},
		},
		{
			name: "user content parts with images",
			body: `{"model":"m","messages":[{"role":"user","content":[
				{"type":"text","text":"What is this?"},
				{"type":"image_url","image_url":{"url":"https://example.com/a.png","detail":"high"}},
				{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgoAAAANSUhEUg=="}},
				{"type":"image_url","image_url":"https://example.com/b.jpg"},
				{"type":"text","text":""}]}]}`,
			want: &sluice.Request{Model: "m", Messages: []sluice.Message{{Role: sluice.RoleUser, Parts: []sluice.Part{
				sluice.TextPart("What is this?"),
				{Type: sluice.PartImage, ImageURL: "https://example.com/a.png", ImageDetail: "high"},
				{Type: sluice.PartImage, ImageData: pngBytes, MediaType: "image/png"},
				{Type: sluice.PartImage, ImageURL: "https://example.com/b.jpg"},
			}}}},
		},
		{
			name: "assistant tool calls, tool results merged, refusal and reasoning",
			body: `{"model":"m","messages":[
				{"role":"user","content":"Weather in Paris and Rome?"},
				{"role":"assistant","content":null,"reasoning_content":"Two cities.","tool_calls":[
					{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
					{"id":"call_2","type":"function","function":{"name":"get_weather","arguments":{"city":"Rome"}}}]},
				{"role":"tool","tool_call_id":"call_1","content":"18C"},
				{"role":"tool","tool_call_id":"call_2","content":[{"type":"text","text":"21"},{"type":"text","text":"C"}]},
				{"role":"assistant","content":"Paris 18C, Rome 21C.","name":"bot"},
				{"role":"user","content":"Do something bad."},
				{"role":"assistant","content":[{"type":"refusal","refusal":"I can't."}],"refusal":"No."},
				{"role":"assistant","content":"","reasoning":"hmm"}]}`,
			want: &sluice.Request{Model: "m", Messages: []sluice.Message{
				{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart("Weather in Paris and Rome?")}},
				{Role: sluice.RoleAssistant, Parts: []sluice.Part{
					{Type: sluice.PartThinking, Text: "Two cities."},
					{Type: sluice.PartToolCall, ToolCallID: "call_1", ToolName: "get_weather", Arguments: `{"city":"Paris"}`},
					{Type: sluice.PartToolCall, ToolCallID: "call_2", ToolName: "get_weather", Arguments: `{"city":"Rome"}`},
				}},
				{Role: sluice.RoleTool, Parts: []sluice.Part{
					{Type: sluice.PartToolResult, ToolCallID: "call_1", Text: "18C"},
					{Type: sluice.PartToolResult, ToolCallID: "call_2", Text: "21C"},
				}},
				{Role: sluice.RoleAssistant, Parts: []sluice.Part{sluice.TextPart("Paris 18C, Rome 21C.")}, Name: "bot"},
				{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart("Do something bad.")}},
				{Role: sluice.RoleAssistant, Parts: []sluice.Part{sluice.TextPart("I can't."), sluice.TextPart("No.")}},
				{Role: sluice.RoleAssistant, Parts: []sluice.Part{{Type: sluice.PartThinking, Text: "hmm"}}},
			}},
		},
		{
			name: "tools, tool choice and sampling",
			body: `{"model":"m","messages":[{"role":"user","content":"x"}],
				"tools":[{"type":"function","function":{"name":"f","description":"does f","parameters":{"type":"object"},"strict":true}},
				         {"type":"function","function":{"name":"g"}}],
				"tool_choice":{"type":"function","function":{"name":"f"}},
				"parallel_tool_calls":false,
				"max_tokens":100,"temperature":0.5,"top_p":0.9,"stop":"END","seed":42,"user":"u-1",
				"stream":true,"stream_options":{"include_usage":true},"metadata":{"team":"a"},"n":1,
				"logprobs":false,"frequency_penalty":0,"store":false,"reasoning_effort":"low","unknown":{"x":[1,2]}}`,
			want: &sluice.Request{
				Model:    "m",
				Messages: []sluice.Message{{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart("x")}}},
				Tools: []sluice.Tool{
					{Name: "f", Description: "does f", Parameters: json.RawMessage(`{"type":"object"}`), Strict: true},
					{Name: "g"},
				},
				ToolChoice:        sluice.ToolChoice{Mode: sluice.ToolChoiceTool, Name: "f"},
				ParallelToolCalls: ptr(false),
				MaxOutputTokens:   100,
				Temperature:       ptr(0.5),
				TopP:              ptr(0.9),
				Stop:              []string{"END"},
				Seed:              ptr(int64(42)),
				Stream:            true,
				Caller:            sluice.Caller{User: "u-1"},
				Metadata:          map[string]string{"team": "a"},
			},
			wantOpts: RequestOptions{IncludeUsage: true},
		},
		{
			name: "max_completion_tokens wins, stop array, tool_choice string, json_schema",
			body: `{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":10,"max_completion_tokens":20,
				"stop":["a","b"],"tool_choice":"required","top_k":40,
				"response_format":{"type":"json_schema","json_schema":{"name":"out","description":"d","schema":{"type":"object"},"strict":true}}}`,
			want: &sluice.Request{
				Model:           "m",
				Messages:        []sluice.Message{{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart("x")}}},
				ToolChoice:      sluice.ToolChoice{Mode: sluice.ToolChoiceRequired},
				MaxOutputTokens: 20,
				TopK:            ptr(40),
				Stop:            []string{"a", "b"},
				Output:          sluice.Output{Type: sluice.OutputJSONSchema, Name: "out", Description: "d", Schema: json.RawMessage(`{"type":"object"}`), Strict: true},
			},
		},
		{
			name: "nulls are absent; json_object; tool_choice none and auto",
			body: `{"model":"m","messages":[{"role":"user","content":"x"}],"stop":null,"tool_choice":"none","temperature":null,
				"response_format":{"type":"json_object"},"stream":null,"stream_options":null,"n":null,"max_tokens":null}`,
			want: &sluice.Request{
				Model:      "m",
				Messages:   []sluice.Message{{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart("x")}}},
				ToolChoice: sluice.ToolChoice{Mode: sluice.ToolChoiceNone},
				Output:     sluice.Output{Type: sluice.OutputJSONObject},
			},
		},
		{
			name: "response_format text and tool_choice auto",
			body: `{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"text"},"tool_choice":"auto"}`,
			want: &sluice.Request{
				Model:      "m",
				Messages:   []sluice.Message{{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart("x")}}},
				ToolChoice: sluice.ToolChoice{Mode: sluice.ToolChoiceAuto},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, opts, err := DecodeRequest([]byte(tt.body))
			if err != nil {
				t.Fatalf("DecodeRequest: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
			if opts != tt.wantOpts {
				t.Errorf("options = %+v, want %+v", opts, tt.wantOpts)
			}
		})
	}
}

func TestDecodeRequestErrors(t *testing.T) {
	const user = `{"role":"user","content":"x"}`
	tests := []struct {
		name      string
		body      string
		wantParam string
		wantMsg   string // a substring of the message
	}{
		{"invalid JSON", `{"model":`, "", "not valid JSON"},
		{"not an object", `[1,2]`, "", "expected an object"},
		{"empty body", ``, "", "not valid JSON"},
		{"missing model", `{"messages":[` + user + `]}`, "model", "model is required"},
		{"model wrong type", `{"model":5,"messages":[` + user + `]}`, "model", "expected a string"},
		{"missing messages", `{"model":"m"}`, "messages", "at least one"},
		{"empty messages", `{"model":"m","messages":[]}`, "messages", "at least one"},
		{"messages wrong type", `{"model":"m","messages":{}}`, "messages", "expected an array"},
		{"n greater than 1", `{"model":"m","messages":[` + user + `],"n":2}`, "n", "n greater than 1 is not supported"},
		{"n zero", `{"model":"m","messages":[` + user + `],"n":0}`, "n", "n must be 1"},
		{"role wrong type", `{"model":"m","messages":[` + user + `,{"role":7}]}`, "messages[1].role", "expected a string"},
		{"missing role", `{"model":"m","messages":[{"content":"x"}]}`, "messages[0].role", "needs a role"},
		{"unknown role", `{"model":"m","messages":[{"role":"robot","content":"x"}]}`, "messages[0].role", "Unsupported role"},
		{"function role", `{"model":"m","messages":[{"role":"function","name":"f","content":"x"}]}`, "messages[0].role", "deprecated"},
		{"user without content", `{"model":"m","messages":[{"role":"user"}]}`, "messages[0].content", "needs content"},
		{"content wrong type", `{"model":"m","messages":[{"role":"user","content":5}]}`, "messages[0].content", "string or an array"},
		{"content part wrong type", `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":3}]}]}`, "messages[0].content[1].text", "expected a string"},
		{"content part unknown type", `{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]}`, "messages[0].content[0].type", "not supported"},
		{"content part missing type", `{"model":"m","messages":[{"role":"user","content":[{"text":"a"}]}]}`, "messages[0].content[0].type", "needs a type"},
		{"image in system", `{"model":"m","messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]},` + user + `]}`, "messages[0].content[0].type", "not allowed"},
		{"image url scheme", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/y.png"}}]}]}`, "messages[0].content[0].image_url.url", "http(s)"},
		{"image missing url", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]}`, "messages[0].content[0].image_url.url", "needs a url"},
		{"image bad base64", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,@@@"}}]}]}`, "messages[0].content[0].image_url.url", "bad base64"},
		{"image data not base64", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,abc"}}]}]}`, "messages[0].content[0].image_url.url", "only base64"},
		{"image_url wrong type", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":5}]}]}`, "messages[0].content[0].image_url", "needs an image_url"},
		{"image detail wrong type", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://a/b","detail":1}}]}]}`, "messages[0].content[0].image_url.detail", "expected a string"},
		{"tool without tool_call_id", `{"model":"m","messages":[` + user + `,{"role":"tool","content":"r"}]}`, "messages[1].tool_call_id", "tool_call_id"},
		{"tool without content", `{"model":"m","messages":[` + user + `,{"role":"tool","tool_call_id":"c"}]}`, "messages[1].content", "needs content"},
		{"tool call without name", `{"model":"m","messages":[` + user + `,{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"arguments":"{}"}}]}]}`, "messages[1].tool_calls[0].function.name", "function name"},
		{"tool call name wrong type", `{"model":"m","messages":[` + user + `,{"role":"assistant","tool_calls":[{"id":"a","function":{"name":"f"}},{"id":"c","type":"function","function":{"name":true}}]}]}`, "messages[1].tool_calls[1].function.name", "expected a string"},
		{"tool call arguments wrong type", `{"model":"m","messages":[` + user + `,{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":[1]}}]}]}`, "messages[1].tool_calls[0].function.arguments", "JSON string"},
		{"tool call custom type", `{"model":"m","messages":[` + user + `,{"role":"assistant","tool_calls":[{"id":"c","type":"custom","custom":{}}]}]}`, "messages[1].tool_calls[0].type", "only function"},
		{"tools wrong type", `{"model":"m","messages":[` + user + `],"tools":{}}`, "tools", "expected an array"},
		{"tool element wrong type", `{"model":"m","messages":[` + user + `],"tools":[{"type":"function","function":{"name":"f"}},5]}`, "tools[1]", "expected an object"},
		{"tool type", `{"model":"m","messages":[` + user + `],"tools":[{"type":"web_search"}]}`, "tools[0].type", "only function"},
		{"tool missing type", `{"model":"m","messages":[` + user + `],"tools":[{"function":{"name":"f"}}]}`, "tools[0].type", "type"},
		{"tool missing function", `{"model":"m","messages":[` + user + `],"tools":[{"type":"function"}]}`, "tools[0].function", "function object"},
		{"tool missing name", `{"model":"m","messages":[` + user + `],"tools":[{"type":"function","function":{"description":"d"}}]}`, "tools[0].function.name", "needs a name"},
		{"tool parameters not object", `{"model":"m","messages":[` + user + `],"tools":[{"type":"function","function":{"name":"f","parameters":"x"}}]}`, "tools[0].function.parameters", "object"},
		{"tool strict wrong type", `{"model":"m","messages":[` + user + `],"tools":[{"type":"function","function":{"name":"f","strict":"yes"}}]}`, "tools[0].function.strict", "expected a boolean"},
		{"tool_choice unknown string", `{"model":"m","messages":[` + user + `],"tool_choice":"any"}`, "tool_choice", "tool_choice must be"},
		{"tool_choice wrong type", `{"model":"m","messages":[` + user + `],"tool_choice":1}`, "tool_choice", "string or an object"},
		{"tool_choice object type", `{"model":"m","messages":[` + user + `],"tool_choice":{"type":"allowed_tools"}}`, "tool_choice.type", "only \"function\""},
		{"tool_choice missing name", `{"model":"m","messages":[` + user + `],"tool_choice":{"type":"function","function":{}}}`, "tool_choice.function.name", "function name"},
		{"tool_choice name wrong type", `{"model":"m","messages":[` + user + `],"tool_choice":{"type":"function","function":{"name":1}}}`, "tool_choice.function.name", "expected a string"},
		{"parallel_tool_calls wrong type", `{"model":"m","messages":[` + user + `],"parallel_tool_calls":"yes"}`, "parallel_tool_calls", "expected a boolean"},
		{"response_format unknown", `{"model":"m","messages":[` + user + `],"response_format":{"type":"xml"}}`, "response_format.type", "Unsupported"},
		{"response_format missing type", `{"model":"m","messages":[` + user + `],"response_format":{}}`, "response_format.type", "needs a type"},
		{"json_schema missing", `{"model":"m","messages":[` + user + `],"response_format":{"type":"json_schema"}}`, "response_format.json_schema", "json_schema object"},
		{"json_schema missing name", `{"model":"m","messages":[` + user + `],"response_format":{"type":"json_schema","json_schema":{"schema":{}}}}`, "response_format.json_schema.name", "name"},
		{"json_schema schema not object", `{"model":"m","messages":[` + user + `],"response_format":{"type":"json_schema","json_schema":{"name":"n","schema":[]}}}`, "response_format.json_schema.schema", "object"},
		{"json_schema strict wrong type", `{"model":"m","messages":[` + user + `],"response_format":{"type":"json_schema","json_schema":{"name":"n","strict":1}}}`, "response_format.json_schema.strict", "expected a boolean"},
		{"max_tokens wrong type", `{"model":"m","messages":[` + user + `],"max_tokens":"100"}`, "max_tokens", "expected an integer"},
		{"max_tokens fraction", `{"model":"m","messages":[` + user + `],"max_tokens":1.5}`, "max_tokens", "expected an integer"},
		{"max_tokens negative", `{"model":"m","messages":[` + user + `],"max_tokens":-1}`, "max_tokens", "non-negative"},
		{"max_completion_tokens negative", `{"model":"m","messages":[` + user + `],"max_completion_tokens":-5}`, "max_completion_tokens", "non-negative"},
		{"temperature wrong type", `{"model":"m","messages":[` + user + `],"temperature":"hot"}`, "temperature", "expected a number"},
		{"top_p wrong type", `{"model":"m","messages":[` + user + `],"top_p":true}`, "top_p", "expected a number"},
		{"top_k negative", `{"model":"m","messages":[` + user + `],"top_k":-1}`, "top_k", "non-negative"},
		{"stop wrong type", `{"model":"m","messages":[` + user + `],"stop":5}`, "stop", "string or an array"},
		{"stop element wrong type", `{"model":"m","messages":[` + user + `],"stop":["a",5]}`, "stop[1]", "expected a string"},
		{"seed wrong type", `{"model":"m","messages":[` + user + `],"seed":"1"}`, "seed", "expected an integer"},
		{"user wrong type", `{"model":"m","messages":[` + user + `],"user":1}`, "user", "expected a string"},
		{"stream wrong type", `{"model":"m","messages":[` + user + `],"stream":"true"}`, "stream", "expected a boolean"},
		{"include_usage wrong type", `{"model":"m","messages":[` + user + `],"stream_options":{"include_usage":1}}`, "stream_options.include_usage", "expected a boolean"},
		{"metadata value wrong type", `{"model":"m","messages":[` + user + `],"metadata":{"a":1}}`, "metadata.a", "expected a string"},
		{"metadata wrong type", `{"model":"m","messages":[` + user + `],"metadata":[]}`, "metadata", "expected an object"},
		{"name wrong type", `{"model":"m","messages":[{"role":"user","content":"x","name":1}]}`, "messages[0].name", "expected a string"},
		{"reasoning_content wrong type", `{"model":"m","messages":[` + user + `,{"role":"assistant","content":"a","reasoning_content":{}}]}`, "messages[1].reasoning_content", "expected a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _, err := DecodeRequest([]byte(tt.body))
			if err == nil {
				t.Fatalf("DecodeRequest succeeded: %+v", req)
			}
			var se *sluice.Error
			if !errors.As(err, &se) {
				t.Fatalf("error %T %v is not a *sluice.Error", err, err)
			}
			if se.Code != sluice.CodeInvalidRequest {
				t.Errorf("code = %s, want invalid_request", se.Code)
			}
			if se.Param != tt.wantParam {
				t.Errorf("param = %q, want %q (message %q)", se.Param, tt.wantParam, se.Message)
			}
			if !strings.Contains(se.Message, tt.wantMsg) {
				t.Errorf("message %q does not contain %q", se.Message, tt.wantMsg)
			}
		})
	}
}
