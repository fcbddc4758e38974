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
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sluice-gw/sluice"
)

// secret is provider text that must never reach a client-facing message.
const secret = "SECRET-PROVIDER-DETAIL"

// seen is what a fixture server received.
type seen struct {
	mu     sync.Mutex
	path   string
	header http.Header
	body   []byte
}

func (s *seen) get() (string, http.Header, []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.path, s.header, s.body
}

// fixture starts a server whose handler records each request and then runs
// h, and returns a Provider pointed at it.
func fixture(t testing.TB, h http.HandlerFunc) (*Provider, *seen) {
	t.Helper()
	s := &seen{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.path, s.header, s.body = r.URL.Path, r.Header.Clone(), body
		s.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	p := NewProvider(Config{
		Name:    "test-anthropic",
		BaseURL: srv.URL + "/",
		APIKey:  "sk-upstream",
		Headers: map[string]string{"anthropic-beta": "feature-2025-01-01"},
		Client:  srv.Client(),
	})
	return p, s
}

// reply writes a fixed answer.
func reply(status int, contentType, body string, headers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func simpleRequest() *sluice.Request {
	return &sluice.Request{Model: "claude-sonnet-4-5", Messages: userHi()}
}

const completeFixture = `{
  "id": "msg_01Aq9w938a90dw8q",
  "type": "message",
  "role": "assistant",
  "model": "claude-sonnet-4-5-20250929",
  "content": [
    {"type": "thinking", "thinking": "The user wants weather.", "signature": "EqQBCgIYAh=="},
    {"type": "redacted_thinking", "data": "EmwKAhgB"},
    {"type": "text", "text": "I'll check the current weather in San Francisco for you.", "citations": null},
    {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "x"}},
    {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather", "input": {"location": "San Francisco, CA", "unit": "celsius"}}
  ],
  "stop_reason": "tool_use",
  "stop_sequence": null,
  "stop_details": null,
  "usage": {"input_tokens": 472, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 2000, "output_tokens": 89, "service_tier": "standard"}
}`

func TestProviderComplete(t *testing.T) {
	p, s := fixture(t, reply(200, "application/json", completeFixture))
	resp, err := p.Complete(context.Background(), simpleRequest())
	if err != nil {
		t.Fatal(err)
	}
	want := &sluice.Response{
		ID:    "msg_01Aq9w938a90dw8q",
		Model: "claude-sonnet-4-5-20250929",
		Message: sluice.Message{Role: sluice.RoleAssistant, Parts: []sluice.Part{
			{Type: sluice.PartThinking, Text: "The user wants weather.", Signature: "EqQBCgIYAh=="},
			{Type: sluice.PartThinking, Redacted: true, Data: "EmwKAhgB"},
			sluice.TextPart("I'll check the current weather in San Francisco for you."),
			{Type: sluice.PartToolCall, ToolCallID: "toolu_01A09q90qw90lq917835lq9", ToolName: "get_weather", Arguments: `{"location":"San Francisco, CA","unit":"celsius"}`},
		}},
		FinishReason: sluice.FinishToolCalls,
		Usage:        sluice.Usage{InputTokens: 2572, OutputTokens: 89, CacheReadTokens: 2000, CacheWriteTokens: 100},
	}
	if diff := cmp.Diff(want, resp); diff != "" {
		t.Errorf("response (-want +got):\n%s", diff)
	}

	path, h, body := s.get()
	if path != "/v1/messages" {
		t.Errorf("path = %q", path)
	}
	for k, v := range map[string]string{
		"X-Api-Key":         "sk-upstream",
		"Anthropic-Version": "2023-06-01",
		"Content-Type":      "application/json",
		"Anthropic-Beta":    "feature-2025-01-01",
	} {
		if got := h.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	wantBody := `{"model":"claude-sonnet-4-5","max_tokens":4096,"messages":[{"role":"user","content":"hi"}]}`
	if string(body) != wantBody {
		t.Errorf("body = %s\nwant   %s", body, wantBody)
	}

	// The usage encodes back to the wire's own counts.
	b, err := MarshalResponse(resp)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"usage":{"input_tokens":472,"cache_creation_input_tokens":100,"cache_read_input_tokens":2000,"output_tokens":89}`) {
		t.Errorf("usage does not round-trip: %s", b)
	}
}

func TestProviderCompleteStopSequence(t *testing.T) {
	p, _ := fixture(t, reply(200, "application/json",
		`{"id":"m","type":"message","role":"assistant","model":"c","content":[{"type":"text","text":"1 2"}],"stop_reason":"stop_sequence","stop_sequence":"3","usage":{"input_tokens":3,"output_tokens":2}}`))
	resp, err := p.Complete(context.Background(), simpleRequest())
	if err != nil {
		t.Fatal(err)
	}
	if resp.FinishReason != sluice.FinishStop || resp.StopSequence != "3" {
		t.Errorf("finish = %q %q, want stop with sequence 3", resp.FinishReason, resp.StopSequence)
	}
}

func TestProviderErrors(t *testing.T) {
	errBody := func(typ string) string {
		return `{"type":"error","error":{"type":"` + typ + `","message":"` + secret + `"},"request_id":"req_1"}`
	}
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		code       sluice.Code
		status     int
		typ        string
		retryAfter time.Duration
	}{
		{"429 with retry-after", reply(429, "application/json", errBody("rate_limit_error"), "Retry-After", "7"), sluice.CodeRateLimited, 429, "rate_limit_error", 7 * time.Second},
		{"529 overloaded", reply(529, "application/json", errBody("overloaded_error")), sluice.CodeOverloaded, 529, "overloaded_error", 0},
		{"500 api error", reply(500, "application/json", errBody("api_error")), sluice.CodeUpstreamError, 500, "api_error", 0},
		{"400 invalid request", reply(400, "application/json", errBody("invalid_request_error")), sluice.CodeInvalidRequest, 400, "invalid_request_error", 0},
		{"401 upstream key", reply(401, "application/json", errBody("authentication_error")), sluice.CodeUpstreamError, 401, "authentication_error", 0},
		{"413", reply(413, "application/json", errBody("request_too_large")), sluice.CodeRequestTooLarge, 413, "request_too_large", 0},
		{"504 timeout", reply(504, "application/json", errBody("timeout_error")), sluice.CodeUpstreamTimeout, 504, "timeout_error", 0},
		{"502 html", reply(502, "text/html", "<html>"+secret+"</html>"), sluice.CodeUpstreamUnavailable, 502, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := fixture(t, tt.handler)
			check := func(t *testing.T, err error) {
				t.Helper()
				var se *sluice.Error
				if !errors.As(err, &se) {
					t.Fatalf("err = %T %v, want *sluice.Error", err, err)
				}
				if se.Code != tt.code {
					t.Errorf("code = %s, want %s", se.Code, tt.code)
				}
				if se.RetryAfter != tt.retryAfter {
					t.Errorf("RetryAfter = %v, want %v", se.RetryAfter, tt.retryAfter)
				}
				if strings.Contains(err.Error(), secret) || strings.Contains(se.Message, secret) {
					t.Errorf("provider text leaked: %q", err.Error())
				}
				var ue *sluice.UpstreamError
				if !errors.As(err, &ue) {
					t.Fatalf("no *sluice.UpstreamError cause in %v", err)
				}
				if ue.Provider != "test-anthropic" || ue.StatusCode != tt.status || ue.Type != tt.typ || !strings.Contains(ue.Message, secret) {
					t.Errorf("cause = %+v", ue)
				}
			}
			t.Run("complete", func(t *testing.T) {
				_, err := p.Complete(context.Background(), simpleRequest())
				check(t, err)
			})
			t.Run("stream", func(t *testing.T) {
				s, err := p.Stream(context.Background(), simpleRequest())
				if s != nil {
					s.Close()
					t.Fatal("Stream returned a stream for an error answer")
				}
				check(t, err)
			})
		})
	}
}

func TestRetryAfterResetHeaders(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		headers map[string]string
		want    time.Duration
	}{
		{"none", nil, 0},
		{"retry-after wins", map[string]string{"Retry-After": "3", "anthropic-ratelimit-requests-remaining": "0", "anthropic-ratelimit-requests-reset": "2025-01-01T12:00:30Z"}, 3 * time.Second},
		{"exhausted requests", map[string]string{"anthropic-ratelimit-requests-remaining": "0", "anthropic-ratelimit-requests-reset": "2025-01-01T12:00:30Z"}, 30 * time.Second},
		{"latest exhausted limit", map[string]string{
			"anthropic-ratelimit-requests-remaining":      "0",
			"anthropic-ratelimit-requests-reset":          "2025-01-01T12:00:10Z",
			"anthropic-ratelimit-input-tokens-remaining":  "0",
			"anthropic-ratelimit-input-tokens-reset":      "2025-01-01T12:00:20Z",
			"anthropic-ratelimit-output-tokens-remaining": "500",
			"anthropic-ratelimit-output-tokens-reset":     "2025-01-01T12:01:00Z",
		}, 20 * time.Second},
		{"not exhausted", map[string]string{"anthropic-ratelimit-tokens-remaining": "10", "anthropic-ratelimit-tokens-reset": "2025-01-01T12:00:30Z"}, 0},
		{"past reset", map[string]string{"anthropic-ratelimit-tokens-remaining": "0", "anthropic-ratelimit-tokens-reset": "2025-01-01T11:00:00Z"}, 0},
		{"bad reset", map[string]string{"anthropic-ratelimit-tokens-remaining": "0", "anthropic-ratelimit-tokens-reset": "soon"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.headers {
				h.Set(k, v)
			}
			if got := retryAfter(h, now); got != tt.want {
				t.Errorf("retryAfter = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestProviderTransportErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	p := NewProvider(Config{BaseURL: url, Client: &http.Client{Transport: &http.Transport{}}})

	t.Run("refused", func(t *testing.T) {
		_, err := p.Complete(context.Background(), simpleRequest())
		if c := sluice.ErrorCode(err); c != sluice.CodeUpstreamUnavailable {
			t.Errorf("code = %s (%v), want upstream_unavailable", c, err)
		}
		if se := sluice.AsError(err); strings.Contains(se.Message, url) {
			t.Errorf("message names the upstream: %q", se.Message)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
		defer cancel()
		_, err := p.Stream(ctx, simpleRequest())
		if c := sluice.ErrorCode(err); c != sluice.CodeUpstreamTimeout {
			t.Errorf("code = %s (%v), want upstream_timeout", c, err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := p.Complete(ctx, simpleRequest())
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want one wrapping context.Canceled", err)
		}
	})
}

// upstreamStream is a stream as the Messages API sends it, with a ping, an
// unknown event type and unknown fields.
const upstreamStream = `event: message_start
data: {"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","stop_sequence":null,"usage":{"input_tokens":472,"cache_creation_input_tokens":10,"cache_read_input_tokens":20,"output_tokens":2,"service_tier":"standard"},"content":[],"stop_reason":null}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"I need"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":" the weather."}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3h"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"redacted_thinking","data":"EmwKAhgBEgy3va3pzix/LafPsn4a"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: content_block_start
data: {"type":"content_block_start","index":2,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"text_delta","text":"Okay, let's check"}}

event: future_event
data: {"type":"future_event","whatever":[1,2,3]}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"citations_delta","citation":{"type":"char_location"}}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"text_delta","text":" the weather."}}

event: content_block_stop
data: {"type":"content_block_stop","index":2}

event: content_block_start
data: {"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{\"location\":"}}

event: content_block_delta
data: {"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":" \"San Francisco, CA\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":3}

event: content_block_start
data: {"type":"content_block_start","index":4,"content_block":{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":4,"delta":{"type":"input_json_delta","partial_json":"{\"query\":\"x\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":4}

event: content_block_start
data: {"type":"content_block_start","index":5,"content_block":{"type":"tool_use","id":"toolu_02","name":"get_time","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":5,"delta":{"type":"input_json_delta","partial_json":"{}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":5}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}

event: message_stop
data: {"type":"message_stop"}

`

var upstreamEvents = []sluice.Event{
	{Type: sluice.EventStart, ID: "msg_014p7gG3wDgGV9EUtLvnow3U", Model: "claude-sonnet-4-5-20250929", Usage: sluice.Usage{InputTokens: 502, CacheWriteTokens: 10, CacheReadTokens: 20}},
	{Type: sluice.EventThinking, Text: "I need"},
	{Type: sluice.EventThinking, Text: " the weather."},
	{Type: sluice.EventThinking, Signature: "EqQBCgIYAhIM1gbcDa9GJwZA2b3h"},
	{Type: sluice.EventThinking, Redacted: true, Data: "EmwKAhgBEgy3va3pzix/LafPsn4a"},
	{Type: sluice.EventText, Text: "Okay, let's check"},
	{Type: sluice.EventText, Text: " the weather."},
	{Type: sluice.EventToolCall, Index: 0, ToolCallID: "toolu_01T1x1fJ34qAmk2tNTrN7Up6", ToolName: "get_weather"},
	{Type: sluice.EventToolCall, Index: 0, Arguments: `{"location":`},
	{Type: sluice.EventToolCall, Index: 0, Arguments: ` "San Francisco, CA"}`},
	{Type: sluice.EventToolCall, Index: 1, ToolCallID: "toolu_02", ToolName: "get_time"},
	{Type: sluice.EventToolCall, Index: 1, Arguments: `{}`},
	{Type: sluice.EventUsage, Usage: sluice.Usage{InputTokens: 502, OutputTokens: 89, CacheWriteTokens: 10, CacheReadTokens: 20}},
	{Type: sluice.EventFinish, FinishReason: sluice.FinishToolCalls},
}

// collect ranges over s and returns its events and the error it ended with.
func collect(s sluice.Stream) ([]sluice.Event, error) {
	var evs []sluice.Event
	for ev, err := range s.All() {
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

func TestProviderStream(t *testing.T) {
	p, s := fixture(t, reply(200, "text/event-stream", upstreamStream))
	req := simpleRequest()
	req.MaxOutputTokens = 1000
	st, err := p.Stream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := collect(st)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(upstreamEvents, evs); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	_, h, body := s.get()
	if h.Get("Accept") != "text/event-stream" {
		t.Errorf("accept = %q", h.Get("Accept"))
	}
	var w struct {
		Stream    bool `json:"stream"`
		MaxTokens int  `json:"max_tokens"`
	}
	if err := json.Unmarshal(body, &w); err != nil || !w.Stream || w.MaxTokens != 1000 {
		t.Errorf("body = %s, want stream true and max_tokens 1000", body)
	}
}

func TestProviderStreamFailures(t *testing.T) {
	head := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n" +
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n" +
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n"
	wantHead := []sluice.Event{
		{Type: sluice.EventStart, ID: "m", Model: "c", Usage: sluice.Usage{InputTokens: 5}},
		{Type: sluice.EventText, Text: "Hel"},
	}
	errEvent := func(typ string) string {
		return "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"" + typ + "\",\"message\":\"" + secret + "\"}}\n\n"
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		code    sluice.Code
		typ     string // the UpstreamError type, when the cause is one
	}{
		{"overloaded error event", reply(200, "text/event-stream", head+errEvent("overloaded_error")), sluice.CodeOverloaded, "overloaded_error"},
		{"rate limit error event", reply(200, "text/event-stream", head+errEvent("rate_limit_error")), sluice.CodeRateLimited, "rate_limit_error"},
		{"api error event", reply(200, "text/event-stream", head+errEvent("api_error")), sluice.CodeUpstreamError, "api_error"},
		{"unknown error event", reply(200, "text/event-stream", head+errEvent("brand_new_error")), sluice.CodeUpstreamError, "brand_new_error"},
		{"ends before message_stop", reply(200, "text/event-stream", head), sluice.CodeStreamInterrupted, ""},
		{"ends mid event", reply(200, "text/event-stream", head+"event: content_block_delta\ndata: {\"type\""), sluice.CodeStreamInterrupted, ""},
		{"connection cut", func(w http.ResponseWriter, r *http.Request) {
			conn, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 100000\r\n\r\n" + head)
			buf.Flush()
		}, sluice.CodeStreamInterrupted, ""},
		{"bad JSON", reply(200, "text/event-stream", head+"event: content_block_delta\ndata: {nope}\n\n"), sluice.CodeUpstreamError, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := fixture(t, tt.handler)
			st, err := p.Stream(context.Background(), simpleRequest())
			if err != nil {
				t.Fatal(err)
			}
			evs, err := collect(st)
			if diff := cmp.Diff(wantHead, evs); diff != "" {
				t.Errorf("events before the failure (-want +got):\n%s", diff)
			}
			var se *sluice.Error
			if !errors.As(err, &se) {
				t.Fatalf("err = %T %v, want *sluice.Error", err, err)
			}
			if se.Code != tt.code {
				t.Errorf("code = %s, want %s (%v)", se.Code, tt.code, se.LogValue())
			}
			if tt.code == sluice.CodeStreamInterrupted && se.Message != sluice.CodeStreamInterrupted.DefaultMessage() {
				t.Errorf("message = %q", se.Message)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("provider text leaked: %q", err.Error())
			}
			if tt.typ != "" {
				var ue *sluice.UpstreamError
				if !errors.As(err, &ue) || ue.Type != tt.typ || ue.Message != secret || ue.StatusCode != 0 {
					t.Errorf("cause = %+v, want an UpstreamError of type %s", ue, tt.typ)
				}
			}
		})
	}
}

// TestProviderStreamCancel cancels the context mid-stream: the stream ends
// with an error wrapping context.Canceled and the upstream sees its request
// end.
func TestProviderStreamCancel(t *testing.T) {
	serverDone := make(chan struct{})
	p, _ := fixture(t, func(w http.ResponseWriter, r *http.Request) {
		defer close(serverDone)
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":5}}}\n\n")
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := p.Stream(ctx, simpleRequest())
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var streamErr error
	for ev, err := range st.All() {
		if err != nil {
			streamErr = err
			break
		}
		n++
		if ev.Type == sluice.EventStart {
			cancel()
		}
	}
	if n != 1 {
		t.Errorf("got %d events, want 1", n)
	}
	if !errors.Is(streamErr, context.Canceled) {
		t.Errorf("stream error = %v, want one wrapping context.Canceled", streamErr)
	}
	<-serverDone
}

// TestProviderStreamBreak breaks out of the loop early: the body is released
// and the upstream sees its request end.
func TestProviderStreamBreak(t *testing.T) {
	serverDone := make(chan struct{})
	p, _ := fixture(t, func(w http.ResponseWriter, r *http.Request) {
		defer close(serverDone)
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\"}}\n\n")
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	})
	st, err := p.Stream(context.Background(), simpleRequest())
	if err != nil {
		t.Fatal(err)
	}
	for range st.All() {
		break
	}
	<-serverDone
	if err := st.Close(); err != nil {
		t.Errorf("Close after release = %v", err)
	}
}

func TestProviderErrorObjectIn2xx(t *testing.T) {
	body := `{"type":"error","error":{"type":"overloaded_error","message":"` + secret + `"}}`
	p, _ := fixture(t, reply(200, "application/json", body))
	_, err := p.Complete(context.Background(), simpleRequest())
	if c := sluice.ErrorCode(err); c != sluice.CodeOverloaded {
		t.Errorf("Complete: code = %s (%v), want overloaded", c, err)
	}
	s, err := p.Stream(context.Background(), simpleRequest())
	if s != nil {
		s.Close()
	}
	if c := sluice.ErrorCode(err); c != sluice.CodeOverloaded {
		t.Errorf("Stream: code = %s (%v), want overloaded", c, err)
	}
	if err != nil && strings.Contains(err.Error(), secret) {
		t.Errorf("provider text leaked: %q", err.Error())
	}

	p, _ = fixture(t, reply(200, "application/json", completeFixture))
	if _, err := p.Stream(context.Background(), simpleRequest()); sluice.ErrorCode(err) != sluice.CodeUpstreamError {
		t.Errorf("Stream answered with a message: err = %v, want upstream_error", err)
	}
}

func TestTypeError(t *testing.T) {
	tests := map[string]sluice.Code{
		"invalid_request_error": sluice.CodeInvalidRequest,
		"authentication_error":  sluice.CodeUpstreamError,
		"billing_error":         sluice.CodeUpstreamError,
		"permission_error":      sluice.CodeUpstreamError,
		"not_found_error":       sluice.CodeUpstreamError,
		"request_too_large":     sluice.CodeRequestTooLarge,
		"rate_limit_error":      sluice.CodeRateLimited,
		"timeout_error":         sluice.CodeUpstreamTimeout,
		"api_error":             sluice.CodeUpstreamError,
		"overloaded_error":      sluice.CodeOverloaded,
		"":                      sluice.CodeUpstreamError,
	}
	for typ, want := range tests {
		err := typeError("p", 0, &wireErrorBody{Type: typ, Message: secret})
		if err.Code != want {
			t.Errorf("%q: code = %s, want %s", typ, err.Code, want)
		}
		if strings.Contains(err.Message, secret) {
			t.Errorf("%q: provider text in message", typ)
		}
	}
}

func TestFinishReason(t *testing.T) {
	tests := map[string]sluice.FinishReason{
		"end_turn": sluice.FinishStop, "stop_sequence": sluice.FinishStop, "pause_turn": sluice.FinishStop, "": sluice.FinishStop,
		"max_tokens": sluice.FinishLength, "model_context_window_exceeded": sluice.FinishLength,
		"tool_use": sluice.FinishToolCalls, "refusal": sluice.FinishContentFilter,
	}
	for in, want := range tests {
		if got := finishReason(in); got != want {
			t.Errorf("finishReason(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestProviderCompleteCutBody(t *testing.T) {
	p, _ := fixture(t, func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"id\":\"m\",")
		buf.Flush()
	})
	_, err := p.Complete(context.Background(), simpleRequest())
	if c := sluice.ErrorCode(err); c != sluice.CodeUpstreamUnavailable {
		t.Errorf("code = %s (%v), want upstream_unavailable", c, err)
	}
}

func TestProviderStreamDeadline(t *testing.T) {
	serverDone := make(chan struct{})
	p, _ := fixture(t, func(w http.ResponseWriter, r *http.Request) {
		defer close(serverDone)
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\"}}\n\n")
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	st, err := p.Stream(ctx, simpleRequest())
	if err != nil {
		t.Fatal(err)
	}
	evs, err := collect(st)
	if len(evs) != 1 {
		t.Errorf("events = %+v", evs)
	}
	if c := sluice.ErrorCode(err); c != sluice.CodeUpstreamTimeout || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want upstream_timeout wrapping the deadline", err)
	}
	<-serverDone
}
