package anthropic

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluice-gw/sluice"
)

// citySchema is a JSON Schema as a client sends it, spaces and all.
const citySchema = `{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}`

// jsonRequest is a request for a JSON answer of type out.
func jsonRequest(out sluice.OutputType) *sluice.Request {
	req := simpleRequest()
	req.System = []sluice.Part{sluice.TextPart("Be exact.")}
	req.Output = sluice.Output{Type: out}
	if out == sluice.OutputJSONSchema {
		req.Output = sluice.Output{Type: out, Name: "city", Description: "The city named.", Schema: json.RawMessage(citySchema), Strict: true}
	}
	return req
}

// structuredFixture starts a server answering with h and returns a
// Provider in the given structured output mode pointed at it, and the
// bodies the server received.
func structuredFixture(t testing.TB, mode string, h http.HandlerFunc) (*Provider, func() []byte) {
	t.Helper()
	var (
		mu   sync.Mutex
		last []byte
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		last = body
		mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	p := NewProvider(Config{Name: "test-anthropic", BaseURL: srv.URL, Client: srv.Client(), StructuredOutput: mode})
	return p, func() []byte {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
}

// toolAnswer is the Messages API's answer to a forced call of the tool
// "city".
const toolAnswer = `{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",
"content":[{"type":"tool_use","id":"toolu_01A09q90qw90lq917835lq9","name":"city","input":{"city": "Paris"}}],
"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":472,"output_tokens":38}}`

// TestStructuredOutputUpstream checks the exact bytes each structured
// output mode sends upstream, against testdata/request_*.golden.
func TestStructuredOutputUpstream(t *testing.T) {
	badName := jsonRequest(sluice.OutputJSONSchema)
	badName.Output.Name, badName.Output.Description = "city answer", ""
	withTools := jsonRequest(sluice.OutputJSONSchema)
	withTools.Tools = []sluice.Tool{{Name: "lookup", Parameters: json.RawMessage(`{"type":"object"}`)}}
	withTools.ToolChoice = sluice.ToolChoice{Mode: sluice.ToolChoiceAuto}
	array := jsonRequest(sluice.OutputJSONSchema)
	array.Output.Schema = json.RawMessage(`{"type": "array", "items": {"type": "string"}}`)
	noSchema := jsonRequest(sluice.OutputJSONSchema)
	noSchema.Output.Schema = nil
	tests := []struct {
		name string
		mode string
		req  *sluice.Request
	}{
		{"native_json_schema", "", jsonRequest(sluice.OutputJSONSchema)},
		{"native_json_object", StructuredNative, jsonRequest(sluice.OutputJSONObject)},
		{"tool_json_schema", StructuredTool, jsonRequest(sluice.OutputJSONSchema)},
		{"tool_json_schema_default_name", StructuredTool, badName},
		{"tool_json_schema_client_tools", StructuredTool, withTools},
		{"tool_json_schema_not_object", StructuredTool, array},
		{"tool_json_schema_no_schema", StructuredTool, noSchema},
		{"tool_json_object", StructuredTool, jsonRequest(sluice.OutputJSONObject)},
		{"prompt_json_schema", StructuredPrompt, jsonRequest(sluice.OutputJSONSchema)},
		{"prompt_json_object", StructuredPrompt, jsonRequest(sluice.OutputJSONObject)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, body := structuredFixture(t, tt.mode, reply(200, "application/json", completeFixture))
			orig := *tt.req
			orig.System = append([]sluice.Part(nil), tt.req.System...)
			if _, err := p.Complete(context.Background(), tt.req); err != nil {
				t.Fatal(err)
			}
			b := body()
			if !json.Valid(b) {
				t.Fatalf("upstream body is not JSON: %s", b)
			}
			golden(t, "request_"+tt.name, append(b, '\n'))
			if diff := cmp.Diff(&orig, tt.req); diff != "" {
				t.Errorf("the caller's request changed (-before +after):\n%s", diff)
			}
		})
	}
}

// TestStructuredOutputTextUnchanged checks that a request for text is sent
// the same in every mode.
func TestStructuredOutputTextUnchanged(t *testing.T) {
	want, err := encodeRequest(jsonRequest(sluice.OutputText), defaultMaxTokens, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{StructuredNative, StructuredTool, StructuredPrompt} {
		p, body := structuredFixture(t, mode, reply(200, "text/event-stream", upstreamStream))
		s, err := p.Stream(context.Background(), jsonRequest(sluice.OutputText))
		if err != nil {
			t.Fatal(err)
		}
		evs, err := collect(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(body()); got != string(want) {
			t.Errorf("%s: text request\n%s\nwant\n%s", mode, got, want)
		}
		// Tool calls of a text request are tool calls in every mode.
		if diff := cmp.Diff(upstreamEvents, evs); diff != "" {
			t.Errorf("%s: events (-want +got):\n%s", mode, diff)
		}
	}
}

// TestStructuredToolComplete checks that the forced tool call of tool mode
// comes back as the answer's text, finished with stop.
func TestStructuredToolComplete(t *testing.T) {
	tests := []struct {
		name   string
		answer string
		want   *sluice.Response
	}{
		{
			name:   "tool_use",
			answer: toolAnswer,
			want: &sluice.Response{
				ID: "msg_01XFDUDYJgAACzvnptvVoYEL", Model: "claude-sonnet-4-5-20250929",
				Message:      sluice.Message{Role: sluice.RoleAssistant, Parts: []sluice.Part{sluice.TextPart(`{"city":"Paris"}`)}},
				FinishReason: sluice.FinishStop,
				Usage:        sluice.Usage{InputTokens: 472, OutputTokens: 38},
			},
		},
		{
			name: "text beside the call dropped, thinking kept, length kept",
			answer: `{"id":"m","type":"message","role":"assistant","model":"c","content":[
				{"type":"thinking","thinking":"Paris.","signature":"sig"},
				{"type":"text","text":"Here you are:"},
				{"type":"tool_use","id":"t","name":"city","input":{"city":"Paris"}}],
				"stop_reason":"max_tokens","usage":{"input_tokens":1,"output_tokens":2}}`,
			want: &sluice.Response{
				ID: "m", Model: "c",
				Message: sluice.Message{Role: sluice.RoleAssistant, Parts: []sluice.Part{
					{Type: sluice.PartThinking, Text: "Paris.", Signature: "sig"},
					sluice.TextPart(`{"city":"Paris"}`),
				}},
				FinishReason: sluice.FinishLength,
				Usage:        sluice.Usage{InputTokens: 1, OutputTokens: 2},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := structuredFixture(t, StructuredTool, reply(200, "application/json", tt.answer))
			got, err := p.Complete(context.Background(), jsonRequest(sluice.OutputJSONSchema))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
		})
	}

	// The client in the Messages dialect sees a text answer that ended its
	// turn, not a tool call.
	p, _ := structuredFixture(t, StructuredTool, reply(200, "application/json", toolAnswer))
	resp, err := p.Complete(context.Background(), jsonRequest(sluice.OutputJSONSchema))
	if err != nil {
		t.Fatal(err)
	}
	b, err := MarshalResponse(resp)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"content":[{"type":"text","text":"{\"city\":\"Paris\"}"}]`, `"stop_reason":"end_turn"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("client answer %s lacks %s", b, want)
		}
	}
}

// toolStream is the Messages API's stream of a forced call of the tool
// "city", with the fragments it sends.
const toolStream = `event: message_start
data: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":472,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_01","name":"city","input":{}}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"city\": "}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "\"Paris\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":38}}

event: message_stop
data: {"type":"message_stop"}

`

// TestStructuredToolStream checks that the input_json_delta fragments of
// tool mode's call stream as text deltas and the stream finishes with stop,
// with no tool-call event.
func TestStructuredToolStream(t *testing.T) {
	p, body := structuredFixture(t, StructuredTool, reply(200, "text/event-stream", toolStream))
	s, err := p.Stream(context.Background(), jsonRequest(sluice.OutputJSONSchema))
	if err != nil {
		t.Fatal(err)
	}
	evs, err := collect(s)
	if err != nil {
		t.Fatal(err)
	}
	want := []sluice.Event{
		{Type: sluice.EventStart, ID: "msg_01", Model: "claude-sonnet-4-5-20250929", Usage: sluice.Usage{InputTokens: 472}},
		{Type: sluice.EventText, Text: `{"city": `},
		{Type: sluice.EventText, Text: `"Paris"}`},
		{Type: sluice.EventUsage, Usage: sluice.Usage{InputTokens: 472, OutputTokens: 38}},
		{Type: sluice.EventFinish, FinishReason: sluice.FinishStop},
	}
	if diff := cmp.Diff(want, evs); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if b := string(body()); !strings.Contains(b, `"tool_choice":{"type":"tool","name":"city","disable_parallel_tool_use":true},"stream":true}`) {
		t.Errorf("stream request %s does not force the tool", b)
	}
}

// TestStructuredToolStreamText checks that in tool mode text blocks are
// dropped from a stream, while a stream without the call keeps its own
// finish reason.
func TestStructuredToolStreamText(t *testing.T) {
	stream := `event: message_start
data: {"type":"message_start","message":{"id":"m","model":"c","usage":{"input_tokens":3,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":"Sure"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":", here"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":4}}

event: message_stop
data: {"type":"message_stop"}

`
	p, _ := structuredFixture(t, StructuredTool, reply(200, "text/event-stream", stream))
	s, err := p.Stream(context.Background(), jsonRequest(sluice.OutputJSONSchema))
	if err != nil {
		t.Fatal(err)
	}
	evs, err := collect(s)
	if err != nil {
		t.Fatal(err)
	}
	want := []sluice.Event{
		{Type: sluice.EventStart, ID: "m", Model: "c", Usage: sluice.Usage{InputTokens: 3}},
		{Type: sluice.EventUsage, Usage: sluice.Usage{InputTokens: 3, OutputTokens: 4}},
		{Type: sluice.EventFinish, FinishReason: sluice.FinishLength},
	}
	if diff := cmp.Diff(want, evs); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestStructuredOutputBadSchema checks that a schema that is not JSON is
// refused before any upstream call, in every mode.
func TestStructuredOutputBadSchema(t *testing.T) {
	for _, mode := range []string{StructuredNative, StructuredTool, StructuredPrompt} {
		var called atomic.Bool
		p, _ := structuredFixture(t, mode, func(w http.ResponseWriter, r *http.Request) { called.Store(true) })
		req := jsonRequest(sluice.OutputJSONSchema)
		req.Output.Schema = json.RawMessage(`{"type":`)
		_, err := p.Complete(context.Background(), req)
		var se *sluice.Error
		if !errors.As(err, &se) || se.Code != sluice.CodeInvalidRequest || se.Param != "output_config.format.schema" {
			t.Errorf("%s: err = %#v, want invalid_request on output_config.format.schema", mode, err)
		}
		if called.Load() {
			t.Errorf("%s: upstream called", mode)
		}
	}
}

func TestValidToolName(t *testing.T) {
	for name, want := range map[string]bool{
		"city": true, "a-b_C9": true, strings.Repeat("x", 64): true,
		"": false, "city answer": false, "città": false, strings.Repeat("x", 65): false, "a.b": false,
	} {
		if got := validToolName(name); got != want {
			t.Errorf("validToolName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestNewProviderStructuredPanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.HasPrefix(r.(string), "anthropic: invalid ") {
			t.Errorf("recovered %v, want a panic", r)
		}
	}()
	NewProvider(Config{StructuredOutput: "forced"})
}

// TestNativeEmptySchema checks that a json_schema request without a schema
// is asked for as a JSON object (a system instruction), as the pipeline
// checks it, rather than sent as an empty output_config schema the API
// refuses.
func TestNativeEmptySchema(t *testing.T) {
	req := &sluice.Request{Model: "m", MaxOutputTokens: 10,
		Messages: []sluice.Message{{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart("hi")}}},
		Output:   sluice.Output{Type: sluice.OutputJSONSchema, Name: "x"}}
	r, _, err := structuredRequest(req, StructuredNative)
	if err != nil || r.Output.Type != sluice.OutputJSONObject {
		t.Fatalf("output %+v, err %v; want a JSON object request", r.Output, err)
	}
}
