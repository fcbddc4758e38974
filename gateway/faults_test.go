package gateway_test

// Fault tests: every fault the simulator can inject, sent by an upstream of
// either dialect, reaches clients of both dialects, streaming and not, as a
// well-formed answer in the client's dialect that leaks nothing of the
// provider, and the upstream call is released afterwards.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	anthropicv2 "github.com/anthropics/anthropic-sdk-go/v2"
	anoptionv2 "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	oaoption "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/ssestream"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/sim"
	"github.com/sluice-gw/sluice/sse"
)

const (
	// faultAPIKey is the providers' upstream key; no client may see it.
	faultAPIKey = "sk-test-secret"
	// faultUpstreamModel is the model name the providers send upstream;
	// clients only ever see the public names.
	faultUpstreamModel = "hidden-upstream-model"
	// faultPrompt is every call's user message.
	faultPrompt = "Tell me about rivers."
	// faultSchema is the JSON Schema of the json_schema calls.
	faultSchema = `{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"],"additionalProperties":false}`
)

// The dialects, of clients and of upstreams.
const (
	dialectOpenAI    = "openai"
	dialectAnthropic = "anthropic"
)

var faultDialects = []string{dialectOpenAI, dialectAnthropic}

// An outcome is how a call ends for its client.
type outcome int

const (
	// answered: a whole answer; a stream ends with [DONE] or message_stop.
	answered outcome = iota
	// refused: a plain error answer, nothing of a stream sent.
	refused
	// broken: a stream with status 200 and some text, ended by an error
	// event and nothing after it.
	broken
)

// faultWant is what a client gets for one fault, streamed or not.
type faultWant struct {
	outcome outcome
	status  int
	// code is the error's code (refused and broken).
	code sluice.Code
	// retryAfter is the Retry-After header; "" means none.
	retryAfter string
	// words is the number of words of text: before the error (broken), or
	// of the whole answer (answered; 0 means some).
	words int
	// finish is the finish reason of an answer, in OpenAI's spelling.
	finish string
}

// A faultCase is one simulator fault, given to two providers (one per
// upstream dialect) as their X-Sim-Fault header.
type faultCase struct {
	// name names the subtests, the public models "<name>-oa" (OpenAI
	// upstream) and "<name>-an" (Anthropic upstream) and their providers.
	// It must not contain fault, which answers are checked not to contain.
	name  string
	fault string
	// timeouts are the providers' deadlines in YAML flow style; "" means
	// the defaults.
	timeouts string
	// output asks for JSON: "json_schema" or "json_object"; "" asks for text.
	output string
	// clients are the client dialects to test; nil means both.
	clients       []string
	stream, plain faultWant
}

// model returns the public model served through the upstream dialect.
func (fc *faultCase) model(upstream string) string {
	if upstream == dialectOpenAI {
		return fc.name + "-oa"
	}
	return fc.name + "-an"
}

// provider returns the name of the provider of the upstream dialect.
func (fc *faultCase) provider(upstream string) string {
	return "up-" + fc.model(upstream)
}

// clientDialects returns the client dialects fc is tested with.
func (fc *faultCase) clientDialects() []string {
	if fc.clients == nil {
		return faultDialects
	}
	return fc.clients
}

// faultCases is the matrix's fault axis. The expectations follow from the
// gateway's rules: the stream's headers are held until the first content, so
// a failure before it is a plain error answer with the status of its code
// (error.go), a failure after it a final error event whose code is
// upstream_timeout or stream_interrupted; upstream error statuses map through
// sluice.StatusCode; non-streaming calls obey only the total deadline.
var faultCases = []faultCase{
	{
		name: "ttft", fault: "ttft=5s", timeouts: "{first_token: 200ms, total: 300ms}",
		stream: faultWant{outcome: refused, status: 504, code: sluice.CodeUpstreamTimeout},
		plain:  faultWant{outcome: refused, status: 504, code: sluice.CodeUpstreamTimeout},
	},
	{
		name: "stall", fault: "stall_after=3", timeouts: "{idle: 200ms, total: 300ms}",
		stream: faultWant{outcome: broken, status: 200, code: sluice.CodeUpstreamTimeout, words: 3},
		plain:  faultWant{outcome: refused, status: 504, code: sluice.CodeUpstreamTimeout},
	},
	{
		// The simulator drops the connection of a stream; a non-streaming
		// call it answers with a 502, which is upstream_unavailable.
		name: "drop", fault: "drop_after=3",
		stream: faultWant{outcome: broken, status: 200, code: sluice.CodeStreamInterrupted, words: 3},
		plain:  faultWant{outcome: refused, status: 503, code: sluice.CodeUpstreamUnavailable},
	},
	{
		// The error event (overloaded) comes before any content. Without a
		// stream the simulator answers it as a provider's overload, a 529.
		name: "error-at-1", fault: "error_at=1",
		stream: faultWant{outcome: refused, status: 429, code: sluice.CodeOverloaded},
		plain:  faultWant{outcome: refused, status: 429, code: sluice.CodeOverloaded},
	},
	{
		// Three words, then the error event (overloaded), which after the
		// first content is stream_interrupted. Without a stream: a 529.
		name: "error-at-4", fault: "error_at=4",
		stream: faultWant{outcome: broken, status: 200, code: sluice.CodeStreamInterrupted, words: 3},
		plain:  faultWant{outcome: refused, status: 429, code: sluice.CodeOverloaded},
	},
	{
		name: "status-429", fault: "status=429,retry_after=2s",
		stream: faultWant{outcome: refused, status: 429, code: sluice.CodeRateLimited, retryAfter: "2"},
		plain:  faultWant{outcome: refused, status: 429, code: sluice.CodeRateLimited, retryAfter: "2"},
	},
	{
		name: "status-500", fault: "status=500",
		stream: faultWant{outcome: refused, status: 502, code: sluice.CodeUpstreamError},
		plain:  faultWant{outcome: refused, status: 502, code: sluice.CodeUpstreamError},
	},
	{
		name: "status-502", fault: "status=502",
		stream: faultWant{outcome: refused, status: 503, code: sluice.CodeUpstreamUnavailable},
		plain:  faultWant{outcome: refused, status: 503, code: sluice.CodeUpstreamUnavailable},
	},
	{
		name: "status-503", fault: "status=503",
		stream: faultWant{outcome: refused, status: 503, code: sluice.CodeUpstreamUnavailable},
		plain:  faultWant{outcome: refused, status: 503, code: sluice.CodeUpstreamUnavailable},
	},
	{
		name: "status-529", fault: "status=529",
		stream: faultWant{outcome: refused, status: 429, code: sluice.CodeOverloaded},
		plain:  faultWant{outcome: refused, status: 429, code: sluice.CodeOverloaded},
	},
	{
		// Half of the simulator's 24 words, finishing with length.
		name: "half-answer", fault: "truncate",
		stream: faultWant{outcome: answered, status: 200, words: 12, finish: "length"},
		plain:  faultWant{outcome: answered, status: 200, words: 12, finish: "length"},
	},
	{
		// Prose where JSON was asked for: the answer is asked again once,
		// gets prose again, and the call fails with schema_violation; a
		// stream (whose text already went out) ends with it as an error
		// event after the simulator's 24 words.
		name: "schema-as-text", fault: "prose", output: "json_schema",
		stream: faultWant{outcome: broken, status: 200, code: sluice.CodeSchemaViolation, words: 24},
		plain:  faultWant{outcome: refused, status: 502, code: sluice.CodeSchemaViolation},
	},
	{
		// Only OpenAI's dialect has a JSON mode without a schema.
		name: "object-as-text", fault: "prose", output: "json_object", clients: []string{dialectOpenAI},
		stream: faultWant{outcome: broken, status: 200, code: sluice.CodeSchemaViolation, words: 24},
		plain:  faultWant{outcome: refused, status: 502, code: sluice.CodeSchemaViolation},
	},
}

// faultCaseNamed returns the case of faultCases with that name.
func faultCaseNamed(t testing.TB, name string) faultCase {
	t.Helper()
	i := slices.IndexFunc(faultCases, func(fc faultCase) bool { return fc.name == name })
	if i < 0 {
		t.Fatalf("no fault case %q", name)
	}
	return faultCases[i]
}

// The error types each client dialect reports a code under.
var (
	faultOpenAITypes = map[sluice.Code]string{
		sluice.CodeRateLimited:         "rate_limit_error",
		sluice.CodeOverloaded:          "server_error",
		sluice.CodeUpstreamTimeout:     "server_error",
		sluice.CodeUpstreamUnavailable: "server_error",
		sluice.CodeUpstreamError:       "server_error",
		sluice.CodeStreamInterrupted:   "server_error",
		sluice.CodeSchemaViolation:     "server_error",
	}
	faultAnthropicTypes = map[sluice.Code]string{
		sluice.CodeRateLimited:         "rate_limit_error",
		sluice.CodeOverloaded:          "overloaded_error",
		sluice.CodeUpstreamTimeout:     "timeout_error",
		sluice.CodeUpstreamUnavailable: "api_error",
		sluice.CodeUpstreamError:       "api_error",
		sluice.CodeStreamInterrupted:   "api_error",
		sluice.CodeSchemaViolation:     "api_error",
	}
)

// A faultRig is the simulator server every fault case's providers call.
type faultRig struct {
	sim  *sim.Server
	url  string // its base URL
	addr string // its host:port
}

// newFaultRig starts a simulator server that lives as long as the test.
func newFaultRig(t testing.TB) *faultRig {
	t.Helper()
	up := sim.NewServer(sim.Options{})
	ups := httptest.NewServer(up)
	t.Cleanup(ups.Close)
	return &faultRig{sim: up, url: ups.URL, addr: ups.Listener.Addr().String()}
}

// yaml returns a gateway config with two providers per case, one per
// upstream dialect, each sending the case's fault with every request, and
// a public model on each.
func (rig *faultRig) yaml(cases []faultCase) string {
	var b strings.Builder
	b.WriteString("providers:\n")
	for _, fc := range cases {
		timeouts := ""
		if fc.timeouts != "" {
			timeouts = ", timeouts: " + fc.timeouts
		}
		fmt.Fprintf(&b, "  - {name: %s, type: openai, base_url: %s/v1, api_key: %s, headers: {X-Sim-Fault: %q}%s}\n",
			fc.provider(dialectOpenAI), rig.url, faultAPIKey, fc.fault, timeouts)
		fmt.Fprintf(&b, "  - {name: %s, type: anthropic, base_url: %s, api_key: %s, headers: {X-Sim-Fault: %q}%s}\n",
			fc.provider(dialectAnthropic), rig.url, faultAPIKey, fc.fault, timeouts)
	}
	b.WriteString("models:\n")
	for _, fc := range cases {
		for _, up := range faultDialects {
			fmt.Fprintf(&b, "  - {name: %s, targets: [{provider: %s, model: %s}]}\n", fc.model(up), fc.provider(up), faultUpstreamModel)
		}
	}
	return b.String()
}

// leaks are the strings no answer to fc may contain: the simulator's and
// the providers' detail, compared without case.
func (rig *faultRig) leaks(fc *faultCase) []string {
	return []string{
		"sim:", "simulated", "sim-", rig.addr, sim.FaultHeader, fc.fault, faultAPIKey, faultUpstreamModel,
		fc.provider(dialectOpenAI), fc.provider(dialectAnthropic),
	}
}

// faultCall sends one call in the client's dialect and reads the whole
// answer.
func faultCall(t testing.TB, gw *httptest.Server, client, model string, stream bool, output string) (*http.Response, string) {
	t.Helper()
	var path, body string
	switch client {
	case dialectOpenAI:
		path = "/v1/chat/completions"
		body = fmt.Sprintf(`{"model":%q,"stream":%t,"messages":[{"role":"user","content":%q}]`, model, stream, faultPrompt)
		switch output {
		case "json_schema":
			body += `,"response_format":{"type":"json_schema","json_schema":{"name":"person","strict":true,"schema":` + faultSchema + `}}`
		case "json_object":
			body += `,"response_format":{"type":"json_object"}`
		}
	case dialectAnthropic:
		path = "/v1/messages"
		body = fmt.Sprintf(`{"model":%q,"max_tokens":1000,"stream":%t,"messages":[{"role":"user","content":%q}]`, model, stream, faultPrompt)
		if output == "json_schema" {
			body += `,"output_config":{"format":{"type":"json_schema","schema":` + faultSchema + `}}`
		}
	}
	body += "}"
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", gw.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if client == dialectAnthropic {
		req.Header.Set("Anthropic-Version", "2023-06-01")
	}
	resp, err := gw.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the answer: %v; read so far:\n%s", err, b)
	}
	return resp, string(b)
}

// TestFaults runs every fault × client dialect × upstream dialect × stream
// or not through one gateway, and checks that each answer is the right
// status and code, well-formed in the client's dialect, client-safe, and
// that the upstream call is released after it. A last group does the same
// for a mid-stream failure on a gateway whose streams are resumable: the
// error event is numbered and logged like every other.
func TestFaults(t *testing.T) {
	rig := newFaultRig(t)
	src := rig.yaml(faultCases)
	plain := gatewayFromYAML(t, src, gateway.Options{ResumeGrace: -1, ResumeRetention: -1})
	for _, fc := range faultCases {
		for _, client := range fc.clientDialects() {
			for _, upstream := range faultDialects {
				for _, stream := range []bool{true, false} {
					want, mode := fc.plain, "json"
					if stream {
						want, mode = fc.stream, "stream"
					}
					t.Run(fc.name+"/"+client+"-client/"+upstream+"-upstream/"+mode, func(t *testing.T) {
						t.Parallel()
						model := fc.model(upstream)
						resp, body := faultCall(t, plain, client, model, stream, fc.output)
						checkFaultAnswer(t, faultAnswer{client: client, model: model, stream: stream, resp: resp, body: body}, want, rig.leaks(&fc))
						waitFor(t, "the upstream call to be released", func() bool { return rig.sim.OpenStreams() == 0 })
					})
				}
			}
		}
	}

	resumable := gatewayFromYAML(t, src, gateway.Options{})
	fc := faultCaseNamed(t, "error-at-4")
	for _, client := range faultDialects {
		for _, upstream := range faultDialects {
			t.Run("resumable/"+fc.name+"/"+client+"-client/"+upstream+"-upstream/stream", func(t *testing.T) {
				t.Parallel()
				model := fc.model(upstream)
				resp, body := faultCall(t, resumable, client, model, true, fc.output)
				checkFaultAnswer(t, faultAnswer{client: client, model: model, stream: true, resumable: true, resp: resp, body: body}, fc.stream, rig.leaks(&fc))
				waitFor(t, "the upstream call to be released", func() bool { return rig.sim.OpenStreams() == 0 })

				// The log holds the stream as the client got it, error
				// event included.
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				defer cancel()
				req, err := http.NewRequestWithContext(ctx, "GET", resumable.URL+"/v1/streams/"+resp.Header.Get(gateway.StreamIDHeader), nil)
				if err != nil {
					t.Fatal(err)
				}
				rr, err := resumable.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer rr.Body.Close()
				replay, err := io.ReadAll(rr.Body)
				if err != nil {
					t.Fatalf("reading the replay: %v", err)
				}
				if rr.StatusCode != 200 || string(replay) != body {
					t.Errorf("replay: status %d, body\n%s\nwant 200 and the stream as sent:\n%s", rr.StatusCode, replay, body)
				}
			})
		}
	}
}

// faultAnswer is one answer as its client received it.
type faultAnswer struct {
	client, model string
	stream        bool
	resumable     bool // the gateway logs streams: events carry ids
	resp          *http.Response
	body          string
}

// checkFaultAnswer checks an answer against want, and that it leaks none of
// leaks.
func checkFaultAnswer(t *testing.T, a faultAnswer, want faultWant, leaks []string) {
	t.Helper()
	defer func() {
		if t.Failed() {
			t.Logf("status %d, headers %v, body:\n%s", a.resp.StatusCode, a.resp.Header, a.body)
		}
	}()
	checkFaultLeaks(t, a.resp, a.body, leaks)
	if a.resp.StatusCode != want.status {
		t.Fatalf("status %d, want %d", a.resp.StatusCode, want.status)
	}
	wantRA := want.retryAfter
	if wantRA == "" && want.outcome == refused {
		switch want.code {
		case sluice.CodeUpstreamError, sluice.CodeUpstreamUnavailable, sluice.CodeUpstreamTimeout, sluice.CodeOverloaded:
			wantRA = "1" // the upstream failed: a clear "try again"
		}
	}
	if got := a.resp.Header.Get("Retry-After"); got != wantRA {
		t.Errorf("Retry-After = %q, want %q", got, wantRA)
	}
	ct := a.resp.Header.Get("Content-Type")
	if want.outcome == refused || !a.stream {
		if ct != "application/json" {
			t.Errorf("Content-Type = %q, want application/json", ct)
		}
		if want.outcome == refused {
			checkFaultError(t, a.client, a.body, want.code)
			return
		}
		var text, finish string
		if a.client == dialectOpenAI {
			text, finish = readOpenAIAnswer(t, a.body, a.model)
		} else {
			text, finish = readAnthropicAnswer(t, a.body, a.model)
		}
		checkFaultText(t, text, want.words)
		if finish != want.finish {
			t.Errorf("finish %q, want %q", finish, want.finish)
		}
		return
	}

	if ct != "text/event-stream" {
		t.Errorf("Content-Type = %q, want text/event-stream", ct)
	}
	frames := parseFrames(t, a.body)
	checkFrameIDs(t, a, frames)
	var s streamSeen
	if a.client == dialectOpenAI {
		s = readOpenAIStream(t, frames, a.model)
	} else {
		s = readAnthropicStream(t, frames, a.model)
	}
	checkFaultText(t, s.text, want.words)
	switch want.outcome {
	case answered:
		if !s.ended || s.errData != "" {
			t.Errorf("the stream did not end normally (error event %q)", s.errData)
		}
		if s.finish != want.finish {
			t.Errorf("finish %q, want %q", s.finish, want.finish)
		}
	case broken:
		if s.errData == "" {
			t.Fatalf("the stream does not end with an error event")
		}
		checkFaultError(t, a.client, s.errData, want.code)
		if s.ended || strings.Contains(a.body, "[DONE]") || strings.Contains(a.body, "message_stop") {
			t.Errorf("the failed stream has an end marker ([DONE] or message_stop)")
		}
	}
}

// checkFrameIDs checks the numbering of a stream's events: none on a
// gateway without resumable streams; on one with them, the stream's id in
// its header and every event numbered from 1.
func checkFrameIDs(t *testing.T, a faultAnswer, frames []sseFrame) {
	t.Helper()
	sid := a.resp.Header.Get(gateway.StreamIDHeader)
	if !a.resumable {
		if sid != "" {
			t.Errorf("%s = %q on a stream that is not resumable", gateway.StreamIDHeader, sid)
		}
		for i, f := range frames {
			if f.id != "" {
				t.Errorf("event %d has id %q on a stream that is not resumable", i+1, f.id)
			}
		}
		return
	}
	if !strings.HasPrefix(sid, "str_") {
		t.Errorf("%s = %q, want a stream id", gateway.StreamIDHeader, sid)
	}
	ids := make([]uint64, len(frames))
	for i, f := range frames {
		id, err := strconv.ParseUint(f.id, 10, 64)
		if err != nil {
			t.Fatalf("event %d (%s) has no numeric id: %q", i+1, f.data, f.id)
		}
		ids[i] = id
	}
	checkSeq(t, ids, 1)
}

// checkFaultText checks the number of words of an answer's text: words
// exactly, or some when words is 0.
func checkFaultText(t *testing.T, text string, words int) {
	t.Helper()
	n := len(strings.Fields(text))
	if (words == 0 && n == 0) || (words > 0 && n != words) {
		t.Errorf("text %q has %d words, want %d (0: some)", text, n, words)
	}
}

// answerText returns all a client got, body and headers, in lower case.
func answerText(resp *http.Response, body string) string {
	var all strings.Builder
	all.WriteString(body)
	for k, vs := range resp.Header {
		for _, v := range vs {
			all.WriteString("\n" + k + ": " + v)
		}
	}
	return strings.ToLower(all.String())
}

// checkFaultLeaks fails the test if the answer's body or headers contain
// any of leaks, or name overloaded_error other than as an error type.
func checkFaultLeaks(t *testing.T, resp *http.Response, body string, leaks []string) {
	t.Helper()
	low := answerText(resp, body)
	for _, bad := range leaks {
		if strings.Contains(low, strings.ToLower(bad)) {
			t.Errorf("the answer leaks %q", bad)
		}
	}
	if strings.Contains(strings.ReplaceAll(body, `"type":"overloaded_error"`, ""), "overloaded_error") {
		t.Errorf("the answer names overloaded_error outside an error type")
	}
}

// checkFaultError checks an error object in the client's dialect, the body
// of a plain error answer or the data of an error event: exactly the
// dialect's fields, code's type and generic message.
func checkFaultError(t *testing.T, client, data string, code sluice.Code) {
	t.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(data), &top); err != nil {
		t.Fatalf("error %q is not a JSON object: %v", data, err)
	}
	var inner map[string]any
	if err := json.Unmarshal(top["error"], &inner); err != nil {
		t.Fatalf("error %s has no error object: %v", data, err)
	}
	msg, _ := inner["message"].(string)
	fields := 0 // beyond the dialect's own
	if code == sluice.CodeSchemaViolation {
		// The message says where the answer broke the schema, and the
		// details list it: paths and rules, never the answer itself.
		ds, _ := inner["details"].([]any)
		if !strings.HasPrefix(msg, "The model's answer did not match the schema") || len(ds) == 0 {
			t.Errorf("error message %q, details %v: want the violations", msg, inner["details"])
		}
		fields = 1
	} else if msg != code.DefaultMessage() {
		t.Errorf("error message %q, want %q", msg, code.DefaultMessage())
	}
	// Beside the error: the request's id, for support to find its log
	// line.
	var id string
	if err := json.Unmarshal(top["request_id"], &id); err != nil || !plainID(id) {
		t.Errorf("error %s: want a request_id beside the error", data)
	}
	switch client {
	case dialectOpenAI:
		if len(top) != 2 {
			t.Errorf("error %s: want only the error and request_id fields", data)
		}
		if len(inner) != 4+fields || inner["type"] != faultOpenAITypes[code] || inner["code"] != string(code) ||
			!hasNull(inner, "param") {
			t.Errorf("error %s: want {message, type %q, param null, code %q}", data, faultOpenAITypes[code], code)
		}
	case dialectAnthropic:
		if len(top) != 3 || string(top["type"]) != `"error"` {
			t.Errorf("error %s: want type error, the error object and request_id only", data)
		}
		if len(inner) != 2+fields || inner["type"] != faultAnthropicTypes[code] {
			t.Errorf("error %s: want {type %q, message}", data, faultAnthropicTypes[code])
		}
	}
}

// plainID reports whether s looks like a request id: 1 to 64 letters,
// digits, dashes and underscores.
func plainID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == ""
}

// hasNull reports whether m has key with the value null.
func hasNull(m map[string]any, key string) bool {
	v, ok := m[key]
	return ok && v == nil
}

// sseFrame is one event of a stream as it went over the wire.
type sseFrame struct{ id, event, data string }

// parseFrames splits a stream's body into its events, failing the test
// unless it is well-formed: events of id, event and data lines (one data
// line each, as the gateway writes them) and comments, each ended by a blank
// line, with nothing after the last. The package's SSE reader must read the
// same events.
func parseFrames(t *testing.T, body string) []sseFrame {
	t.Helper()
	if !strings.HasSuffix(body, "\n\n") {
		t.Fatalf("the stream does not end at the end of an event")
	}
	var frames []sseFrame
	for _, raw := range strings.Split(strings.TrimSuffix(body, "\n\n"), "\n\n") {
		var (
			f     sseFrame
			nData int
		)
		for _, line := range strings.Split(raw, "\n") {
			if strings.HasPrefix(line, ":") {
				continue
			}
			field, value, ok := strings.Cut(line, ": ")
			if !ok {
				t.Fatalf("malformed line %q in event %q", line, raw)
			}
			switch field {
			case "id":
				f.id = value
			case "event":
				f.event = value
			case "data":
				f.data = value
				nData++
			default:
				t.Fatalf("unexpected field %q in event %q", field, raw)
			}
		}
		if nData == 0 && f.id == "" && f.event == "" {
			continue // comments only
		}
		if nData != 1 {
			t.Fatalf("event %q has %d data lines, want 1", raw, nData)
		}
		frames = append(frames, f)
	}
	rd := sse.NewReader(strings.NewReader(body))
	for i := 0; ; i++ {
		ev, err := rd.Next()
		if err == io.EOF {
			if i != len(frames) {
				t.Fatalf("the SSE reader read %d events, want %d", i, len(frames))
			}
			break
		}
		if err != nil {
			t.Fatalf("the SSE reader failed at event %d: %v", i+1, err)
		}
		if i >= len(frames) || ev.Type != frames[i].event || string(ev.Data) != frames[i].data {
			t.Fatalf("the SSE reader read event %d as %q %q", i+1, ev.Type, ev.Data)
		}
	}
	return frames
}

// streamSeen is what a client made of a stream.
type streamSeen struct {
	text    string
	finish  string // the finish reason in OpenAI's spelling; "" if none came
	errData string // the data of the error event that ended it; "" if none
	ended   bool   // it ended normally, with [DONE] or message_stop
}

// readOpenAIStream reads an OpenAI stream and checks its form: unnamed
// events, chat.completion.chunk objects of the public model starting with
// the assistant's role, and [DONE] or an error object only at the end.
func readOpenAIStream(t *testing.T, frames []sseFrame, model string) streamSeen {
	t.Helper()
	var (
		s    streamSeen
		text strings.Builder
	)
	for i, f := range frames {
		last := i == len(frames)-1
		if f.event != "" {
			t.Errorf("event %d is named %q; OpenAI's events have no names", i+1, f.event)
		}
		if f.data == "[DONE]" {
			if !last {
				t.Errorf("[DONE] is event %d of %d", i+1, len(frames))
			}
			s.ended = true
			continue
		}
		var c struct {
			Error   json.RawMessage `json:"error"`
			Object  string          `json:"object"`
			Model   string          `json:"model"`
			Choices []struct {
				Delta struct {
					Role    string `json:"role"`
					Content string `json:"content"`
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(f.data), &c); err != nil {
			t.Fatalf("event %d is not JSON: %v", i+1, err)
		}
		if c.Error != nil {
			if !last {
				t.Errorf("the error is event %d of %d", i+1, len(frames))
			}
			s.errData = f.data
			continue
		}
		if c.Object != "chat.completion.chunk" || c.Model != model {
			t.Errorf("event %d: object %q, model %q; want chat.completion.chunk of %s", i+1, c.Object, c.Model, model)
		}
		if i == 0 && (len(c.Choices) != 1 || c.Choices[0].Delta.Role != "assistant") {
			t.Errorf("the first chunk %s does not carry the assistant's role", f.data)
		}
		for _, ch := range c.Choices {
			text.WriteString(ch.Delta.Content)
			if ch.FinishReason != nil {
				s.finish = *ch.FinishReason
			}
		}
	}
	s.text = text.String()
	return s
}

// anthropicFinish spells Anthropic's stop reasons as OpenAI's finish reasons.
var anthropicFinish = map[string]string{"end_turn": "stop", "max_tokens": "length"}

// readAnthropicStream reads an Anthropic stream and checks its form: every
// event named as its data's type, message_start of the public model first,
// and message_stop or an error event only at the end.
func readAnthropicStream(t *testing.T, frames []sseFrame, model string) streamSeen {
	t.Helper()
	var (
		s    streamSeen
		text strings.Builder
	)
	for i, f := range frames {
		last := i == len(frames)-1
		var e struct {
			Type    string `json:"type"`
			Message struct {
				Model string `json:"model"`
			} `json:"message"`
			Delta struct {
				Type       string `json:"type"`
				Text       string `json:"text"`
				StopReason string `json:"stop_reason"`
			} `json:"delta"`
		}
		if err := json.Unmarshal([]byte(f.data), &e); err != nil {
			t.Fatalf("event %d is not JSON: %v", i+1, err)
		}
		if e.Type != f.event {
			t.Errorf("event %d is named %q, its data has type %q", i+1, f.event, e.Type)
		}
		if i == 0 && (e.Type != "message_start" || e.Message.Model != model) {
			t.Errorf("the first event %s is not the message_start of %s", f.data, model)
		}
		switch e.Type {
		case "content_block_delta":
			if e.Delta.Type == "text_delta" {
				text.WriteString(e.Delta.Text)
			}
		case "message_delta":
			s.finish = anthropicFinish[e.Delta.StopReason]
		case "message_stop":
			if !last {
				t.Errorf("message_stop is event %d of %d", i+1, len(frames))
			}
			s.ended = true
		case "error":
			if !last {
				t.Errorf("the error is event %d of %d", i+1, len(frames))
			}
			s.errData = f.data
		case "message_start", "content_block_start", "content_block_stop", "ping":
		default:
			t.Errorf("event %d has unknown type %q", i+1, e.Type)
		}
	}
	s.text = text.String()
	return s
}

// readOpenAIAnswer reads a chat.completion object of the public model with
// one assistant choice and returns its text and finish reason.
func readOpenAIAnswer(t *testing.T, body, model string) (text, finish string) {
	t.Helper()
	var r struct {
		Object  string `json:"object"`
		Model   string `json:"model"`
		Choices []struct {
			Message struct {
				Role    string `json:"role"`
				Content string `json:"content"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("the answer is not JSON: %v", err)
	}
	if r.Object != "chat.completion" || r.Model != model || len(r.Choices) != 1 || r.Choices[0].Message.Role != "assistant" {
		t.Fatalf("the answer is not one assistant chat.completion of %s", model)
	}
	return r.Choices[0].Message.Content, r.Choices[0].FinishReason
}

// readAnthropicAnswer reads an assistant message of the public model with
// text content and returns its text and stop reason, in OpenAI's spelling.
func readAnthropicAnswer(t *testing.T, body, model string) (text, finish string) {
	t.Helper()
	var r struct {
		Type    string `json:"type"`
		Role    string `json:"role"`
		Model   string `json:"model"`
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
		StopReason string `json:"stop_reason"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("the answer is not JSON: %v", err)
	}
	if r.Type != "message" || r.Role != "assistant" || r.Model != model {
		t.Fatalf("the answer is not an assistant message of %s", model)
	}
	var b strings.Builder
	for _, c := range r.Content {
		if c.Type != "text" {
			t.Errorf("content block of type %q, want text", c.Type)
		}
		b.WriteString(c.Text)
	}
	return b.String(), anthropicFinish[r.StopReason]
}

// TestFaultsSDK checks that the official SDKs surface an upstream error
// event after some text (error_at=4) as a failed stream, not a normal end.
func TestFaultsSDK(t *testing.T) {
	rig := newFaultRig(t)
	fc := faultCaseNamed(t, "error-at-4")
	gw := gatewayFromYAML(t, rig.yaml([]faultCase{fc}), gateway.Options{ResumeGrace: -1, ResumeRetention: -1})
	released := func(t *testing.T) {
		waitFor(t, "the upstream call to be released", func() bool { return rig.sim.OpenStreams() == 0 })
	}
	for _, upstream := range faultDialects {
		model := fc.model(upstream)
		t.Run("openai-go/"+upstream+"-upstream", func(t *testing.T) {
			t.Parallel()
			c := openai.NewClient(oaoption.WithBaseURL(gw.URL+"/v1"), oaoption.WithAPIKey("sk-client"),
				oaoption.WithMaxRetries(0), oaoption.WithHTTPClient(gw.Client()))
			s := c.Chat.Completions.NewStreaming(t.Context(), openai.ChatCompletionNewParams{
				Model:    model,
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(faultPrompt)},
			})
			var text strings.Builder
			for s.Next() {
				for _, ch := range s.Current().Choices {
					text.WriteString(ch.Delta.Content)
				}
			}
			err := s.Err()
			s.Close()
			if err == nil {
				t.Fatalf("the stream ended normally after %q; want an error", text.String())
			}
			checkFaultText(t, text.String(), fc.stream.words)
			var se *ssestream.StreamError
			if !errors.As(err, &se) || !strings.Contains(string(se.Event.Data), `"code":"stream_interrupted"`) {
				t.Errorf("error %v (%T), want the SDK's stream error with code stream_interrupted", err, err)
			}
			released(t)
		})
		t.Run("anthropic-sdk-go/"+upstream+"-upstream", func(t *testing.T) {
			t.Parallel()
			c := anthropicv2.NewClient(anoptionv2.WithoutEnvironmentDefaults(), anoptionv2.WithBaseURL(gw.URL),
				anoptionv2.WithAPIKey("sk-client"), anoptionv2.WithMaxRetries(0), anoptionv2.WithHTTPClient(gw.Client()))
			s := c.Messages.NewStreaming(t.Context(), anthropicv2.MessageNewParams{
				Model:     anthropicv2.Model(model),
				MaxTokens: 1000,
				Messages:  []anthropicv2.MessageParam{anthropicv2.NewUserMessage(anthropicv2.NewTextBlock(faultPrompt))},
			})
			var text strings.Builder
			for s.Next() {
				if ev := s.Current(); ev.Type == "content_block_delta" {
					text.WriteString(ev.Delta.Text)
				}
			}
			err := s.Err()
			s.Close()
			if err == nil {
				t.Fatalf("the stream ended normally after %q; want an error", text.String())
			}
			checkFaultText(t, text.String(), fc.stream.words)
			var e *anthropicv2.Error
			if !errors.As(err, &e) || !strings.Contains(e.RawJSON(), `"type":"api_error"`) {
				t.Errorf("error %v (%T), want the SDK's *anthropic.Error of type api_error", err, err)
			}
			released(t)
		})
	}
}
