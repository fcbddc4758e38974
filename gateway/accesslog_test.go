package gateway_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/pipeline"
)

// syncBuffer is a bytes.Buffer safe for the handlers' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAccessLogUsage checks that the access log line of a call carries its
// usage: as reported for a complete stream, and for a stream cut short the
// input known and the output estimated from what was sent.
func TestAccessLogUsage(t *testing.T) {
	p := pipelineFromYAML(t, `
providers:
  - {name: s, type: sim, tokens: 40}
  - {name: drops, type: sim, tokens: 40, fault: drop_after=20}
models:
  - {name: ok, targets: [{provider: s, model: m}]}
  - {name: drops, targets: [{provider: drops, model: m}]}
`, pipeline.Options{})
	var logs syncBuffer
	srv := httptest.NewServer(gateway.NewServer(slog.New(slog.NewJSONHandler(&logs, nil)), p, gateway.Options{}))
	defer srv.Close()
	h := &harness{gw: srv}
	for _, model := range []string{"ok", "drops"} {
		resp := h.post(t, t.Context(), "/v1/chat/completions", `{"model":"`+model+`","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	lines := map[string]map[string]any{}
	waitFor(t, "two access log lines", func() bool {
		for _, l := range strings.Split(logs.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "request" {
				lines[m["route"].(string)] = m
			}
		}
		return len(lines) == 2
	})
	if l := lines["ok"]; l["output_tokens"] != 40.0 || l["input_tokens"].(float64) == 0 || l["output_estimated"] != nil || l["provider"] != "s" || l["attempts"] != 1.0 {
		t.Errorf("complete stream: %v", l)
	}
	if l := lines["drops"]; l["output_estimated"] != true || l["output_tokens"].(float64) < 15 || l["input_tokens"].(float64) == 0 {
		t.Errorf("dropped stream: %v", l)
	}
}
