package anthropic

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	anthropicv1 "github.com/anthropics/anthropic-sdk-go"
	optionv1 "github.com/anthropics/anthropic-sdk-go/option"
	anthropicv2 "github.com/anthropics/anthropic-sdk-go/v2"
	optionv2 "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/sse"
)

// codecServer serves POST /v1/messages with this package's server codec: the
// request is decoded and answered with a fixed response or richStream.
type codecServer struct {
	mu   sync.Mutex
	key  string
	req  *sluice.Request
	errs []error
}

func (c *codecServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := CheckVersion(r.Header); err != nil {
		WriteError(w, err)
		return
	}
	body, _ := io.ReadAll(r.Body)
	req, err := DecodeRequest(body)
	c.mu.Lock()
	c.key = APIKey(r.Header)
	c.req = req
	c.mu.Unlock()
	if err != nil {
		WriteError(w, sluice.AsError(err))
		return
	}
	if !req.Stream {
		b, err := MarshalResponse(&sluice.Response{
			ID:           "msg_1",
			Model:        req.Model,
			Message:      sluice.Message{Role: sluice.RoleAssistant, Parts: []sluice.Part{sluice.TextPart("Bonjour"), {Type: sluice.PartToolCall, ToolCallID: "toolu_1", ToolName: "get", Arguments: `{"a":1}`}}},
			FinishReason: sluice.FinishToolCalls,
			Usage:        sluice.Usage{InputTokens: 30, OutputTokens: 5, CacheReadTokens: 20},
		})
		if err != nil {
			WriteError(w, sluice.AsError(err))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
		return
	}
	sse.SetHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	enc := NewStreamEncoder(sse.NewWriter(w), "msg_gw", req.Model)
	enc.Ping()
	for _, ev := range richStream {
		if err := enc.Event(ev); err != nil {
			c.mu.Lock()
			c.errs = append(c.errs, err)
			c.mu.Unlock()
			return
		}
	}
}

func (c *codecServer) seen() (string, *sluice.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.key, c.req
}

// TestSDKClients drives the server codec with the official Go SDKs, v1
// (x-api-key, 2023-06-01) and v2 (Bearer, a newer version), and checks what
// their own decoders and accumulators make of the answers.
func TestSDKClients(t *testing.T) {
	cs := &codecServer{}
	srv := httptest.NewServer(cs)
	t.Cleanup(srv.Close)
	ctx := context.Background()

	type result struct {
		text, toolInput, thinking, signature string
		stopReason                           string
		inTokens, outTokens, cacheRead       int64
		blocks                               int
	}
	wantPlain := result{text: "Bonjour", toolInput: `{"a":1}`, stopReason: "tool_use", inTokens: 10, outTokens: 5, cacheRead: 20, blocks: 2}
	wantStream := result{text: "Checking the \"weather\".\n", toolInput: `{"tz":"CET"}`, thinking: "Let me think.", signature: "EqQBCgIYAh==",
		stopReason: "tool_use", inTokens: 25, outTokens: 42, cacheRead: 10, blocks: 4}

	t.Run("v1", func(t *testing.T) {
		client := anthropicv1.NewClient(optionv1.WithBaseURL(srv.URL), optionv1.WithAPIKey("sk-v1"),
			optionv1.WithHTTPClient(srv.Client()), optionv1.WithMaxRetries(0))
		params := anthropicv1.MessageNewParams{
			Model:     "claude-test",
			MaxTokens: 100,
			System:    []anthropicv1.TextBlockParam{{Text: "be brief"}},
			Messages:  []anthropicv1.MessageParam{anthropicv1.NewUserMessage(anthropicv1.NewTextBlock("hi"))},
		}
		conv := func(m *anthropicv1.Message) result {
			var r result
			for _, b := range m.Content {
				switch b.Type {
				case "text":
					r.text = b.Text
				case "tool_use":
					r.toolInput = string(b.Input)
				case "thinking":
					r.thinking, r.signature = b.Thinking, b.Signature
				}
			}
			r.stopReason = string(m.StopReason)
			r.inTokens, r.outTokens, r.cacheRead = m.Usage.InputTokens, m.Usage.OutputTokens, m.Usage.CacheReadInputTokens
			r.blocks = len(m.Content)
			return r
		}
		msg, err := client.Messages.New(ctx, params)
		if err != nil {
			t.Fatal(err)
		}
		if got := conv(msg); got != wantPlain {
			t.Errorf("message = %+v, want %+v", got, wantPlain)
		}
		key, req := cs.seen()
		if key != "sk-v1" || req == nil || req.SystemText() != "be brief" || req.MaxOutputTokens != 100 {
			t.Errorf("server saw key %q, request %+v", key, req)
		}

		stream := client.Messages.NewStreaming(ctx, params)
		defer stream.Close()
		var acc anthropicv1.Message
		for stream.Next() {
			if err := acc.Accumulate(stream.Current()); err != nil {
				t.Fatal(err)
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if got := conv(&acc); got != wantStream {
			t.Errorf("accumulated = %+v, want %+v", got, wantStream)
		}
	})

	t.Run("v2", func(t *testing.T) {
		client := anthropicv2.NewClient(optionv2.WithBaseURL(srv.URL), optionv2.WithAPIKey("sk-v2"),
			optionv2.WithHTTPClient(srv.Client()), optionv2.WithMaxRetries(0))
		params := anthropicv2.MessageNewParams{
			Model:     "claude-test",
			MaxTokens: 100,
			Messages:  []anthropicv2.MessageParam{anthropicv2.NewUserMessage(anthropicv2.NewTextBlock("hi"))},
		}
		conv := func(m *anthropicv2.Message) result {
			var r result
			for _, b := range m.Content {
				switch b.Type {
				case "text":
					r.text = b.Text
				case "tool_use":
					r.toolInput = string(b.Input)
				case "thinking":
					r.thinking, r.signature = b.Thinking, b.Signature
				}
			}
			r.stopReason = string(m.StopReason)
			r.inTokens, r.outTokens, r.cacheRead = m.Usage.InputTokens, m.Usage.OutputTokens, m.Usage.CacheReadInputTokens
			r.blocks = len(m.Content)
			return r
		}
		msg, err := client.Messages.New(ctx, params)
		if err != nil {
			t.Fatal(err)
		}
		if got := conv(msg); got != wantPlain {
			t.Errorf("message = %+v, want %+v", got, wantPlain)
		}
		if key, _ := cs.seen(); key != "sk-v2" {
			t.Errorf("server saw key %q", key)
		}

		stream := client.Messages.NewStreaming(ctx, params)
		defer stream.Close()
		var acc anthropicv2.Message
		for stream.Next() {
			if err := acc.Accumulate(stream.Current()); err != nil {
				t.Fatal(err)
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if got := conv(&acc); got != wantStream {
			t.Errorf("accumulated = %+v, want %+v", got, wantStream)
		}
	})

	t.Run("v2 error", func(t *testing.T) {
		client := anthropicv2.NewClient(optionv2.WithBaseURL(srv.URL), optionv2.WithAPIKey("sk-v2"),
			optionv2.WithHTTPClient(srv.Client()), optionv2.WithMaxRetries(0))
		_, err := client.Messages.New(ctx, anthropicv2.MessageNewParams{Model: "claude-test", MaxTokens: 100})
		if err == nil {
			t.Fatal("no error for a request without messages")
		}
		apiErr, ok := err.(*anthropicv2.Error)
		if !ok {
			t.Fatalf("err = %T %v", err, err)
		}
		if apiErr.StatusCode != http.StatusBadRequest {
			t.Errorf("status = %d", apiErr.StatusCode)
		}
	})
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for _, err := range cs.errs {
		t.Errorf("server: %v", err)
	}
}
