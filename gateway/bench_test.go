package gateway_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/pipeline"
)

// newSimGateway returns a gateway over the in-process simulator answering
// tokens tokens per call.
func newSimGateway(b *testing.B, tokens int) *httptest.Server {
	b.Helper()
	p := pipelineFromYAML(b, fmt.Sprintf("providers:\n  - {name: s, type: sim, tokens: %d}\nmodels:\n  - {name: m, targets: [{provider: s, model: m}]}\n", tokens), pipeline.Options{})
	srv := httptest.NewServer(gateway.NewServer(nil, p, gateway.Options{}))
	b.Cleanup(srv.Close)
	return srv
}

// benchmarkPath measures one request through the HTTP server to the
// in-process simulator and back, client included.
func benchmarkPath(b *testing.B, path, body string, tokens int) {
	srv := newSimGateway(b, tokens)
	client := srv.Client()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

const chatBody = `{"model":"m","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello to the benchmark."}]}`

func BenchmarkOpenAIComplete(b *testing.B) {
	benchmarkPath(b, "/v1/chat/completions", chatBody, 20)
}

func BenchmarkOpenAIStream100(b *testing.B) {
	benchmarkPath(b, "/v1/chat/completions", strings.Replace(chatBody, `"model":"m"`, `"model":"m","stream":true,"stream_options":{"include_usage":true}`, 1), 100)
}

func BenchmarkAnthropicComplete(b *testing.B) {
	benchmarkPath(b, "/v1/messages", `{"model":"m","max_tokens":1000,"system":"You are terse.","messages":[{"role":"user","content":"Say hello to the benchmark."}]}`, 20)
}

func BenchmarkAnthropicStream100(b *testing.B) {
	benchmarkPath(b, "/v1/messages", `{"model":"m","max_tokens":1000,"stream":true,"system":"You are terse.","messages":[{"role":"user","content":"Say hello to the benchmark."}]}`, 100)
}
