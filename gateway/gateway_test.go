package gateway_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-gw/sluice/config"
	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/pipeline"
	"github.com/sluice-gw/sluice/sim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// harness is a gateway in front of a simulator upstream reached over HTTP in
// both provider dialects ("oa-*" models through the OpenAI provider, "an-*"
// through the Anthropic one) and the in-process simulator ("sim").
type harness struct {
	upstream *sim.Server
	gw       *httptest.Server
}

func newHarness(t testing.TB, opts sim.Options) *harness {
	t.Helper()
	return newHarnessWith(t, opts, gateway.Options{})
}

func newHarnessWith(t testing.TB, opts sim.Options, gwOpts gateway.Options) *harness {
	t.Helper()
	up := sim.NewServer(opts)
	ups := httptest.NewServer(up)
	t.Cleanup(ups.Close)
	gw := gatewayFromYAML(t, `
providers:
  - {name: oa, type: openai, base_url: `+ups.URL+`/v1, api_key: test}
  - {name: an, type: anthropic, base_url: `+ups.URL+`, api_key: test}
  - {name: local, type: sim}
models:
  - {name: oa-model, targets: [{provider: oa, model: upstream-model}]}
  - {name: an-model, targets: [{provider: an, model: upstream-model}]}
  - {name: sim, targets: [{provider: local, model: sim}]}
`, gwOpts)
	return &harness{upstream: up, gw: gw}
}

// gatewayFromYAML serves a gateway built from a config file's text until the
// test ends.
func gatewayFromYAML(t testing.TB, src string, opts gateway.Options) *httptest.Server {
	t.Helper()
	gw := httptest.NewServer(gateway.NewServer(nil, pipelineFromYAML(t, src, pipeline.Options{}), opts))
	t.Cleanup(gw.Close)
	return gw
}

// pipelineFromYAML builds a pipeline from a config file's text, closed when
// the test ends.
func pipelineFromYAML(t testing.TB, src string, opts pipeline.Options) *pipeline.Pipeline {
	t.Helper()
	cfg, err := config.Parse([]byte(src), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(context.Background(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func (h *harness) post(t testing.TB, ctx context.Context, path, body string, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "POST", h.gw.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Anthropic-Version", "2023-06-01")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := h.gw.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestClientDisconnectCancelsUpstream proves that a client leaving a stream
// that is not resumable cancels the upstream call and releases its
// connection: the simulator's count of open streams drops back to zero.
// (TestResumeGrace covers resumable streams.)
func TestClientDisconnectCancelsUpstream(t *testing.T) {
	h := newHarnessWith(t, sim.Options{Fault: sim.Fault{ChunkDelay: 20 * time.Millisecond, Tokens: 100000}}, gateway.Options{ResumeGrace: -1})
	for _, tc := range []struct{ name, path, body string }{
		{"openai client, openai upstream", "/v1/chat/completions", `{"model":"oa-model","stream":true,"messages":[{"role":"user","content":"hi"}]}`},
		{"anthropic client, anthropic upstream", "/v1/messages", `{"model":"an-model","max_tokens":100000,"stream":true,"messages":[{"role":"user","content":"hi"}]}`},
		{"openai client, anthropic upstream", "/v1/chat/completions", `{"model":"an-model","stream":true,"messages":[{"role":"user","content":"hi"}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			resp := h.post(t, ctx, tc.path, tc.body)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			br := bufio.NewReader(resp.Body)
			for n := 0; n < 3; {
				line, err := br.ReadString('\n')
				if err != nil {
					t.Fatal(err)
				}
				if strings.HasPrefix(line, "data:") {
					n++
				}
			}
			waitFor(t, "the upstream stream to open", func() bool { return h.upstream.OpenStreams() == 1 })
			cancel()
			resp.Body.Close()
			waitFor(t, "the upstream stream to close", func() bool { return h.upstream.OpenStreams() == 0 })
		})
	}
}

// TestUpstreamErrorIsClientSafe checks that an upstream failure reaches the
// client as a taxonomy code in its dialect, with no provider text.
func TestUpstreamErrorIsClientSafe(t *testing.T) {
	for _, tc := range []struct {
		name, path, model, fault string
		status                   int
		want                     string
	}{
		{"openai 429", "/v1/chat/completions", "oa-model", "status=429,retry_after=3s", 429, `"code":"rate_limited"`},
		{"openai 529", "/v1/chat/completions", "an-model", "status=529", 429, `"code":"overloaded"`},
		{"anthropic 500", "/v1/messages", "oa-model", "status=500", 502, `"type":"api_error"`},
		{"anthropic 429", "/v1/messages", "an-model", "status=429,retry_after=3s", 429, `"type":"rate_limit_error"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := sim.ParseFault(tc.fault)
			if err != nil {
				t.Fatal(err)
			}
			h := newHarness(t, sim.Options{Fault: f})
			resp := h.post(t, t.Context(), tc.path, `{"model":"`+tc.model+`","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body := string(b)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.want) {
				t.Fatalf("status %d body %s; want %d with %s", resp.StatusCode, body, tc.status, tc.want)
			}
			if strings.Contains(strings.ToLower(body), "simulated") || strings.Contains(body, "127.0.0.1") {
				t.Fatalf("provider detail leaked: %s", body)
			}
			if strings.Contains(tc.fault, "retry_after=3s") && resp.Header.Get("Retry-After") != "3" {
				t.Errorf("Retry-After = %q, want 3", resp.Header.Get("Retry-After"))
			}
		})
	}
}

// TestStalledReaderIsCut checks that a client that stops reading a stream is
// disconnected after the write timeout. A stream that is not resumable has
// its upstream call released while the client still holds the connection;
// a resumable one runs to its end, and resuming it gets the whole answer.
func TestStalledReaderIsCut(t *testing.T) {
	t.Run("not resumable", func(t *testing.T) {
		h := newHarnessWith(t, sim.Options{Tokens: sim.MaxTokens}, gateway.Options{StreamWriteTimeout: 200 * time.Millisecond, ResumeGrace: -1})
		resp := h.post(t, t.Context(), "/v1/chat/completions", `{"model":"oa-model","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		// Read nothing: the socket buffers fill, the gateway's write times
		// out, and the upstream stream must be released while we still
		// hold the connection open.
		waitFor(t, "the upstream stream to open", func() bool { return h.upstream.OpenStreams() == 1 })
		waitFor(t, "the upstream stream to be released", func() bool { return h.upstream.OpenStreams() == 0 })
	})
	t.Run("resumable", func(t *testing.T) {
		// The resumed reader below, under the race detector, needs a more
		// generous write timeout than the stalled one.
		h := newHarnessWith(t, sim.Options{Tokens: sim.MaxTokens}, gateway.Options{StreamWriteTimeout: 2 * time.Second})
		stalled := openStream(t, "POST", h.gw.URL+"/v1/chat/completions", `{"model":"oa-model","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
		id := stalled.resp.Header.Get(gateway.StreamIDHeader)
		waitFor(t, "the upstream stream to open", func() bool { return h.upstream.OpenStreams() == 1 })
		waitFor(t, "the upstream stream to end", func() bool { return h.upstream.OpenStreams() == 0 })
		// The stalled connection was cut before the end.
		if b, err := io.ReadAll(stalled.resp.Body); err == nil && strings.HasSuffix(string(b), "[DONE]\n\n") {
			t.Fatal("the stalled client was not cut: it got the whole stream")
		}
		c := openStream(t, "GET", h.gw.URL+"/v1/streams/"+id, "")
		c.read(t, 0)
		checkSeq(t, c.ids, 1)
		if last := c.data[len(c.data)-1]; last != "[DONE]" {
			t.Errorf("resumed stream ends with %q, want [DONE]", last)
		}
		checkText(t, "openai", c.data, sim.MaxTokens)
	})
}

// TestSlowBodyTimesOut checks that a client sending its body too slowly gets
// an error instead of holding a handler.
func TestSlowBodyTimesOut(t *testing.T) {
	h := newHarnessWith(t, sim.Options{}, gateway.Options{BodyTimeout: 100 * time.Millisecond})
	conn, err := net.Dial("tcp", h.gw.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model\":")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), "not received in time") {
		t.Fatalf("status %d body %s", resp.StatusCode, b)
	}
}
