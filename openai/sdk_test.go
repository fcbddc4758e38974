package openai

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/sse"
)

// The tests here use the official OpenAI Go SDK as the client of the
// server-side codec, so the encoders are checked against a real parser and
// the decoder against a real client's bytes.

func sdkClient(t testing.TB, h http.HandlerFunc) oai.Client {
	t.Helper()
	srv, _ := upstream(t, h)
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	return oai.NewClient(option.WithBaseURL(srv.URL+"/v1/"), option.WithAPIKey("sk-client"), option.WithMaxRetries(0), option.WithHTTPClient(hc))
}

// sdkServer decodes each request, passes it on reqs and answers it with the
// given response or events.
func sdkServer(t testing.TB, resp *sluice.Response, events []sluice.Event) (oai.Client, <-chan *sluice.Request) {
	reqs := make(chan *sluice.Request, 4)
	c := sdkClient(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, opts, err := DecodeRequest(body)
		if err != nil {
			WriteError(w, sluice.AsError(err))
			return
		}
		reqs <- req
		if !req.Stream {
			b, _ := MarshalResponse(resp)
			w.Header().Set("Content-Type", "application/json")
			w.Write(b)
			return
		}
		sse.SetHeaders(w.Header())
		enc := NewStreamEncoder(sse.NewWriter(w), "chatcmpl-sdk", "sdk-model", testCreated, opts.IncludeUsage)
		for _, ev := range events {
			enc.Event(ev)
		}
		enc.Done()
	})
	return c, reqs
}

func sdkParams() oai.ChatCompletionNewParams {
	return oai.ChatCompletionNewParams{
		Model: "gpt-4o",
		Messages: []oai.ChatCompletionMessageParamUnion{
			oai.SystemMessage("Be terse."),
			oai.DeveloperMessage("Use metric units."),
			oai.UserMessage([]oai.ChatCompletionContentPartUnionParam{
				oai.TextContentPart("Weather here?"),
				oai.ImageContentPart(oai.ChatCompletionContentPartImageImageURLParam{URL: "https://example.com/sky.jpg", Detail: "high"}),
			}),
			{OfAssistant: &oai.ChatCompletionAssistantMessageParam{
				ToolCalls: []oai.ChatCompletionMessageToolCallUnionParam{{OfFunction: &oai.ChatCompletionMessageFunctionToolCallParam{
					ID:       "call_9",
					Function: oai.ChatCompletionMessageFunctionToolCallFunctionParam{Name: "get_weather", Arguments: `{"city":"Oslo"}`},
				}}},
			}},
			oai.ToolMessage("-3C", "call_9"),
		},
		Tools: []oai.ChatCompletionToolUnionParam{oai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
			Name:        "get_weather",
			Description: oai.String("Weather by city"),
			Parameters:  shared.FunctionParameters{"type": "object"},
			Strict:      oai.Bool(true),
		})},
		ToolChoice:          oai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: oai.String("required")},
		ParallelToolCalls:   oai.Bool(false),
		MaxCompletionTokens: oai.Int(300),
		Temperature:         oai.Float(0.2),
		Stop:                oai.ChatCompletionNewParamsStopUnion{OfString: oai.String("END")},
		Seed:                oai.Int(5),
		User:                oai.String("u-9"),
		Metadata:            shared.Metadata{"k": "v"},
		ResponseFormat: oai.ChatCompletionNewParamsResponseFormatUnion{OfJSONSchema: &shared.ResponseFormatJSONSchemaParam{
			JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{Name: "weather", Schema: map[string]any{"type": "object"}, Strict: oai.Bool(true)},
		}},
	}
}

func sdkWantRequest(stream bool) *sluice.Request {
	return &sluice.Request{
		Model:  "gpt-4o",
		System: []sluice.Part{sluice.TextPart("Be terse."), sluice.TextPart("Use metric units.")},
		Messages: []sluice.Message{
			{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart("Weather here?"), {Type: sluice.PartImage, ImageURL: "https://example.com/sky.jpg", ImageDetail: "high"}}},
			{Role: sluice.RoleAssistant, Parts: []sluice.Part{{Type: sluice.PartToolCall, ToolCallID: "call_9", ToolName: "get_weather", Arguments: `{"city":"Oslo"}`}}},
			{Role: sluice.RoleTool, Parts: []sluice.Part{{Type: sluice.PartToolResult, ToolCallID: "call_9", Text: "-3C"}}},
		},
		Tools:             []sluice.Tool{{Name: "get_weather", Description: "Weather by city", Parameters: []byte(`{"type":"object"}`), Strict: true}},
		ToolChoice:        sluice.ToolChoice{Mode: sluice.ToolChoiceRequired},
		ParallelToolCalls: ptr(false),
		Output:            sluice.Output{Type: sluice.OutputJSONSchema, Name: "weather", Schema: []byte(`{"type":"object"}`), Strict: true},
		MaxOutputTokens:   300,
		Temperature:       ptr(0.2),
		Stop:              []string{"END"},
		Seed:              ptr(int64(5)),
		Stream:            stream,
		Caller:            sluice.Caller{User: "u-9"},
		Metadata:          map[string]string{"k": "v"},
	}
}

func TestSDKComplete(t *testing.T) {
	c, reqs := sdkServer(t, toolResponse(), nil)
	got, err := c.Chat.Completions.New(context.Background(), sdkParams())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sdkWantRequest(false), <-reqs); diff != "" {
		t.Errorf("decoded SDK request (-want +got):\n%s", diff)
	}
	if got.ID != "chatcmpl-456" || got.Object != "chat.completion" || got.Created != testCreated || len(got.Choices) != 1 {
		t.Fatalf("response = %+v", got)
	}
	ch := got.Choices[0]
	if ch.FinishReason != "tool_calls" || len(ch.Message.ToolCalls) != 2 {
		t.Fatalf("choice = %+v", ch)
	}
	tc := ch.Message.ToolCalls[0]
	if tc.ID != "call_a" || tc.Function.Name != "get_weather" || tc.Function.Arguments != `{"city":"Paris"}` {
		t.Errorf("tool call = %+v", tc)
	}
	u := got.Usage
	if u.PromptTokens != 80 || u.CompletionTokens != 40 || u.TotalTokens != 120 || u.CompletionTokensDetails.ReasoningTokens != 12 {
		t.Errorf("usage = %+v", u)
	}
}

func TestSDKStream(t *testing.T) {
	events := append(textEvents()[:len(textEvents())-1], toolEvents()[1:]...)
	c, reqs := sdkServer(t, nil, events)
	params := sdkParams()
	params.StreamOptions = oai.ChatCompletionStreamOptionsParam{IncludeUsage: oai.Bool(true)}
	s := c.Chat.Completions.NewStreaming(context.Background(), params)
	defer s.Close()
	var acc oai.ChatCompletionAccumulator
	var chunks int
	for s.Next() {
		chunk := s.Current()
		if chunk.Object != "chat.completion.chunk" || chunk.ID != "chatcmpl-sdk" || chunk.Model != "sdk-model" {
			t.Errorf("chunk = %+v", chunk)
		}
		if !acc.AddChunk(chunk) {
			t.Fatalf("accumulator refused chunk %d: %s", chunks, chunk.RawJSON())
		}
		chunks++
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sdkWantRequest(true), <-reqs); diff != "" {
		t.Errorf("decoded SDK request (-want +got):\n%s", diff)
	}
	if len(acc.Choices) != 1 {
		t.Fatalf("choices = %+v", acc.Choices)
	}
	m := acc.Choices[0].Message
	if m.Content != "Hello there\n\"friend\"" {
		t.Errorf("content = %q", m.Content)
	}
	if len(m.ToolCalls) != 3 || m.ToolCalls[1].ID != "call_b" || m.ToolCalls[1].Function.Arguments != `{"city":"Rome"}` || m.ToolCalls[2].Function.Arguments != "{}" {
		t.Errorf("tool calls = %+v", m.ToolCalls)
	}
	if acc.Choices[0].FinishReason != "tool_calls" {
		t.Errorf("finish = %q", acc.Choices[0].FinishReason)
	}
	if acc.Usage.PromptTokens != 82 || acc.Usage.PromptTokensDetails.CachedTokens != 64 {
		t.Errorf("usage = %+v", acc.Usage)
	}
}

func TestSDKErrors(t *testing.T) {
	t.Run("decode error", func(t *testing.T) {
		c, _ := sdkServer(t, nil, nil)
		p := sdkParams()
		p.N = oai.Int(3)
		_, err := c.Chat.Completions.New(context.Background(), p)
		var apiErr *oai.Error
		if !errors.As(err, &apiErr) {
			t.Fatalf("error %T %v is not an *openai.Error", err, err)
		}
		if apiErr.StatusCode != 400 || apiErr.Code != "invalid_request" || apiErr.Param != "n" || apiErr.Type != "invalid_request_error" || apiErr.Message == "" {
			t.Errorf("error = status %d code %q param %q type %q message %q", apiErr.StatusCode, apiErr.Code, apiErr.Param, apiErr.Type, apiErr.Message)
		}
	})
	t.Run("rate limited", func(t *testing.T) {
		c := sdkClient(t, func(w http.ResponseWriter, r *http.Request) {
			WriteError(w, &sluice.Error{Code: sluice.CodeRateLimited, Message: "Slow down.", RetryAfter: 3e9})
		})
		_, err := c.Chat.Completions.New(context.Background(), sdkParams())
		var apiErr *oai.Error
		if !errors.As(err, &apiErr) {
			t.Fatalf("error %T %v is not an *openai.Error", err, err)
		}
		if apiErr.StatusCode != 429 || apiErr.Code != "rate_limited" || apiErr.Message != "Slow down." || apiErr.Response.Header.Get("Retry-After") != "3" {
			t.Errorf("error = status %d code %q message %q", apiErr.StatusCode, apiErr.Code, apiErr.Message)
		}
	})
	t.Run("stream error chunk", func(t *testing.T) {
		c := sdkClient(t, func(w http.ResponseWriter, r *http.Request) {
			sse.SetHeaders(w.Header())
			enc := NewStreamEncoder(sse.NewWriter(w), "id", "m", 1, false)
			enc.Event(sluice.Event{Type: sluice.EventText, Text: "Hi"})
			enc.Error(sluice.NewError(sluice.CodeStreamInterrupted, sluice.CodeStreamInterrupted.DefaultMessage()))
		})
		s := c.Chat.Completions.NewStreaming(context.Background(), sdkParams())
		defer s.Close()
		n := 0
		for s.Next() {
			n++
		}
		if n != 2 {
			t.Errorf("got %d chunks before the error, want 2", n)
		}
		if err := s.Err(); err == nil {
			t.Error("the SDK saw no error")
		}
	})
}
