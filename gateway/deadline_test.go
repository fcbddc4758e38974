package gateway_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	anthropicv2 "github.com/anthropics/anthropic-sdk-go/v2"
	anoptionv2 "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	oaoption "github.com/openai/openai-go/v3/option"

	"github.com/sluice-gw/sluice/gateway"
)

// deadlineGateway serves models whose simulated upstreams break the
// deadlines: "stall" stops after 3 chunks (idle 300ms), "slow-start" takes 5s
// to its first token (first_token 200ms).
func deadlineGateway(t *testing.T) *httptest.Server {
	t.Helper()
	return gatewayFromYAML(t, `
providers:
  - {name: stall, type: sim, fault: "stall_after=3", timeouts: {idle: 300ms}}
  - {name: slow, type: sim, fault: "ttft=5s"}
models:
  - {name: stall, targets: [{provider: stall, model: m}]}
  - {name: slow-start, targets: [{provider: slow, model: m}], timeouts: {first_token: 200ms}}
`, gateway.Options{})
}

// TestDeadlinesWire checks the wire: an idle stall after bytes went out ends
// the stream with an error event in the client's dialect; a first token that
// never comes is a plain 504 before any byte.
func TestDeadlinesWire(t *testing.T) {
	srv := deadlineGateway(t)
	h := &harness{gw: srv}
	for _, tc := range []struct {
		name, path, body string
		status           int
		want             []string
		notWant          string
	}{
		{"openai stall", "/v1/chat/completions", `{"model":"stall","stream":true,"messages":[{"role":"user","content":"hi"}]}`, 200,
			[]string{`"content":`, `"code":"upstream_timeout"`}, "[DONE]"},
		{"anthropic stall", "/v1/messages", `{"model":"stall","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hi"}]}`, 200,
			[]string{"text_delta", "event: error\n"}, "message_stop"},
		{"openai slow first token", "/v1/chat/completions", `{"model":"slow-start","stream":true,"messages":[{"role":"user","content":"hi"}]}`, 504,
			[]string{`"code":"upstream_timeout"`}, "data:"},
		{"anthropic slow first token", "/v1/messages", `{"model":"slow-start","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hi"}]}`, 504,
			[]string{`"type":"error"`}, "event:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := h.post(t, t.Context(), tc.path, tc.body)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body := string(b)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body:\n%s", resp.StatusCode, tc.status, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("body lacks %q:\n%s", w, body)
				}
			}
			if strings.Contains(body, tc.notWant) {
				t.Errorf("body has %q:\n%s", tc.notWant, body)
			}
		})
	}
}

// TestDeadlinesSDK checks that the official SDKs surface a stalled stream
// as an error, not as a normal end.
func TestDeadlinesSDK(t *testing.T) {
	srv := deadlineGateway(t)

	oa := openai.NewClient(oaoption.WithBaseURL(srv.URL+"/v1"), oaoption.WithAPIKey("k"), oaoption.WithMaxRetries(0))
	stream := oa.Chat.Completions.NewStreaming(t.Context(), openai.ChatCompletionNewParams{
		Model:    "stall",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	})
	var text strings.Builder
	for stream.Next() {
		for _, c := range stream.Current().Choices {
			text.WriteString(c.Delta.Content)
		}
	}
	if stream.Err() == nil || text.Len() == 0 {
		t.Errorf("openai-go: err = %v after %q; want an error after partial text", stream.Err(), text.String())
	}
	stream.Close()

	an := anthropicv2.NewClient(anoptionv2.WithoutEnvironmentDefaults(), anoptionv2.WithBaseURL(srv.URL), anoptionv2.WithAPIKey("k"), anoptionv2.WithMaxRetries(0))
	as := an.Messages.NewStreaming(t.Context(), anthropicv2.MessageNewParams{
		Model: "stall", MaxTokens: 100,
		Messages: []anthropicv2.MessageParam{anthropicv2.NewUserMessage(anthropicv2.NewTextBlock("hi"))},
	})
	n := 0
	for as.Next() {
		n++
	}
	if as.Err() == nil || n == 0 {
		t.Errorf("anthropic-sdk-go: err = %v after %d events; want an error after some events", as.Err(), n)
	}
	as.Close()
}
