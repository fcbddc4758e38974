package anthropic

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/sse"
)

// discardWriter is an http.ResponseWriter that drops what it is given.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Flush()                      {}

// benchBody is a typical agent turn: a system prompt, a few turns with a tool
// round trip, and two tools.
var benchBody = []byte(`{
  "model": "claude-sonnet-4-5",
  "max_tokens": 2048,
  "system": [{"type": "text", "text": "You are a helpful assistant that answers questions about the weather. Be concise.", "cache_control": {"type": "ephemeral"}}],
  "messages": [
    {"role": "user", "content": "What is the weather like in Paris and in Berlin today? I am planning a trip and need to pack."},
    {"role": "assistant", "content": [
      {"type": "text", "text": "I'll check both cities."},
      {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather", "input": {"location": "Paris, FR", "unit": "celsius"}},
      {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq8", "name": "get_weather", "input": {"location": "Berlin, DE", "unit": "celsius"}}
    ]},
    {"role": "user", "content": [
      {"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9", "content": "18 degrees, light rain in the afternoon"},
      {"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq8", "content": [{"type": "text", "text": "12 degrees, sunny"}]}
    ]},
    {"role": "assistant", "content": "Paris is 18°C with afternoon rain; Berlin is 12°C and sunny. Pack layers and an umbrella."},
    {"role": "user", "content": "Thanks! And tomorrow?"}
  ],
  "tools": [
    {"name": "get_weather", "description": "Get the current weather in a given location", "input_schema": {"type": "object", "properties": {"location": {"type": "string", "description": "The city and country"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["location"]}},
    {"name": "get_forecast", "description": "Get the forecast for a given location and day", "input_schema": {"type": "object", "properties": {"location": {"type": "string"}, "day": {"type": "string"}}, "required": ["location", "day"]}}
  ],
  "tool_choice": {"type": "auto"},
  "temperature": 0.7,
  "metadata": {"user_id": "user-1234"},
  "stream": true
}`)

func BenchmarkDecodeRequest(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	for b.Loop() {
		if _, err := DecodeRequest(benchBody); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStreamEncode encodes one answer of 100 text deltas.
func BenchmarkStreamEncode(b *testing.B) {
	events := make([]sluice.Event, 0, 103)
	events = append(events, sluice.Event{Type: sluice.EventStart, ID: "msg_1", Model: "claude", Usage: sluice.Usage{InputTokens: 120}})
	for i := range 100 {
		events = append(events, sluice.Event{Type: sluice.EventText, Text: "token" + strings.Repeat(" ", i%3) + "\"q\" "})
	}
	events = append(events,
		sluice.Event{Type: sluice.EventUsage, Usage: sluice.Usage{InputTokens: 120, OutputTokens: 100}},
		sluice.Event{Type: sluice.EventFinish, FinishReason: sluice.FinishStop})
	w := sse.NewWriter(&discardWriter{h: http.Header{}})
	b.ReportAllocs()
	for b.Loop() {
		enc := NewStreamEncoder(w, "msg_gw", "public-model")
		for _, ev := range events {
			if err := enc.Event(ev); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkStreamDecode decodes one upstream answer of 100 text deltas.
func BenchmarkStreamDecode(b *testing.B) {
	var wire bytes.Buffer
	wire.WriteString("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":120,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":1}}}\n\n")
	wire.WriteString("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
	wire.WriteString("event: ping\ndata: {\"type\": \"ping\"}\n\n")
	for range 100 {
		wire.WriteString("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"token \\\"q\\\" \"}}\n\n")
	}
	wire.WriteString("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n")
	wire.WriteString("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":100}}\n\n")
	wire.WriteString("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	data := wire.Bytes()
	r := bytes.NewReader(data)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		r.Reset(data)
		d := &streamDecoder{ctx: context.Background(), name: "bench", rd: sse.NewReader(r)}
		n := 0
		for {
			_, err := d.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != 103 {
			b.Fatalf("decoded %d events, want 103", n)
		}
	}
}
