package gateway_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/pipeline"
	"github.com/sluice-gw/sluice/telemetry"
)

// BenchmarkInstrumentation measures what the metrics, the request log line
// and tracing (every span sampled, batched to an exporter that drops them)
// add to one request through the gateway to the in-process simulator,
// plain and streamed (100 chunks).
func BenchmarkInstrumentation(b *testing.B) {
	stream := strings.Replace(chatBody, `"model":"m"`, `"model":"m","stream":true,"stream_options":{"include_usage":true}`, 1)
	for _, c := range []struct {
		name                  string
		metrics, logs, traces bool
	}{
		{"none", false, false, false},
		{"metrics", true, false, false},
		{"metrics+log", true, true, false},
		{"metrics+log+trace", true, true, true},
	} {
		for _, call := range []struct {
			name, body string
			tokens     int
		}{{"complete", chatBody, 20}, {"stream100", stream, 100}} {
			b.Run(c.name+"/"+call.name, func(b *testing.B) {
				var (
					popts  pipeline.Options
					gopts  gateway.Options
					logger *slog.Logger
				)
				if c.metrics {
					m, err := telemetry.New(prometheus.NewRegistry())
					if err != nil {
						b.Fatal(err)
					}
					popts.Metrics = m
				}
				if c.logs {
					logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
				}
				if c.traces {
					tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()), sdktrace.WithSampler(sdktrace.AlwaysSample()))
					b.Cleanup(func() { tp.Shutdown(context.Background()) })
					popts.Tracing = telemetry.NewTracingWith(tp)
					gopts.Tracing = popts.Tracing
				}
				p := pipelineFromYAML(b, "providers:\n  - {name: s, type: sim, tokens: "+itoa(call.tokens)+"}\nmodels:\n  - {name: m, targets: [{provider: s, model: m}]}\n", popts)
				srv := httptest.NewServer(gateway.NewServer(logger, p, gopts))
				b.Cleanup(srv.Close)
				client := srv.Client()
				b.ReportAllocs()
				for b.Loop() {
					req, _ := http.NewRequest("POST", srv.URL+"/v1/chat/completions", strings.NewReader(call.body))
					req.Header.Set("Content-Type", "application/json")
					resp, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Fatalf("status %d", resp.StatusCode)
					}
				}
			})
		}
	}
}
