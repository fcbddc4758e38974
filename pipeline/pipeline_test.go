package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/config"
	"github.com/sluice-gw/sluice/pipeline"
	"github.com/sluice-gw/sluice/sim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testConfig is the configuration every test builds from: healthy simulators
// and failing ones, routed so that each fallback rule can be observed.
const testConfig = `
providers:
  - {name: sim, type: sim, tokens: 12}
  - {name: backup, type: sim, tokens: 12}
  - {name: stall, type: sim, tokens: 12, fault: stall_after=3}
  - {name: down503, type: sim, fault: status=503}
  - {name: down502, type: sim, fault: status=502}
  - {name: down500, type: sim, fault: status=500}
  - {name: down429, type: sim, fault: "status=429,retry_after=2s"}
  - {name: down529, type: sim, fault: status=529}
  - {name: bad400, type: sim, fault: status=400}
  - {name: bad413, type: sim, fault: status=413}
  - {name: errfirst, type: sim, fault: error_at=1}
  - {name: slowfirst, type: sim, fault: ttft=5s, timeouts: {first_token: 50ms, total: 300ms}}
models:
  - {name: fast, targets: [{provider: sim, model: sim-fast}]}
  - {name: stalling, targets: [{provider: stall, model: sim-stall}]}
  - name: failover
    targets:
      - {provider: down503, model: first}
      - {provider: backup, model: second}
  - {name: via-502, targets: [{provider: down502, model: first}, {provider: backup, model: second}]}
  - {name: via-500, targets: [{provider: down500, model: first}, {provider: backup, model: second}]}
  - {name: via-429, targets: [{provider: down429, model: first}, {provider: backup, model: second}]}
  - {name: via-529, targets: [{provider: down529, model: first}, {provider: backup, model: second}]}
  - {name: via-400, targets: [{provider: bad400, model: first}, {provider: backup, model: second}]}
  - {name: via-413, targets: [{provider: bad413, model: first}, {provider: backup, model: second}]}
  - {name: via-error-event, targets: [{provider: errfirst, model: first}, {provider: backup, model: second}]}
  - {name: via-first-token, targets: [{provider: slowfirst, model: first}, {provider: backup, model: second}]}
  - {name: all-down, targets: [{provider: down503, model: first}, {provider: down529, model: second}]}
`

// newPipeline builds a Pipeline from yaml the way an embedding program does:
// config.Parse, then pipeline.New.
func newPipeline(t testing.TB, yaml string) *pipeline.Pipeline {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), func(string) string { return "" })
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	p, err := pipeline.New(context.Background(), cfg, pipeline.Options{})
	if err != nil {
		t.Fatalf("pipeline.New: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// simProvider returns the configured simulator of that name.
func simProvider(t testing.TB, p *pipeline.Pipeline, name string) *sim.Provider {
	t.Helper()
	prov, ok := p.Provider(name)
	if !ok {
		t.Fatalf("Provider(%q): not found", name)
	}
	sp, ok := prov.(*sim.Provider)
	if !ok {
		t.Fatalf("Provider(%q) is a %T, want *sim.Provider", name, prov)
	}
	return sp
}

func userRequest(model, text string) *sluice.Request {
	return &sluice.Request{
		Model:    model,
		Messages: []sluice.Message{{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart(text)}}},
	}
}

// drain ranges over s to the end and returns its events and the error that
// ended it, if any.
func drain(s sluice.Stream) ([]sluice.Event, error) {
	var evs []sluice.Event
	for ev, err := range s.All() {
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

// wantCode checks that err is a *sluice.Error with code c.
func wantCode(t testing.TB, err error, c sluice.Code) *sluice.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want %s", c)
	}
	var e *sluice.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want a *sluice.Error", err, err)
	}
	if e.Code != c {
		t.Fatalf("code = %s, want %s (err %v)", e.Code, c, err)
	}
	return e
}

// content is what two answers to the same request must share, whichever way
// they were obtained.
type content struct {
	ID     string
	Parts  []sluice.Part
	Finish sluice.FinishReason
	Usage  sluice.Usage
}

func contentOf(r *sluice.Response) content {
	return content{ID: r.ID, Parts: r.Message.Parts, Finish: r.FinishReason, Usage: r.Usage}
}

func TestModels(t *testing.T) {
	p := newPipeline(t, testConfig)
	got := p.Models()
	want := []string{"fast", "stalling", "failover", "via-502", "via-500", "via-429", "via-529", "via-400", "via-413", "via-error-event", "via-first-token", "all-down"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Models() (-want +got):\n%s", diff)
	}
}

func TestComplete(t *testing.T) {
	p := newPipeline(t, testConfig)
	req := userRequest("fast", "Say hello.")
	resp, err := p.Complete(context.Background(), req)
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if resp.Model != "fast" {
		t.Errorf("Model = %q, want the public name %q", resp.Model, "fast")
	}
	if req.Model != "fast" {
		t.Errorf("the caller's request was changed: Model = %q", req.Model)
	}
	if resp.Message.Role != sluice.RoleAssistant {
		t.Errorf("Role = %q, want assistant", resp.Message.Role)
	}
	text := resp.Message.Text()
	if n := len(strings.Fields(text)); n != 12 {
		t.Errorf("text has %d words, want 12 (tokens: 12): %q", n, text)
	}
	if resp.FinishReason != sluice.FinishStop {
		t.Errorf("FinishReason = %q, want stop", resp.FinishReason)
	}
	if resp.Usage.InputTokens <= 0 || resp.Usage.OutputTokens != 12 {
		t.Errorf("Usage = %+v, want input > 0 and output 12", resp.Usage)
	}
	if !strings.HasPrefix(resp.ID, "sim-") {
		t.Errorf("ID = %q, want the simulator's sim-<hex>", resp.ID)
	}
	if n := simProvider(t, p, "sim").OpenStreams(); n != 0 {
		t.Errorf("OpenStreams after Complete = %d, want 0", n)
	}

	again, err := p.Complete(context.Background(), userRequest("fast", "Say hello."))
	if err != nil {
		t.Fatalf("second Complete: %v", err)
	}
	if diff := cmp.Diff(contentOf(resp), contentOf(again)); diff != "" {
		t.Errorf("the same request answered differently (-first +second):\n%s", diff)
	}
}

var weatherTool = sluice.Tool{
	Name:        "get_weather",
	Description: "Current weather in a city.",
	Parameters:  json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`),
}

var timeTool = sluice.Tool{
	Name:       "get_time",
	Parameters: json.RawMessage(`{"type":"object","properties":{"zone":{"type":"string"}},"required":["zone"]}`),
}

// TestStreamMatchesComplete checks that a stream yields EventStart first and
// EventFinish last, and that what it yields adds up to Complete's answer to
// the same request.
func TestStreamMatchesComplete(t *testing.T) {
	tests := []struct {
		name string
		req  func() *sluice.Request
	}{
		{"text", func() *sluice.Request { return userRequest("fast", "Tell me something.") }},
		{"system and seed", func() *sluice.Request {
			r := userRequest("fast", "Tell me something.")
			r.System = []sluice.Part{sluice.TextPart("Be brief.")}
			seed := int64(7)
			r.Seed = &seed
			return r
		}},
		{"max output tokens", func() *sluice.Request {
			r := userRequest("fast", "Tell me something.")
			r.MaxOutputTokens = 5
			return r
		}},
		{"tool call", func() *sluice.Request {
			r := userRequest("fast", "Weather in Paris?")
			r.Tools = []sluice.Tool{weatherTool}
			return r
		}},
		{"parallel tool calls", func() *sluice.Request {
			r := userRequest("fast", "Weather and time in Paris, in parallel.")
			r.Tools = []sluice.Tool{weatherTool, timeTool}
			return r
		}},
		{"json schema", func() *sluice.Request {
			r := userRequest("fast", "A city as JSON.")
			r.Output = sluice.Output{Type: sluice.OutputJSONSchema, Name: "city",
				Schema: json.RawMessage(`{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}`)}
			return r
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPipeline(t, testConfig)
			ctx := context.Background()
			whole, err := p.Complete(ctx, tt.req())
			if err != nil {
				t.Fatalf("Complete: %v", err)
			}

			req := tt.req()
			req.Stream = true
			s, err := p.Stream(ctx, req)
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			if n := simProvider(t, p, "sim").OpenStreams(); n != 1 {
				t.Errorf("OpenStreams while streaming = %d, want 1", n)
			}
			evs, err := drain(s)
			if err != nil {
				t.Fatalf("stream ended with %v", err)
			}
			if len(evs) < 3 {
				t.Fatalf("got %d events, want at least start, usage and finish", len(evs))
			}
			if evs[0].Type != sluice.EventStart {
				t.Errorf("first event is %s, want start", evs[0].Type)
			}
			if evs[0].Model != req.Model {
				t.Errorf("start names model %q, want the public name %q", evs[0].Model, req.Model)
			}
			if last := evs[len(evs)-1]; last.Type != sluice.EventFinish {
				t.Errorf("last event is %s, want finish", last.Type)
			}
			for i, ev := range evs[1 : len(evs)-1] {
				if ev.Type == sluice.EventStart || ev.Type == sluice.EventFinish || ev.Type == sluice.EventError {
					t.Errorf("event %d is %s, in the middle of the stream", i+1, ev.Type)
				}
			}
			if n := simProvider(t, p, "sim").OpenStreams(); n != 0 {
				t.Errorf("OpenStreams after the stream = %d, want 0", n)
			}

			var acc sluice.Accumulator
			for _, ev := range evs {
				acc.Add(ev)
			}
			streamed := acc.Response()
			if got, want := streamed.Message.Text(), whole.Message.Text(); got != want {
				t.Errorf("streamed text %q, Complete's %q", got, want)
			}
			if diff := cmp.Diff(contentOf(whole), contentOf(streamed)); diff != "" {
				t.Errorf("stream and Complete differ (-Complete +stream):\n%s", diff)
			}
		})
	}
}

// TestToolCalls runs a tool round trip in-process: the model calls the tool,
// the caller answers with its result, the model answers in text.
func TestToolCalls(t *testing.T) {
	p := newPipeline(t, testConfig)
	ctx := context.Background()
	req := userRequest("fast", "What is the weather in Paris?")
	req.Tools = []sluice.Tool{weatherTool}
	req.ToolChoice = sluice.ToolChoice{Mode: sluice.ToolChoiceTool, Name: "get_weather"}

	resp, err := p.Complete(ctx, req)
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if resp.FinishReason != sluice.FinishToolCalls {
		t.Errorf("FinishReason = %q, want tool_calls", resp.FinishReason)
	}
	calls := resp.Message.ToolCalls()
	if len(calls) != 1 {
		t.Fatalf("got %d tool calls, want 1: %+v", len(calls), resp.Message.Parts)
	}
	call := calls[0]
	if call.ToolName != "get_weather" || !strings.HasPrefix(call.ToolCallID, "call_") {
		t.Errorf("call = %q %q, want get_weather with an id call_...", call.ToolName, call.ToolCallID)
	}
	var args struct {
		City *string `json:"city"`
	}
	if err := json.Unmarshal([]byte(call.Arguments), &args); err != nil || args.City == nil {
		t.Errorf("arguments %q: want an object with a string city (err %v)", call.Arguments, err)
	}

	// The caller runs the tool and sends the result back.
	req.Messages = append(req.Messages,
		resp.Message,
		sluice.Message{Role: sluice.RoleTool, Parts: []sluice.Part{{
			Type: sluice.PartToolResult, ToolCallID: call.ToolCallID, Text: "18 degrees and sunny",
		}}},
	)
	req.ToolChoice = sluice.ToolChoice{}
	final, err := p.Complete(ctx, req)
	if err != nil {
		t.Fatalf("Complete after the tool result: %v", err)
	}
	if final.FinishReason != sluice.FinishStop || len(final.Message.ToolCalls()) != 0 {
		t.Errorf("after the result: finish %q with %d calls, want a text answer", final.FinishReason, len(final.Message.ToolCalls()))
	}
	if text := final.Message.Text(); !strings.Contains(text, "get_weather") || !strings.Contains(text, "18") {
		t.Errorf("answer %q does not mention the tool and its result", text)
	}

	// Streamed, the call arrives as deltas: id and name first, then argument
	// fragments, all under Index 0.
	req = userRequest("fast", "What is the weather in Paris?")
	req.Tools = []sluice.Tool{weatherTool}
	req.Stream = true
	s, err := p.Stream(ctx, req)
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	evs, err := drain(s)
	if err != nil {
		t.Fatalf("stream ended with %v", err)
	}
	var deltas []sluice.Event
	for _, ev := range evs {
		if ev.Type == sluice.EventToolCall {
			deltas = append(deltas, ev)
		}
	}
	if len(deltas) < 2 {
		t.Fatalf("got %d tool-call events, want a head and argument fragments", len(deltas))
	}
	if deltas[0].ToolCallID == "" || deltas[0].ToolName != "get_weather" {
		t.Errorf("first delta = %+v, want the call's id and name", deltas[0])
	}
	for i, d := range deltas {
		if d.Index != 0 {
			t.Errorf("delta %d has Index %d, want 0", i, d.Index)
		}
		if i > 0 && (d.ToolCallID != "" || d.ToolName != "") {
			t.Errorf("delta %d repeats the id or name: %+v", i, d)
		}
	}
}

// TestFallback checks which failures before the first content move on to
// the route's next target, for Complete and Stream alike.
func TestFallback(t *testing.T) {
	tests := []struct {
		model    string
		fallback bool
		code     sluice.Code // when it does not fall back
	}{
		{"failover", true, ""}, // 503
		{"via-502", true, ""},
		{"via-500", true, ""},
		{"via-429", true, ""},
		{"via-529", true, ""},
		{"via-error-event", true, ""}, // 200, then an error event before any content
		{"via-first-token", true, ""}, // first-token deadline (total, for Complete)
		{"via-400", false, sluice.CodeInvalidRequest},
		{"via-413", false, sluice.CodeRequestTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			p := newPipeline(t, testConfig)
			ctx := context.Background()

			// What the second target answers when asked directly.
			direct, err := simProvider(t, p, "backup").Complete(ctx, userRequest("second", "Hello there."))
			if err != nil {
				t.Fatalf("backup.Complete: %v", err)
			}

			resp, err := p.Complete(ctx, userRequest(tt.model, "Hello there."))
			if !tt.fallback {
				wantCode(t, err, tt.code)
			} else {
				if err != nil {
					t.Fatalf("Complete: %v, want the second target's answer", err)
				}
				if resp.ID != direct.ID || resp.Message.Text() != direct.Message.Text() {
					t.Errorf("answer %q %q, want the second target's %q %q", resp.ID, resp.Message.Text(), direct.ID, direct.Message.Text())
				}
				if resp.Model != tt.model {
					t.Errorf("Model = %q, want the public name %q", resp.Model, tt.model)
				}
			}

			req := userRequest(tt.model, "Hello there.")
			req.Stream = true
			s, err := p.Stream(ctx, req)
			if !tt.fallback {
				wantCode(t, err, tt.code)
				return
			}
			if err != nil {
				t.Fatalf("Stream: %v, want the second target's stream", err)
			}
			got, err := sluice.Collect(s)
			if err != nil {
				t.Fatalf("stream ended with %v", err)
			}
			if got.ID != direct.ID || got.Message.Text() != direct.Message.Text() {
				t.Errorf("stream %q %q, want the second target's %q %q", got.ID, got.Message.Text(), direct.ID, direct.Message.Text())
			}
			if n := simProvider(t, p, "backup").OpenStreams(); n != 0 {
				t.Errorf("backup OpenStreams = %d, want 0", n)
			}
		})
	}
}

// TestAllTargetsFail checks that when every target fails, the last failure
// is what the caller gets, with its client-safe fields only.
func TestAllTargetsFail(t *testing.T) {
	p := newPipeline(t, testConfig)
	_, err := p.Complete(context.Background(), userRequest("all-down", "Hello."))
	e := wantCode(t, err, sluice.CodeOverloaded) // the 529 of the second target
	if strings.Contains(e.Message, "simulated") || strings.Contains(e.Error(), "down529") {
		t.Errorf("client-safe text leaks upstream detail: %q", e.Error())
	}
	var ue *sluice.UpstreamError
	if !errors.As(err, &ue) || ue.Provider != "down529" || ue.StatusCode != 529 {
		t.Errorf("cause = %+v, want the down529 provider's 529", ue)
	}

	_, err = p.Stream(context.Background(), userRequest("all-down", "Hello."))
	wantCode(t, err, sluice.CodeOverloaded)
}

func TestRetryAfterKept(t *testing.T) {
	p := newPipeline(t, `
providers:
  - {name: limited, type: sim, fault: "status=429,retry_after=3s"}
models:
  - {name: only, targets: [{provider: limited, model: x}]}
`)
	_, err := p.Complete(context.Background(), userRequest("only", "Hello."))
	e := wantCode(t, err, sluice.CodeRateLimited)
	if e.RetryAfter.Seconds() != 3 {
		t.Errorf("RetryAfter = %v, want 3s", e.RetryAfter)
	}
}

// TestClientErrors checks requests the caller must fix: they fail with a
// *sluice.Error before any target is tried, so no fallback can hide them.
func TestClientErrors(t *testing.T) {
	tests := []struct {
		name  string
		req   *sluice.Request
		code  sluice.Code
		param string
	}{
		{"nil request", nil, sluice.CodeInvalidRequest, ""},
		{"no model", &sluice.Request{Messages: userRequest("", "hi").Messages}, sluice.CodeInvalidRequest, "model"},
		{"no messages", &sluice.Request{Model: "failover"}, sluice.CodeInvalidRequest, "messages"},
		{"negative max tokens", func() *sluice.Request {
			r := userRequest("failover", "hi")
			r.MaxOutputTokens = -1
			return r
		}(), sluice.CodeInvalidRequest, "max_tokens"},
		{"unknown model", userRequest("no-such-model", "hi"), sluice.CodeNotFound, "model"},
		{"tool choice names a tool not offered", func() *sluice.Request {
			r := userRequest("fast", "hi")
			r.ToolChoice = sluice.ToolChoice{Mode: sluice.ToolChoiceTool, Name: "missing"}
			return r
		}(), sluice.CodeInvalidRequest, "tool_choice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPipeline(t, testConfig)
			_, err := p.Complete(context.Background(), tt.req)
			if e := wantCode(t, err, tt.code); e.Param != tt.param {
				t.Errorf("Complete: Param = %q, want %q", e.Param, tt.param)
			}
			s, err := p.Stream(context.Background(), tt.req)
			if s != nil {
				s.Close()
				t.Fatal("Stream returned a stream for a bad request")
			}
			if e := wantCode(t, err, tt.code); e.Param != tt.param {
				t.Errorf("Stream: Param = %q, want %q", e.Param, tt.param)
			}
			if n := simProvider(t, p, "backup").OpenStreams(); n != 0 {
				t.Errorf("backup OpenStreams = %d, want 0", n)
			}
		})
	}
}

func TestUnknownModelMessage(t *testing.T) {
	p := newPipeline(t, testConfig)
	_, err := p.Complete(context.Background(), userRequest("gpt-nope", "hi"))
	e := wantCode(t, err, sluice.CodeNotFound)
	if !strings.Contains(e.Message, `"gpt-nope"`) {
		t.Errorf("Message = %q, want it to name the model", e.Message)
	}
}

// TestCancelMidStream cancels the caller's context part way through a stream:
// the stream ends with an error wrapping context.Canceled and the simulator's
// stream is released.
func TestCancelMidStream(t *testing.T) {
	tests := []struct {
		name     string
		model    string
		provider string
		// cancel cancels the context after the stream's third text event; it
		// returns a function that waits for any goroutine it started.
		cancel func(cancel context.CancelFunc) (wait func())
	}{
		{
			name: "between events", model: "fast", provider: "sim",
			cancel: func(cancel context.CancelFunc) func() {
				cancel()
				return func() {}
			},
		},
		{
			// The upstream stalls after three chunks; the cancellation comes
			// from elsewhere, while (or before) the stream blocks.
			name: "while stalled", model: "stalling", provider: "stall",
			cancel: func(cancel context.CancelFunc) func() {
				var wg sync.WaitGroup
				wg.Go(cancel)
				return wg.Wait
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPipeline(t, testConfig)
			sp := simProvider(t, p, tt.provider)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()

			req := userRequest(tt.model, "Tell me a long story.")
			req.Stream = true
			s, err := p.Stream(ctx, req)
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			if n := sp.OpenStreams(); n != 1 {
				t.Errorf("OpenStreams = %d, want 1", n)
			}
			var texts int
			var end error
			wait := func() {}
			for ev, err := range s.All() {
				if err != nil {
					end = err
					break
				}
				if ev.Type == sluice.EventFinish {
					t.Fatal("the stream finished despite the cancellation")
				}
				if ev.Type == sluice.EventText {
					texts++
					if texts == 3 {
						wait = tt.cancel(cancel)
					}
				}
			}
			wait()
			if texts != 3 {
				t.Errorf("got %d text events, want 3 before the cancellation", texts)
			}
			if !errors.Is(end, context.Canceled) {
				t.Errorf("stream ended with %v, want an error wrapping context.Canceled", end)
			}
			if n := sp.OpenStreams(); n != 0 {
				t.Errorf("OpenStreams after the cancellation = %d, want 0", n)
			}
			if err := s.Close(); err != nil {
				t.Errorf("Close after the end: %v", err)
			}
		})
	}
}

// TestStreamRelease checks the other ways a caller lets go of a stream.
func TestStreamRelease(t *testing.T) {
	tests := []struct {
		name string
		use  func(s sluice.Stream)
	}{
		{"break out early", func(s sluice.Stream) {
			for range s.All() {
				break
			}
		}},
		{"close without ranging", func(s sluice.Stream) { s.Close() }},
		{"close twice", func(s sluice.Stream) { s.Close(); s.Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPipeline(t, testConfig)
			sp := simProvider(t, p, "sim")
			req := userRequest("fast", "Hello.")
			req.Stream = true
			s, err := p.Stream(context.Background(), req)
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			tt.use(s)
			if n := sp.OpenStreams(); n != 0 {
				t.Errorf("OpenStreams = %d, want 0", n)
			}
		})
	}
}

// TestCancelledBeforeStart checks that a context cancelled before the call
// fails it at once, without fallback and without opening a stream.
func TestCancelledBeforeStart(t *testing.T) {
	p := newPipeline(t, testConfig)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Complete(ctx, userRequest("failover", "Hello.")); !errors.Is(err, context.Canceled) {
		t.Errorf("Complete: err = %v, want context.Canceled", err)
	}
	s, err := p.Stream(ctx, userRequest("fast", "Hello."))
	if s != nil {
		s.Close()
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Stream: err = %v, want context.Canceled", err)
	}
	if n := simProvider(t, p, "sim").OpenStreams() + simProvider(t, p, "backup").OpenStreams(); n != 0 {
		t.Errorf("OpenStreams = %d, want 0", n)
	}
}

// TestNewBadFault checks that a simulator with a fault string it cannot parse
// stops pipeline.New, and that the error names the provider. config.Parse
// accepts the string: only the simulator knows its fault syntax.
func TestNewBadFault(t *testing.T) {
	tests := []struct {
		name, fault string
	}{
		{"unknown item", "explode"},
		{"bad status", "status=abc"},
		{"bad duration", "latency=10"},
		{"given twice", "ttft=1s,ttft=2s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(`
providers:
  - {name: good, type: sim}
  - {name: flaky-sim, type: sim, fault: "`+tt.fault+`"}
models:
  - {name: m, targets: [{provider: good, model: x}, {provider: flaky-sim, model: y}]}
`), nil)
			if err != nil {
				t.Fatalf("config.Parse: %v", err)
			}
			p, err := pipeline.New(context.Background(), cfg, pipeline.Options{})
			if err == nil {
				t.Fatalf("pipeline.New accepted fault %q", tt.fault)
			}
			if p != nil {
				t.Errorf("pipeline.New returned a Pipeline with its error")
			}
			if !strings.Contains(err.Error(), `"flaky-sim"`) {
				t.Errorf("error %q does not name the provider", err)
			}
			if !strings.Contains(err.Error(), "fault") {
				t.Errorf("error %q does not say the fault is to blame", err)
			}
		})
	}
}

// TestNewValidates checks that pipeline.New validates a config built by hand,
// as an embedding program may do, rather than trusting it.
func TestNewValidates(t *testing.T) {
	cfg := &config.Config{
		Providers: []config.Provider{{Name: "s", Type: "sim"}},
		Models:    []config.Model{{Name: "m", Targets: []config.Target{{Provider: "nope", Model: "x"}}}},
	}
	if _, err := pipeline.New(context.Background(), cfg, pipeline.Options{}); err == nil {
		t.Fatal("pipeline.New accepted a target naming an unknown provider")
	}
}

// TestConcurrentCalls runs calls from many goroutines on one Pipeline, for
// the race detector.
func TestConcurrentCalls(t *testing.T) {
	p := newPipeline(t, testConfig)
	want, err := p.Complete(context.Background(), userRequest("failover", "Same question."))
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			req := userRequest("failover", "Same question.")
			var got *sluice.Response
			var err error
			if i%2 == 0 {
				got, err = p.Complete(context.Background(), req)
			} else {
				req.Stream = true
				var s sluice.Stream
				if s, err = p.Stream(context.Background(), req); err == nil {
					got, err = sluice.Collect(s)
				}
			}
			if err == nil && got.Message.Text() != want.Message.Text() {
				err = errors.New("answer differs: " + got.Message.Text())
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := simProvider(t, p, "backup").OpenStreams(); n != 0 {
		t.Errorf("backup OpenStreams = %d, want 0", n)
	}
}
