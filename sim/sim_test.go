package sim

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sluice-gw/sluice"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func userText(s string) sluice.Message {
	return sluice.Message{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart(s)}}
}

func textRequest(text string) *sluice.Request {
	return &sluice.Request{
		Model:    "sim-fast",
		System:   []sluice.Part{sluice.TextPart("Be brief.")},
		Messages: []sluice.Message{userText(text)},
	}
}

// sleeper is a fake Options.Sleep that records the durations asked for and
// returns at once (or ctx's error when it has ended).
type sleeper struct {
	mu sync.Mutex
	ds []time.Duration
}

func (s *sleeper) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.ds = append(s.ds, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeper) got() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.ds...)
}

// events streams req from p to the end and returns the events and the error.
func events(tb testing.TB, ctx context.Context, p *Provider, req *sluice.Request) ([]sluice.Event, error) {
	tb.Helper()
	s, err := p.Stream(ctx, req)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	var evs []sluice.Event
	for ev, err := range s.All() {
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

func complete(tb testing.TB, p *Provider, req *sluice.Request) *sluice.Response {
	tb.Helper()
	resp, err := p.Complete(context.Background(), req)
	if err != nil {
		tb.Fatalf("Complete: %v", err)
	}
	return resp
}

func seed(n int64) *int64 { return &n }

func TestDeterminism(t *testing.T) {
	p := New(Options{})
	base := textRequest("Tell me about rivers.")
	a := complete(t, p, base)
	b := complete(t, New(Options{}), textRequest("Tell me about rivers."))
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("same request, different answers (-first +second):\n%s", diff)
	}

	// Stream and Complete give the same answer.
	s := &sluice.Request{}
	*s = *base
	s.Stream = true
	evs, err := events(t, context.Background(), p, s)
	if err != nil {
		t.Fatal(err)
	}
	var acc sluice.Accumulator
	for _, ev := range evs {
		acc.Add(ev)
	}
	if diff := cmp.Diff(a, acc.Response()); diff != "" {
		t.Errorf("stream differs from complete (-complete +stream):\n%s", diff)
	}

	variants := map[string]func(r *sluice.Request){
		"seed 1":  func(r *sluice.Request) { r.Seed = seed(1) },
		"seed 2":  func(r *sluice.Request) { r.Seed = seed(2) },
		"model":   func(r *sluice.Request) { r.Model = "sim-smart" },
		"system":  func(r *sluice.Request) { r.System = []sluice.Part{sluice.TextPart("Be long.")} },
		"message": func(r *sluice.Request) { r.Messages = []sluice.Message{userText("Tell me about lakes.")} },
	}
	seen := map[string]string{a.Message.Text(): "base"}
	for name, change := range variants {
		r := textRequest("Tell me about rivers.")
		change(r)
		text := complete(t, p, r).Message.Text()
		if prev, dup := seen[text]; dup {
			t.Errorf("%s gives the same answer as %s: %q", name, prev, text)
		}
		seen[text] = name
		if again := complete(t, p, r).Message.Text(); again != text {
			t.Errorf("%s: answer changed on repeat", name)
		}
	}
	if a.ID != b.ID || !regexp.MustCompile(`^sim-[0-9a-f]{24}$`).MatchString(a.ID) {
		t.Errorf("ids %q %q", a.ID, b.ID)
	}
}

func TestTextLength(t *testing.T) {
	tests := []struct {
		name      string
		opts      Options
		ctxFault  *Fault
		maxTokens int
		want      int
		finish    sluice.FinishReason
	}{
		{name: "default", want: 24, finish: sluice.FinishStop},
		{name: "options", opts: Options{Tokens: 7}, want: 7, finish: sluice.FinishStop},
		{name: "options fault", opts: Options{Tokens: 7, Fault: Fault{Tokens: 50}}, want: 50, finish: sluice.FinishStop},
		{name: "request fault", opts: Options{Fault: Fault{Tokens: 50}}, ctxFault: &Fault{Tokens: 100}, want: 100, finish: sluice.FinishStop},
		{name: "max output shorter", maxTokens: 10, want: 10, finish: sluice.FinishLength},
		{name: "max output equal", maxTokens: 24, want: 24, finish: sluice.FinishStop},
		{name: "max output longer", maxTokens: 1000, want: 24, finish: sluice.FinishStop},
		{name: "one word", opts: Options{Tokens: 1}, want: 1, finish: sluice.FinishStop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New(tt.opts)
			ctx := context.Background()
			if tt.ctxFault != nil {
				ctx = WithFault(ctx, *tt.ctxFault)
			}
			req := textRequest("hello")
			req.MaxOutputTokens = tt.maxTokens
			evs, err := events(t, ctx, p, req)
			if err != nil {
				t.Fatal(err)
			}
			var words []string
			for i, ev := range evs {
				if ev.Type != sluice.EventText {
					continue
				}
				w := ev.Text
				if len(words) > 0 {
					if !strings.HasPrefix(w, " ") {
						t.Errorf("event %d %q lacks its leading space", i, w)
					}
					w = w[1:]
				}
				if w == "" || strings.ContainsAny(w, " \n") {
					t.Errorf("event %d %q is not one word", i, ev.Text)
				}
				words = append(words, w)
			}
			if len(words) != tt.want {
				t.Errorf("%d words, want %d", len(words), tt.want)
			}
			last := evs[len(evs)-1]
			usage := evs[len(evs)-2]
			if last.Type != sluice.EventFinish || last.FinishReason != tt.finish {
				t.Errorf("last event %+v, want finish %s", last, tt.finish)
			}
			if usage.Type != sluice.EventUsage || usage.Usage.OutputTokens != tt.want {
				t.Errorf("usage event %+v, want %d output tokens", usage, tt.want)
			}
			if tt.finish == sluice.FinishStop && !strings.HasSuffix(words[len(words)-1], ".") {
				t.Errorf("full answer does not end a sentence: %q", words[len(words)-1])
			}
		})
	}

	t.Run("limit cuts the same answer", func(t *testing.T) {
		p := New(Options{})
		full := complete(t, p, textRequest("hello")).Message.Text()
		req := textRequest("hello")
		req.MaxOutputTokens = 5
		cut := complete(t, p, req)
		if !strings.HasPrefix(full, cut.Message.Text()) || cut.FinishReason != sluice.FinishLength {
			t.Errorf("cut %q (%s) is not a prefix of %q", cut.Message.Text(), cut.FinishReason, full)
		}
	})
}

func TestStreamShape(t *testing.T) {
	p := New(Options{})
	req := jsonRequest(`{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}}}`, 1)
	evs, err := events(t, context.Background(), p, req)
	if err != nil {
		t.Fatal(err)
	}
	start := evs[0]
	if start.Type != sluice.EventStart || start.Model != "sim-json" || !strings.HasPrefix(start.ID, "sim-") || start.Usage.InputTokens < 1 {
		t.Errorf("start event %+v", start)
	}
	var text strings.Builder
	content := evs[1 : len(evs)-2]
	for i, ev := range content {
		if ev.Type != sluice.EventText {
			t.Fatalf("event %d is %s", i, ev.Type)
		}
		if n := len([]rune(ev.Text)); n < 1 || n > 6 || (n < 2 && i < len(content)-1) {
			t.Errorf("chunk %d %q has %d characters", i, ev.Text, n)
		}
		text.WriteString(ev.Text)
	}
	if !json.Valid([]byte(text.String())) {
		t.Errorf("chunks do not join into JSON: %s", text.String())
	}
	usage := evs[len(evs)-2]
	want := sluice.Usage{InputTokens: start.Usage.InputTokens, OutputTokens: len(content)}
	if usage.Type != sluice.EventUsage || usage.Usage != want {
		t.Errorf("usage %+v, want %+v", usage, want)
	}
}

func TestInputTokens(t *testing.T) {
	p := New(Options{})
	small := complete(t, p, textRequest("hi"))
	req := textRequest("hi there, how are you today? I have a long question about rivers and lakes.")
	req.Tools = []sluice.Tool{{Name: "t", Description: "a tool", Parameters: json.RawMessage(`{"type":"object"}`)}}
	req.ToolChoice.Mode = sluice.ToolChoiceNone
	big := complete(t, p, req)
	if small.Usage.InputTokens < 1 || big.Usage.InputTokens <= small.Usage.InputTokens {
		t.Errorf("input tokens small %d big %d", small.Usage.InputTokens, big.Usage.InputTokens)
	}
	// "Be brief." is 3, "hi" is 1.
	if small.Usage.InputTokens != 4 {
		t.Errorf("input tokens = %d, want 4", small.Usage.InputTokens)
	}
}

var (
	weatherTool = sluice.Tool{Name: "get_weather", Parameters: json.RawMessage(`{
		"type":"object",
		"properties":{
			"city":{"type":"string","minLength":2},
			"unit":{"type":"string","enum":["celsius","fahrenheit"]},
			"days":{"type":"integer","minimum":1,"maximum":7}
		},
		"required":["city","unit"],
		"additionalProperties":false}`)}
	timeTool   = sluice.Tool{Name: "get_time", Parameters: json.RawMessage(`{"type":"object","properties":{"zone":{"type":"string","pattern":"^[A-Z][a-z]+/[A-Z][a-z]+$"}},"required":["zone"]}`)}
	noArgsTool = sluice.Tool{Name: "ping"}
)

func TestToolCalls(t *testing.T) {
	no := false
	tests := []struct {
		name      string
		tools     []sluice.Tool
		choice    sluice.ToolChoice
		parallel  *bool
		text      string
		wantCalls []string
	}{
		{name: "auto", tools: []sluice.Tool{weatherTool, timeTool}, text: "Weather in Paris?", wantCalls: []string{"get_weather"}},
		{name: "default choice", tools: []sluice.Tool{timeTool}, choice: sluice.ToolChoice{Mode: sluice.ToolChoiceDefault}, text: "time?", wantCalls: []string{"get_time"}},
		{name: "required", tools: []sluice.Tool{weatherTool, timeTool}, choice: sluice.ToolChoice{Mode: sluice.ToolChoiceRequired}, text: "x", wantCalls: []string{"get_weather"}},
		{name: "named", tools: []sluice.Tool{weatherTool, timeTool}, choice: sluice.ToolChoice{Mode: sluice.ToolChoiceTool, Name: "get_time"}, text: "x", wantCalls: []string{"get_time"}},
		{name: "parallel", tools: []sluice.Tool{weatherTool, timeTool, noArgsTool}, text: "Do both in Parallel, please.", wantCalls: []string{"get_weather", "get_time"}},
		{name: "parallel off", tools: []sluice.Tool{weatherTool, timeTool}, parallel: &no, text: "parallel", wantCalls: []string{"get_weather"}},
		{name: "parallel one tool", tools: []sluice.Tool{weatherTool}, text: "parallel", wantCalls: []string{"get_weather"}},
		{name: "parallel not a word", tools: []sluice.Tool{weatherTool, timeTool}, text: "unparalleled", wantCalls: []string{"get_weather"}},
		{name: "no parameters", tools: []sluice.Tool{noArgsTool}, text: "ping", wantCalls: []string{"ping"}},
		{name: "none", tools: []sluice.Tool{weatherTool}, choice: sluice.ToolChoice{Mode: sluice.ToolChoiceNone}, text: "x"},
	}
	idRE := regexp.MustCompile(`^call_[0-9a-f]{24}$`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New(Options{})
			req := textRequest(tt.text)
			req.Tools, req.ToolChoice, req.ParallelToolCalls = tt.tools, tt.choice, tt.parallel
			evs, err := events(t, context.Background(), p, req)
			if err != nil {
				t.Fatal(err)
			}
			var acc sluice.Accumulator
			heads := 0
			for _, ev := range evs {
				acc.Add(ev)
				if ev.Type == sluice.EventToolCall && ev.ToolCallID != "" {
					if ev.Index != heads || ev.ToolName == "" {
						t.Errorf("call head %+v, want index %d with a name", ev, heads)
					}
					heads++
				}
			}
			resp := acc.Response()
			calls := resp.Message.ToolCalls()
			var names []string
			for _, c := range calls {
				names = append(names, c.ToolName)
				if !idRE.MatchString(c.ToolCallID) {
					t.Errorf("call id %q", c.ToolCallID)
				}
				schema := `{"type":"object"}`
				for _, tool := range tt.tools {
					if tool.Name == c.ToolName && tool.Parameters != nil {
						schema = string(tool.Parameters)
					}
				}
				for _, p := range checkSchema(t, schema, c.Arguments) {
					t.Errorf("%s arguments %s: %s", c.ToolName, c.Arguments, p)
				}
			}
			if diff := cmp.Diff(tt.wantCalls, names); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			wantFinish := sluice.FinishToolCalls
			if len(tt.wantCalls) == 0 {
				wantFinish = sluice.FinishStop
				if resp.Message.Text() == "" {
					t.Errorf("no text answer")
				}
			} else if resp.Message.Text() != "" {
				t.Errorf("text %q beside tool calls", resp.Message.Text())
			}
			if resp.FinishReason != wantFinish {
				t.Errorf("finish %s, want %s", resp.FinishReason, wantFinish)
			}
			if len(calls) > 1 && calls[0].ToolCallID == calls[1].ToolCallID {
				t.Errorf("duplicate call ids")
			}
		})
	}
}

func TestToolResultAnswer(t *testing.T) {
	p := New(Options{})
	req := textRequest("Weather in Paris and the time?")
	req.Tools = []sluice.Tool{weatherTool, timeTool}
	req.Messages = append(req.Messages,
		sluice.Message{Role: sluice.RoleAssistant, Parts: []sluice.Part{
			{Type: sluice.PartToolCall, ToolCallID: "call_1", ToolName: "get_weather", Arguments: `{"city":"Paris","unit":"celsius"}`},
			{Type: sluice.PartToolCall, ToolCallID: "call_2", ToolName: "get_time", Arguments: `{"zone":"Europe/Paris"}`},
		}},
		sluice.Message{Role: sluice.RoleTool, Parts: []sluice.Part{
			{Type: sluice.PartToolResult, ToolCallID: "call_1", Text: `{"temp": 21, "sky": "clear"}`},
			{Type: sluice.PartToolResult, ToolCallID: "call_2", Content: []sluice.Part{sluice.TextPart("14:05")}},
		}},
	)
	resp := complete(t, p, req)
	text := resp.Message.Text()
	for _, want := range []string{"get_weather", `"clear"}`, "get_time", "14:05"} {
		if !strings.Contains(text, want) {
			t.Errorf("answer %q does not mention %q", text, want)
		}
	}
	if len(resp.Message.ToolCalls()) != 0 || resp.FinishReason != sluice.FinishStop {
		t.Errorf("answer after tool results: %+v", resp)
	}
	if got := len(strings.Fields(text)); got != 24 {
		t.Errorf("%d words, want 24", got)
	}
}

func TestInvalidRequests(t *testing.T) {
	tests := []struct {
		name  string
		req   *sluice.Request
		param string
	}{
		{name: "nil", req: nil},
		{name: "no messages", req: &sluice.Request{Model: "m"}, param: "messages"},
		{name: "unknown tool choice", req: func() *sluice.Request {
			r := textRequest("x")
			r.Tools = []sluice.Tool{weatherTool}
			r.ToolChoice = sluice.ToolChoice{Mode: sluice.ToolChoiceTool, Name: "nope"}
			return r
		}(), param: "tool_choice"},
		{name: "tool choice without tools", req: func() *sluice.Request {
			r := textRequest("x")
			r.ToolChoice = sluice.ToolChoice{Mode: sluice.ToolChoiceTool, Name: "nope"}
			return r
		}(), param: "tool_choice"},
		{name: "bad tool schema", req: func() *sluice.Request {
			r := textRequest("x")
			r.Tools = []sluice.Tool{{Name: "t", Parameters: json.RawMessage(`{"type":`)}}
			return r
		}(), param: "tools"},
		{name: "bad output schema", req: jsonRequest(`{"type":"object"} trailing`, 0), param: "response_format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New(Options{})
			_, err := p.Complete(context.Background(), tt.req)
			var se *sluice.Error
			if !errors.As(err, &se) || se.Code != sluice.CodeInvalidRequest || se.Param != tt.param {
				t.Errorf("error = %v (%+v), want invalid_request on %q", err, se, tt.param)
			}
			if p.OpenStreams() != 0 {
				t.Errorf("OpenStreams = %d", p.OpenStreams())
			}
		})
	}
}

func TestFaultProseAndTruncate(t *testing.T) {
	p := New(Options{})
	schema := `{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"array","items":{"type":"integer"},"minItems":3}}}`
	full := complete(t, p, jsonRequest(schema, 3))

	resp, err := p.Complete(WithFault(context.Background(), Fault{Prose: true}), jsonRequest(schema, 3))
	if err != nil {
		t.Fatal(err)
	}
	if text := resp.Message.Text(); json.Valid([]byte(text)) || len(strings.Fields(text)) != 24 {
		t.Errorf("prose fault answered %q", text)
	}

	s, err := New(Options{Fault: Fault{Truncate: true}}).Stream(context.Background(), jsonRequest(schema, 3))
	if err != nil {
		t.Fatal(err)
	}
	cut, err := sluice.Collect(s)
	if err != nil {
		t.Fatal(err)
	}
	if cut.FinishReason != sluice.FinishLength || !strings.HasPrefix(full.Message.Text(), cut.Message.Text()) ||
		json.Valid([]byte(cut.Message.Text())) || cut.Usage.OutputTokens != full.Usage.OutputTokens/2 {
		t.Errorf("truncated %q (%s, %d tokens) from %q (%d tokens)", cut.Message.Text(), cut.FinishReason,
			cut.Usage.OutputTokens, full.Message.Text(), full.Usage.OutputTokens)
	}

	text := complete(t, New(Options{Fault: Fault{Truncate: true}}), textRequest("hi"))
	if n := len(strings.Fields(text.Message.Text())); n != 12 || text.FinishReason != sluice.FinishLength {
		t.Errorf("truncated text %d words, %s", n, text.FinishReason)
	}
}

func TestFaultTiming(t *testing.T) {
	var sl sleeper
	p := New(Options{Sleep: sl.sleep, Tokens: 4, Fault: Fault{Latency: time.Second, ChunkDelay: 5 * time.Millisecond}})
	ctx := WithFault(context.Background(), Fault{TTFT: 300 * time.Millisecond, ChunkDelay: 10 * time.Millisecond})
	s, err := p.Stream(ctx, textRequest("hi"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]time.Duration{time.Second}, sl.got()); diff != "" {
		t.Errorf("before Stream returned (-want +got):\n%s", diff)
	}
	n := 0
	for ev, err := range s.All() {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type == sluice.EventStart && len(sl.got()) != 1 {
			t.Errorf("slept before the start event: %v", sl.got())
		}
		if ev.Type == sluice.EventText {
			n++
			if got := len(sl.got()); got != 1+n {
				t.Errorf("after %d chunks, %d sleeps", n, got)
			}
		}
	}
	want := []time.Duration{time.Second, 300 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond}
	if diff := cmp.Diff(want, sl.got()); diff != "" {
		t.Errorf("sleeps (-want +got):\n%s", diff)
	}
}

func TestFaultLatencyCancelled(t *testing.T) {
	// The real timer: a cancelled context ends the wait at once.
	p := New(Options{Fault: Fault{Latency: time.Hour}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Stream(ctx, textRequest("hi")); !errors.Is(err, context.Canceled) {
		t.Errorf("Stream = %v, want context.Canceled", err)
	}
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := p.Complete(ctx, textRequest("hi"))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Complete = %v, want deadline exceeded", err)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		p := New(Options{Fault: Fault{Latency: time.Second}})
		start := time.Now()
		if _, err := p.Complete(context.Background(), textRequest("hi")); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != time.Second { // fake time in the bubble
			t.Errorf("latency %v", d)
		}
	})
	if p.OpenStreams() != 0 {
		t.Errorf("OpenStreams = %d", p.OpenStreams())
	}
}

func TestFaultStatus(t *testing.T) {
	tests := []struct {
		status int
		code   sluice.Code
		typ    string
	}{
		{429, sluice.CodeRateLimited, "rate_limit_error"},
		{500, sluice.CodeUpstreamError, "api_error"},
		{502, sluice.CodeUpstreamUnavailable, "api_error"},
		{503, sluice.CodeUpstreamUnavailable, "api_error"},
		{529, sluice.CodeOverloaded, "overloaded_error"},
		{400, sluice.CodeInvalidRequest, "invalid_request_error"},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			var sl sleeper
			p := New(Options{Name: "backup", Sleep: sl.sleep, Fault: Fault{Latency: 50 * time.Millisecond}})
			ctx := WithFault(context.Background(), Fault{Status: tt.status, RetryAfter: 2 * time.Second})
			for _, call := range []func() error{
				func() error { _, err := p.Stream(ctx, textRequest("hi")); return err },
				func() error { _, err := p.Complete(ctx, textRequest("hi")); return err },
			} {
				err := call()
				var se *sluice.Error
				if !errors.As(err, &se) || se.Code != tt.code || se.RetryAfter != 2*time.Second {
					t.Fatalf("error %v (%+v), want %s with retry after 2s", err, se, tt.code)
				}
				var ue *sluice.UpstreamError
				if !errors.As(err, &ue) || ue.StatusCode != tt.status || ue.Provider != "backup" || ue.Type != tt.typ {
					t.Errorf("cause %+v", ue)
				}
				if strings.Contains(se.Message, "simulated") || strings.Contains(se.Message, "backup") {
					t.Errorf("client message leaks detail: %q", se.Message)
				}
			}
			if diff := cmp.Diff([]time.Duration{50 * time.Millisecond, 50 * time.Millisecond}, sl.got()); diff != "" {
				t.Errorf("latency before the error (-want +got):\n%s", diff)
			}
			if p.OpenStreams() != 0 {
				t.Errorf("OpenStreams = %d", p.OpenStreams())
			}
		})
	}
}

// TestFaultErrorAt checks that error_at=N ends the stream with an
// overloaded upstream error in place of the Nth content event (the gateway's
// fault tests take it through the server in both dialects).
// TestFaultStatusFirst checks that status_first fails only the first calls
// that carry it, on Stream and Complete alike.
func TestFaultStatusFirst(t *testing.T) {
	p := New(Options{})
	ctx := WithFault(context.Background(), Fault{Status: 503, StatusFirst: 2})
	var codes []sluice.Code
	for i := range 4 {
		var err error
		if i%2 == 0 {
			_, err = p.Complete(ctx, textRequest("hi"))
		} else {
			_, err = events(t, ctx, p, textRequest("hi"))
		}
		codes = append(codes, sluice.ErrorCode(err))
	}
	want := []sluice.Code{sluice.CodeUpstreamUnavailable, sluice.CodeUpstreamUnavailable, "", ""}
	if diff := cmp.Diff(want, codes); diff != "" {
		t.Errorf("codes (-want +got):\n%s", diff)
	}
	// Calls without the fault do not use up the count.
	q := New(Options{})
	if _, err := q.Complete(context.Background(), textRequest("hi")); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Complete(WithFault(context.Background(), Fault{Status: 429, StatusFirst: 1}), textRequest("hi")); sluice.ErrorCode(err) != sluice.CodeRateLimited {
		t.Errorf("first faulty call: %v, want rate_limited", err)
	}
}

// TestFaultTail checks that the tail adds its delay to the first token of
// the calls the random draw picks.
func TestFaultTail(t *testing.T) {
	var sl sleeper
	draws := []float64{0.01, 0.5, 0.04}
	var i int
	p := New(Options{Sleep: sl.sleep, Tokens: 1, Rand: func() float64 { i++; return draws[i-1] },
		Fault: Fault{TTFT: 100 * time.Millisecond, TailP: 0.05, Tail: 2 * time.Second}})
	for range draws {
		if _, err := events(t, context.Background(), p, textRequest("hi")); err != nil {
			t.Fatal(err)
		}
	}
	want := []time.Duration{2100 * time.Millisecond, 100 * time.Millisecond, 2100 * time.Millisecond}
	if diff := cmp.Diff(want, sl.got()); diff != "" {
		t.Errorf("sleeps (-want +got):\n%s", diff)
	}
}

func TestFaultErrorAt(t *testing.T) {
	for _, at := range []int{1, 4} {
		p := New(Options{Fault: Fault{ErrorAt: at}})
		evs, err := events(t, context.Background(), p, textRequest("hi"))
		var se *sluice.Error
		var ue *sluice.UpstreamError
		if !errors.As(err, &se) || se.Code != sluice.CodeOverloaded || !errors.As(err, &ue) {
			t.Fatalf("error_at=%d: error %v", at, err)
		}
		content := 0
		for _, ev := range evs {
			if ev.Type == sluice.EventText {
				content++
			}
		}
		if content != at-1 {
			t.Errorf("error_at=%d: %d chunks before the error", at, content)
		}
	}
}

func TestFaultDrop(t *testing.T) {
	for _, after := range []int{1, 3, 24} {
		p := New(Options{Fault: Fault{DropAfter: after}})
		evs, err := events(t, context.Background(), p, textRequest("hi"))
		var se *sluice.Error
		if !errors.As(err, &se) || se.Code != sluice.CodeStreamInterrupted {
			t.Fatalf("drop_after=%d: error %v", after, err)
		}
		content := 0
		for _, ev := range evs {
			if ev.Type == sluice.EventText {
				content++
			}
			if ev.Type == sluice.EventFinish || ev.Type == sluice.EventUsage {
				t.Errorf("drop_after=%d: %s event before the drop", after, ev.Type)
			}
		}
		if content != after {
			t.Errorf("drop_after=%d: %d chunks before the drop", after, content)
		}
		if p.OpenStreams() != 0 {
			t.Errorf("OpenStreams = %d", p.OpenStreams())
		}
	}
	// Beyond the answer's length it has no effect.
	if _, err := events(t, context.Background(), New(Options{Fault: Fault{DropAfter: 25}}), textRequest("hi")); err != nil {
		t.Errorf("drop_after beyond the answer: %v", err)
	}
	// Complete fails too.
	if _, err := New(Options{Fault: Fault{DropAfter: 2}}).Complete(context.Background(), textRequest("hi")); sluice.ErrorCode(err) != sluice.CodeStreamInterrupted {
		t.Errorf("Complete with drop: %v", err)
	}
}

func TestFaultStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := New(Options{Fault: Fault{StallAfter: 3}})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s, err := p.Stream(ctx, textRequest("hi"))
		if err != nil {
			t.Fatal(err)
		}
		var (
			content int
			done    bool
			endErr  error
		)
		go func() {
			for ev, err := range s.All() {
				if err != nil {
					endErr = err
					break
				}
				if ev.Type == sluice.EventText {
					content++
				}
			}
			done = true
		}()
		synctest.Wait() // the reader is blocked in the stall
		if done || content != 3 {
			t.Fatalf("before cancel: done %v after %d chunks", done, content)
		}
		if p.OpenStreams() != 1 {
			t.Errorf("OpenStreams while stalled = %d", p.OpenStreams())
		}
		cancel()
		synctest.Wait()
		if !done || !errors.Is(endErr, context.Canceled) {
			t.Errorf("after cancel: done %v, error %v", done, endErr)
		}
		if p.OpenStreams() != 0 {
			t.Errorf("OpenStreams after cancel = %d", p.OpenStreams())
		}
	})
}

func TestCancelMidStream(t *testing.T) {
	p := New(Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := p.Stream(ctx, textRequest("hi"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	var endErr error
	for ev, err := range s.All() {
		if err != nil {
			endErr = err
			break
		}
		if ev.Type == sluice.EventText {
			n++
			if n == 2 {
				cancel()
			}
		}
	}
	if n != 2 || !errors.Is(endErr, context.Canceled) {
		t.Errorf("after cancel: %d chunks, error %v", n, endErr)
	}
	if p.OpenStreams() != 0 {
		t.Errorf("OpenStreams = %d", p.OpenStreams())
	}
}

func TestOpenStreams(t *testing.T) {
	p := New(Options{})
	ctx := context.Background()
	if p.OpenStreams() != 0 {
		t.Fatalf("new provider has %d open", p.OpenStreams())
	}

	// Break out early.
	s1, err := p.Stream(ctx, textRequest("a"))
	if err != nil {
		t.Fatal(err)
	}
	s2, err := p.Stream(ctx, textRequest("b"))
	if err != nil {
		t.Fatal(err)
	}
	if p.OpenStreams() != 2 {
		t.Errorf("two streams: %d open", p.OpenStreams())
	}
	for range s1.All() {
		break
	}
	if p.OpenStreams() != 1 {
		t.Errorf("after break: %d open", p.OpenStreams())
	}

	// Close without ranging, twice.
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if p.OpenStreams() != 0 {
		t.Errorf("after Close: %d open", p.OpenStreams())
	}

	// Range to the end, then Close.
	s3, err := p.Stream(ctx, textRequest("c"))
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range s3.All() {
		if err != nil {
			t.Fatal(err)
		}
	}
	s3.Close()
	if p.OpenStreams() != 0 {
		t.Errorf("after the end: %d open", p.OpenStreams())
	}

	// Complete releases its stream.
	complete(t, p, textRequest("d"))
	if p.OpenStreams() != 0 {
		t.Errorf("after Complete: %d open", p.OpenStreams())
	}

	// Concurrent streams.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			r := textRequest("hello")
			r.Seed = seed(int64(i))
			if _, err := p.Complete(ctx, r); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if p.OpenStreams() != 0 {
		t.Errorf("after concurrent calls: %d open", p.OpenStreams())
	}
}

func BenchmarkStream100(b *testing.B) {
	p := New(Options{Tokens: 100})
	req := textRequest("Benchmark the stream, please.")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		s, err := p.Stream(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for ev, err := range s.All() {
			if err != nil {
				b.Fatal(err)
			}
			if ev.Type == sluice.EventText {
				n++
			}
		}
		if n != 100 {
			b.Fatalf("%d chunks", n)
		}
	}
}
