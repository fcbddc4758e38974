package anthropic

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/sse"
)

// encodeEvents runs events through a StreamEncoder and returns the wire.
func encodeEvents(t testing.TB, id, model string, events []sluice.Event, after func(*StreamEncoder)) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	enc := NewStreamEncoder(sse.NewWriter(rec), id, model)
	for _, ev := range events {
		if err := enc.Event(ev); err != nil {
			t.Fatalf("Event(%v): %v", ev.Type, err)
		}
	}
	if after != nil {
		after(enc)
	}
	if !rec.Flushed {
		t.Error("encoder never flushed")
	}
	return rec.Body.Bytes()
}

// richStream has thinking, text, two tool calls and usage.
var richStream = []sluice.Event{
	{Type: sluice.EventStart, ID: "msg_upstream", Model: "claude-upstream", Usage: sluice.Usage{InputTokens: 40, CacheReadTokens: 10, CacheWriteTokens: 5}},
	{Type: sluice.EventThinking, Text: "Let me"},
	{Type: sluice.EventThinking, Text: " think."},
	{Type: sluice.EventThinking, Signature: "EqQBCgIYAh=="},
	{Type: sluice.EventText, Text: "Checking "},
	{Type: sluice.EventText, Text: "the \"weather\".\n"},
	{Type: sluice.EventToolCall, Index: 0, ToolCallID: "toolu_a", ToolName: "get_weather"},
	{Type: sluice.EventToolCall, Index: 0, Arguments: `{"city":`},
	{Type: sluice.EventToolCall, Index: 0, Arguments: `"Paris"}`},
	{Type: sluice.EventToolCall, Index: 1, ToolCallID: "toolu_b", ToolName: "get_time", Arguments: `{"tz":"CET"}`},
	{Type: sluice.EventUsage, Usage: sluice.Usage{InputTokens: 40, OutputTokens: 42, CacheReadTokens: 10, CacheWriteTokens: 5}},
	{Type: sluice.EventFinish, FinishReason: sluice.FinishToolCalls},
}

func TestStreamEncoderGolden(t *testing.T) {
	t.Run("stream_rich", func(t *testing.T) {
		golden(t, "stream_rich", encodeEvents(t, "msg_gw", "public-model", richStream, nil))
	})
	t.Run("stream_error", func(t *testing.T) {
		events := []sluice.Event{
			{Type: sluice.EventStart, Usage: sluice.Usage{InputTokens: 12}},
			{Type: sluice.EventText, Text: "Hel"},
		}
		wire := encodeEvents(t, "msg_gw", "public-model", events, func(e *StreamEncoder) {
			if err := e.Ping(); err != nil {
				t.Fatal(err)
			}
			if err := e.Error(&sluice.Error{Code: sluice.CodeOverloaded, Message: sluice.CodeOverloaded.DefaultMessage(), Err: errors.New("secret")}); err != nil {
				t.Fatal(err)
			}
			// Ignored after the error.
			if err := e.Event(sluice.Event{Type: sluice.EventText, Text: "lo"}); err != nil {
				t.Fatal(err)
			}
		})
		golden(t, "stream_error", wire)
	})
}

// sseEvent is one parsed server-sent event, for assertions.
type sseEvent struct{ Name, Data string }

func parseSSE(t testing.TB, wire []byte) []sseEvent {
	t.Helper()
	rd := sse.NewReader(bytes.NewReader(wire))
	var out []sseEvent
	for {
		ev, err := rd.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("reading the encoder's output: %v", err)
		}
		out = append(out, sseEvent{ev.Type, string(ev.Data)})
	}
}

func TestStreamEncoderSequences(t *testing.T) {
	tests := []struct {
		name   string
		events []sluice.Event
		want   []sseEvent
	}{
		{
			name: "no start event, text only",
			events: []sluice.Event{
				{Type: sluice.EventText, Text: "Hi"},
				{Type: sluice.EventText, Text: ""}, // nothing
				{Type: sluice.EventFinish, FinishReason: sluice.FinishStop, StopSequence: "END"},
				{Type: sluice.EventText, Text: "ignored"},
			},
			want: []sseEvent{
				{"message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"m","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}`},
				{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`},
				{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}`},
				{"content_block_stop", `{"type":"content_block_stop","index":0}`},
				{"message_delta", `{"type":"message_delta","delta":{"stop_reason":"stop_sequence","stop_sequence":"END"},"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}}`},
				{"message_stop", `{"type":"message_stop"}`},
			},
		},
		{
			name: "text after a tool call opens a new block; a late fragment goes to its block",
			events: []sluice.Event{
				{Type: sluice.EventStart},
				{Type: sluice.EventToolCall, Index: 0, ToolCallID: "t0", ToolName: "a", Arguments: `{"x":`},
				{Type: sluice.EventText, Text: "between"},
				{Type: sluice.EventToolCall, Index: 0, Arguments: `1}`},
				{Type: sluice.EventToolCall, Index: -1, Arguments: `ignored`},
				{Type: sluice.EventThinking, Redacted: true, Data: "opaque"},
				{Type: sluice.EventFinish, FinishReason: sluice.FinishLength},
			},
			want: []sseEvent{
				{"message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"m","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}`},
				{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t0","name":"a","input":{}}}`},
				{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"x\":"}}`},
				{"content_block_stop", `{"type":"content_block_stop","index":0}`},
				{"content_block_start", `{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}`},
				{"content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"between"}}`},
				{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"1}"}}`},
				{"content_block_stop", `{"type":"content_block_stop","index":1}`},
				{"content_block_start", `{"type":"content_block_start","index":2,"content_block":{"type":"redacted_thinking","data":"opaque"}}`},
				{"content_block_stop", `{"type":"content_block_stop","index":2}`},
				{"message_delta", `{"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}}`},
				{"message_stop", `{"type":"message_stop"}`},
			},
		},
		{
			name: "thinking after a signature is a new block",
			events: []sluice.Event{
				{Type: sluice.EventThinking, Text: "a", Signature: "s1"},
				{Type: sluice.EventThinking, Text: "b"},
				{Type: sluice.EventError, Err: &sluice.Error{Code: sluice.CodeRateLimited, Message: "slow down"}},
			},
			want: []sseEvent{
				{"message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"m","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}`},
				{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}`},
				{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"a"}}`},
				{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"s1"}}`},
				{"content_block_stop", `{"type":"content_block_stop","index":0}`},
				{"content_block_start", `{"type":"content_block_start","index":1,"content_block":{"type":"thinking","thinking":"","signature":""}}`},
				{"content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"thinking_delta","thinking":"b"}}`},
				{"error", `{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseSSE(t, encodeEvents(t, "msg_1", "m", tt.events, nil))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStreamEncoderPing(t *testing.T) {
	wire := encodeEvents(t, "", "", nil, func(e *StreamEncoder) {
		if err := e.Ping(); err != nil {
			t.Fatal(err)
		}
	})
	if want := "event: ping\ndata: {\"type\": \"ping\"}\n\n"; string(wire) != want {
		t.Errorf("ping = %q, want %q", wire, want)
	}
}

// TestStreamEncodeDecode checks that the provider's stream decoder reads
// back what the encoder writes.
func TestStreamEncodeDecode(t *testing.T) {
	wire := encodeEvents(t, "msg_gw", "public-model", richStream, nil)
	d := &streamDecoder{ctx: context.Background(), name: "test", rd: sse.NewReader(bytes.NewReader(wire))}
	var got []sluice.Event
	for ev, err := range sluice.NewStream(d.next, nil).All() {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev)
	}
	want := []sluice.Event{
		{Type: sluice.EventStart, ID: "msg_gw", Model: "public-model", Usage: sluice.Usage{InputTokens: 40, CacheReadTokens: 10, CacheWriteTokens: 5}},
	}
	want = append(want, richStream[1:9]...)
	want = append(want,
		sluice.Event{Type: sluice.EventToolCall, Index: 1, ToolCallID: "toolu_b", ToolName: "get_time"},
		sluice.Event{Type: sluice.EventToolCall, Index: 1, Arguments: `{"tz":"CET"}`},
	)
	want = append(want, richStream[10:]...)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestStreamEncoderWriteError(t *testing.T) {
	enc := NewStreamEncoder(sse.NewWriter(failingWriter{httptest.NewRecorder()}), "id", "m")
	if err := enc.Event(sluice.Event{Type: sluice.EventText, Text: "x"}); err == nil || !strings.Contains(err.Error(), "gone") {
		t.Errorf("err = %v, want the writer's error", err)
	}
}

type failingWriter struct{ *httptest.ResponseRecorder }

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("client gone") }
