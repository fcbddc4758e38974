package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluice-gw/sluice"
)

var pngBytes = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")

// richRequest uses every field the dialect carries both ways, in the form
// DecodeRequest produces.
func richRequest() *sluice.Request {
	return &sluice.Request{
		Model:  "claude-sonnet-4-5",
		System: []sluice.Part{sluice.TextPart("You are terse."), sluice.TextPart("Answer in French.")},
		Messages: []sluice.Message{
			{Role: sluice.RoleUser, Parts: []sluice.Part{
				sluice.TextPart("What is in this image? <b>&</b> \u2028 \"é\""),
				{Type: sluice.PartImage, ImageData: pngBytes, MediaType: "image/png"},
				{Type: sluice.PartImage, ImageURL: "https://example.com/cat.jpg"},
			}},
			{Role: sluice.RoleAssistant, Parts: []sluice.Part{
				{Type: sluice.PartThinking, Text: "Need the weather.", Signature: "EqQBCgIYAh=="},
				{Type: sluice.PartThinking, Redacted: true, Data: "EmwKAhgB"},
				sluice.TextPart("Let me look."),
				{Type: sluice.PartToolCall, ToolCallID: "toolu_1", ToolName: "get_weather", Arguments: `{"city":"Paris","days":[1,2]}`},
				{Type: sluice.PartToolCall, ToolCallID: "toolu_2", ToolName: "get_time", Arguments: `{}`},
			}},
			{Role: sluice.RoleTool, Parts: []sluice.Part{
				{Type: sluice.PartToolResult, ToolCallID: "toolu_1", Text: "sunny"},
				{Type: sluice.PartToolResult, ToolCallID: "toolu_2", IsError: true, Content: []sluice.Part{
					sluice.TextPart("clock broken"),
					{Type: sluice.PartImage, ImageData: pngBytes, MediaType: "image/png"},
				}},
			}},
			{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart("Thanks")}},
			{Role: sluice.RoleAssistant, Parts: []sluice.Part{sluice.TextPart("Bien")}},
		},
		Tools: []sluice.Tool{
			{Name: "get_weather", Description: "Weather by city.", Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`)},
			{Name: "get_time", Parameters: json.RawMessage(`{"type":"object"}`)},
		},
		ToolChoice:        sluice.ToolChoice{Mode: sluice.ToolChoiceTool, Name: "get_weather"},
		ParallelToolCalls: ptr(false),
		MaxOutputTokens:   1024,
		Temperature:       ptr(0.25),
		TopP:              ptr(0.5),
		TopK:              ptr(10),
		Stop:              []string{"END", "\n\nHuman:"},
		Stream:            true,
		Caller:            sluice.Caller{User: "user-42"},
	}
}

// TestRequestRoundTrip checks that the provider's encoding of a request
// decodes, through the server codec, to the same request.
func TestRequestRoundTrip(t *testing.T) {
	for _, stream := range []bool{true, false} {
		req := richRequest()
		req.Stream = stream
		body, err := encodeRequest(req, 4096, stream)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeRequest(body)
		if err != nil {
			t.Fatalf("DecodeRequest(%s): %v", body, err)
		}
		if diff := cmp.Diff(req, got); diff != "" {
			t.Errorf("stream=%v: round trip (-want +got):\n%s\nwire: %s", stream, diff, body)
		}
	}
}

func TestEncodeRequest(t *testing.T) {
	hi := []sluice.Message{{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart("hi")}}}
	tests := []struct {
		name string
		req  *sluice.Request
		want string
	}{
		{
			name: "defaults; seed, metadata, names and detail dropped",
			req: &sluice.Request{Model: "m", Seed: ptr(int64(7)), Metadata: map[string]string{"k": "v"},
				Messages: []sluice.Message{{Role: sluice.RoleUser, Name: "bob", Parts: []sluice.Part{{Type: sluice.PartImage, ImageURL: "https://x/y.png", ImageDetail: "high"}}}}},
			want: `{"model":"m","max_tokens":333,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"https://x/y.png"}}]}]}`,
		},
		{
			name: "consecutive same-role messages merge, tool results first",
			req: &sluice.Request{Model: "m", Messages: []sluice.Message{
				{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart("a")}},
				{Role: sluice.RoleAssistant, Parts: []sluice.Part{{Type: sluice.PartToolCall, ToolCallID: "t1", ToolName: "f", Arguments: " { \"x\" : 1 } "}}},
				{Role: sluice.RoleAssistant, Parts: []sluice.Part{sluice.TextPart("")}}, // nothing to send
				{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart("by the way")}},
				{Role: sluice.RoleTool, Parts: []sluice.Part{{Type: sluice.PartToolResult, ToolCallID: "t1", Text: "42"}}},
			}},
			want: `{"model":"m","max_tokens":333,"messages":[{"role":"user","content":"a"},` +
				`{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{"x":1}}]},` +
				`{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"42"},{"type":"text","text":"by the way"}]}]}`,
		},
		{
			name: "unsigned thinking dropped, data URL sent as base64, empty tool result",
			req: &sluice.Request{Model: "m", MaxOutputTokens: 5, Messages: []sluice.Message{
				{Role: sluice.RoleUser, Parts: []sluice.Part{{Type: sluice.PartImage, ImageURL: "data:image/jpeg;base64,/9j/4A=="}}},
				{Role: sluice.RoleAssistant, Parts: []sluice.Part{{Type: sluice.PartThinking, Text: "from another provider"}, sluice.TextPart("ok"), {Type: sluice.PartToolCall, ToolCallID: "t", ToolName: "f"}}},
				{Role: sluice.RoleTool, Parts: []sluice.Part{{Type: sluice.PartToolResult, ToolCallID: "t", Content: []sluice.Part{sluice.TextPart("")}}}},
			}},
			want: `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"/9j/4A=="}}]},` +
				`{"role":"assistant","content":[{"type":"text","text":"ok"},{"type":"tool_use","id":"t","name":"f","input":{}}]},` +
				`{"role":"user","content":[{"type":"tool_result","tool_use_id":"t"}]}]}`,
		},
		{
			name: "json schema output uses native output_config.format",
			req: &sluice.Request{Model: "m", System: []sluice.Part{sluice.TextPart("Be exact.")}, Messages: hi,
				Output: sluice.Output{Type: sluice.OutputJSONSchema, Name: "answer", Schema: json.RawMessage(`{ "type": "object" }`)}},
			want: `{"model":"m","max_tokens":333,"system":"Be exact.","messages":[{"role":"user","content":"hi"}],"output_config":{"format":{"type":"json_schema","schema":{"type":"object"}}}}`,
		},
		{
			name: "json object output alone",
			req:  &sluice.Request{Model: "m", Messages: hi, Output: sluice.Output{Type: sluice.OutputJSONObject}},
			want: `{"model":"m","max_tokens":333,"system":"Respond with a single JSON object and nothing else: no prose, no code fences.","messages":[{"role":"user","content":"hi"}]}`,
		},
		{
			name: "tool choice without tools dropped",
			req:  &sluice.Request{Model: "m", Messages: hi, ToolChoice: sluice.ToolChoice{Mode: sluice.ToolChoiceRequired}, ParallelToolCalls: ptr(false)},
			want: `{"model":"m","max_tokens":333,"messages":[{"role":"user","content":"hi"}]}`,
		},
		{
			name: "tool without parameters; parallel off with default choice",
			req:  &sluice.Request{Model: "m", Messages: hi, Tools: []sluice.Tool{{Name: "now", Strict: true}}, ParallelToolCalls: ptr(false)},
			want: `{"model":"m","max_tokens":333,"messages":[{"role":"user","content":"hi"}],"tools":[{"name":"now","input_schema":{"type":"object","properties":{}}}],"tool_choice":{"type":"auto","disable_parallel_tool_use":true}}`,
		},
		{
			name: "tool choice none",
			req:  &sluice.Request{Model: "m", Messages: hi, Tools: []sluice.Tool{{Name: "now"}}, ToolChoice: sluice.ToolChoice{Mode: sluice.ToolChoiceNone}, ParallelToolCalls: ptr(true)},
			want: `{"model":"m","max_tokens":333,"messages":[{"role":"user","content":"hi"}],"tools":[{"name":"now","input_schema":{"type":"object","properties":{}}}],"tool_choice":{"type":"none"}}`,
		},
		{
			name: "image bytes without a media type are sniffed",
			req:  &sluice.Request{Model: "m", Messages: []sluice.Message{{Role: sluice.RoleUser, Parts: []sluice.Part{{Type: sluice.PartImage, ImageData: pngBytes}}}}},
			want: `{"model":"m","max_tokens":333,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgoAAAANSUhEUg=="}}]}]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := encodeRequest(tt.req, 333, false)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("body:\n got %s\nwant %s", b, tt.want)
			}
			if !json.Valid(b) {
				t.Error("not valid JSON")
			}
		})
	}
}

func TestEncodeRequestErrors(t *testing.T) {
	hi := []sluice.Message{{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart("hi")}}}
	tests := []struct {
		name string
		req  *sluice.Request
	}{
		{"bad arguments", &sluice.Request{Model: "m", Messages: []sluice.Message{{Role: sluice.RoleAssistant, Parts: []sluice.Part{{Type: sluice.PartToolCall, ToolCallID: "t", ToolName: "f", Arguments: "[1]"}}}}}},
		{"bad schema", &sluice.Request{Model: "m", Messages: hi, Tools: []sluice.Tool{{Name: "f", Parameters: json.RawMessage(`{"a":`)}}}},
		{"NaN temperature", &sluice.Request{Model: "m", Messages: hi, Temperature: ptr(nan())}},
		{"unknown tool choice", &sluice.Request{Model: "m", Messages: hi, Tools: []sluice.Tool{{Name: "f"}}, ToolChoice: sluice.ToolChoice{Mode: "sometimes"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := encodeRequest(tt.req, 10, false)
			if sluice.ErrorCode(err) != sluice.CodeInvalidRequest {
				t.Errorf("err = %v, want invalid_request", err)
			}
		})
	}
}

func nan() float64 {
	zero := 0.0
	return zero / zero
}

// FuzzDecodeRequest checks that no body panics the decoder, that every
// rejection is an invalid_request *sluice.Error, and that an accepted request
// survives the provider's encoding: decoding the encoding and encoding again
// gives the same bytes.
func FuzzDecodeRequest(f *testing.F) {
	seeds := []string{
		base(`"messages":[{"role":"user","content":"hi"}]`),
		base(`"system":[{"type":"text","text":"s"}],"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":"x"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"aGk="}}]}]}],"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"any","disable_parallel_tool_use":true}`),
		base(`"messages":[{"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":"s"},{"type":"redacted_thinking","data":"d"},{"type":"tool_use","id":"i","name":"n","input":{"a":[1,{"b":null}]}}]}],"temperature":0.5,"top_k":3,"stop_sequences":["x"],"metadata":{"user_id":"u"},"stream":true`),
		`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"https://x"}}]},{"role":"user","content":""}]}`,
		`{"model":5}`, `[]`, `null`, `{`, ``,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeRequest(body)
		if err != nil {
			var se *sluice.Error
			if !errors.As(err, &se) || se.Code != sluice.CodeInvalidRequest || se.Message == "" {
				t.Fatalf("error %T %v is not an invalid_request *sluice.Error", err, err)
			}
			return
		}
		e1, err := encodeRequest(req, 4096, req.Stream)
		if err != nil {
			t.Fatalf("encoding an accepted request: %v", err)
		}
		if !json.Valid(e1) {
			t.Fatalf("encoding is not JSON: %s", e1)
		}
		req2, err := DecodeRequest(e1)
		if err != nil {
			// Only dropping every message (all of them empty) may make the
			// encoding unacceptable.
			if sluice.AsError(err).Param != "messages" {
				t.Fatalf("decoding the encoding %s: %v", e1, err)
			}
			return
		}
		e2, err := encodeRequest(req2, 4096, req2.Stream)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(e1, e2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", e1, e2)
		}
	})
}
