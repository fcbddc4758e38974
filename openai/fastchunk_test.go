package openai

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/sse"
)

// staleChunk is a decoder's chunk after an earlier, busier chunk: fastChunk
// must leave nothing of it behind but may reuse its ID and Model.
func staleChunk() wireChunk {
	c := wireChunk{ID: "chatcmpl-1", Model: "gpt-4o-mini", Usage: &wireUsage{PromptTokens: 1}, Error: &wireError{Message: "m"}}
	c.Choices = make([]wireChunkChoice, 2, 4)
	c.Choices[0].FinishReason = "stop"
	c.Choices[0].Delta.Refusal = "no"
	c.Choices[0].Delta.ToolCalls = []wireChunkToolCall{{ID: "call"}}
	c.Choices[1].Index = 1
	return c
}

// checkFast runs fastChunk on data and, when it accepts, checks that
// encoding/json reads data the same way. It reports whether fastChunk
// accepted and what it read.
func checkFast(t testing.TB, data string) (wireChunk, bool) {
	t.Helper()
	c := staleChunk()
	var buf []byte
	if !fastChunk([]byte(data), &c, &buf) {
		if diff := cmp.Diff(staleChunk(), c); diff != "" {
			t.Fatalf("fastChunk refused %q but changed the chunk:\n%s", data, diff)
		}
		return wireChunk{}, false
	}
	var want wireChunk
	if err := json.Unmarshal([]byte(data), &want); err != nil {
		t.Fatalf("fastChunk accepted %q, encoding/json refuses it: %v", data, err)
	}
	if diff := cmp.Diff(want, c, cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("fastChunk and encoding/json differ on %q (-json +fast):\n%s", data, diff)
	}
	return c, true
}

const chunkHead = `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1741570283,"model":"gpt-4o-mini",`

// textChunk is a content chunk as OpenAI sends it, with content as given
// (already JSON).
func textChunk(content string) string {
	return chunkHead + `"service_tier":"default","system_fingerprint":"fp_fc9f1d7035","choices":[{"index":0,"delta":{"content":` + content + `},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"aWxS"}`
}

func TestFastChunk(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		ok      bool
		content string
	}{
		{"openai", textChunk(`"Hello"`), true, "Hello"},
		{"no usage no fingerprint", chunkHead + `"choices":[{"index":0,"delta":{"content":" world"},"logprobs":null,"finish_reason":null}]}`, true, " world"},
		{"fingerprint null", chunkHead + `"system_fingerprint":null,"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}`, true, "x"},
		{"first chunk", chunkHead + `"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}`, true, ""},
		{"content null", chunkHead + `"choices":[{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}]}`, true, ""},
		{"empty delta", chunkHead + `"choices":[{"index":0,"delta":{},"finish_reason":null}]}`, true, ""},
		{"reasoning null", chunkHead + `"choices":[{"index":0,"delta":{"content":"a","reasoning_content":null,"reasoning":null},"finish_reason":null}]}`, true, "a"},
		{"escapes", textChunk(`"a\"b\\c\/d\n\t\r\b\f\u00e9\ud83c\udf89\u0000"`), true, "a\"b\\c/d\n\t\r\b\fé🎉\x00"},
		{"utf8", textChunk(`"日本語 🎉"`), true, "日本語 🎉"},
		{"spaces", ` { "id" : "chatcmpl-1" , "model" : "m" , "choices" : [ { "index" : 0 , "delta" : { "content" : "Hi" } } ] } `, true, "Hi"},
		{"other key order", `{"choices":[{"finish_reason":null,"delta":{"content":"Hi"},"index":0}],"model":"m","id":"i","created":1}`, true, "Hi"},
		{"azure", `{"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},"self_harm":{"filtered":false,"severity":"safe"}},"delta":{"content":"Hi"},"finish_reason":null,"index":0,"logprobs":null}],"created":1.7e9,"id":"chatcmpl-1","model":"gpt-4o-2024-05-13","object":"chat.completion.chunk","system_fingerprint":"fp_x"}`, true, "Hi"},
		{"no id", `{"choices":[{"index":0,"delta":{"content":"Hi"}}]}`, true, "Hi"},

		{"no choices", chunkHead + `"choices":[],"usage":null}`, false, ""},
		{"two choices", chunkHead + `"choices":[{"index":0,"delta":{"content":"a"}},{"index":1,"delta":{"content":"b"}}]}`, false, ""},
		{"index 1", chunkHead + `"choices":[{"index":1,"delta":{"content":"a"}}]}`, false, ""},
		{"finish", chunkHead + `"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`, false, ""},
		{"usage", chunkHead + `"choices":[{"index":0,"delta":{"content":"a"}}],"usage":{"prompt_tokens":1}}`, false, ""},
		{"tool calls", chunkHead + `"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{"}}]}}]}`, false, ""},
		{"reasoning", chunkHead + `"choices":[{"index":0,"delta":{"reasoning_content":"hmm"}}]}`, false, ""},
		{"refusal", chunkHead + `"choices":[{"index":0,"delta":{"refusal":"no"}}]}`, false, ""},
		{"error", `{"error":{"message":"m","type":"t"}}`, false, ""},
		{"unknown key", chunkHead + `"choices":[{"index":0,"delta":{"content":"a"}}],"x":1}`, false, ""},
		{"folded key", `{"ID":"i","choices":[{"index":0,"delta":{"content":"a"}}]}`, false, ""},
		{"escaped key", `{"\u0069d":"i","choices":[{"index":0,"delta":{"content":"a"}}]}`, false, ""},
		{"duplicate key", `{"id":"i","id":"j","choices":[{"index":0,"delta":{"content":"a"}}]}`, false, ""},
		{"duplicate content", `{"choices":[{"index":0,"delta":{"content":"a","content":"b"}}]}`, false, ""},
		{"trailing", textChunk(`"a"`) + `x`, false, ""},
		{"trailing comma", `{"choices":[{"index":0,"delta":{"content":"a"}}],}`, false, ""},
		{"leading zero", `{"created":01,"choices":[{"index":0,"delta":{"content":"a"}}]}`, false, ""},
		{"bad number", `{"created":1.,"choices":[{"index":0,"delta":{"content":"a"}}]}`, false, ""},
		{"control char", textChunk("\"a\nb\""), false, ""},
		{"bad escape", textChunk(`"\x"`), false, ""},
		{"short unicode escape", textChunk(`"\u00e"`), false, ""},
		{"lone high surrogate", textChunk(`"\ud83c"`), false, ""},
		{"lone low surrogate", textChunk(`"\udf89x"`), false, ""},
		{"high then not low", textChunk(`"\ud83c\u0041"`), false, ""},
		{"invalid utf8", textChunk("\"\xff\""), false, ""},
		{"invalid utf8 before escape", textChunk("\"\xe6\\n\""), false, ""},
		{"encoded surrogate", textChunk("\"\xed\xa0\x80\""), false, ""},
		{"content number", textChunk(`1`), false, ""},
		{"unterminated", textChunk(`"abc`)[:len(textChunk(`"abc`))-20], false, ""},
		{"not an object", `[]`, false, ""},
		{"empty", ``, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok := checkFast(t, tt.data)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if ok && c.Choices[0].Delta.Content != tt.content {
				t.Errorf("content = %q, want %q", c.Choices[0].Delta.Content, tt.content)
			}
		})
	}
}

// TestFastChunkInvalidIgnored checks that invalid UTF-8 in an ignored value
// is read as encoding/json reads it: ignored.
func TestFastChunkInvalidIgnored(t *testing.T) {
	data := "{\"obfuscation\":\"\xff\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"\xfe\",\"content\":\"a\"}}]}"
	if _, ok := checkFast(t, data); !ok {
		t.Fatal("refused")
	}
}

// TestStreamDecoderFastAndSlow checks that chunks on both paths, one after
// the other, decode to the same events.
func TestStreamDecoderFastAndSlow(t *testing.T) {
	chunks := []string{
		chunkHead + `"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}`,
		textChunk(`"Hello"`),
		chunkHead + `"choices":[{"index":0,"delta":{"content":"\ud83c!"},"finish_reason":null}]}`,
		textChunk(`"\n\u00e9"`),
		chunkHead + `"choices":[{"index":0,"delta":{"reasoning_content":"hmm"},"finish_reason":null}]}`,
		`{"model":"other","choices":[{"index":0,"delta":{"content":" there"}}]}`,
		chunkHead + `"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"length"}],"usage":null}`,
		chunkHead + `"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}`,
		`[DONE]`,
	}
	var wire strings.Builder
	for _, c := range chunks {
		wire.WriteString("data: " + c + "\n\n")
	}
	d := &streamDecoder{ctx: t.Context(), provider: "test", r: sse.NewReader(strings.NewReader(wire.String()))}
	var got []sluice.Event
	for ev, err := range sluice.NewStream(d.next, nil).All() {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev)
	}
	want := []sluice.Event{
		{Type: sluice.EventStart, ID: "chatcmpl-1", Model: "gpt-4o-mini"},
		{Type: sluice.EventText, Text: "Hello"},
		{Type: sluice.EventText, Text: "\ufffd!"},
		{Type: sluice.EventText, Text: "\né"},
		{Type: sluice.EventThinking, Text: "hmm"},
		{Type: sluice.EventText, Text: " there"},
		{Type: sluice.EventUsage, Usage: sluice.Usage{InputTokens: 3, OutputTokens: 4}},
		{Type: sluice.EventFinish, FinishReason: sluice.FinishLength},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// FuzzFastChunk checks fastChunk against encoding/json: whatever it accepts,
// encoding/json reads the same way, and what it refuses it leaves alone.
func FuzzFastChunk(f *testing.F) {
	seeds := []string{
		textChunk(`"Hello"`),
		textChunk(`"a\"b\\c\/d\n\t\r\b\f\u00e9\ud83c\udf89\u0000"`),
		textChunk(`"\ud83c\u0041\udf89\uDBFF\uDFFF\uD800\uDC00"`),
		textChunk("\"日本語\xff\xed\xa0\x80\""),
		textChunk(`null`),
		chunkHead + `"system_fingerprint":null,"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}`,
		chunkHead + `"choices":[{"index":0,"delta":{"content":"a","reasoning_content":null,"reasoning":null},"finish_reason":null}]}`,
		` { "id" : "chatcmpl-1" , "model" : "m" , "choices" : [ { "index" : 0 , "delta" : { "content" : "Hi" } } ] } `,
		`{"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},"x":[1,-0.5e+3,true,null,"s",[]]},"delta":{"content":"Hi"},"finish_reason":null,"index":0,"logprobs":{"content":[]}}],"created":1.7e9,"id":"chatcmpl-1","model":"gpt-4o-2024-05-13","object":"chat.completion.chunk","system_fingerprint":"fp_x"}`,
		chunkHead + `"choices":[{"index":0,"delta":{"content":"a"}},{"index":1,"delta":{"content":"b"}}]}`,
		chunkHead + `"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":1}}`,
		chunkHead + `"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{"}}]}}]}`,
		`{"ID":"i","Model":"m","choices":[{"INDEX":0,"Delta":{"Content":"a","reasoning":1}}]}`,
		`{"id":"i","id":"j","choices":[{"index":0,"delta":{"content":"a","content":"b"}}],"choices":[]}`,
		`{"error":{"message":"m","type":"t"}}`,
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		checkFast(t, data)
	})
}
