package gateway_test

// End-to-end tests with the official SDKs as clients: openai-go v3 against
// /v1/chat/completions, anthropic-sdk-go v1 and v2 against /v1/messages, each
// against a model served through the OpenAI-dialect provider, the
// Anthropic-dialect provider and the in-process simulator.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	anthropicv1 "github.com/anthropics/anthropic-sdk-go"
	anoptionv1 "github.com/anthropics/anthropic-sdk-go/option"
	anthropicv2 "github.com/anthropics/anthropic-sdk-go/v2"
	anoptionv2 "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	oaoption "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"

	"github.com/sluice-gw/sluice/contract"
	"github.com/sluice-gw/sluice/sim"
)

// sdkModels are the gateway's models, one per provider dialect.
var sdkModels = []string{"oa-model", "an-model", "sim"}

const sdkAPIKey = "sk-sdk-test"

// sdkWeatherProps and sdkWeatherRequired describe the get_weather tool's
// parameters: city is required, unit is optional and from a fixed set.
var (
	sdkWeatherProps = map[string]any{
		"city": map[string]any{"type": "string", "description": "The city, e.g. Paris."},
		"unit": map[string]any{"type": "string", "enum": []any{"celsius", "fahrenheit"}},
	}
	sdkWeatherRequired = []string{"city"}
)

const (
	sdkWeatherPrompt = "What is the weather in Paris?"
	sdkWeatherResult = `{"temperature_c":21,"condition":"sunny"}`
)

// sdkPersonSchema is a strict JSON Schema for the json_schema tests.
var sdkPersonSchema = map[string]any{
	"type": "object",
	"properties": map[string]any{
		"name":   map[string]any{"type": "string"},
		"age":    map[string]any{"type": "integer"},
		"tags":   map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
		"active": map[string]any{"type": "boolean"},
	},
	"required":             []any{"name", "age", "tags", "active"},
	"additionalProperties": false,
}

// sdkExchange is one HTTP exchange as it went over the wire.
type sdkExchange struct {
	method, path string
	reqHeader    http.Header
	reqBody      []byte
	status       int
	respBody     bytes.Buffer
}

// sdkWire is an http.RoundTripper that records every exchange it carries, so
// that assertions can look at the wire and a failure can show it.
type sdkWire struct {
	base http.RoundTripper
	mu   sync.Mutex
	ex   []*sdkExchange
}

func (w *sdkWire) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	out := r.Clone(r.Context())
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	out.ContentLength = int64(len(body))
	ex := &sdkExchange{method: r.Method, path: r.URL.Path, reqHeader: r.Header.Clone(), reqBody: body}
	w.mu.Lock()
	w.ex = append(w.ex, ex)
	w.mu.Unlock()
	resp, err := w.base.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	ex.status = resp.StatusCode
	w.mu.Unlock()
	resp.Body = &sdkTee{rc: resp.Body, w: w, ex: ex}
	return resp, nil
}

// sdkTee copies a response body into its exchange as the SDK reads it.
type sdkTee struct {
	rc io.ReadCloser
	w  *sdkWire
	ex *sdkExchange
}

func (t *sdkTee) Read(p []byte) (int, error) {
	n, err := t.rc.Read(p)
	t.w.mu.Lock()
	t.ex.respBody.Write(p[:n])
	t.w.mu.Unlock()
	return n, err
}

func (t *sdkTee) Close() error { return t.rc.Close() }

// exchanges returns a snapshot of the exchanges so far.
func (w *sdkWire) exchanges() []*sdkExchange {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*sdkExchange(nil), w.ex...)
}

// lastBody returns the response body of the last exchange, as read so far.
func (w *sdkWire) lastBody() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.ex) == 0 {
		return ""
	}
	return w.ex[len(w.ex)-1].respBody.String()
}

// String renders every exchange, bodies cut to a readable length.
func (w *sdkWire) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var b strings.Builder
	for i, ex := range w.ex {
		fmt.Fprintf(&b, "--- exchange %d\n> %s %s\n", i+1, ex.method, ex.path)
		for _, k := range []string{"Authorization", "X-Api-Key", "Anthropic-Version", "Content-Type"} {
			if v := ex.reqHeader.Get(k); v != "" {
				fmt.Fprintf(&b, "> %s: %s\n", k, v)
			}
		}
		fmt.Fprintf(&b, "> %s\n< status %d\n< %s\n", sdkCut(string(ex.reqBody), 3000), ex.status, sdkCut(ex.respBody.String(), 6000))
	}
	return b.String()
}

func sdkCut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("... (%d more bytes)", len(s)-n)
}

// newSDKWire returns a recorder over the gateway's client transport (closed
// with the server, so no idle connection outlives the test) that logs every
// exchange when the test fails.
func newSDKWire(t testing.TB, h *harness) *sdkWire {
	t.Helper()
	w := &sdkWire{base: h.gw.Client().Transport}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("wire:\n%s", w)
		}
	})
	return w
}

// checkSDKHeaders checks every recorded request with check.
func checkSDKHeaders(t testing.TB, w *sdkWire, check func(http.Header) error) {
	t.Helper()
	for i, ex := range w.exchanges() {
		if err := check(ex.reqHeader); err != nil {
			t.Errorf("request %d: %v", i+1, err)
		}
	}
}

// checkWeatherArgs checks tool arguments against the get_weather schema: a
// JSON object with a non-empty string city, unit (when present) one of the
// enum, and nothing else.
func checkWeatherArgs(t testing.TB, args []byte) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(args, &m); err != nil {
		t.Errorf("tool arguments %q are not a JSON object: %v", args, err)
		return
	}
	city, ok := m["city"].(string)
	if !ok || city == "" {
		t.Errorf("tool arguments %s: want a non-empty string city", args)
	}
	if u, ok := m["unit"]; ok && u != "celsius" && u != "fahrenheit" {
		t.Errorf("tool arguments %s: unit not in the enum", args)
	}
	for k := range m {
		if _, ok := sdkWeatherProps[k]; !ok {
			t.Errorf("tool arguments %s: unexpected property %q", args, k)
		}
	}
}

// checkPerson checks content against sdkPersonSchema.
func checkPerson(t testing.TB, content string) {
	t.Helper()
	schema, _ := json.Marshal(sdkPersonSchema)
	compiled, err := contract.NewCompiler().Compile(schema)
	if err != nil {
		t.Fatal(err)
	}
	if _, vs := compiled.Check(content); len(vs) != 0 {
		t.Errorf("content %q breaks the schema: %+v", content, vs)
	}
	dec := json.NewDecoder(strings.NewReader(content))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("content %q is not a JSON object: %v", content, err)
	}
	if dec.More() {
		t.Errorf("content %q has data after the JSON value", content)
	}
	if _, ok := m["name"].(string); !ok {
		t.Errorf("name = %#v, want a string", m["name"])
	}
	if n, ok := m["age"].(json.Number); !ok {
		t.Errorf("age = %#v, want an integer", m["age"])
	} else if _, err := n.Int64(); err != nil {
		t.Errorf("age = %s, want an integer", n)
	}
	if tags, ok := m["tags"].([]any); !ok {
		t.Errorf("tags = %#v, want an array", m["tags"])
	} else {
		for i, tag := range tags {
			if _, ok := tag.(string); !ok {
				t.Errorf("tags[%d] = %#v, want a string", i, tag)
			}
		}
	}
	if _, ok := m["active"].(bool); !ok {
		t.Errorf("active = %#v, want a boolean", m["active"])
	}
	for k := range m {
		if _, ok := sdkPersonSchema["properties"].(map[string]any)[k]; !ok {
			t.Errorf("unexpected property %q in %s", k, content)
		}
	}
}

// checkClientSafe checks that an error message shown to the client is there
// and carries no provider detail.
func checkClientSafe(t testing.TB, msg string) {
	t.Helper()
	if strings.TrimSpace(msg) == "" {
		t.Errorf("error message is empty")
	}
	low := strings.ToLower(msg)
	for _, bad := range []string{"127.0.0.1", "localhost", "http://", "https://", "upstream-model", "simulat", sdkAPIKey} {
		if strings.Contains(low, bad) {
			t.Errorf("error message %q leaks provider detail %q", msg, bad)
		}
	}
}

// ---- OpenAI

func newSDKOpenAI(t testing.TB, h *harness) (openai.Client, *sdkWire) {
	t.Helper()
	w := newSDKWire(t, h)
	c := openai.NewClient(
		oaoption.WithBaseURL(h.gw.URL+"/v1"),
		oaoption.WithAPIKey(sdkAPIKey),
		oaoption.WithMaxRetries(0),
		oaoption.WithHTTPClient(&http.Client{Transport: w}),
	)
	return c, w
}

func checkOpenAIHeaders(hdr http.Header) error {
	if got := hdr.Get("Authorization"); got != "Bearer "+sdkAPIKey {
		return fmt.Errorf("Authorization = %q, want the bearer key", got)
	}
	return nil
}

func sdkOpenAIText(model string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model: model,
		Messages: []openai.ChatCompletionMessageParamUnion{
			openai.SystemMessage("You are terse."),
			openai.UserMessage("Say hello to the SDK test."),
		},
	}
}

func sdkOpenAITools(model string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(sdkWeatherPrompt)},
		Tools: []openai.ChatCompletionToolUnionParam{
			openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
				Name:        "get_weather",
				Description: openai.String("Get the current weather in a city."),
				Parameters: shared.FunctionParameters{
					"type":                 "object",
					"properties":           sdkWeatherProps,
					"required":             sdkWeatherRequired,
					"additionalProperties": false,
				},
			}),
		},
	}
}

func sdkOpenAIJSON(model string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Describe a person.")},
		ResponseFormat: openai.ChatCompletionNewParamsResponseFormatUnion{
			OfJSONSchema: &shared.ResponseFormatJSONSchemaParam{
				JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{
					Name:   "person",
					Strict: openai.Bool(true),
					Schema: sdkPersonSchema,
				},
			},
		},
	}
}

// sdkOpenAIStreamed is an accumulated stream with what the test saw on the
// way.
type sdkOpenAIStreamed struct {
	acc           openai.ChatCompletionAccumulator
	deltas        string
	chunks        int
	finishedTools []openai.FinishedChatCompletionToolCall
}

// sdkOpenAIStream streams params with include_usage and checks what every
// stream must satisfy: each chunk accumulates and names the model, usage comes
// once in a last chunk without choices, the stream ends with [DONE] and no
// error.
func sdkOpenAIStream(t *testing.T, c openai.Client, w *sdkWire, params openai.ChatCompletionNewParams) *sdkOpenAIStreamed {
	t.Helper()
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := c.Chat.Completions.NewStreaming(t.Context(), params)
	defer stream.Close()
	var (
		s         sdkOpenAIStreamed
		deltas    strings.Builder
		usageAt   = -1
		usageSeen int
	)
	for stream.Next() {
		chunk := stream.Current()
		if !s.acc.AddChunk(chunk) {
			t.Fatalf("the accumulator rejected chunk %d: %s", s.chunks, chunk.RawJSON())
		}
		if chunk.Model != params.Model {
			t.Errorf("chunk %d: model = %q, want %q", s.chunks, chunk.Model, params.Model)
		}
		for _, ch := range chunk.Choices {
			deltas.WriteString(ch.Delta.Content)
		}
		if tc, ok := s.acc.JustFinishedToolCall(); ok {
			s.finishedTools = append(s.finishedTools, tc)
		}
		if chunk.JSON.Usage.Valid() {
			usageSeen++
			usageAt = s.chunks
			if len(chunk.Choices) != 0 {
				t.Errorf("the usage chunk has %d choices, want none", len(chunk.Choices))
			}
		}
		s.chunks++
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	s.deltas = deltas.String()
	if !strings.HasSuffix(w.lastBody(), "data: [DONE]\n\n") {
		t.Errorf("the stream does not end with data: [DONE]")
	}
	if usageSeen != 1 || usageAt != s.chunks-1 {
		t.Errorf("usage in %d chunks, last at %d of %d; want exactly once, in the last chunk", usageSeen, usageAt, s.chunks)
	}
	u := s.acc.Usage
	if u.PromptTokens <= 0 || u.CompletionTokens <= 0 || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
		t.Errorf("usage = prompt %d, completion %d, total %d", u.PromptTokens, u.CompletionTokens, u.TotalTokens)
	}
	if len(s.acc.Choices) != 1 {
		t.Fatalf("accumulated %d choices, want 1", len(s.acc.Choices))
	}
	if s.acc.ID == "" {
		t.Errorf("accumulated id is empty")
	}
	if s.acc.Choices[0].Message.Content != s.deltas {
		t.Errorf("accumulated content %q, deltas joined %q", s.acc.Choices[0].Message.Content, s.deltas)
	}
	return &s
}

// checkOpenAICompletion checks what every non-streamed answer must satisfy.
func checkOpenAICompletion(t *testing.T, resp *openai.ChatCompletion, model string) openai.ChatCompletionChoice {
	t.Helper()
	if resp.Model != model {
		t.Errorf("model = %q, want %q", resp.Model, model)
	}
	if resp.ID == "" {
		t.Errorf("id is empty")
	}
	u := resp.Usage
	if u.PromptTokens <= 0 || u.CompletionTokens <= 0 || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
		t.Errorf("usage = prompt %d, completion %d, total %d", u.PromptTokens, u.CompletionTokens, u.TotalTokens)
	}
	if len(resp.Choices) != 1 {
		t.Fatalf("%d choices, want 1", len(resp.Choices))
	}
	ch := resp.Choices[0]
	if ch.Message.Role != "assistant" {
		t.Errorf("role = %q, want assistant", ch.Message.Role)
	}
	return ch
}

// checkOpenAIToolCall checks the one get_weather call of a tool turn and
// returns it.
func checkOpenAIToolCall(t *testing.T, finish string, msg openai.ChatCompletionMessage) openai.ChatCompletionMessageToolCallUnion {
	t.Helper()
	if finish != "tool_calls" {
		t.Errorf("finish_reason = %q, want tool_calls", finish)
	}
	if len(msg.ToolCalls) != 1 {
		t.Fatalf("%d tool calls, want 1", len(msg.ToolCalls))
	}
	tc := msg.ToolCalls[0]
	if tc.ID == "" {
		t.Errorf("tool call id is empty")
	}
	if tc.Type != "function" {
		t.Errorf("tool call type = %q, want function", tc.Type)
	}
	if tc.Function.Name != "get_weather" {
		t.Errorf("tool call name = %q, want get_weather", tc.Function.Name)
	}
	checkWeatherArgs(t, []byte(tc.Function.Arguments))
	return tc
}

// sdkOpenAIFollowUp returns params with the assistant's tool turn and the tool
// result appended.
func sdkOpenAIFollowUp(params openai.ChatCompletionNewParams, msg openai.ChatCompletionMessage, callID string) openai.ChatCompletionNewParams {
	params.Messages = append(params.Messages[:len(params.Messages):len(params.Messages)],
		msg.ToParam(), openai.ToolMessage(sdkWeatherResult, callID))
	return params
}

func TestSDKOpenAI(t *testing.T) {
	h := newHarness(t, sim.Options{})
	cases := []struct {
		name string
		run  func(t *testing.T, c openai.Client, w *sdkWire, model string)
	}{
		{"chat", func(t *testing.T, c openai.Client, w *sdkWire, model string) {
			resp, err := c.Chat.Completions.New(t.Context(), sdkOpenAIText(model))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			ch := checkOpenAICompletion(t, resp, model)
			if ch.Message.Content == "" {
				t.Errorf("content is empty")
			}
			if ch.FinishReason != "stop" {
				t.Errorf("finish_reason = %q, want stop", ch.FinishReason)
			}
			if len(ch.Message.ToolCalls) != 0 {
				t.Errorf("%d tool calls, want none", len(ch.Message.ToolCalls))
			}
		}},
		{"stream", func(t *testing.T, c openai.Client, w *sdkWire, model string) {
			s := sdkOpenAIStream(t, c, w, sdkOpenAIText(model))
			if s.deltas == "" {
				t.Errorf("no content")
			}
			if got := s.acc.Choices[0].FinishReason; got != "stop" {
				t.Errorf("finish_reason = %q, want stop", got)
			}
		}},
		{"tool call", func(t *testing.T, c openai.Client, w *sdkWire, model string) {
			params := sdkOpenAITools(model)
			resp, err := c.Chat.Completions.New(t.Context(), params)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			ch := checkOpenAICompletion(t, resp, model)
			tc := checkOpenAIToolCall(t, ch.FinishReason, ch.Message)

			resp, err = c.Chat.Completions.New(t.Context(), sdkOpenAIFollowUp(params, ch.Message, tc.ID))
			if err != nil {
				t.Fatalf("New with the tool result: %v", err)
			}
			ch = checkOpenAICompletion(t, resp, model)
			if ch.FinishReason != "stop" || ch.Message.Content == "" || len(ch.Message.ToolCalls) != 0 {
				t.Errorf("after the tool result: finish_reason %q, content %q, %d tool calls; want stop with text", ch.FinishReason, ch.Message.Content, len(ch.Message.ToolCalls))
			}
		}},
		{"tool call stream", func(t *testing.T, c openai.Client, w *sdkWire, model string) {
			params := sdkOpenAITools(model)
			s := sdkOpenAIStream(t, c, w, params)
			ch := s.acc.Choices[0]
			tc := checkOpenAIToolCall(t, ch.FinishReason, ch.Message)
			if len(s.finishedTools) != 1 || s.finishedTools[0].ID != tc.ID || s.finishedTools[0].Name != "get_weather" || s.finishedTools[0].Arguments != tc.Function.Arguments {
				t.Errorf("JustFinishedToolCall reported %+v, want the one call %s", s.finishedTools, tc.ID)
			}

			s = sdkOpenAIStream(t, c, w, sdkOpenAIFollowUp(params, ch.Message, tc.ID))
			ch = s.acc.Choices[0]
			if ch.FinishReason != "stop" || s.deltas == "" || len(ch.Message.ToolCalls) != 0 {
				t.Errorf("after the tool result: finish_reason %q, content %q, %d tool calls; want stop with text", ch.FinishReason, s.deltas, len(ch.Message.ToolCalls))
			}
		}},
		{"json schema", func(t *testing.T, c openai.Client, w *sdkWire, model string) {
			resp, err := c.Chat.Completions.New(t.Context(), sdkOpenAIJSON(model))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			ch := checkOpenAICompletion(t, resp, model)
			if ch.FinishReason != "stop" {
				t.Errorf("finish_reason = %q, want stop", ch.FinishReason)
			}
			checkPerson(t, ch.Message.Content)
		}},
		{"json schema stream", func(t *testing.T, c openai.Client, w *sdkWire, model string) {
			s := sdkOpenAIStream(t, c, w, sdkOpenAIJSON(model))
			if got := s.acc.Choices[0].FinishReason; got != "stop" {
				t.Errorf("finish_reason = %q, want stop", got)
			}
			checkPerson(t, s.deltas)
		}},
	}
	for _, model := range sdkModels {
		for _, tc := range cases {
			t.Run(model+"/"+tc.name, func(t *testing.T) {
				c, w := newSDKOpenAI(t, h)
				tc.run(t, c, w, model)
				checkSDKHeaders(t, w, checkOpenAIHeaders)
			})
		}
	}
}

// ---- Anthropic, v1 and v2 through one adapter

// anResult is what the tests need of an Anthropic answer, the same for both
// SDK versions.
type anResult struct {
	model      string
	text       string // the text blocks joined
	deltas     string // the text deltas joined (streams only)
	events     []string
	stopReason string
	input      int64
	output     int64
	toolUses   []anToolUse
	msg        any // the SDK's *Message, to send back
}

type anToolUse struct {
	id, name string
	input    json.RawMessage
}

// anParams describe one call: the text prompt, or the weather prompt with the
// tool offered; prior, when set, is the assistant's tool turn to send back
// with a result for each of its tool uses.
type anParams struct {
	model string
	tools bool
	prior *anResult
}

type anSDK interface {
	complete(ctx context.Context, p anParams) (*anResult, error)
	stream(ctx context.Context, p anParams) (*anResult, error)
	// apiError returns the status and the body of the SDK's typed error.
	apiError(err error) (status int, requestID, body string, ok bool)
}

type anSDKCase struct {
	name      string
	newClient func(t testing.TB, h *harness) (anSDK, *sdkWire)
	// headers checks the auth and version headers the SDK sends.
	headers func(http.Header) error
}

var anSDKs = []anSDKCase{
	{"v1", newAnV1, func(hdr http.Header) error {
		if got := hdr.Get("X-Api-Key"); got != sdkAPIKey {
			return fmt.Errorf("X-Api-Key = %q, want the key", got)
		}
		if got := hdr.Get("Authorization"); got != "" {
			return fmt.Errorf("Authorization = %q, want none", got)
		}
		if got := hdr.Get("Anthropic-Version"); got != "2023-06-01" {
			return fmt.Errorf("Anthropic-Version = %q, want 2023-06-01", got)
		}
		return nil
	}},
	{"v2", newAnV2, func(hdr http.Header) error {
		if got := hdr.Get("Authorization"); got != "Bearer "+sdkAPIKey {
			return fmt.Errorf("Authorization = %q, want the bearer key", got)
		}
		if got := hdr.Get("X-Api-Key"); got != "" {
			return fmt.Errorf("X-Api-Key = %q, want none", got)
		}
		if got := hdr.Get("Anthropic-Version"); len(got) != len("2023-06-01") || got <= "2023-06-01" {
			return fmt.Errorf("Anthropic-Version = %q, want a date after 2023-06-01", got)
		}
		return nil
	}},
}

// anStreamAcc is the part of a stream's handling both SDKs share.
type anStreamAcc struct {
	r      anResult
	deltas strings.Builder
}

func (a *anStreamAcc) saw(typ, deltaType, text string) {
	a.r.events = append(a.r.events, typ)
	if typ == "content_block_delta" && deltaType == "text_delta" {
		a.deltas.WriteString(text)
	}
}

// anthropic-sdk-go v1

type anV1 struct{ c anthropicv1.Client }

func newAnV1(t testing.TB, h *harness) (anSDK, *sdkWire) {
	t.Helper()
	w := newSDKWire(t, h)
	c := anthropicv1.NewClient(
		anoptionv1.WithoutEnvironmentDefaults(),
		anoptionv1.WithBaseURL(h.gw.URL),
		anoptionv1.WithAPIKey(sdkAPIKey),
		anoptionv1.WithMaxRetries(0),
		anoptionv1.WithHTTPClient(&http.Client{Transport: w}),
	)
	return anV1{c}, w
}

func (a anV1) params(p anParams) anthropicv1.MessageNewParams {
	mp := anthropicv1.MessageNewParams{Model: p.model, MaxTokens: 1024}
	if !p.tools {
		mp.System = []anthropicv1.TextBlockParam{{Text: "You are terse."}}
		mp.Messages = []anthropicv1.MessageParam{anthropicv1.NewUserMessage(anthropicv1.NewTextBlock("Say hello to the SDK test."))}
		return mp
	}
	mp.Messages = []anthropicv1.MessageParam{anthropicv1.NewUserMessage(anthropicv1.NewTextBlock(sdkWeatherPrompt))}
	mp.Tools = []anthropicv1.ToolUnionParam{{OfTool: &anthropicv1.ToolParam{
		Name:        "get_weather",
		Description: anthropicv1.String("Get the current weather in a city."),
		InputSchema: anthropicv1.ToolInputSchemaParam{Properties: sdkWeatherProps, Required: sdkWeatherRequired},
	}}}
	if p.prior != nil {
		var results []anthropicv1.ContentBlockParamUnion
		for _, tu := range p.prior.toolUses {
			results = append(results, anthropicv1.NewToolResultBlock(tu.id, sdkWeatherResult, false))
		}
		mp.Messages = append(mp.Messages, p.prior.msg.(*anthropicv1.Message).ToParam(), anthropicv1.NewUserMessage(results...))
	}
	return mp
}

func anV1Result(m *anthropicv1.Message, r *anResult) *anResult {
	r.model, r.stopReason = m.Model, string(m.StopReason)
	r.input, r.output = m.Usage.InputTokens, m.Usage.OutputTokens
	r.msg = m
	var text strings.Builder
	for _, b := range m.Content {
		switch b.Type {
		case "text":
			text.WriteString(b.AsText().Text)
		case "tool_use":
			tu := b.AsToolUse()
			r.toolUses = append(r.toolUses, anToolUse{tu.ID, tu.Name, tu.Input})
		}
	}
	r.text = text.String()
	return r
}

func (a anV1) complete(ctx context.Context, p anParams) (*anResult, error) {
	m, err := a.c.Messages.New(ctx, a.params(p))
	if err != nil {
		return nil, err
	}
	return anV1Result(m, &anResult{}), nil
}

func (a anV1) stream(ctx context.Context, p anParams) (*anResult, error) {
	s := a.c.Messages.NewStreaming(ctx, a.params(p))
	defer s.Close()
	var (
		acc anStreamAcc
		m   anthropicv1.Message
	)
	for s.Next() {
		ev := s.Current()
		acc.saw(ev.Type, ev.Delta.Type, ev.Delta.Text)
		if err := m.Accumulate(ev); err != nil {
			return nil, fmt.Errorf("accumulate %s: %w", ev.Type, err)
		}
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	acc.r.deltas = acc.deltas.String()
	return anV1Result(&m, &acc.r), nil
}

func (anV1) apiError(err error) (int, string, string, bool) {
	var e *anthropicv1.Error
	if !errors.As(err, &e) {
		return 0, "", "", false
	}
	return e.StatusCode, e.RequestID, e.RawJSON(), true
}

// anthropic-sdk-go v2

type anV2 struct{ c anthropicv2.Client }

func newAnV2(t testing.TB, h *harness) (anSDK, *sdkWire) {
	t.Helper()
	w := newSDKWire(t, h)
	c := anthropicv2.NewClient(
		anoptionv2.WithoutEnvironmentDefaults(),
		anoptionv2.WithBaseURL(h.gw.URL),
		anoptionv2.WithAPIKey(sdkAPIKey),
		anoptionv2.WithMaxRetries(0),
		anoptionv2.WithHTTPClient(&http.Client{Transport: w}),
	)
	return anV2{c}, w
}

func (a anV2) params(p anParams) anthropicv2.MessageNewParams {
	mp := anthropicv2.MessageNewParams{Model: p.model, MaxTokens: 1024}
	if !p.tools {
		mp.System = []anthropicv2.TextBlockParam{{Text: "You are terse."}}
		mp.Messages = []anthropicv2.MessageParam{anthropicv2.NewUserMessage(anthropicv2.NewTextBlock("Say hello to the SDK test."))}
		return mp
	}
	mp.Messages = []anthropicv2.MessageParam{anthropicv2.NewUserMessage(anthropicv2.NewTextBlock(sdkWeatherPrompt))}
	mp.Tools = []anthropicv2.ToolUnionParam{{OfTool: &anthropicv2.ToolParam{
		Name:        "get_weather",
		Description: anthropicv2.String("Get the current weather in a city."),
		InputSchema: anthropicv2.ToolInputSchemaParam{Properties: sdkWeatherProps, Required: sdkWeatherRequired},
	}}}
	if p.prior != nil {
		var results []anthropicv2.ContentBlockParamUnion
		for _, tu := range p.prior.toolUses {
			results = append(results, anthropicv2.NewToolResultBlock(tu.id, sdkWeatherResult, false))
		}
		mp.Messages = append(mp.Messages, p.prior.msg.(*anthropicv2.Message).ToParam(), anthropicv2.NewUserMessage(results...))
	}
	return mp
}

func anV2Result(m *anthropicv2.Message, r *anResult) *anResult {
	r.model, r.stopReason = m.Model, string(m.StopReason)
	r.input, r.output = m.Usage.InputTokens, m.Usage.OutputTokens
	r.msg = m
	var text strings.Builder
	for _, b := range m.Content {
		switch b.Type {
		case "text":
			text.WriteString(b.AsText().Text)
		case "tool_use":
			tu := b.AsToolUse()
			r.toolUses = append(r.toolUses, anToolUse{tu.ID, tu.Name, tu.Input})
		}
	}
	r.text = text.String()
	return r
}

func (a anV2) complete(ctx context.Context, p anParams) (*anResult, error) {
	m, err := a.c.Messages.New(ctx, a.params(p))
	if err != nil {
		return nil, err
	}
	return anV2Result(m, &anResult{}), nil
}

func (a anV2) stream(ctx context.Context, p anParams) (*anResult, error) {
	s := a.c.Messages.NewStreaming(ctx, a.params(p))
	defer s.Close()
	var (
		acc anStreamAcc
		m   anthropicv2.Message
	)
	for s.Next() {
		ev := s.Current()
		acc.saw(ev.Type, ev.Delta.Type, ev.Delta.Text)
		if err := m.Accumulate(ev); err != nil {
			return nil, fmt.Errorf("accumulate %s: %w", ev.Type, err)
		}
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	acc.r.deltas = acc.deltas.String()
	return anV2Result(&m, &acc.r), nil
}

func (anV2) apiError(err error) (int, string, string, bool) {
	var e *anthropicv2.Error
	if !errors.As(err, &e) {
		return 0, "", "", false
	}
	return e.StatusCode, e.RequestID, e.RawJSON(), true
}

// checkAnResult checks what every answer must satisfy: the model echoed,
// usage, and for a stream, the event order and text equal to its deltas.
func checkAnResult(t *testing.T, r *anResult, model string, streamed bool) {
	t.Helper()
	if r.model != model {
		t.Errorf("model = %q, want %q", r.model, model)
	}
	if r.input <= 0 || r.output <= 0 {
		t.Errorf("usage = input %d, output %d; want both > 0", r.input, r.output)
	}
	if !streamed {
		return
	}
	ev := r.events
	if len(ev) < 3 || ev[0] != "message_start" || ev[len(ev)-1] != "message_stop" || ev[len(ev)-2] != "message_delta" {
		t.Errorf("events %v: want message_start first, then message_delta and message_stop last", ev)
	}
	if r.text != r.deltas {
		t.Errorf("accumulated text %q, text deltas joined %q", r.text, r.deltas)
	}
}

// checkAnToolTurn checks the one get_weather call of a tool turn.
func checkAnToolTurn(t *testing.T, r *anResult) {
	t.Helper()
	if r.stopReason != "tool_use" {
		t.Errorf("stop_reason = %q, want tool_use", r.stopReason)
	}
	if len(r.toolUses) != 1 {
		t.Fatalf("%d tool_use blocks, want 1", len(r.toolUses))
	}
	tu := r.toolUses[0]
	if tu.id == "" {
		t.Errorf("tool_use id is empty")
	}
	if tu.name != "get_weather" {
		t.Errorf("tool_use name = %q, want get_weather", tu.name)
	}
	checkWeatherArgs(t, tu.input)
}

func checkAnTextTurn(t *testing.T, r *anResult) {
	t.Helper()
	if r.stopReason != "end_turn" {
		t.Errorf("stop_reason = %q, want end_turn", r.stopReason)
	}
	if r.text == "" {
		t.Errorf("no text")
	}
	if len(r.toolUses) != 0 {
		t.Errorf("%d tool_use blocks, want none", len(r.toolUses))
	}
}

func TestSDKAnthropic(t *testing.T) {
	h := newHarness(t, sim.Options{})
	type call func(context.Context, anParams) (*anResult, error)
	cases := []struct {
		name   string
		stream bool
		tools  bool
	}{
		{"text", false, false},
		{"stream", true, false},
		{"tool use", false, true},
		{"tool use stream", true, true},
	}
	for _, sdk := range anSDKs {
		for _, model := range sdkModels {
			for _, tc := range cases {
				t.Run(sdk.name+"/"+model+"/"+tc.name, func(t *testing.T) {
					c, w := sdk.newClient(t, h)
					do := call(c.complete)
					if tc.stream {
						do = c.stream
					}
					r, err := do(t.Context(), anParams{model: model, tools: tc.tools})
					if err != nil {
						t.Fatalf("first call: %v", err)
					}
					checkAnResult(t, r, model, tc.stream)
					if !tc.tools {
						checkAnTextTurn(t, r)
					} else {
						checkAnToolTurn(t, r)
						r, err = do(t.Context(), anParams{model: model, tools: true, prior: r})
						if err != nil {
							t.Fatalf("call with the tool result: %v", err)
						}
						checkAnResult(t, r, model, tc.stream)
						checkAnTextTurn(t, r)
					}
					checkSDKHeaders(t, w, sdk.headers)
				})
			}
		}
	}
}

// ---- Errors

// TestSDKUnknownModel checks that an unknown model reaches each SDK as its
// typed error with status 404 and a client-safe message, plain and streamed.
func TestSDKUnknownModel(t *testing.T) {
	h := newHarness(t, sim.Options{})
	const model = "no-such-model"

	for _, stream := range []bool{false, true} {
		name := "openai/complete"
		if stream {
			name = "openai/stream"
		}
		t.Run(name, func(t *testing.T) {
			c, _ := newSDKOpenAI(t, h)
			var err error
			if stream {
				s := c.Chat.Completions.NewStreaming(t.Context(), sdkOpenAIText(model))
				for s.Next() {
					t.Errorf("unexpected chunk %s", s.Current().RawJSON())
				}
				err = s.Err()
				s.Close()
			} else {
				_, err = c.Chat.Completions.New(t.Context(), sdkOpenAIText(model))
			}
			var e *openai.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T), want *openai.Error", err, err)
			}
			if e.StatusCode != http.StatusNotFound {
				t.Errorf("status %d, want 404", e.StatusCode)
			}
			checkClientSafe(t, e.Message)
			checkClientSafe(t, e.RawJSON())
		})
	}

	for _, sdk := range anSDKs {
		for _, stream := range []bool{false, true} {
			name := sdk.name + "/complete"
			if stream {
				name = sdk.name + "/stream"
			}
			t.Run(name, func(t *testing.T) {
				c, _ := sdk.newClient(t, h)
				var err error
				if stream {
					_, err = c.stream(t.Context(), anParams{model: model})
				} else {
					_, err = c.complete(t.Context(), anParams{model: model})
				}
				status, reqID, body, ok := c.apiError(err)
				if !ok {
					t.Fatalf("error %v (%T), want the SDK's *anthropic.Error", err, err)
				}
				if status != http.StatusNotFound {
					t.Errorf("status %d, want 404", status)
				}
				if reqID == "" {
					t.Errorf("no request id in the error")
				}
				var wire struct {
					Type  string `json:"type"`
					Error struct {
						Type    string `json:"type"`
						Message string `json:"message"`
					} `json:"error"`
				}
				if err := json.Unmarshal([]byte(body), &wire); err != nil {
					t.Fatalf("error body %q: %v", body, err)
				}
				if wire.Type != "error" || wire.Error.Type != "not_found_error" {
					t.Errorf("error body %s: want type error, error.type not_found_error", body)
				}
				checkClientSafe(t, wire.Error.Message)
				checkClientSafe(t, body)
			})
		}
	}
}

// TestSDKModelsList lists the gateway's models through each SDK: the OpenAI
// shape for OpenAI's, the Anthropic shape for Anthropic's.
func TestSDKModelsList(t *testing.T) {
	h := newHarness(t, sim.Options{})
	want := []string{"oa-model", "an-model", "sim"}

	oa, _ := newSDKOpenAI(t, h)
	page, err := oa.Models.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range page.Data {
		got = append(got, m.ID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("openai-go models = %v, want %v", got, want)
	}

	an, _ := newAnV2(t, h)
	c := an.(anV2).c
	apage, err := c.Models.List(t.Context(), anthropicv2.ModelListParams{})
	if err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for _, m := range apage.Data {
		got = append(got, m.ID)
		if m.CreatedAt.IsZero() || m.DisplayName == "" {
			t.Errorf("anthropic model %+v lacks created_at or display_name", m)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("anthropic-sdk-go models = %v, want %v", got, want)
	}
}
