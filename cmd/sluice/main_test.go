package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-gw/sluice/sim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is a bytes buffer safe for the server goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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

var listenRE = regexp.MustCompile(`listening on (http://\S+)`)

// startServe runs `sluice serve` with args until the test ends (or stop is
// called) and returns its base URL.
func startServe(t *testing.T, env map[string]string, args ...string) (base string, stop func() error, out *syncBuffer) {
	t.Helper()
	t.Chdir(t.TempDir()) // the zero-config state (./sluice.db) goes there
	ctx, cancel := context.WithCancel(context.Background())
	out = &syncBuffer{}
	errLog := &syncBuffer{}
	getenv := func(k string) string { return env[k] }
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...), getenv, strings.NewReader(""), out, errLog)
	}()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}
	t.Cleanup(func() { stop() })
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := listenRE.FindStringSubmatch(out.String()); m != nil {
			return m[1], stop, out
		}
		select {
		case err := <-done:
			t.Fatalf("serve exited early: %v\nstdout: %s\nstderr: %s", err, out, errLog)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("serve did not start; stdout: %s stderr: %s", out, errLog)
	return
}

func post(t *testing.T, url, body string, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestServeZeroConfig is the README's first run: no config, no key, the
// simulator streams in both dialects.
func TestServeZeroConfig(t *testing.T) {
	base, stop, out := startServe(t, nil)
	if !strings.Contains(out.String(), "simulator") {
		t.Errorf("start-up does not say it serves the simulator:\n%s", out)
	}
	resp := post(t, base+"/v1/chat/completions", `{"model":"sim-fast","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	body := readBody(t, resp)
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "id: 1\ndata: {") || !strings.HasSuffix(body, "data: [DONE]\n\n") {
		t.Fatalf("OpenAI stream: status %d body:\n%s", resp.StatusCode, body)
	}
	// The stream is resumable: its replay is the same bytes.
	req, _ := http.NewRequest("GET", base+"/v1/streams/"+resp.Header.Get("Sluice-Stream-Id"), nil)
	replay, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if got := readBody(t, replay); got != body {
		t.Fatalf("replay of the stream differs:\n%s", got)
	}
	resp = post(t, base+"/v1/messages", `{"model":"sim-fast","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hi"}]}`, "anthropic-version", "2023-06-01")
	body = readBody(t, resp)
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "id: 1\nevent: message_start\n") || !strings.HasSuffix(body, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n") {
		t.Fatalf("Anthropic stream: status %d body:\n%s", resp.StatusCode, body)
	}
	if err := stop(); err != nil {
		t.Fatalf("serve returned %v on shutdown, want nil", err)
	}
}

// TestServeConfigUpstream serves a config whose providers are another
// server on loopback (the simulator), in both provider dialects, and calls it
// in both client dialects, streaming and not, with tools.
func TestServeConfigUpstream(t *testing.T) {
	up := httptest.NewServer(sim.NewServer(sim.Options{Name: "upstream"}))
	defer up.Close()
	cfg := `listen: 127.0.0.1:0
providers:
  - name: oa
    type: openai
    base_url: ` + up.URL + `/v1
    api_key: ${TEST_KEY}
  - name: an
    type: anthropic
    base_url: ` + up.URL + `
models:
  - name: via-openai
    targets: [{provider: oa, model: up-model}]
  - name: via-anthropic
    targets: [{provider: an, model: up-model}]
`
	path := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	base, _, _ := startServe(t, map[string]string{"TEST_KEY": "k"}, "--config", path)
	tools := `"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]`
	atools := `"tools":[{"name":"get_weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}]`
	for _, model := range []string{"via-openai", "via-anthropic"} {
		for _, stream := range []string{"false", "true"} {
			t.Run(model+"/openai/stream="+stream, func(t *testing.T) {
				resp := post(t, base+"/v1/chat/completions", `{"model":"`+model+`","stream":`+stream+`,"messages":[{"role":"user","content":"weather in Paris?"}],`+tools+`}`)
				body := readBody(t, resp)
				if resp.StatusCode != 200 || !strings.Contains(body, `"get_weather"`) || !strings.Contains(body, `"tool_calls"`) {
					t.Fatalf("status %d body:\n%s", resp.StatusCode, body)
				}
				if stream == "true" && !strings.HasSuffix(body, "data: [DONE]\n\n") {
					t.Fatalf("stream does not end in [DONE]:\n%s", body)
				}
			})
			t.Run(model+"/anthropic/stream="+stream, func(t *testing.T) {
				resp := post(t, base+"/v1/messages", `{"model":"`+model+`","max_tokens":200,"stream":`+stream+`,"messages":[{"role":"user","content":"weather in Paris?"}],`+atools+`}`, "x-api-key", "whatever", "anthropic-version", "2023-06-01")
				body := readBody(t, resp)
				if resp.StatusCode != 200 || !strings.Contains(body, `"tool_use"`) || !strings.Contains(body, `"get_weather"`) {
					t.Fatalf("status %d body:\n%s", resp.StatusCode, body)
				}
				if stream == "true" && !strings.Contains(body, "event: message_stop") {
					t.Fatalf("stream does not end in message_stop:\n%s", body)
				}
			})
		}
	}
}

func TestServeBrokenConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(path, []byte("providers:\n  - name: x\n    type: opneai\nmodels: []\n"), 0o600)
	var out, errb syncBuffer
	err := run(context.Background(), []string{"serve", "--config", path}, func(string) string { return "" }, strings.NewReader(""), &out, &errb)
	if err == nil {
		t.Fatal("serve accepted a broken config")
	}
	if msg := err.Error(); !strings.Contains(msg, "type") || !strings.Contains(msg, ":3") {
		t.Errorf("error does not name the field and line: %v", err)
	}
}

// TestServeDrain stops the server while a slow stream is running: the stream
// gets the drain time, then ends with an error event in its dialect, and serve
// returns nil.
func TestServeDrain(t *testing.T) {
	up := httptest.NewServer(sim.NewServer(sim.Options{Name: "upstream", Fault: sim.Fault{ChunkDelay: 50 * time.Millisecond, Tokens: 10000}}))
	defer up.Close()
	cfg := "providers:\n  - {name: oa, type: openai, base_url: " + up.URL + "/v1}\nmodels:\n  - {name: slow, targets: [{provider: oa, model: m}]}\n"
	path := filepath.Join(t.TempDir(), "sluice.yaml")
	os.WriteFile(path, []byte(cfg), 0o600)
	base, stop, _ := startServe(t, nil, "--config", path, "--drain-timeout", "200ms")

	// One stream per dialect, both running when the server is told to stop.
	type result struct {
		body string
		err  error
	}
	results := make(chan result, 2)
	started := make(chan struct{}, 2)
	for _, d := range []struct{ path, body string }{
		{"/v1/chat/completions", `{"model":"slow","stream":true,"messages":[{"role":"user","content":"hi"}]}`},
		{"/v1/messages", `{"model":"slow","max_tokens":100000,"stream":true,"messages":[{"role":"user","content":"hi"}]}`},
	} {
		resp := post(t, base+d.path, d.body, "anthropic-version", "2023-06-01")
		go func() {
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			var b strings.Builder
			first := true
			for {
				line, err := br.ReadString('\n')
				b.WriteString(line)
				if first && strings.HasPrefix(line, "data:") {
					first = false
					started <- struct{}{}
				}
				if err != nil {
					if err == io.EOF {
						err = nil
					}
					results <- result{b.String(), err}
					return
				}
			}
		}()
	}
	<-started
	<-started
	if err := stop(); err != nil {
		t.Fatalf("serve returned %v, want nil", err)
	}
	for range 2 {
		r := <-results
		if r.err != nil {
			t.Errorf("stream read error %v; body so far:\n%.500s", r.err, r.body)
		}
		switch {
		case strings.Contains(r.body, "chat.completion.chunk"):
			if !strings.Contains(r.body, `"stream_interrupted"`) || strings.Contains(r.body, "[DONE]") {
				t.Errorf("OpenAI stream did not end with an error chunk:\n...%s", tail(r.body))
			}
		default:
			if !strings.Contains(r.body, "event: error\n") {
				t.Errorf("Anthropic stream did not end with an error event:\n...%s", tail(r.body))
			}
		}
	}
}

func tail(s string) string {
	if len(s) > 400 {
		return s[len(s)-400:]
	}
	return s
}

// TestServeMetricsListener checks that metrics.listen moves /metrics to a
// listener of its own, off the API's.
func TestServeMetricsListener(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(cfg, []byte("metrics: {listen: \"127.0.0.1:0\"}\nproviders: [{name: sim, type: sim}]\nmodels: [{name: m, targets: [{provider: sim, model: sim-fast}]}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base, stop, out := startServe(t, nil, "--config", cfg)
	readBody(t, post(t, base+"/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
	m := regexp.MustCompile(`metrics on (http://\S+/metrics)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no metrics address in the output:\n%s", out)
	}
	resp, err := http.Get(m[1])
	if err != nil {
		t.Fatal(err)
	}
	if body := readBody(t, resp); !strings.Contains(body, `sluice_requests_total{code="ok",dialect="openai",model="sim-fast",provider="sim",route="m",stream="false"} 1`) {
		t.Errorf("the metrics listener lacks the call:\n%.2000s", body)
	}
	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics on the API listener: %d, want 404", resp.StatusCode)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestServeMetrics checks that sluice serve exposes its metrics at
// /metrics, calls counted by route and outcome, with the Go runtime's.
func TestServeMetrics(t *testing.T) {
	base, stop, _ := startServe(t, nil)
	readBody(t, post(t, base+"/v1/chat/completions", `{"model":"sim-fast","messages":[{"role":"user","content":"hi"}]}`))
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	for _, want := range []string{`sluice_requests_total{code="ok",dialect="openai",model="sim-fast",provider="sim",route="sim-fast",stream="false"} 1`, "sluice_request_duration_seconds_bucket", "go_goroutines"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestServeTraces checks that sluice serve exports traces over OTLP/HTTP
// only when the OTEL_* environment asks for it: with an endpoint set, the
// receiver gets the spans of a call by the time serve returns; without,
// nothing is sent.
func TestServeTraces(t *testing.T) {
	var mu sync.Mutex
	posts := 0
	var body []byte
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		if r.URL.Path == "/v1/traces" {
			posts++
			body = append(body, b...)
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer recv.Close()
	for _, on := range []bool{false, true} {
		env := map[string]string{}
		if on {
			env["OTEL_EXPORTER_OTLP_ENDPOINT"] = recv.URL
		}
		base, stop, _ := startServe(t, env)
		readBody(t, post(t, base+"/v1/chat/completions", `{"model":"sim-fast","messages":[{"role":"user","content":"hi"}]}`))
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		got, spans := posts, string(body)
		mu.Unlock()
		switch {
		case !on && got != 0:
			t.Fatalf("with no OTEL_* variables, %d exports were sent", got)
		case on && (got == 0 || !strings.Contains(spans, "gen_ai.request.model") || !strings.Contains(spans, "sim-fast")):
			t.Errorf("with an endpoint set: %d exports, spans %q", got, spans)
		}
	}
}

// TestServeDashboard checks the zero-config dashboard: sluice serve prints
// an admin key for the run; signing in with it shows the overview, and the
// playground streams a simulator answer.
func TestServeDashboard(t *testing.T) {
	base, stop, out := startServe(t, nil)
	m := regexp.MustCompile(`admin key for this run: (\S+);`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no admin key in the output:\n%s", out)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.PostForm(base+"/ui/login", url.Values{"key": {m[1]}})
	if err != nil {
		t.Fatal(err)
	}
	page := readBody(t, resp)
	if !strings.Contains(page, `data-page="overview"`) {
		t.Fatalf("after sign-in, not the overview:\n%.500s", page)
	}
	token := regexp.MustCompile(`name="csrf-token" content="([0-9a-f]+)"`).FindStringSubmatch(page)
	if token == nil {
		t.Fatal("no CSRF token in the page")
	}
	req, _ := http.NewRequest("POST", base+"/ui/api/playground", strings.NewReader(`{"target":"route:sim-fast","message":"hi"}`))
	req.Header.Set("X-CSRF-Token", token[1])
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	stream := readBody(t, resp)
	if strings.Count(stream, "event: delta") < 2 || !strings.Contains(stream, "event: done") {
		t.Errorf("the playground did not stream an answer:\n%.1000s", stream)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
