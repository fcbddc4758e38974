package gateway_test

import (
	"io"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	oaoption "github.com/openai/openai-go/v3/option"

	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/sim"
)

// TestMidStreamFailover breaks streams after their tenth token (a dropped
// connection, a stall past the idle deadline) on routes with failover:
// mid_stream and checks that each client dialect sees one stream: the ten
// tokens, the continuation from the next target, a normal end whose last
// event reports the failover, and usage covering both calls.
func TestMidStreamFailover(t *testing.T) {
	up := sim.NewServer(sim.Options{Tokens: 30})
	ups := httptest.NewServer(up)
	t.Cleanup(ups.Close)
	gw := gatewayFromYAML(t, `
providers:
  - {name: drops, type: openai, base_url: `+ups.URL+`/v1, api_key: k, headers: {X-Sim-Fault: "drop_after=10"}}
  - {name: stalls, type: anthropic, base_url: `+ups.URL+`, api_key: k, headers: {X-Sim-Fault: "stall_after=10"}, timeouts: {idle: 200ms}}
  - {name: backup-oa, type: openai, base_url: `+ups.URL+`/v1, api_key: k}
  - {name: backup-an, type: anthropic, base_url: `+ups.URL+`, api_key: k}
models:
  - {name: drop-then-oa, failover: mid_stream, targets: [{provider: drops, model: a}, {provider: backup-oa, model: b}]}
  - {name: stall-then-an, failover: mid_stream, targets: [{provider: stalls, model: a}, {provider: backup-an, model: b}]}
  - {name: no-failover, targets: [{provider: drops, model: a}, {provider: backup-oa, model: b}]}
`, gateway.Options{})
	for _, model := range []string{"drop-then-oa", "stall-then-an"} {
		for _, d := range []struct{ name, path, body, last, ext string }{
			{"openai", "/v1/chat/completions", `{"model":"` + model + `","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`, "[DONE]", `"finish_reason":"stop"}],"usage":null,"sluice":{"failovers":1}}`},
			{"anthropic", "/v1/messages", `{"model":"` + model + `","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hi"}]}`, `{"type":"message_stop"}`, `,"sluice":{"failovers":1}}`},
		} {
			t.Run(model+"/"+d.name, func(t *testing.T) {
				c := openStream(t, "POST", gw.URL+d.path, d.body)
				if c.resp.StatusCode != 200 {
					t.Fatalf("status %d", c.resp.StatusCode)
				}
				c.read(t, 0)
				checkSeq(t, c.ids, 1)
				if last := c.data[len(c.data)-1]; last != d.last {
					t.Fatalf("stream ends with %q, want %q", last, d.last)
				}
				all := strings.Join(c.data, "\n")
				if !strings.Contains(all, d.ext) {
					t.Errorf("no failover report %q in:\n%s", d.ext, all)
				}
				// Usage covers both calls: the second's 30 tokens and the
				// first's, reported or estimated.
				m := regexp.MustCompile(`"(completion|output)_tokens":(\d+)`).FindAllStringSubmatch(all, -1)
				if len(m) == 0 {
					t.Fatal("no usage in the stream")
				}
				if n, _ := strconv.Atoi(m[len(m)-1][2]); n < 40 {
					t.Errorf("final output tokens %d, want at least 40", n)
				}
				starts := strings.Count(all, `"role":"assistant","content":""`) + strings.Count(all, `"type":"message_start"`)
				if starts != 1 {
					t.Errorf("%d stream starts, want 1", starts)
				}
				// Ten tokens from the first target, then the second's answer
				// (the simulator answers 30 tokens whatever it is asked). An
				// Anthropic target continues the prefill with its spacing;
				// an OpenAI target, asked to continue, may join the last
				// word of the first part to its first.
				if model == "stall-then-an" {
					checkText(t, d.name, c.data, 40)
				} else if n := len(strings.Fields(streamText(d.name, c.data))); n != 39 && n != 40 {
					t.Errorf("the stream's text has %d words, want 39 or 40", n)
				}
			})
		}
	}
	waitFor(t, "upstream streams to close", func() bool { return up.OpenStreams() == 0 })

	// Without failover the same break ends the stream with an error.
	c := openStream(t, "POST", gw.URL+"/v1/chat/completions", `{"model":"no-failover","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	b, _ := io.ReadAll(c.resp.Body)
	if !strings.Contains(string(b), `"code":"stream_interrupted"`) || strings.Contains(string(b), "[DONE]") {
		t.Errorf("without failover: %s", b)
	}

	// The official SDK reads a failed-over stream as one normal answer.
	oa := openai.NewClient(oaoption.WithBaseURL(gw.URL+"/v1"), oaoption.WithAPIKey("k"), oaoption.WithMaxRetries(0), oaoption.WithRequestTimeout(10*time.Second))
	stream := oa.Chat.Completions.NewStreaming(t.Context(), openai.ChatCompletionNewParams{
		Model: "stall-then-an", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	})
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil || len(acc.Choices) == 0 || len(strings.Fields(acc.Choices[0].Message.Content)) != 40 || acc.Choices[0].FinishReason != "stop" {
		t.Errorf("openai-go: err %v, choices %+v", err, acc.Choices)
	}
	stream.Close()
}
