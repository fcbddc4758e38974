package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/guard"
	"github.com/sluice-gw/sluice/pipeline"
	"github.com/sluice-gw/sluice/sim"
	"github.com/sluice-gw/sluice/telemetry"
)

// observedConfig is a gateway config over a simulator server (both
// provider dialects), a failing target, a target whose first answer is
// prose, and a route with a tight prompt limit.
func observedConfig(upstream string) string {
	return `
providers:
  - {name: oa, type: openai, base_url: ` + upstream + `/v1, api_key: test}
  - {name: an, type: anthropic, base_url: ` + upstream + `, api_key: test}
  - {name: down, type: sim, fault: "status=503"}
  - {name: prose-once, type: sim, fault: "prose,attempts=1"}
models:
  - {name: oa-model, targets: [{provider: oa, model: gpt-4o-mini}]}
  - {name: an-model, targets: [{provider: an, model: claude-opus-4-5}]}
  - {name: fallback, targets: [{provider: down, model: m}, {provider: oa, model: gpt-4o-mini}]}
  - {name: dead, targets: [{provider: down, model: m}]}
  - {name: json, targets: [{provider: prose-once, model: m}]}
  - {name: tight, targets: [{provider: oa, model: gpt-4o-mini}], limits: {max_prompt_tokens: 3}}
`
}

// TestMetricsAfterRun runs a scripted mix of calls through the gateway and
// checks what every metric says of it: counts by route and code, histogram
// sample counts, tokens and cost summed from the answers, attempts by
// outcome, fallbacks, refusals, structured failures and open streams.
func TestMetricsAfterRun(t *testing.T) {
	up := httptest.NewServer(sim.NewServer(sim.Options{}))
	defer up.Close()
	reg := prometheus.NewRegistry()
	m, err := telemetry.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	p := pipelineFromYAML(t, observedConfig(up.URL), pipeline.Options{Metrics: m})
	gw := httptest.NewServer(gateway.NewServer(nil, p, gateway.Options{}))
	defer gw.Close()

	pricing := guard.NewPricing(nil)
	var (
		oaUsage, anUsage sluice.Usage
		wantCost         float64
		wantGaps         int
	)
	call := func(path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", gw.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Anthropic-Version", "2023-06-01")
		resp, err := gw.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	chat := func(model, extra string) string {
		return `{"model":"` + model + `","messages":[{"role":"user","content":"Tell me about rivers."}]` + extra + `}`
	}
	for range 4 {
		status, body := call("/v1/chat/completions", chat("oa-model", ""))
		if status != 200 {
			t.Fatalf("oa-model: %d %s", status, body)
		}
		u := openaiUsage(t, body)
		oaUsage = oaUsage.Add(u)
		wantCost += pricing.Cost("gpt-4o-mini", u)
	}
	for range 3 {
		status, body := call("/v1/messages", `{"model":"an-model","max_tokens":200,"stream":true,"messages":[{"role":"user","content":"Tell me about rivers."}]}`)
		if status != 200 {
			t.Fatalf("an-model: %d %s", status, body)
		}
		u, deltas := anthropicStreamUsage(t, body)
		if deltas < 2 {
			t.Fatalf("a stream of %d deltas cannot show the time between tokens", deltas)
		}
		anUsage = anUsage.Add(u)
		wantCost += pricing.Cost("claude-opus-4-5", u)
		wantGaps += deltas - 1
	}
	for range 2 {
		status, body := call("/v1/chat/completions", chat("fallback", ""))
		if status != 200 {
			t.Fatalf("fallback: %d %s", status, body)
		}
		u := openaiUsage(t, body)
		wantCost += pricing.Cost("gpt-4o-mini", u)
	}
	if status, _ := call("/v1/chat/completions", chat("dead", "")); status != 503 {
		t.Errorf("dead: status %d, want 503", status)
	}
	if status, _ := call("/v1/chat/completions", chat("tight", "")); status != 400 {
		t.Errorf("tight: status %d, want 400 (prompt_too_long)", status)
	}
	schema := `,"response_format":{"type":"json_schema","json_schema":{"name":"city","schema":{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}}}`
	for range 2 {
		if status, body := call("/v1/chat/completions", chat("json", schema)); status != 200 {
			t.Fatalf("json: %d %s", status, body)
		}
	}

	mfs := gather(t, reg)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"sluice_requests_total", map[string]string{"route": "oa-model", "code": "ok", "dialect": "openai", "stream": "false", "provider": "oa", "model": "gpt-4o-mini"}, 4},
		{"sluice_requests_total", map[string]string{"route": "an-model", "code": "ok", "dialect": "anthropic", "stream": "true"}, 3},
		{"sluice_requests_total", map[string]string{"route": "fallback", "code": "ok", "provider": "oa"}, 2},
		{"sluice_requests_total", map[string]string{"route": "dead", "code": "upstream_unavailable"}, 1},
		{"sluice_requests_total", map[string]string{"route": "tight", "code": "prompt_too_long"}, 1},
		{"sluice_requests_total", map[string]string{"route": "json", "code": "ok"}, 2},
		{"sluice_requests_total", nil, 13},
		{"sluice_request_duration_seconds", nil, 13}, // samples
		{"sluice_overhead_seconds", nil, 13},
		{"sluice_time_to_first_token_seconds", map[string]string{"route": "an-model", "provider": "an"}, 3},
		{"sluice_time_between_tokens_seconds", map[string]string{"route": "an-model", "provider": "an"}, float64(wantGaps)},
		{"sluice_tokens_total", map[string]string{"route": "oa-model", "direction": "input"}, float64(oaUsage.InputTokens)},
		{"sluice_tokens_total", map[string]string{"route": "oa-model", "direction": "output"}, float64(oaUsage.OutputTokens)},
		{"sluice_tokens_total", map[string]string{"route": "an-model", "direction": "output"}, float64(anUsage.OutputTokens)},
		{"sluice_upstream_attempts_total", map[string]string{"provider": "down", "outcome": "upstream_unavailable"}, 3},
		{"sluice_upstream_attempts_total", map[string]string{"provider": "oa", "outcome": "ok"}, 6},
		{"sluice_upstream_attempts_total", map[string]string{"provider": "prose-once", "outcome": "ok"}, 4}, // answer + repair, twice
		{"sluice_upstream_attempt_kinds_total", map[string]string{"route": "fallback", "kind": "fallback"}, 2},
		{"sluice_limit_refusals_total", map[string]string{"limit": "prompt_tokens"}, 1},
		{"sluice_contract_calls_total", map[string]string{"route": "json", "outcome": "repaired"}, 2},
		{"sluice_contract_failures_total", map[string]string{"route": "json", "kind": "parse"}, 2},
		{"sluice_contract_failures_total", map[string]string{"route": "json", "kind": "repaired"}, 2},
		{"sluice_contract_failures_total", map[string]string{"route": "json", "kind": "exhausted"}, 0},
		{"sluice_contract_repairs_total", map[string]string{"route": "json"}, 2},
		{"sluice_open_streams", map[string]string{"route": "an-model"}, 0},
	} {
		if got := sum(mfs, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if got := sum(mfs, "sluice_cost_usd_total", nil); math.Abs(got-wantCost) > 1e-12 || wantCost == 0 {
		t.Errorf("cost = %v, want %v (from the answers' usage)", got, wantCost)
	}
	// The histograms' sums are times: each call's duration is at least its
	// time to first token, and the overhead at most the duration.
	dur, over := histSum(mfs, "sluice_request_duration_seconds"), histSum(mfs, "sluice_overhead_seconds")
	if ttft := histSum(mfs, "sluice_time_to_first_token_seconds"); ttft <= 0 || ttft > dur {
		t.Errorf("TTFT sum %v against duration sum %v", ttft, dur)
	}
	if over <= 0 || over > dur {
		t.Errorf("overhead sum %v against duration sum %v", over, dur)
	}
}

// openaiUsage returns the usage of an OpenAI chat completion body.
func openaiUsage(t *testing.T, body string) sluice.Usage {
	t.Helper()
	var v struct {
		Usage struct {
			Prompt     int `json:"prompt_tokens"`
			Completion int `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil || v.Usage.Completion == 0 {
		t.Fatalf("no usage in %s (%v)", body, err)
	}
	return sluice.Usage{InputTokens: v.Usage.Prompt, OutputTokens: v.Usage.Completion}
}

// anthropicStreamUsage returns the usage an Anthropic stream reported and
// its count of text deltas.
func anthropicStreamUsage(t *testing.T, body string) (sluice.Usage, int) {
	t.Helper()
	var u sluice.Usage
	deltas := 0
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev struct {
			Type    string `json:"type"`
			Message struct {
				Usage struct {
					Input int `json:"input_tokens"`
				} `json:"usage"`
			} `json:"message"`
			Delta struct {
				Type string `json:"type"`
			} `json:"delta"`
			Usage struct {
				Output int `json:"output_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatalf("bad event %s: %v", data, err)
		}
		switch ev.Type {
		case "message_start":
			u.InputTokens = ev.Message.Usage.Input
		case "content_block_delta":
			if ev.Delta.Type == "text_delta" {
				deltas++
			}
		case "message_delta":
			u.OutputTokens = ev.Usage.Output
		}
	}
	return u, deltas
}

func gather(t *testing.T, reg *prometheus.Registry) []*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// sum adds up the series of a metric whose labels include labels: counter
// and gauge values, histogram sample counts.
func sum(mfs []*dto.MetricFamily, name string, labels map[string]string) float64 {
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				total += m.GetCounter().GetValue()
			case m.Gauge != nil:
				total += m.GetGauge().GetValue()
			case m.Histogram != nil:
				total += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return total
}

// histSum adds up the sample sums of a histogram's series.
func histSum(mfs []*dto.MetricFamily, name string) float64 {
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				total += m.GetHistogram().GetSampleSum()
			}
		}
	}
	return total
}

// headerRecorder is an upstream that records the traceparent of each
// request it serves before the simulator answers it.
type headerRecorder struct {
	next http.Handler
	mu   sync.Mutex
	seen []string
}

func (h *headerRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.seen = append(h.seen, r.Header.Get("Traceparent"))
	h.mu.Unlock()
	h.next.ServeHTTP(w, r)
}

// TestTraceThroughGateway sends a call with a client's traceparent
// through a route whose first target fails: the gateway's call span
// continues the client's trace, has a child span per upstream attempt with
// the GenAI attributes, and the upstream receives the call's trace context.
func TestTraceThroughGateway(t *testing.T) {
	rec := &headerRecorder{next: sim.NewServer(sim.Options{})}
	up := httptest.NewServer(rec)
	defer up.Close()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	defer tp.Shutdown(context.Background())
	tr := telemetry.NewTracingWith(tp)
	p := pipelineFromYAML(t, observedConfig(up.URL), pipeline.Options{Tracing: tr})
	gw := httptest.NewServer(gateway.NewServer(nil, p, gateway.Options{Tracing: tr}))
	defer gw.Close()

	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req, _ := http.NewRequest("POST", gw.URL+"/v1/chat/completions",
		strings.NewReader(`{"model":"fallback","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Traceparent", "00-"+traceID+"-"+parentID+"-01")
	resp, err := gw.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	u := openaiUsage(t, string(body))

	ended := spans.Ended()
	var callSpan sdktrace.ReadOnlySpan
	var attempts []sdktrace.ReadOnlySpan
	for _, s := range ended {
		if s.SpanContext().TraceID().String() != traceID {
			t.Errorf("span %q is in trace %s, not the client's", s.Name(), s.SpanContext().TraceID())
		}
		if s.Parent().SpanID().String() == parentID {
			callSpan = s
		} else {
			attempts = append(attempts, s)
		}
	}
	if callSpan == nil {
		t.Fatalf("no span continues the client's span; spans: %v", names(ended))
	}
	if len(attempts) != 2 {
		t.Fatalf("%d attempt spans, want 2 (the failed target, then the fallback): %v", len(attempts), names(ended))
	}
	for _, a := range attempts {
		if a.Parent().SpanID() != callSpan.SpanContext().SpanID() {
			t.Errorf("attempt span %q is not a child of the call span", a.Name())
		}
	}
	attrs := map[string]string{}
	for _, kv := range callSpan.Attributes() {
		attrs[string(kv.Key)] = kv.Value.String()
	}
	for k, want := range map[string]string{
		"gen_ai.request.model":           "fallback",
		"gen_ai.response.model":          "gpt-4o-mini",
		"gen_ai.provider.name":           "oa",
		"gen_ai.usage.input_tokens":      strconv.Itoa(u.InputTokens),
		"gen_ai.usage.output_tokens":     strconv.Itoa(u.OutputTokens),
		"gen_ai.response.finish_reasons": `["stop"]`,
	} {
		if attrs[k] != want {
			t.Errorf("call span %s = %q, want %q (all: %v)", k, attrs[k], want, attrs)
		}
	}
	failed := attempts[0]
	if failed.StartTime().After(attempts[1].StartTime()) {
		failed = attempts[1]
	}
	if failed.Status().Code != codes.Error {
		t.Errorf("the failed attempt's span has status %v", failed.Status())
	}
	var sawFallback bool
	for _, ev := range callSpan.Events() {
		sawFallback = sawFallback || ev.Name == "fallback"
	}
	if !sawFallback {
		t.Errorf("the call span has no fallback event: %v", callSpan.Events())
	}
	// The simulator target is in-process; the fallback went over HTTP and
	// carried the trace.
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.seen) != 1 || !strings.HasPrefix(rec.seen[0], "00-"+traceID+"-") || strings.Contains(rec.seen[0], parentID) {
		t.Errorf("upstream saw traceparent %q, want the call's trace with the gateway's span", rec.seen)
	}
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name())
	}
	return out
}

// TestRequestLogLines checks the request's log line: the fields every
// line has, the error code and request id of a failed call (the same id as
// the answer's header and error body), prompts only for a route that logs
// content, and then with generated secrets of every shape redacted.
func TestRequestLogLines(t *testing.T) {
	p := pipelineFromYAML(t, `
providers:
  - {name: s, type: sim}
  - {name: down, type: sim, fault: "status=503"}
models:
  - {name: logged, targets: [{provider: s, model: m}], log_content: true}
  - {name: quiet, targets: [{provider: s, model: m}]}
  - {name: dead, targets: [{provider: down, model: m}]}
`, pipeline.Options{})
	var logs syncBuffer
	gw := httptest.NewServer(gateway.NewServer(slog.New(slog.NewJSONHandler(&logs, nil)), p, gateway.Options{}))
	defer gw.Close()
	h := &harness{gw: gw}
	send := func(model, prompt string) (*http.Response, string) {
		b, _ := json.Marshal(map[string]any{"model": model, "messages": []map[string]string{{"role": "user", "content": prompt}}})
		resp := h.post(t, t.Context(), "/v1/chat/completions", string(b))
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(body)
	}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	var secrets []string
	for range 20 {
		for _, gen := range secretShapes {
			secrets = append(secrets, gen(rng))
		}
	}
	for i, sec := range secrets {
		prompt := fillerWords(rng) + " " + sec + " " + fillerWords(rng)
		if resp, body := send("logged", prompt); resp.StatusCode != 200 {
			t.Fatalf("call %d: %d %s", i, resp.StatusCode, body)
		}
	}
	if resp, _ := send("quiet", "my password=hunter22 and nothing else"); resp.StatusCode != 200 {
		t.Fatalf("quiet: %d", resp.StatusCode)
	}
	resp, body := send("dead", "hi")
	var errBody struct {
		RequestID string `json:"request_id"`
	}
	json.Unmarshal([]byte(body), &errBody)
	if id := resp.Header.Get("Sluice-Request-Id"); id == "" || errBody.RequestID != id {
		t.Errorf("error body request_id %q, header %q: want the same id", errBody.RequestID, id)
	}

	var lines []map[string]any
	waitFor(t, "every request's log line", func() bool {
		lines = lines[:0]
		for _, l := range strings.Split(logs.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "request" {
				lines = append(lines, m)
			}
		}
		return len(lines) == len(secrets)+2
	})
	all := logs.String()
	for _, sec := range secrets {
		if core := secretCore(sec); strings.Contains(all, core) {
			t.Errorf("the log holds %q (of the secret %q)", core, sec)
		}
	}
	if !strings.Contains(all, "[REDACTED:") {
		t.Error("no redaction marker in the log")
	}
	for _, l := range lines {
		for _, k := range []string{"request_id", "route", "model", "provider", "status", "input_tokens", "output_tokens", "cost_usd", "latency_ms", "attempts"} {
			if _, ok := l[k]; !ok {
				t.Errorf("log line lacks %s: %v", k, l)
			}
		}
		switch l["route"] {
		case "logged":
			if p, _ := l["prompt"].(string); !strings.HasPrefix(p, "user: ") || l["completion"] == nil {
				t.Errorf("logged route's line has prompt %q, completion %v", l["prompt"], l["completion"])
			}
		case "quiet":
			if l["prompt"] != nil || l["completion"] != nil || strings.Contains(all, "hunter22") {
				t.Errorf("a route that does not log content logged it: %v", l)
			}
		case "dead":
			if l["error_code"] != "upstream_unavailable" || l["request_id"] != errBody.RequestID || l["status"] != 503.0 {
				t.Errorf("failed call's line: %v (error body id %q)", l, errBody.RequestID)
			}
		}
	}
}

// secretShapes generate secrets of the shapes the logs must never hold.
var secretShapes = []func(*rand.Rand) string{
	func(r *rand.Rand) string { return "sk-proj-" + randFrom(r, alnum+"_-", 48) },
	func(r *rand.Rand) string { return "sk-ant-api03-" + randFrom(r, alnum+"_-", 93) + "AA" },
	func(r *rand.Rand) string { return "sk-sluice-" + randFrom(r, alnum, 43) },
	func(r *rand.Rand) string { return "Authorization: Bearer " + randFrom(r, alnum+"._-", 40) },
	func(r *rand.Rand) string { return "ghp_" + randFrom(r, alnum, 36) },
	func(r *rand.Rand) string { return "AKIA" + randFrom(r, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16) },
	func(r *rand.Rand) string { return "AIza" + randFrom(r, alnum+"_-", 35) },
	func(r *rand.Rand) string {
		return "-----BEGIN RSA PRIVATE KEY-----\n" + randFrom(r, alnum+"+/", 64) + "\n" + randFrom(r, alnum+"+/", 64) + "\n-----END RSA PRIVATE KEY-----"
	},
	func(r *rand.Rand) string { return luhnCard(r) },
	func(r *rand.Rand) string { return `"password": "` + randFrom(r, alnum+"!@#$%^*", 14) + `"` },
}

const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func randFrom(r *rand.Rand, chars string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = chars[r.IntN(len(chars))]
	}
	return string(b)
}

// luhnCard returns a 16-digit number starting with 4 that passes the Luhn
// check, in groups of four.
func luhnCard(r *rand.Rand) string {
	d := make([]int, 16)
	d[0] = 4
	for i := 1; i < 15; i++ {
		d[i] = r.IntN(10)
	}
	sum := 0
	for i := 0; i < 15; i++ {
		v := d[i]
		if i%2 == 0 { // doubled: every second digit from the right, check digit excluded
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	d[15] = (10 - sum%10) % 10
	var b strings.Builder
	for i, v := range d {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteByte(byte('0' + v))
	}
	return b.String()
}

// secretCore is the part of a generated secret that must not survive: its
// random part, past its recognisable prefix.
func secretCore(sec string) string {
	switch {
	case strings.HasPrefix(sec, "-----BEGIN"):
		return strings.Split(sec, "\n")[1]
	case strings.HasPrefix(sec, "Authorization: Bearer "):
		return strings.TrimPrefix(sec, "Authorization: Bearer ")
	case strings.HasPrefix(sec, `"password": "`):
		return strings.TrimSuffix(strings.TrimPrefix(sec, `"password": "`), `"`)
	case strings.HasPrefix(sec, "4") && len(sec) == 19:
		return strings.ReplaceAll(sec, " ", "")[4:12] // the middle digits, however grouped
	}
	return sec[len(sec)/2:]
}

// fillerWords returns a few words of prose around a secret.
func fillerWords(r *rand.Rand) string {
	words := []string{"please", "use", "this", "key", "for", "the", "deploy", "token:", "thanks", "(see", "config)", "\n"}
	var b strings.Builder
	for i := range 1 + r.IntN(6) {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(words[r.IntN(len(words))])
	}
	return b.String()
}

// TestMetricsJSONFaults runs 1,000 structured calls, 3% of them against
// simulator JSON faults (prose, a truncated answer, an answer that breaks
// the schema, each fixed by the repair), and checks that /metrics reports
// the request count, the parse and validation failures and the repairs
// exactly.
func TestMetricsJSONFaults(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := telemetry.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	p := pipelineFromYAML(t, `
providers:
  - {name: good, type: sim}
  - {name: prose, type: sim, fault: "prose,attempts=1"}
  - {name: cut, type: sim, fault: "truncate,attempts=1"}
  - {name: broken, type: sim, fault: "schema_break,attempts=1"}
models:
  - {name: json, targets: [{provider: good, model: m}]}
  - {name: json-prose, targets: [{provider: prose, model: m}]}
  - {name: json-cut, targets: [{provider: cut, model: m}]}
  - {name: json-broken, targets: [{provider: broken, model: m}]}
`, pipeline.Options{Metrics: m})
	gw := httptest.NewServer(gateway.NewServer(nil, p, gateway.Options{
		Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
	}))
	defer gw.Close()
	schema := `,"response_format":{"type":"json_schema","json_schema":{"name":"city","schema":{"type":"object","properties":{"name":{"type":"string"},"population":{"type":"integer"}},"required":["name","population"]}}}`
	const total, each = 1000, 10 // 3 faults × 10 = 3%
	faulty := []string{"json-prose", "json-cut", "json-broken"}
	var wg sync.WaitGroup
	work := make(chan string)
	for range 8 {
		wg.Go(func() {
			for route := range work {
				req, _ := http.NewRequest("POST", gw.URL+"/v1/chat/completions",
					strings.NewReader(`{"model":"`+route+`","max_tokens":200,"messages":[{"role":"user","content":"Name a city."}]`+schema+`}`))
				req.Header.Set("Content-Type", "application/json")
				resp, err := gw.Client().Do(req)
				if err != nil {
					t.Error(err)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("%s: status %d", route, resp.StatusCode)
				}
			}
		})
	}
	for i := range total {
		route := "json"
		if i%33 == 0 && i/33 < len(faulty)*each {
			route = faulty[(i/33)%len(faulty)]
		}
		work <- route
	}
	close(work)
	wg.Wait()

	resp, err := http.Get(gw.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var mfs []*dto.MetricFamily
	for _, f := range fams {
		mfs = append(mfs, f)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"sluice_requests_total", nil, total},
		{"sluice_requests_total", map[string]string{"code": "ok"}, total},
		{"sluice_contract_calls_total", nil, total},
		{"sluice_contract_calls_total", map[string]string{"outcome": "valid"}, total - 3*each},
		{"sluice_contract_calls_total", map[string]string{"outcome": "repaired"}, 3 * each},
		{"sluice_contract_failures_total", map[string]string{"kind": "parse"}, 2 * each}, // prose and the truncated answer
		{"sluice_contract_failures_total", map[string]string{"kind": "validation"}, each},
		{"sluice_contract_failures_total", map[string]string{"kind": "repaired"}, 3 * each},
		{"sluice_contract_failures_total", map[string]string{"kind": "exhausted"}, 0},
		{"sluice_contract_repairs_total", nil, 3 * each},
		{"sluice_contract_repairs_total", map[string]string{"route": "json"}, 0},
		{"sluice_upstream_attempts_total", nil, total + 3*each},
	} {
		if got := sum(mfs, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}
