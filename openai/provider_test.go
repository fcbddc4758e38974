package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sluice-gw/sluice"
)

// captured is what a test upstream saw of a request.
type captured struct {
	method, path string
	header       http.Header
	body         []byte
}

// upstream starts a test server that records each request on the returned
// channel and answers with h.
func upstream(t testing.TB, h http.HandlerFunc) (*httptest.Server, <-chan captured) {
	t.Helper()
	reqs := make(chan captured, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		select {
		case reqs <- captured{r.Method, r.URL.Path, r.Header.Clone(), body}:
		default:
		}
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, reqs
}

// testProvider returns a Provider for srv with its own client, whose idle
// connections are closed when the test ends.
func testProvider(t testing.TB, srv *httptest.Server, mod func(*Config)) *Provider {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	cfg := Config{Name: "test-openai", BaseURL: srv.URL + "/v1/", APIKey: "sk-test", Client: client, Headers: map[string]string{"X-Extra": "1"}}
	if mod != nil {
		mod(&cfg)
	}
	return NewProvider(cfg)
}

// serveFile answers with a recorded stream from testdata.
func serveFile(t testing.TB, name string) http.HandlerFunc {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.Write(data)
	}
}

func simpleRequest() *sluice.Request {
	return &sluice.Request{Model: "gpt-4o", Messages: []sluice.Message{{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart("Hi")}}}}
}

// collectEvents ranges over a stream and returns its events and error.
func collectEvents(t testing.TB, s sluice.Stream) ([]sluice.Event, error) {
	t.Helper()
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

// checkClientSafe checks err is a *sluice.Error with code want whose text
// holds none of the upstream's words.
func checkClientSafe(t testing.TB, err error, want sluice.Code, secret string) *sluice.Error {
	t.Helper()
	var se *sluice.Error
	if !errors.As(err, &se) {
		t.Fatalf("error %T %v is not a *sluice.Error", err, err)
	}
	if se.Code != want {
		t.Errorf("code = %s, want %s (cause: %v)", se.Code, want, se.Err)
	}
	if secret != "" && strings.Contains(err.Error(), secret) {
		t.Errorf("err.Error() = %q leaks the provider's message", err.Error())
	}
	if strings.Contains(err.Error(), "127.0.0.1") || strings.Contains(err.Error(), "sk-test") {
		t.Errorf("err.Error() = %q leaks a URL or key", err.Error())
	}
	return se
}

func TestProviderStreamFixtures(t *testing.T) {
	tests := []struct {
		fixture  string
		abort    bool // cut the connection after the fixture
		want     []sluice.Event
		wantCode sluice.Code // "" when the stream ends cleanly
		secret   string
	}{
		{
			fixture: "upstream_text.sse",
			want: []sluice.Event{
				{Type: sluice.EventStart, ID: "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", Model: "gpt-4o-2024-08-06"},
				{Type: sluice.EventText, Text: "Hello"},
				{Type: sluice.EventText, Text: "! How can I help?"},
				{Type: sluice.EventUsage, Usage: sluice.Usage{InputTokens: 19, OutputTokens: 10, CacheReadTokens: 3}},
				{Type: sluice.EventFinish, FinishReason: sluice.FinishStop},
			},
		},
		{
			// Comments, an empty-choices first chunk with no id, reasoning in
			// both spellings, tool indexes from 1, empty ids on continuation
			// deltas, an unknown field, "[DONE]  ".
			fixture: "upstream_tools.sse",
			want: []sluice.Event{
				{Type: sluice.EventStart, ID: "chatcmpl-tools1", Model: "qwen3-32b"},
				{Type: sluice.EventThinking, Text: "The user wants two cities."},
				{Type: sluice.EventThinking, Text: "Call both."},
				{Type: sluice.EventToolCall, Index: 0, ToolCallID: "call_paris", ToolName: "get_weather"},
				{Type: sluice.EventToolCall, Index: 0, Arguments: `{"city":`},
				{Type: sluice.EventToolCall, Index: 0, Arguments: ` "Paris"}`},
				{Type: sluice.EventToolCall, Index: 1, ToolCallID: "call_rome", ToolName: "get_weather", Arguments: `{"city": "Rome"}`},
				{Type: sluice.EventUsage, Usage: sluice.Usage{InputTokens: 120, OutputTokens: 48, CacheReadTokens: 64, ReasoningTokens: 20}},
				{Type: sluice.EventFinish, FinishReason: sluice.FinishToolCalls},
			},
		},
		{
			// CRLF line ends, usage in the finish chunk (DeepSeek's cache
			// field), no [DONE] before the end.
			fixture: "upstream_no_done.sse",
			want: []sluice.Event{
				{Type: sluice.EventStart, ID: "chatcmpl-crlf", Model: "deepseek-reasoner"},
				{Type: sluice.EventThinking, Text: "Think."},
				{Type: sluice.EventText, Text: "Answer."},
				{Type: sluice.EventUsage, Usage: sluice.Usage{InputTokens: 10, OutputTokens: 30, CacheReadTokens: 8, ReasoningTokens: 25}},
				{Type: sluice.EventFinish, FinishReason: sluice.FinishLength},
			},
		},
		{
			fixture: "upstream_refusal.sse",
			want: []sluice.Event{
				{Type: sluice.EventStart, ID: "chatcmpl-ref", Model: "gpt-4o"},
				{Type: sluice.EventText, Text: "I'm sorry, I can't help with that."},
				{Type: sluice.EventFinish, FinishReason: sluice.FinishContentFilter},
			},
		},
		{
			fixture: "upstream_error_chunk.sse",
			want: []sluice.Event{
				{Type: sluice.EventStart, ID: "chatcmpl-err", Model: "gpt-4o"},
				{Type: sluice.EventText, Text: "Partial"},
			},
			wantCode: sluice.CodeUpstreamError,
			secret:   "Sorry about that",
		},
		{
			fixture: "upstream_rate_limit_chunk.sse",
			want: []sluice.Event{
				{Type: sluice.EventStart, ID: "chatcmpl-rl", Model: "llama"},
			},
			wantCode: sluice.CodeRateLimited,
			secret:   "Too many requests",
		},
		{
			fixture: "upstream_eof_nofinish.sse",
			want: []sluice.Event{
				{Type: sluice.EventStart, ID: "chatcmpl-eof", Model: "gpt-4o"},
				{Type: sluice.EventText, Text: "Once upon"},
			},
			wantCode: sluice.CodeStreamInterrupted,
		},
		{
			fixture: "upstream_cut.sse",
			abort:   true,
			want: []sluice.Event{
				{Type: sluice.EventStart, ID: "chatcmpl-cut", Model: "gpt-4o"},
				{Type: sluice.EventText, Text: "Once upon"},
			},
			wantCode: sluice.CodeStreamInterrupted,
		},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			h := serveFile(t, tt.fixture)
			if tt.abort {
				inner := h
				h = func(w http.ResponseWriter, r *http.Request) {
					inner(w, r)
					http.NewResponseController(w).Flush()
					panic(http.ErrAbortHandler)
				}
			}
			srv, _ := upstream(t, h)
			p := testProvider(t, srv, nil)
			s, err := p.Stream(context.Background(), simpleRequest())
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			got, err := collectEvents(t, s)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("stream error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("stream ended without error, want %s", tt.wantCode)
			}
			se := checkClientSafe(t, err, tt.wantCode, tt.secret)
			if tt.secret != "" {
				var ue *sluice.UpstreamError
				if !errors.As(se, &ue) || !strings.Contains(ue.Message, tt.secret) || ue.Provider != "test-openai" {
					t.Errorf("cause %v does not keep the upstream's error", se.Err)
				}
			}
			if tt.wantCode == sluice.CodeStreamInterrupted && se.Message != sluice.CodeStreamInterrupted.DefaultMessage() {
				t.Errorf("message = %q", se.Message)
			}
		})
	}
}

func TestProviderRequestHeaders(t *testing.T) {
	tests := []struct {
		name       string
		stream     bool
		mod        func(*Config)
		wantAuth   string
		wantAccept string
	}{
		{"complete", false, nil, "Bearer sk-test", "application/json"},
		{"stream", true, nil, "Bearer sk-test", "text/event-stream"},
		{"no key", false, func(c *Config) { c.APIKey = "" }, "", "application/json"},
		{"header overrides", false, func(c *Config) { c.Headers = map[string]string{"Authorization": "Custom x"} }, "Custom x", "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, `{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}`)
			}
			if tt.stream {
				h = serveFile(t, "upstream_text.sse")
			}
			srv, reqs := upstream(t, h)
			p := testProvider(t, srv, tt.mod)
			if tt.stream {
				s, err := p.Stream(context.Background(), simpleRequest())
				if err != nil {
					t.Fatal(err)
				}
				if _, err := collectEvents(t, s); err != nil {
					t.Fatal(err)
				}
			} else if _, err := p.Complete(context.Background(), simpleRequest()); err != nil {
				t.Fatal(err)
			}
			r := <-reqs
			if r.method != http.MethodPost || r.path != "/v1/chat/completions" {
				t.Errorf("request %s %s, want POST /v1/chat/completions", r.method, r.path)
			}
			if got := r.header.Get("Authorization"); got != tt.wantAuth {
				t.Errorf("Authorization = %q, want %q", got, tt.wantAuth)
			}
			if got := r.header.Get("Accept"); got != tt.wantAccept {
				t.Errorf("Accept = %q, want %q", got, tt.wantAccept)
			}
			if got := r.header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q", got)
			}
			var body map[string]any
			if err := json.Unmarshal(r.body, &body); err != nil {
				t.Fatalf("body %s: %v", r.body, err)
			}
			if tt.stream {
				if body["stream"] != true || !cmp.Equal(body["stream_options"], map[string]any{"include_usage": true}) {
					t.Errorf("stream body %s lacks stream and include_usage", r.body)
				}
			} else if _, ok := body["stream"]; ok {
				t.Errorf("non-stream body %s has stream", r.body)
			}
		})
	}
}

func TestProviderStatusErrors(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		header    map[string]string
		body      string
		wantCode  sluice.Code
		wantRetry time.Duration
		wantType  string
		secret    string
	}{
		{
			name: "429 with Retry-After", status: 429, header: map[string]string{"Retry-After": "7"},
			body:     `{"error":{"message":"Rate limit reached for gpt-4o in organization org-abc on requests per min (RPM): Limit 500","type":"requests","param":null,"code":"rate_limit_exceeded"}}`,
			wantCode: sluice.CodeRateLimited, wantRetry: 7 * time.Second, wantType: "requests", secret: "org-abc",
		},
		{
			name: "429 with reset headers", status: 429,
			header:   map[string]string{"X-Ratelimit-Remaining-Requests": "12", "X-Ratelimit-Reset-Requests": "1s", "X-Ratelimit-Remaining-Tokens": "0", "X-Ratelimit-Reset-Tokens": "6m0s"},
			body:     `{"error":{"message":"Rate limit reached for tokens per min","type":"tokens","param":null,"code":"rate_limit_exceeded"}}`,
			wantCode: sluice.CodeRateLimited, wantRetry: 6 * time.Minute, wantType: "tokens", secret: "tokens per min",
		},
		{
			name: "500", status: 500,
			body:     `{"error":{"message":"The server had an error processing your request.","type":"server_error","param":null,"code":null}}`,
			wantCode: sluice.CodeUpstreamError, wantType: "server_error", secret: "processing your request",
		},
		{
			name: "503", status: 503, body: `{"error":{"message":"The engine is currently overloaded, please try again later","type":"server_error"}}`,
			wantCode: sluice.CodeUpstreamUnavailable, wantType: "server_error", secret: "overloaded",
		},
		{
			name: "400 context length", status: 400,
			body:     `{"error":{"message":"This model's maximum context length is 128000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`,
			wantCode: sluice.CodePromptTooLong, wantType: "invalid_request_error", secret: "128000",
		},
		{
			name: "400 vLLM shape", status: 400, body: `{"object":"error","message":"max_tokens must be at least 1, got -3.","type":"BadRequestError","param":null,"code":400}`,
			wantCode: sluice.CodeInvalidRequest, wantType: "BadRequestError", secret: "got -3",
		},
		{
			name: "401 is the gateway's own key", status: 401, body: `{"error":{"message":"Incorrect API key provided: sk-test***","type":"invalid_request_error","code":"invalid_api_key"}}`,
			wantCode: sluice.CodeUpstreamError, wantType: "invalid_request_error", secret: "Incorrect API key",
		},
		{
			name: "404 Ollama shape", status: 404, body: `{"error":"model \"llama9\" not found, try pulling it first"}`,
			wantCode: sluice.CodeUpstreamError, secret: "llama9",
		},
		{
			name: "502 plain text", status: 502, body: `<html>Bad Gateway from nginx</html>`,
			wantCode: sluice.CodeUpstreamUnavailable, secret: "nginx",
		},
		{
			name: "422 FastAPI detail", status: 422, body: `{"detail":"Field required: messages"}`,
			wantCode: sluice.CodeInvalidRequest, secret: "Field required",
		},
	}
	for _, tt := range tests {
		for _, stream := range []bool{false, true} {
			name := tt.name + "/complete"
			if stream {
				name = tt.name + "/stream"
			}
			t.Run(name, func(t *testing.T) {
				srv, _ := upstream(t, func(w http.ResponseWriter, r *http.Request) {
					for k, v := range tt.header {
						w.Header().Set(k, v)
					}
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(tt.status)
					io.WriteString(w, tt.body)
				})
				p := testProvider(t, srv, nil)
				var err error
				if stream {
					var s sluice.Stream
					s, err = p.Stream(context.Background(), simpleRequest())
					if s != nil {
						s.Close()
						t.Fatal("Stream returned a stream for an error answer")
					}
				} else {
					_, err = p.Complete(context.Background(), simpleRequest())
				}
				se := checkClientSafe(t, err, tt.wantCode, tt.secret)
				if se.RetryAfter != tt.wantRetry {
					t.Errorf("RetryAfter = %v, want %v", se.RetryAfter, tt.wantRetry)
				}
				var ue *sluice.UpstreamError
				if !errors.As(err, &ue) {
					t.Fatalf("no UpstreamError in %v", err)
				}
				if ue.StatusCode != tt.status || ue.Provider != "test-openai" || ue.Type != tt.wantType || !strings.Contains(ue.Message, tt.secret) {
					t.Errorf("UpstreamError = %+v", ue)
				}
			})
		}
	}
}

func TestProviderTransportErrors(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		p := testProvider(t, srv, nil)
		_, err := p.Complete(context.Background(), simpleRequest())
		checkClientSafe(t, err, sluice.CodeUpstreamUnavailable, "")
		_, err = p.Stream(context.Background(), simpleRequest())
		checkClientSafe(t, err, sluice.CodeUpstreamUnavailable, "")
	})
	t.Run("deadline", func(t *testing.T) {
		srv, _ := upstream(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		p := testProvider(t, srv, nil)
		ctx, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
		defer cancel()
		_, err := p.Complete(ctx, simpleRequest())
		checkClientSafe(t, err, sluice.CodeUpstreamTimeout, "")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		srv, _ := upstream(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		p := testProvider(t, srv, nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := p.Complete(ctx, simpleRequest())
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Complete error %v does not wrap context.Canceled", err)
		}
		_, err = p.Stream(ctx, simpleRequest())
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Stream error %v does not wrap context.Canceled", err)
		}
	})
	t.Run("cancelled while waiting for the answer", func(t *testing.T) {
		arrived := make(chan struct{})
		srv, _ := upstream(t, func(w http.ResponseWriter, r *http.Request) {
			close(arrived)
			<-r.Context().Done()
		})
		p := testProvider(t, srv, nil)
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-arrived
			cancel()
		}()
		_, err := p.Complete(ctx, simpleRequest())
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Complete error %v does not wrap context.Canceled", err)
		}
	})
}

// TestProviderStreamCancel cancels the context in the middle of a stream: the
// stream ends with an error wrapping context.Canceled and the upstream sees
// its request end.
func TestProviderStreamCancel(t *testing.T) {
	serverSawDone := make(chan struct{})
	srv, _ := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, `data: {"id":"c1","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}`+"\n\n")
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
		close(serverSawDone)
	})
	p := testProvider(t, srv, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := p.Stream(ctx, simpleRequest())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var events int
	var streamErr error
	for ev, err := range s.All() {
		if err != nil {
			streamErr = err
			break
		}
		events++
		if ev.Type == sluice.EventText {
			cancel()
		}
	}
	if events != 2 {
		t.Errorf("got %d events before the cancellation, want 2", events)
	}
	if !errors.Is(streamErr, context.Canceled) {
		t.Errorf("stream error %v does not wrap context.Canceled", streamErr)
	}
	<-serverSawDone
}

// TestProviderStreamBreak stops ranging early: release closes the body and
// the upstream sees its request end.
func TestProviderStreamBreak(t *testing.T) {
	serverSawDone := make(chan struct{})
	srv, _ := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, `data: {"id":"c1","model":"m","choices":[{"index":0,"delta":{"content":"Hel"}}]}`+"\n\n")
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
		close(serverSawDone)
	})
	p := testProvider(t, srv, nil)
	s, err := p.Stream(context.Background(), simpleRequest())
	if err != nil {
		t.Fatal(err)
	}
	for ev, err := range s.All() {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type == sluice.EventText {
			break
		}
	}
	<-serverSawDone
	if err := s.Close(); err != nil {
		t.Errorf("Close after release: %v", err)
	}
}

func TestProviderComplete(t *testing.T) {
	tests := []struct {
		name string
		body string
		want *sluice.Response
	}{
		{
			name: "text",
			body: `{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion","created":1741569952,"model":"gpt-4.1-2025-04-14",
				"choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I assist you today?","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],
				"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},
				"service_tier":"default"}`,
			want: &sluice.Response{
				ID: "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", Model: "gpt-4.1-2025-04-14", Created: 1741569952,
				Message:      sluice.Message{Role: sluice.RoleAssistant, Parts: []sluice.Part{sluice.TextPart("Hello! How can I assist you today?")}},
				FinishReason: sluice.FinishStop,
				Usage:        sluice.Usage{InputTokens: 19, OutputTokens: 10},
			},
		},
		{
			name: "tool calls and reasoning",
			body: `{"id":"chatcmpl-t","object":"chat.completion","created":1741569952.0,"model":"deepseek-chat",
				"choices":[{"index":0,"message":{"role":"assistant","content":null,"reasoning_content":"Need weather.","tool_calls":[
					{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
					{"id":"call_2","type":"function","function":{"name":"get_time","arguments":{"tz":"CET"}}}]},"finish_reason":"tool_calls"}],
				"usage":{"prompt_tokens":50,"completion_tokens":30,"total_tokens":80,"prompt_cache_hit_tokens":32,"completion_tokens_details":{"reasoning_tokens":5}}}`,
			want: &sluice.Response{
				ID: "chatcmpl-t", Model: "deepseek-chat", Created: 1741569952,
				Message: sluice.Message{Role: sluice.RoleAssistant, Parts: []sluice.Part{
					{Type: sluice.PartThinking, Text: "Need weather."},
					{Type: sluice.PartToolCall, ToolCallID: "call_1", ToolName: "get_weather", Arguments: `{"city":"Paris"}`},
					{Type: sluice.PartToolCall, ToolCallID: "call_2", ToolName: "get_time", Arguments: `{"tz":"CET"}`},
				}},
				FinishReason: sluice.FinishToolCalls,
				Usage:        sluice.Usage{InputTokens: 50, OutputTokens: 30, CacheReadTokens: 32, ReasoningTokens: 5},
			},
		},
		{
			name: "content parts, refusal, tool calls ended with stop",
			body: `{"id":"x","model":"m","choices":[{"index":1,"message":{"content":"other choice"}},{"index":0,"message":{"role":"assistant","content":[{"type":"text","text":"A"},{"type":"text","text":"B"}],
				"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"stop"}]}`,
			want: &sluice.Response{
				ID: "x", Model: "m",
				Message: sluice.Message{Role: sluice.RoleAssistant, Parts: []sluice.Part{
					sluice.TextPart("A"), sluice.TextPart("B"),
					{Type: sluice.PartToolCall, ToolCallID: "c", ToolName: "f", Arguments: `{}`},
				}},
				FinishReason: sluice.FinishToolCalls,
			},
		},
		{
			name: "refusal",
			body: `{"id":"r","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}]}`,
			want: &sluice.Response{
				ID: "r", Model: "m",
				Message:      sluice.Message{Role: sluice.RoleAssistant, Parts: []sluice.Part{sluice.TextPart("I can't help with that.")}},
				FinishReason: sluice.FinishContentFilter,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := upstream(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, tt.body)
			})
			got, err := testProvider(t, srv, nil).Complete(context.Background(), simpleRequest())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
		})
	}
}

func TestProviderCompleteBadAnswers(t *testing.T) {
	tests := []struct {
		name, body string
		wantCode   sluice.Code
	}{
		{"not JSON", `<html>`, sluice.CodeUpstreamError},
		{"no choices", `{"id":"x","choices":[]}`, sluice.CodeUpstreamError},
		{"error with 200", `{"error":{"message":"Rate limited upstream","type":"rate_limit_error"}}`, sluice.CodeRateLimited},
		{"bad arguments", `{"choices":[{"index":0,"message":{"tool_calls":[{"id":"c","function":{"name":"f","arguments":[1]}}]}}]}`, sluice.CodeUpstreamError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := upstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, tt.body) })
			_, err := testProvider(t, srv, nil).Complete(context.Background(), simpleRequest())
			checkClientSafe(t, err, tt.wantCode, "Rate limited")
		})
	}
}

// TestProviderStreamIgnored covers a server that answers a stream request
// with one JSON object.
func TestProviderStreamIgnored(t *testing.T) {
	srv, _ := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		io.WriteString(w, `{"id":"w","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}`)
	})
	s, err := testProvider(t, srv, nil).Stream(context.Background(), simpleRequest())
	if err != nil {
		t.Fatal(err)
	}
	got, err := collectEvents(t, s)
	if err != nil {
		t.Fatal(err)
	}
	want := []sluice.Event{
		{Type: sluice.EventStart, ID: "w", Model: "m"},
		{Type: sluice.EventText, Text: "Hi"},
		{Type: sluice.EventToolCall, ToolCallID: "c", ToolName: "f", Arguments: "{}"},
		{Type: sluice.EventUsage, Usage: sluice.Usage{InputTokens: 3, OutputTokens: 2}},
		{Type: sluice.EventFinish, FinishReason: sluice.FinishToolCalls},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestStreamToolIndexQuirks(t *testing.T) {
	// Calls with no index at all, and a server that reuses index 0 for
	// every call with a new id.
	body := `data: {"id":"q","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"id":"a","function":{"name":"f","arguments":"{\"x\":"}}]}}]}

data: {"id":"q","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"function":{"arguments":"1}"}}]}}]}

data: {"id":"q","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"b","function":{"name":"g","arguments":"{}"}}]}}]}

data: {"id":"q","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"b","function":{"arguments":""}}]}}]}

data: {"id":"q","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"h","arguments":"{}"}}]},"finish_reason":"stop"}]}

data: [DONE]

`
	srv, _ := upstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) })
	s, err := testProvider(t, srv, nil).Stream(context.Background(), simpleRequest())
	if err != nil {
		t.Fatal(err)
	}
	got, err := collectEvents(t, s)
	if err != nil {
		t.Fatal(err)
	}
	want := []sluice.Event{
		{Type: sluice.EventStart, ID: "q", Model: "m"},
		{Type: sluice.EventToolCall, Index: 0, ToolCallID: "a", ToolName: "f", Arguments: `{"x":`},
		{Type: sluice.EventToolCall, Index: 0, Arguments: `1}`},
		{Type: sluice.EventToolCall, Index: 1, ToolCallID: "b", ToolName: "g", Arguments: `{}`},
		{Type: sluice.EventToolCall, Index: 1, Arguments: `{}`},
		{Type: sluice.EventFinish, FinishReason: sluice.FinishToolCalls},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestMaxTokensField(t *testing.T) {
	tests := []struct {
		configured, model, want string
	}{
		{"", "gpt-4o", MaxTokens},
		{"", "llama-3.1-8b", MaxTokens},
		{"", "o1", MaxCompletionTokens},
		{"", "o3-mini", MaxCompletionTokens},
		{"", "o4-mini-2025-04-16", MaxCompletionTokens},
		{"", "gpt-5", MaxCompletionTokens},
		{"", "GPT-5.1-codex", MaxCompletionTokens},
		{"", "openai/gpt-5-mini", MaxCompletionTokens},
		{"", "o1x", MaxTokens},
		{MaxCompletionTokens, "llama", MaxCompletionTokens},
		{MaxTokens, "o3", MaxTokens},
	}
	for _, tt := range tests {
		if got := maxTokensField(tt.configured, tt.model); got != tt.want {
			t.Errorf("maxTokensField(%q, %q) = %q, want %q", tt.configured, tt.model, got, tt.want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("NewProvider accepted a bad MaxTokensField")
		}
	}()
	NewProvider(Config{MaxTokensField: "max_output_tokens"})
}

func TestProviderSharedClient(t *testing.T) {
	srv, _ := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"id":"s","model":"m","choices":[{"index":0,"message":{"content":"ok"},"finish_reason":"stop"}]}`)
	})
	t.Cleanup(sharedClient().CloseIdleConnections)
	p := NewProvider(Config{Name: "shared", BaseURL: srv.URL})
	if p.client != sharedClient() || NewProvider(Config{}).client != p.client {
		t.Error("providers without a client do not share one")
	}
	resp, err := p.Complete(context.Background(), simpleRequest())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Message.Text() != "ok" {
		t.Errorf("text = %q", resp.Message.Text())
	}
}

func TestErrorEventCodes(t *testing.T) {
	tests := []struct {
		typ, code string
		want      sluice.Code
	}{
		{"server_error", `null`, sluice.CodeUpstreamError},
		{"", `""`, sluice.CodeUpstreamError},
		{"rate_limit_error", `"rate_limited"`, sluice.CodeRateLimited},
		{"requests", `"rate_limit_exceeded"`, sluice.CodeRateLimited},
		{"server_error", `"overloaded"`, sluice.CodeOverloaded},
		{"overloaded_error", `null`, sluice.CodeOverloaded},
		{"server_error", `"upstream_unavailable"`, sluice.CodeUpstreamUnavailable},
		{"server_error", `"upstream_timeout"`, sluice.CodeUpstreamTimeout},
		{"invalid_request_error", `"context_length_exceeded"`, sluice.CodePromptTooLong},
		{"invalid_request_error", `"invalid_request"`, sluice.CodeInvalidRequest},
		{"authentication_error", `"unauthenticated"`, sluice.CodeUpstreamError},
		{"insufficient_quota", `"budget_exceeded"`, sluice.CodeUpstreamError},
		{"BadRequestError", `400`, sluice.CodeInvalidRequest},
		{"ServiceUnavailableError", `503`, sluice.CodeUpstreamUnavailable},
		{"x", `200`, sluice.CodeUpstreamError},
	}
	for _, tt := range tests {
		e := errorEvent("p", &wireError{Type: tt.typ, Code: json.RawMessage(tt.code), Message: "detail"})
		if e.Code != tt.want {
			t.Errorf("type %q code %s: %s, want %s", tt.typ, tt.code, e.Code, tt.want)
		}
		if strings.Contains(e.Error(), "detail") {
			t.Errorf("message leaked: %v", e)
		}
	}
}

// TestProviderStreamReusesConnection checks that a stream ended by [DONE]
// leaves its connection to the transport for the next call.
func TestProviderStreamReusesConnection(t *testing.T) {
	var conns atomic.Int32
	// The handler ends its body only once the client has read [DONE], as a
	// real server's last chunk often arrives after the data before it.
	finish := make(chan struct{}, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-finish:
		case <-r.Context().Done():
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	p := NewProvider(Config{Name: "t", BaseURL: srv.URL, Client: srv.Client()})
	req := &sluice.Request{Model: "m", Messages: []sluice.Message{{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart("x")}}}}
	for range 3 {
		s, err := p.Stream(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		for ev, err := range s.All() {
			if err != nil {
				t.Fatal(err)
			}
			if ev.Type == sluice.EventFinish {
				finish <- struct{}{}
			}
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("3 streams used %d connections, want 1", n)
	}
}

func TestProviderDefaultMaxTokens(t *testing.T) {
	srv, reqs := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"c","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}`)
	})
	p := testProvider(t, srv, func(c *Config) { c.DefaultMaxTokens = 77 })
	hi := []sluice.Message{{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart("x")}}}
	for _, tc := range []struct {
		req  *sluice.Request
		want string
	}{
		{&sluice.Request{Model: "m", Messages: hi}, `"max_tokens":77`},
		{&sluice.Request{Model: "m", Messages: hi, MaxOutputTokens: 5}, `"max_tokens":5`},
	} {
		if _, err := p.Complete(t.Context(), tc.req); err != nil {
			t.Fatal(err)
		}
		if body := string((<-reqs).body); !strings.Contains(body, tc.want) {
			t.Errorf("body %s lacks %s", body, tc.want)
		}
	}
}
