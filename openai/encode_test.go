package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/sse"
)

const testCreated = 1727978440

func textResponse() *sluice.Response {
	return &sluice.Response{
		ID:    "chatcmpl-123",
		Model: "gpt-4o-mini",
		Message: sluice.Message{Role: sluice.RoleAssistant, Parts: []sluice.Part{
			sluice.TextPart("Hello! \"Quoted\" <b>&</b>\n\u2028done"),
		}},
		FinishReason: sluice.FinishStop,
		Usage:        sluice.Usage{InputTokens: 19, OutputTokens: 10, CacheReadTokens: 3},
		Created:      testCreated,
	}
}

func toolResponse() *sluice.Response {
	return &sluice.Response{
		ID:    "chatcmpl-456",
		Model: "gpt-4o",
		Message: sluice.Message{Role: sluice.RoleAssistant, Parts: []sluice.Part{
			{Type: sluice.PartThinking, Text: "Two lookups.", Signature: "sig"},
			{Type: sluice.PartToolCall, ToolCallID: "call_a", ToolName: "get_weather", Arguments: `{"city":"Paris"}`},
			{Type: sluice.PartToolCall, ToolCallID: "call_b", ToolName: "get_time", Arguments: ""},
		}},
		FinishReason: sluice.FinishToolCalls,
		Usage:        sluice.Usage{InputTokens: 80, OutputTokens: 40, ReasoningTokens: 12},
		Created:      testCreated,
	}
}

func TestMarshalResponseGolden(t *testing.T) {
	for name, resp := range map[string]*sluice.Response{
		"response_text":  textResponse(),
		"response_tools": toolResponse(),
	} {
		t.Run(name, func(t *testing.T) {
			b, err := MarshalResponse(resp)
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(b) {
				t.Fatalf("invalid JSON: %s", b)
			}
			golden(t, name, append(b, '\n'))
		})
	}
}

func TestMarshalResponseCreatedNow(t *testing.T) {
	before := time.Now().Unix()
	b, err := MarshalResponse(&sluice.Response{ID: "x", Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Created int64 `json:"created"`
		Choices []struct {
			Message struct {
				Content *string `json:"content"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if v.Created < before {
		t.Errorf("created = %d, want now (>= %d)", v.Created, before)
	}
	if v.Choices[0].Message.Content != nil || v.Choices[0].FinishReason != "stop" {
		t.Errorf("empty response: content %v, finish %q; want null and stop", v.Choices[0].Message.Content, v.Choices[0].FinishReason)
	}
}

func TestFinishReason(t *testing.T) {
	for in, want := range map[sluice.FinishReason]string{
		sluice.FinishStop: "stop", sluice.FinishLength: "length", sluice.FinishToolCalls: "tool_calls",
		sluice.FinishContentFilter: "content_filter", sluice.FinishError: "stop", "": "stop",
	} {
		if got := finishReason(in); got != want {
			t.Errorf("finishReason(%q) = %q, want %q", in, got, want)
		}
	}
}

// encodeStream runs events through a StreamEncoder and returns the body.
func encodeStream(t testing.TB, includeUsage bool, events []sluice.Event, end func(*StreamEncoder) error) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	enc := NewStreamEncoder(sse.NewWriter(rec), "chatcmpl-789", "gpt-4o-mini", testCreated, includeUsage)
	for _, ev := range events {
		if err := enc.Event(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := end(enc); err != nil {
		t.Fatal(err)
	}
	checkChunks(t, rec.Body.Bytes())
	return rec.Body.Bytes()
}

// checkChunks checks that every data event but [DONE] is valid JSON.
func checkChunks(t testing.TB, body []byte) {
	t.Helper()
	r := sse.NewReader(bytes.NewReader(body))
	for {
		ev, err := r.Next()
		if err != nil {
			return
		}
		if string(ev.Data) != "[DONE]" && !json.Valid(ev.Data) {
			t.Errorf("invalid JSON chunk: %s", ev.Data)
		}
	}
}

func done(e *StreamEncoder) error { return e.Done() }

func textEvents() []sluice.Event {
	return []sluice.Event{
		{Type: sluice.EventStart, ID: "upstream-id", Model: "upstream-model"},
		{Type: sluice.EventThinking, Text: "Greet."},
		{Type: sluice.EventThinking, Signature: "sig"},
		{Type: sluice.EventText, Text: "Hello"},
		{Type: sluice.EventText, Text: ""},
		{Type: sluice.EventText, Text: " there\n\"friend\""},
		{Type: sluice.EventUsage, Usage: sluice.Usage{InputTokens: 5, OutputTokens: 1}},
		{Type: sluice.EventUsage, Usage: sluice.Usage{InputTokens: 5, OutputTokens: 4, ReasoningTokens: 2}},
		{Type: sluice.EventFinish, FinishReason: sluice.FinishStop},
	}
}

func toolEvents() []sluice.Event {
	return []sluice.Event{
		{Type: sluice.EventStart, ID: "x", Model: "y"},
		{Type: sluice.EventToolCall, Index: 0, ToolCallID: "call_a", ToolName: "get_weather"},
		{Type: sluice.EventToolCall, Index: 1, ToolCallID: "call_b", ToolName: "get_weather", Arguments: `{"city":`},
		{Type: sluice.EventToolCall, Index: 0, Arguments: `{"city":"Paris"}`},
		{Type: sluice.EventToolCall, Index: 1, Arguments: `"Rome"}`},
		{Type: sluice.EventToolCall, Index: 2, ToolCallID: "call_c", ToolName: "get_time"},
		{Type: sluice.EventUsage, Usage: sluice.Usage{InputTokens: 82, OutputTokens: 40, CacheReadTokens: 64}},
		{Type: sluice.EventFinish, FinishReason: sluice.FinishToolCalls},
	}
}

func TestStreamEncoderGolden(t *testing.T) {
	tests := []struct {
		name         string
		includeUsage bool
		events       []sluice.Event
		end          func(*StreamEncoder) error
	}{
		{"stream_text", false, textEvents(), done},
		{"stream_text_usage", true, textEvents(), done},
		{"stream_tools_usage", true, toolEvents(), done},
		{
			name:         "stream_error",
			includeUsage: true,
			events:       textEvents()[:4],
			end: func(e *StreamEncoder) error {
				if err := e.Error(&sluice.Error{Code: sluice.CodeStreamInterrupted, Message: sluice.CodeStreamInterrupted.DefaultMessage(), Err: fmt.Errorf("secret upstream detail")}); err != nil {
					return err
				}
				return e.Done() // ignored after Error
			},
		},
		{
			name:   "stream_no_start",
			events: []sluice.Event{{Type: sluice.EventText, Text: "Hi"}},
			end:    done, // no finish event: Done completes the stream
		},
		{
			name:         "stream_start_only",
			includeUsage: true,
			events: []sluice.Event{
				{Type: sluice.EventStart, Usage: sluice.Usage{InputTokens: 7}},
				{Type: sluice.EventFinish, FinishReason: sluice.FinishLength},
				{Type: sluice.EventText, Text: "after the finish: dropped"},
			},
			end: done,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			golden(t, tt.name, encodeStream(t, tt.includeUsage, tt.events, tt.end))
		})
	}
}

func TestStreamErrorEvent(t *testing.T) {
	body := encodeStream(t, false, []sluice.Event{
		{Type: sluice.EventStart},
		{Type: sluice.EventError, Err: sluice.NewError(sluice.CodeRateLimited, "Slow down.")},
		{Type: sluice.EventText, Text: "ignored"},
	}, done)
	s := string(body)
	if !strings.Contains(s, `{"error":{"message":"Slow down.","type":"rate_limit_error","param":null,"code":"rate_limited"}}`) {
		t.Errorf("no error chunk in %s", s)
	}
	if strings.Contains(s, "[DONE]") || strings.Contains(s, "ignored") {
		t.Errorf("output after the error chunk: %s", s)
	}
}

func TestWriteErrorGolden(t *testing.T) {
	tests := []struct {
		name string
		err  *sluice.Error
	}{
		{"error_invalid_request", &sluice.Error{Code: sluice.CodeInvalidRequest, Message: "n greater than 1 is not supported.", Param: "n"}},
		{"error_rate_limited", &sluice.Error{Code: sluice.CodeRateLimited, Message: sluice.CodeRateLimited.DefaultMessage(), RetryAfter: 1500 * time.Millisecond}},
		{"error_unauthenticated", sluice.NewError(sluice.CodeUnauthenticated, sluice.CodeUnauthenticated.DefaultMessage())},
		{"error_upstream_unavailable", sluice.WrapError(sluice.CodeUpstreamUnavailable, fmt.Errorf("dial tcp 10.0.0.1: secret"))},
		{"error_budget_exceeded", sluice.NewError(sluice.CodeBudgetExceeded, "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			WriteError(rec, tt.err)
			var b bytes.Buffer
			fmt.Fprintf(&b, "%d\n", rec.Code)
			keys := make([]string, 0, len(rec.Header()))
			for k := range rec.Header() {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(&b, "%s: %s\n", k, rec.Header().Get(k))
			}
			b.WriteByte('\n')
			b.Write(rec.Body.Bytes())
			b.WriteByte('\n')
			golden(t, tt.name, b.Bytes())
			if strings.Contains(b.String(), "secret") {
				t.Error("the cause leaked into the response")
			}
			if !bytes.Equal(rec.Body.Bytes(), MarshalError(tt.err)) {
				t.Error("WriteError body differs from MarshalError")
			}
		})
	}
}

func TestMarshalModels(t *testing.T) {
	got := string(MarshalModels([]string{"fast", "smart\"q"}, 1700000000, "sluice"))
	want := `{"object":"list","data":[{"id":"fast","object":"model","created":1700000000,"owned_by":"sluice"},{"id":"smart\"q","object":"model","created":1700000000,"owned_by":"sluice"}]}`
	if got != want {
		t.Errorf("MarshalModels =\n%s\nwant\n%s", got, want)
	}
	if got := string(MarshalModels(nil, 1, "o")); got != `{"object":"list","data":[]}` {
		t.Errorf("empty list = %s", got)
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", "q\"b\\", "\x00\x01\x1f\x7f", "tab\tnl\ncr\r\b\f", "<&>", "\u2028\u2029", "héllo 世界 🎉", "bad\xffutf8\xc3", "\ufffd"} {
		got := appendString(nil, s)
		want, _ := json.Marshal(s)
		// encoding/json escapes <, > and &; appendString does not.
		wantS := strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(want))
		if string(got) != wantS {
			t.Errorf("appendString(%q) = %s, want %s", s, got, wantS)
		}
	}
}
