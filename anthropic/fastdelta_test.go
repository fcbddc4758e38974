package anthropic

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/sse"
)

// slowDelta decodes a content block delta with encoding/json, the reference
// fastDelta must agree with.
func slowDelta(data []byte) (index int, kind int, value string, err error) {
	var w struct {
		Type  string `json:"type"`
		Index int    `json:"index"`
		Delta struct {
			Type        string `json:"type"`
			Text        string `json:"text"`
			PartialJSON string `json:"partial_json"`
			Thinking    string `json:"thinking"`
			Signature   string `json:"signature"`
		} `json:"delta"`
	}
	err = json.Unmarshal(data, &w)
	switch w.Delta.Type {
	case "text_delta":
		return w.Index, deltaText, w.Delta.Text, err
	case "input_json_delta":
		return w.Index, deltaInputJSON, w.Delta.PartialJSON, err
	case "thinking_delta":
		return w.Index, deltaThinking, w.Delta.Thinking, err
	case "signature_delta":
		return w.Index, deltaSignature, w.Delta.Signature, err
	}
	return w.Index, deltaNone, "", err
}

func TestFastDelta(t *testing.T) {
	tests := []struct {
		name  string
		data  string
		ok    bool
		index int
		kind  int
		value string
	}{
		{"text", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}`, true, 0, deltaText, "Hello"},
		{"escapes", `{"type":"content_block_delta","index":12,"delta":{"type":"text_delta","text":"a\"b\\c\/d\n\t\r\b\f\u00e9\ud83c\udf89"}}`, true, 12, deltaText, "a\"b\\c/d\n\t\r\b\fé🎉"},
		{"json", `{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{\"location\": \"San"}}`, true, 3, deltaInputJSON, `{"location": "San`},
		{"thinking", `{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}`, true, 0, deltaThinking, "hmm"},
		{"signature", `{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQB=="}}`, true, 0, deltaSignature, "EqQB=="},
		{"empty", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":""}}`, true, 0, deltaText, ""},
		{"utf8", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"日本語"}}`, true, 0, deltaText, "日本語"},
		{"spaces", `{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}`, false, 0, 0, ""},
		{"other key order", `{"type":"content_block_delta","delta":{"type":"text_delta","text":"Hello"},"index":0}`, false, 0, 0, ""},
		{"citations", `{"type":"content_block_delta","index":0,"delta":{"type":"citations_delta","citation":{}}}`, false, 0, 0, ""},
		{"extra field", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a","x":1}}`, false, 0, 0, ""},
		{"trailing", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"}} `, false, 0, 0, ""},
		{"leading zero", `{"type":"content_block_delta","index":01,"delta":{"type":"text_delta","text":"a"}}`, false, 0, 0, ""},
		{"no index", `{"type":"content_block_delta","index":,"delta":{"type":"text_delta","text":"a"}}`, false, 0, 0, ""},
		{"control char", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"a\nb\"}}", false, 0, 0, ""},
		{"bad escape", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\x"}}`, false, 0, 0, ""},
		{"lone surrogate", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\ud83c"}}`, false, 0, 0, ""},
		{"invalid utf8", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\xff\"}}", false, 0, 0, ""},
		{"unterminated", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"abc`, false, 0, 0, ""},
		{"quote then more", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"b"}}`, false, 0, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			index, kind, value, ok := fastDelta([]byte(tt.data))
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if index != tt.index || kind != tt.kind || value != tt.value {
				t.Errorf("got (%d, %d, %q), want (%d, %d, %q)", index, kind, value, tt.index, tt.kind, tt.value)
			}
			si, sk, sv, err := slowDelta([]byte(tt.data))
			if err != nil || si != index || sk != kind || sv != value {
				t.Errorf("encoding/json reads (%d, %d, %q, %v)", si, sk, sv, err)
			}
		})
	}
}

// TestStreamDecoderFallback checks that deltas outside the fast form decode
// the same through encoding/json.
func TestStreamDecoderFallback(t *testing.T) {
	wire := "event: message_start\ndata: {\"type\": \"message_start\", \"message\": {\"id\": \"m\", \"model\": \"c\", \"usage\": {\"input_tokens\": 3}}}\n\n" +
		"event: content_block_start\ndata: {\"type\": \"content_block_start\", \"index\": 0, \"content_block\": {\"type\": \"text\", \"text\": \"\"}}\n\n" +
		"event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\"type\": \"text_delta\", \"text\": \"Hello\"}}\n\n" +
		"event: content_block_delta\ndata: {\"delta\":{\"text\":\"\\ud83c!\",\"type\":\"text_delta\"},\"index\":0,\"type\":\"content_block_delta\"}\n\n" +
		"data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" unnamed\"}}\n\n" +
		"event: message_delta\ndata: {\"type\": \"message_delta\", \"delta\": {\"stop_reason\": \"end_turn\", \"stop_sequence\": null}, \"usage\": {\"output_tokens\": 4, \"input_tokens\": 5}}\n\n" +
		"event: message_stop\ndata: {\"type\": \"message_stop\"}\n\n"
	d := &streamDecoder{ctx: t.Context(), name: "test", rd: sse.NewReader(strings.NewReader(wire))}
	evs, err := collect(sluice.NewStream(d.next, nil))
	if err != nil {
		t.Fatal(err)
	}
	want := []sluice.Event{
		{Type: sluice.EventStart, ID: "m", Model: "c", Usage: sluice.Usage{InputTokens: 3}},
		{Type: sluice.EventText, Text: "Hello"},
		{Type: sluice.EventText, Text: "\ufffd!"},
		{Type: sluice.EventText, Text: " unnamed"},
		{Type: sluice.EventUsage, Usage: sluice.Usage{InputTokens: 5, OutputTokens: 4}},
		{Type: sluice.EventFinish, FinishReason: sluice.FinishStop},
	}
	if len(evs) != len(want) {
		t.Fatalf("events = %+v", evs)
	}
	for i := range want {
		if evs[i] != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, evs[i], want[i])
		}
	}
}

// FuzzFastDelta checks fastDelta against encoding/json: whatever it accepts,
// encoding/json reads the same way.
func FuzzFastDelta(f *testing.F) {
	f.Add(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}`)
	f.Add(`{"type":"content_block_delta","index":7,"delta":{"type":"input_json_delta","partial_json":"{\"a\\u00e9\ud83c\udf89"}}`)
	f.Add(`{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"\\\"\/"}}`)
	f.Fuzz(func(t *testing.T, data string) {
		index, kind, value, ok := fastDelta([]byte(data))
		if !ok {
			return
		}
		si, sk, sv, err := slowDelta([]byte(data))
		if err != nil || si != index || sk != kind || sv != value {
			t.Fatalf("fast (%d, %d, %q) but encoding/json (%d, %d, %q, %v)", index, kind, value, si, sk, sv, err)
		}
	})
}
