package gateway_test

import (
	"io"
	"strings"
	"testing"
	"time"

	anthropicv2 "github.com/anthropics/anthropic-sdk-go/v2"
	anoptionv2 "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	oaoption "github.com/openai/openai-go/v3/option"

	"github.com/sluice-gw/sluice/gateway"
)

// TestHeartbeats checks that silences on a stream carry SSE comments and that
// the official SDKs read through them to a normal end.
func TestHeartbeats(t *testing.T) {
	srv := gatewayFromYAML(t, `
providers:
  - {name: slow, type: sim, fault: "chunk_delay=120ms", tokens: 4}
models:
  - {name: slow, targets: [{provider: slow, model: m}]}
`, gateway.Options{Heartbeat: 20 * time.Millisecond})

	h := &harness{gw: srv}
	resp := h.post(t, t.Context(), "/v1/chat/completions", `{"model":"slow","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if body := string(b); !strings.Contains(body, "\n:\n\n") || !strings.HasSuffix(body, "data: [DONE]\n\n") {
		t.Fatalf("no heartbeat comment in a slow stream, or no clean end:\n%s", body)
	}

	oa := openai.NewClient(oaoption.WithBaseURL(srv.URL+"/v1"), oaoption.WithAPIKey("k"), oaoption.WithMaxRetries(0))
	stream := oa.Chat.Completions.NewStreaming(t.Context(), openai.ChatCompletionNewParams{
		Model: "slow", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	})
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil || len(acc.Choices) == 0 || acc.Choices[0].Message.Content == "" {
		t.Errorf("openai-go through heartbeats: err %v, choices %+v", err, acc.Choices)
	}
	stream.Close()

	an := anthropicv2.NewClient(anoptionv2.WithoutEnvironmentDefaults(), anoptionv2.WithBaseURL(srv.URL), anoptionv2.WithAPIKey("k"), anoptionv2.WithMaxRetries(0))
	as := an.Messages.NewStreaming(t.Context(), anthropicv2.MessageNewParams{
		Model: "slow", MaxTokens: 100,
		Messages: []anthropicv2.MessageParam{anthropicv2.NewUserMessage(anthropicv2.NewTextBlock("hi"))},
	})
	var msg anthropicv2.Message
	for as.Next() {
		if err := msg.Accumulate(as.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := as.Err(); err != nil || msg.StopReason != "end_turn" || len(msg.Content) == 0 {
		t.Errorf("anthropic-sdk-go through heartbeats: err %v, stop %q, content %d", err, msg.StopReason, len(msg.Content))
	}
	as.Close()
}

// TestHeartbeatBeforeFirstToken checks that a model slow to its first token
// gets its stream started by the heartbeat, so that proxies see traffic;
// a first-token deadline that fires after that ends the stream with an error
// event instead of a plain 504.
func TestHeartbeatBeforeFirstToken(t *testing.T) {
	srv := gatewayFromYAML(t, `
providers:
  - {name: thinking, type: sim, fault: "ttft=300ms", tokens: 3}
  - {name: stuck, type: sim, fault: "ttft=5s"}
models:
  - {name: thinking, targets: [{provider: thinking, model: m}]}
  - {name: stuck, targets: [{provider: stuck, model: m}], timeouts: {first_token: 300ms}}
`, gateway.Options{Heartbeat: 20 * time.Millisecond})
	h := &harness{gw: srv}
	for _, tc := range []struct{ model, want, notWant string }{
		{"thinking", "data: [DONE]\n\n", `"error"`},
		{"stuck", `"code":"upstream_timeout"`, "[DONE]"},
	} {
		resp := h.post(t, t.Context(), "/v1/chat/completions", `{"model":"`+tc.model+`","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body := string(b)
		if resp.StatusCode != 200 || !strings.HasPrefix(body, ":\n\n") || !strings.Contains(body, tc.want) || strings.Contains(body, tc.notWant) {
			t.Errorf("%s: status %d, want a stream opened by a heartbeat, with %q and without %q:\n%s", tc.model, resp.StatusCode, tc.want, tc.notWant, body)
		}
	}
}
