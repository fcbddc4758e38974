package openai

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/sse"
)

// richRequest uses every field the OpenAI dialect carries both ways.
func richRequest() *sluice.Request {
	return &sluice.Request{
		Model:  "gpt-4o",
		System: []sluice.Part{sluice.TextPart("You are terse."), sluice.TextPart("Answer in French.")},
		Messages: []sluice.Message{
			{Role: sluice.RoleUser, Name: "ann", Parts: []sluice.Part{
				sluice.TextPart("What is in these pictures, and what's the weather in Paris & Rome?"),
				{Type: sluice.PartImage, ImageURL: "https://example.com/cat.jpg", ImageDetail: "low"},
				{Type: sluice.PartImage, ImageData: pngBytes, MediaType: "image/png"},
			}},
			{Role: sluice.RoleAssistant, Parts: []sluice.Part{
				sluice.TextPart("A cat. Checking the weather."),
				{Type: sluice.PartToolCall, ToolCallID: "call_1", ToolName: "get_weather", Arguments: `{"city":"Paris"}`},
				{Type: sluice.PartToolCall, ToolCallID: "call_2", ToolName: "get_weather", Arguments: `{"city":"Rome"}`},
			}},
			{Role: sluice.RoleTool, Parts: []sluice.Part{
				{Type: sluice.PartToolResult, ToolCallID: "call_1", Text: "18C, \"sunny\""},
				{Type: sluice.PartToolResult, ToolCallID: "call_2", Text: "21C\nclear"},
			}},
			{Role: sluice.RoleAssistant, Name: "bot", Parts: []sluice.Part{sluice.TextPart("Paris 18C, Rome 21C.")}},
			{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart("Thanks \u2028 <3")}},
		},
		Tools: []sluice.Tool{
			{Name: "get_weather", Description: "Current weather", Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`), Strict: true},
			{Name: "noop"},
		},
		ToolChoice:        sluice.ToolChoice{Mode: sluice.ToolChoiceTool, Name: "get_weather"},
		ParallelToolCalls: ptr(true),
		Output: sluice.Output{Type: sluice.OutputJSONSchema, Name: "answer", Description: "The answer",
			Schema: json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"}}}`), Strict: true},
		MaxOutputTokens: 256,
		Temperature:     ptr(0.3),
		TopP:            ptr(0.95),
		Stop:            []string{"\n\n", "END"},
		Seed:            ptr(int64(-7)),
		Caller:          sluice.Caller{User: "user-42"},
	}
}

// withDropped adds to r what the provider leaves out on purpose.
func withDropped(r *sluice.Request) *sluice.Request {
	c := *r
	c.TopK = ptr(40)
	c.Metadata = map[string]string{"team": "a"}
	c.Caller.Key, c.Caller.Tenant, c.Caller.IP = "key-1", "acme", "10.1.2.3"
	c.Messages = append([]sluice.Message(nil), r.Messages...)
	a := c.Messages[1]
	a.Parts = append([]sluice.Part{{Type: sluice.PartThinking, Text: "secret thoughts", Signature: "sig"}}, a.Parts...)
	c.Messages[1] = a
	return &c
}

// codecServer is a gateway in miniature: it decodes requests with
// DecodeRequest, hands them to the test on reqs, and answers with the
// server-side encoders.
func codecServer(t testing.TB, resp *sluice.Response, events []sluice.Event) (*Provider, <-chan *sluice.Request, <-chan RequestOptions) {
	t.Helper()
	reqs := make(chan *sluice.Request, 4)
	optsc := make(chan RequestOptions, 4)
	srv, _ := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, opts, err := DecodeRequest(body)
		if err != nil {
			WriteError(w, sluice.AsError(err))
			return
		}
		reqs <- req
		optsc <- opts
		if !req.Stream {
			b, _ := MarshalResponse(resp)
			w.Header().Set("Content-Type", "application/json")
			w.Write(b)
			return
		}
		sse.SetHeaders(w.Header())
		enc := NewStreamEncoder(sse.NewWriter(w), "chatcmpl-rt", "rt-model", testCreated, opts.IncludeUsage)
		for _, ev := range events {
			enc.Event(ev)
		}
		enc.Done()
	})
	return testProvider(t, srv, nil), reqs, optsc
}

// TestRoundTrip checks that the provider's request encoder and the server
// decoder agree, and so do the server encoders and the provider decoders.
func TestRoundTrip(t *testing.T) {
	want := richRequest()
	resp := toolResponse()
	p, reqs, optsc := codecServer(t, resp, toolEvents())

	t.Run("complete", func(t *testing.T) {
		got, err := p.Complete(context.Background(), withDropped(want))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, <-reqs); diff != "" {
			t.Errorf("decoded request (-want +got):\n%s", diff)
		}
		<-optsc
		// What MarshalResponse drops or fills: the thinking signature, and
		// "{}" for empty arguments.
		wantResp := *resp
		wantResp.Message.Parts = append([]sluice.Part(nil), resp.Message.Parts...)
		wantResp.Message.Parts[0].Signature = ""
		wantResp.Message.Parts[2].Arguments = "{}"
		if diff := cmp.Diff(&wantResp, got); diff != "" {
			t.Errorf("response (-want +got):\n%s", diff)
		}
	})

	t.Run("stream", func(t *testing.T) {
		s, err := p.Stream(context.Background(), withDropped(want))
		if err != nil {
			t.Fatal(err)
		}
		got, err := collectEvents(t, s)
		if err != nil {
			t.Fatal(err)
		}
		wantReq := *want
		wantReq.Stream = true
		if diff := cmp.Diff(&wantReq, <-reqs); diff != "" {
			t.Errorf("decoded request (-want +got):\n%s", diff)
		}
		if opts := <-optsc; !opts.IncludeUsage {
			t.Error("the provider did not ask for usage")
		}
		wantEvents := []sluice.Event{
			{Type: sluice.EventStart, ID: "chatcmpl-rt", Model: "rt-model"},
			{Type: sluice.EventToolCall, Index: 0, ToolCallID: "call_a", ToolName: "get_weather"},
			{Type: sluice.EventToolCall, Index: 1, ToolCallID: "call_b", ToolName: "get_weather"},
			{Type: sluice.EventToolCall, Index: 1, Arguments: `{"city":`},
			{Type: sluice.EventToolCall, Index: 0, Arguments: `{"city":"Paris"}`},
			{Type: sluice.EventToolCall, Index: 1, Arguments: `"Rome"}`},
			{Type: sluice.EventToolCall, Index: 2, ToolCallID: "call_c", ToolName: "get_time"},
			{Type: sluice.EventToolCall, Index: 2, Arguments: `{}`},
			{Type: sluice.EventUsage, Usage: sluice.Usage{InputTokens: 82, OutputTokens: 40, CacheReadTokens: 64}},
			{Type: sluice.EventFinish, FinishReason: sluice.FinishToolCalls},
		}
		if diff := cmp.Diff(wantEvents, got); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
}

// TestRoundTripEncodeDecode runs requests through the provider's encoder and
// DecodeRequest directly, for shapes the rich request does not cover.
func TestRoundTripEncodeDecode(t *testing.T) {
	tests := []struct {
		name string
		req  *sluice.Request
	}{
		{"rich", richRequest()},
		{"minimal", simpleRequest()},
		{"json object, auto, required", &sluice.Request{
			Model:    "m",
			Messages: []sluice.Message{{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart("a"), sluice.TextPart("b")}}},
			Tools:    []sluice.Tool{{Name: "f", Parameters: json.RawMessage(`{}`)}},
			Output:   sluice.Output{Type: sluice.OutputJSONObject},
		}},
		{"tool choice none and empty assistant", &sluice.Request{
			Model: "m",
			Messages: []sluice.Message{
				{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart("a")}},
				{Role: sluice.RoleAssistant},
				{Role: sluice.RoleUser},
			},
			Tools:       []sluice.Tool{{Name: "f"}},
			ToolChoice:  sluice.ToolChoice{Mode: sluice.ToolChoiceNone},
			Temperature: ptr(1e-9),
		}},
	}
	for _, mode := range []sluice.ToolChoiceMode{sluice.ToolChoiceAuto, sluice.ToolChoiceRequired} {
		r := simpleRequest()
		r.Tools = []sluice.Tool{{Name: "f"}}
		r.ToolChoice.Mode = mode
		tests = append(tests, struct {
			name string
			req  *sluice.Request
		}{"tool choice " + string(mode), r})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, stream := range []bool{false, true} {
				b, err := appendRequest(nil, tt.req, stream, MaxCompletionTokens, "")
				if err != nil {
					t.Fatal(err)
				}
				got, opts, err := DecodeRequest(b)
				if err != nil {
					t.Fatalf("DecodeRequest(%s): %v", b, err)
				}
				want := *tt.req
				want.Stream = stream
				if diff := cmp.Diff(&want, got, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("stream=%v (-want +got):\n%s\nwire: %s", stream, diff, b)
				}
				if opts.IncludeUsage != stream {
					t.Errorf("stream=%v: IncludeUsage = %v", stream, opts.IncludeUsage)
				}
			}
		})
	}
}

func TestEncodeRequestDrops(t *testing.T) {
	req := &sluice.Request{
		Model: "m",
		Messages: []sluice.Message{
			// Anthropic style: results inside a user message, with text after.
			{Role: sluice.RoleUser, Parts: []sluice.Part{
				{Type: sluice.PartToolResult, ToolCallID: "c1", Content: []sluice.Part{sluice.TextPart("from "), sluice.TextPart("content"), {Type: sluice.PartImage, ImageURL: "https://x/y.png"}}, IsError: true},
				sluice.TextPart("and now?"),
			}},
			{Role: sluice.RoleUser, Parts: []sluice.Part{{Type: sluice.PartToolResult, ToolCallID: "c2", Text: "only a result"}}},
			{Role: sluice.RoleAssistant, Parts: []sluice.Part{{Type: sluice.PartThinking, Redacted: true, Data: "x"}, {Type: sluice.PartToolCall, ToolCallID: "c3", ToolName: "f"}}},
		},
		ToolChoice:        sluice.ToolChoice{Mode: sluice.ToolChoiceRequired}, // no tools: not sent
		ParallelToolCalls: ptr(false),
		TopK:              ptr(3),
		Metadata:          map[string]string{"a": "b"},
		Output:            sluice.Output{Type: sluice.OutputJSONSchema},
	}
	b, err := appendRequest(nil, req, false, MaxTokens, "")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"model":"m","messages":[` +
		`{"role":"tool","tool_call_id":"c1","content":"from content"},{"role":"user","content":"and now?"},` +
		`{"role":"tool","tool_call_id":"c2","content":"only a result"},` +
		`{"role":"assistant","content":null,"tool_calls":[{"id":"c3","type":"function","function":{"name":"f","arguments":"{}"}}]}],` +
		`"response_format":{"type":"json_schema","json_schema":{"name":"response"}}}`
	if string(b) != want {
		t.Errorf("encoded\n%s\nwant\n%s", b, want)
	}
}

func TestEncodeRequestErrors(t *testing.T) {
	tests := []struct {
		name      string
		mod       func(*sluice.Request)
		wantParam string
	}{
		{"NaN temperature", func(r *sluice.Request) { nan := 0.0; nan /= nan; r.Temperature = &nan }, "temperature"},
		{"bad parameters", func(r *sluice.Request) { r.Tools = []sluice.Tool{{Name: "f", Parameters: json.RawMessage(`{`)}} }, "tools[0].function.parameters"},
		{"bad schema", func(r *sluice.Request) {
			r.Output = sluice.Output{Type: sluice.OutputJSONSchema, Schema: json.RawMessage(`nope`)}
		}, "response_format.json_schema.schema"},
		{"empty image", func(r *sluice.Request) {
			r.Messages[0].Parts = append(r.Messages[0].Parts, sluice.Part{Type: sluice.PartImage})
		}, "messages[0].content[1]"},
		{"bad role", func(r *sluice.Request) { r.Messages[0].Role = "system" }, "messages[0].role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := simpleRequest()
			tt.mod(r)
			_, err := appendRequest(nil, r, false, MaxTokens, "")
			se := checkClientSafe(t, err, sluice.CodeInvalidRequest, "")
			if se.Param != tt.wantParam {
				t.Errorf("param = %q, want %q", se.Param, tt.wantParam)
			}
		})
	}
}

func TestEncodeImageData(t *testing.T) {
	r := simpleRequest()
	r.Messages[0].Parts = append(r.Messages[0].Parts, sluice.Part{Type: sluice.PartImage, ImageData: pngBytes})
	b, err := appendRequest(nil, r, false, MaxTokens, "")
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := DecodeRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	img := got.Messages[0].Parts[1]
	if img.MediaType != "image/png" || string(img.ImageData) != string(pngBytes) {
		t.Errorf("image part = %+v, want sniffed image/png with the same bytes", img)
	}
}
