package gateway_test

// Error taxonomy tests: whatever goes wrong upstream (every fault the
// simulator can inject, and the error answers real providers send), a
// client of either dialect gets a status and a code of the closed set in
// error.go, in its own dialect's shape, and nothing of the provider: not its
// message, URL, key, organization, request id, rate-limit headers or stack.
// docs/errors.md documents what is checked here.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/anthropic"
	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/openai"
	"github.com/sluice-gw/sluice/sim"
)

// taxonomy is the closed set of codes as docs/errors.md documents it: each
// code's HTTP status and the error type each client dialect reports it
// under.
var taxonomy = map[sluice.Code]struct {
	status            int
	openai, anthropic string
}{
	sluice.CodeInvalidRequest:      {400, "invalid_request_error", "invalid_request_error"},
	sluice.CodeUnauthenticated:     {401, "authentication_error", "authentication_error"},
	sluice.CodePermissionDenied:    {403, "permission_error", "permission_error"},
	sluice.CodeNotFound:            {404, "invalid_request_error", "not_found_error"},
	sluice.CodeRequestTooLarge:     {413, "invalid_request_error", "request_too_large"},
	sluice.CodePromptTooLong:       {400, "invalid_request_error", "invalid_request_error"},
	sluice.CodeRateLimited:         {429, "rate_limit_error", "rate_limit_error"},
	sluice.CodeBudgetExceeded:      {429, "insufficient_quota", "rate_limit_error"},
	sluice.CodeOverloaded:          {429, "server_error", "overloaded_error"},
	sluice.CodeUpstreamTimeout:     {504, "server_error", "timeout_error"},
	sluice.CodeUpstreamUnavailable: {503, "server_error", "api_error"},
	sluice.CodeUpstreamError:       {502, "server_error", "api_error"},
	sluice.CodeSchemaViolation:     {502, "server_error", "api_error"},
	sluice.CodeStreamInterrupted:   {502, "server_error", "api_error"},
	sluice.CodeIdempotencyConflict: {422, "invalid_request_error", "invalid_request_error"},
	sluice.CodeInternal:            {500, "server_error", "api_error"},
}

// taxRetryable reports whether a plain error answer with code c, caused by the
// upstream, must carry a Retry-After: the upstream's failures another try
// may cure. The others must carry none.
func taxRetryable(c sluice.Code) bool {
	switch c {
	case sluice.CodeRateLimited, sluice.CodeOverloaded, sluice.CodeUpstreamTimeout,
		sluice.CodeUpstreamUnavailable, sluice.CodeUpstreamError:
		return true
	}
	return false
}

// taxUpstreamMessages are the only messages, beside each code's default one,
// that an error caused by an upstream may carry.
var taxUpstreamMessages = map[sluice.Code]string{
	sluice.CodeInvalidRequest: "The model provider rejected the request.",
	sluice.CodePromptTooLong:  "The prompt is longer than the model's context window.",
}

// taxWant is what a client gets for one call.
type taxWant struct {
	// code is the error's code; "" means a whole answer.
	code sluice.Code
	// broken: the stream started (status 200, some text) and ends with an
	// error event; otherwise an error is a plain error answer.
	broken bool
	// retryAfter is the Retry-After of a plain error answer; "" means the
	// rule of taxRetryable.
	retryAfter string
}

// taxAnswer is one answer as its client received it.
type taxAnswer struct {
	client string
	stream bool
	resp   *http.Response
	body   string
}

// TestErrorTaxonomy checks the closed set of codes against its documented
// table, then sends every simulator fault and the error answers real
// providers send (status errors, HTML and garbage bodies, error events
// inside streams) through clients of both dialects, streamed and not, and
// checks that each client gets a code of the set in its dialect's shape,
// with the status of the code, and none of the provider's detail.
func TestErrorTaxonomy(t *testing.T) {
	t.Run("table", testTaxonomyTable)
	t.Run("sim", testTaxonomySim)
	t.Run("provider", testTaxonomyProvider)
}

// testTaxonomyTable checks that the documented table is the code's: every
// code of sluice.Codes, its status, and the types both encoders give it.
func testTaxonomyTable(t *testing.T) {
	codes := sluice.Codes()
	if len(codes) != len(taxonomy) {
		t.Errorf("sluice.Codes has %d codes, the documented taxonomy %d", len(codes), len(taxonomy))
	}
	for _, c := range codes {
		want, ok := taxonomy[c]
		if !ok {
			t.Errorf("code %q is not documented", c)
			continue
		}
		if got := c.HTTPStatus(); got != want.status {
			t.Errorf("%s: status %d, documented %d", c, got, want.status)
		}
		if got := anthropic.ErrorType(c); got != want.anthropic {
			t.Errorf("%s: Anthropic type %q, documented %q", c, got, want.anthropic)
		}
		var oa struct {
			Error struct{ Type, Code string }
		}
		if err := json.Unmarshal(openai.MarshalError(sluice.WrapError(c, nil)), &oa); err != nil {
			t.Fatal(err)
		}
		if oa.Error.Type != want.openai || oa.Error.Code != string(c) {
			t.Errorf("%s: OpenAI type %q code %q, documented %q and %q", c, oa.Error.Type, oa.Error.Code, want.openai, c)
		}
		var an struct {
			Type  string
			Error struct{ Type, Message string }
		}
		if err := json.Unmarshal(anthropic.MarshalError(sluice.WrapError(c, nil)), &an); err != nil {
			t.Fatal(err)
		}
		if an.Type != "error" || an.Error.Type != want.anthropic || an.Error.Message != c.DefaultMessage() {
			t.Errorf("%s: Anthropic body %+v, want type %q and the default message", c, an, want.anthropic)
		}
	}
}

// A taxSimCase is one simulator fault, sent by two providers (one per
// upstream dialect) to the simulator server as its X-Sim-Fault header.
type taxSimCase struct {
	// name names the subtests, the providers and the public models. It
	// must not contain fault, which answers are checked not to contain.
	name  string
	fault string
	// timeouts are the providers' deadlines, in YAML flow style.
	timeouts string
	// route adds keys to the models, in YAML flow style.
	route string
	// output asks for JSON ("json_schema"); "" asks for text.
	output        string
	stream, plain taxWant
}

// taxSimCases are the simulator's faults, every field of sim.Fault at
// least once (the test checks it). Status codes follow sluice.StatusCode;
// before the first content a stream fails with a plain error answer, after
// it with an error event whose code is upstream_timeout, stream_interrupted
// or schema_violation.
var taxSimCases = func() []taxSimCase {
	const short = "{first_token: 150ms, idle: 150ms, total: 300ms}"
	cases := []taxSimCase{
		{name: "slow-start", fault: "latency=20ms"},
		{name: "first-token-late", fault: "ttft=5s", timeouts: short,
			stream: taxWant{code: sluice.CodeUpstreamTimeout}, plain: taxWant{code: sluice.CodeUpstreamTimeout}},
		{name: "slow-chunks", fault: "chunk_delay=5s", timeouts: short,
			stream: taxWant{code: sluice.CodeUpstreamTimeout, broken: true}, plain: taxWant{code: sluice.CodeUpstreamTimeout}},
		{name: "stall", fault: "stall_after=3", timeouts: short,
			stream: taxWant{code: sluice.CodeUpstreamTimeout, broken: true}, plain: taxWant{code: sluice.CodeUpstreamTimeout}},
		// The simulator server cuts a stream's connection; a call that does
		// not stream it answers with a 502.
		{name: "cut", fault: "drop_after=3",
			stream: taxWant{code: sluice.CodeStreamInterrupted, broken: true}, plain: taxWant{code: sluice.CodeUpstreamUnavailable}},
		// An overloaded_error event before any content, or after three
		// words; without a stream, a 529.
		{name: "error-event-first", fault: "error_at=1",
			stream: taxWant{code: sluice.CodeOverloaded}, plain: taxWant{code: sluice.CodeOverloaded}},
		{name: "error-event-later", fault: "error_at=4",
			stream: taxWant{code: sluice.CodeStreamInterrupted, broken: true}, plain: taxWant{code: sluice.CodeOverloaded}},
		{name: "rate-limited-advised", fault: "status=429,retry_after=2s",
			stream: taxWant{code: sluice.CodeRateLimited, retryAfter: "2"}, plain: taxWant{code: sluice.CodeRateLimited, retryAfter: "2"}},
		// The upstream fails once, then recovers: a retry cures it.
		{name: "recovers", fault: "status=503,status_first=1", route: "retry: {attempts: 2}"},
		{name: "long-tail", fault: "tail=1:20ms"},
		{name: "schema-as-text", fault: "prose", output: "json_schema",
			stream: taxWant{code: sluice.CodeSchemaViolation, broken: true}, plain: taxWant{code: sluice.CodeSchemaViolation}},
		// Text cut half way is an answer that finished with "length".
		{name: "half-answer", fault: "truncate"},
		// JSON cut half way is malformed JSON.
		{name: "half-json", fault: "truncate", output: "json_schema",
			stream: taxWant{code: sluice.CodeSchemaViolation, broken: true}, plain: taxWant{code: sluice.CodeSchemaViolation}},
		{name: "wrong-shape", fault: "schema_break", output: "json_schema",
			stream: taxWant{code: sluice.CodeSchemaViolation, broken: true}, plain: taxWant{code: sluice.CodeSchemaViolation}},
		{name: "fenced-json", fault: "fences", output: "json_schema"},
		// Prose once: a call that does not stream is repaired; a stream
		// cannot be asked again.
		{name: "repaired", fault: "prose,attempts=1", output: "json_schema",
			stream: taxWant{code: sluice.CodeSchemaViolation, broken: true}},
		{name: "three-words", fault: "tokens=3"},
	}
	for _, st := range []struct {
		status int
		code   sluice.Code
	}{
		{400, sluice.CodeInvalidRequest},
		{401, sluice.CodeUpstreamError}, // the gateway's own upstream key
		{403, sluice.CodeUpstreamError},
		{404, sluice.CodeUpstreamError},
		{408, sluice.CodeUpstreamTimeout},
		{409, sluice.CodeUpstreamError},
		{413, sluice.CodeRequestTooLarge},
		{422, sluice.CodeInvalidRequest},
		{429, sluice.CodeRateLimited},
		{500, sluice.CodeUpstreamError},
		{501, sluice.CodeUpstreamError},
		{502, sluice.CodeUpstreamUnavailable},
		{503, sluice.CodeUpstreamUnavailable},
		{504, sluice.CodeUpstreamTimeout},
		{529, sluice.CodeOverloaded},
	} {
		w := taxWant{code: st.code}
		cases = append(cases, taxSimCase{name: fmt.Sprintf("http-%d", st.status), fault: fmt.Sprintf("status=%d", st.status), stream: w, plain: w})
	}
	return cases
}()

// testTaxonomySim is TestErrorTaxonomy/sim: every simulator fault.
func testTaxonomySim(t *testing.T) {
	checkSimFaultsCovered(t, taxSimCases)
	rig := newFaultRig(t)
	var src strings.Builder
	src.WriteString("providers:\n")
	for _, fc := range taxSimCases {
		if strings.Contains(fc.name, fc.fault) {
			t.Fatalf("case %s: the name contains the fault", fc.name)
		}
		timeouts := ""
		if fc.timeouts != "" {
			timeouts = ", timeouts: " + fc.timeouts
		}
		fmt.Fprintf(&src, "  - {name: %s-oa-up, type: openai, base_url: %s/v1, api_key: %s, headers: {X-Sim-Fault: %q}%s}\n", fc.name, rig.url, faultAPIKey, fc.fault, timeouts)
		fmt.Fprintf(&src, "  - {name: %s-an-up, type: anthropic, base_url: %s, api_key: %s, headers: {X-Sim-Fault: %q}%s}\n", fc.name, rig.url, faultAPIKey, fc.fault, timeouts)
	}
	src.WriteString("models:\n")
	for _, fc := range taxSimCases {
		route := ""
		if fc.route != "" {
			route = ", " + fc.route
		}
		for _, up := range []string{"oa", "an"} {
			fmt.Fprintf(&src, "  - {name: %s-%s, targets: [{provider: %s-%s-up, model: %s}]%s}\n", fc.name, up, fc.name, up, faultUpstreamModel, route)
		}
	}
	gw := gatewayFromYAML(t, src.String(), gateway.Options{ResumeGrace: -1, ResumeRetention: -1})
	for _, fc := range taxSimCases {
		leaks := []string{"sim:", "simulated", "sim-", rig.addr, sim.FaultHeader, fc.fault, faultAPIKey, faultUpstreamModel,
			fc.name + "-oa-up", fc.name + "-an-up"}
		for _, up := range []string{"oa", "an"} {
			for _, client := range faultDialects {
				for _, stream := range []bool{false, true} {
					want, mode := fc.plain, "plain"
					if stream {
						want, mode = fc.stream, "stream"
					}
					t.Run(fc.name+"/"+up+"-upstream/"+client+"-client/"+mode, func(t *testing.T) {
						t.Parallel()
						resp, body := faultCall(t, gw, client, fc.name+"-"+up, stream, fc.output)
						checkTaxonomy(t, taxAnswer{client: client, stream: stream, resp: resp, body: body}, want, leaks)
					})
				}
			}
		}
	}
}

// checkSimFaultsCovered fails the test unless every field of sim.Fault is
// set by some case: a fault added to the simulator must be added here.
func checkSimFaultsCovered(t *testing.T, cases []taxSimCase) {
	t.Helper()
	typ := reflect.TypeFor[sim.Fault]()
	set := make([]bool, typ.NumField())
	for _, fc := range cases {
		f, err := sim.ParseFault(fc.fault)
		if err != nil {
			t.Fatalf("case %s: %v", fc.name, err)
		}
		v := reflect.ValueOf(f)
		for i := range set {
			set[i] = set[i] || !v.Field(i).IsZero()
		}
	}
	for i, ok := range set {
		if !ok {
			t.Errorf("no case sets the simulator fault %s", typ.Field(i).Name)
		}
	}
}

// A taxUpstreamCase is one answer of a real provider, served by a test
// upstream to the providers of the dialects it belongs to.
type taxUpstreamCase struct {
	name string
	// dialects are the provider types that get this answer.
	dialects []string
	status   int
	header   [][2]string
	body     string
	// cut ends the answer by breaking the connection after body.
	cut bool
	// streamOnly: the answer is an event stream, sent only to stream calls.
	streamOnly    bool
	stream, plain taxWant
	// leaks are the answer's own texts no client may see.
	leaks []string
}

// Texts of the upstream answers below; each must stay out of every answer.
const (
	taxOARequestID = "req_8f1b2c3d4e5f60718293a4b5c6d7e8f9"
	taxANRequestID = "req_011CSHoEeqs5C35K2UUqR7Fy"
	taxANOrgID     = "5d2c8a7e-41f3-4b8e-9c1a-7e0f3b6d2a94"
	taxOAModel     = "gpt-4o-2024-08-06"
	taxANModel     = "claude-sonnet-4-5-20250929"
)

var (
	taxOAHeaders = [][2]string{
		{"Content-Type", "application/json"},
		{"x-request-id", taxOARequestID},
		{"openai-organization", "user-q8rz3kxv"},
		{"openai-processing-ms", "37"},
		{"openai-version", "2020-10-01"},
		{"cf-ray", "8c1f2e3d4a5b6c7d-AMS"},
		{"set-cookie", "__cf_bm=Zm9vYmFyYmF6; path=/; domain=.api.openai.com; HttpOnly; Secure"},
		{"server", "cloudflare"},
	}
	taxANHeaders = [][2]string{
		{"Content-Type", "application/json"},
		{"request-id", taxANRequestID},
		{"anthropic-organization-id", taxANOrgID},
		{"x-should-retry", "true"},
		{"server", "cloudflare"},
	}
	// taxOAStreamHead and taxANStreamHead open a stream: three words, "Rivers run
	// downhill".
	taxOAStreamHead = taxOAChunk(`{"role":"assistant","content":""}`) + taxOAChunk(`{"content":"Rivers"}`) +
		taxOAChunk(`{"content":" run"}`) + taxOAChunk(`{"content":" downhill"}`)
	taxANStreamStart = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"" + taxANModel + "\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n" +
		"event: ping\ndata: {\"type\": \"ping\"}\n\n"
	taxANStreamHead = taxANStreamStart +
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n" +
		taxANDelta("Rivers") + taxANDelta(" run") + taxANDelta(" downhill")
	// The message and id texts of the answers, also checked absent.
	taxOAServerError     = "The server had an error while processing your request. Sorry about that! You can retry your request, or contact us through our help center at help.openai.com if the error persists. (Please include the request ID " + taxOARequestID + " in your message.)"
	taxANOverloadedEvent = `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"` + taxANRequestID + `"}`
	taxGoPanic           = "panic: runtime error: invalid memory address or nil pointer dereference\n[signal SIGSEGV: segmentation violation]\n\ngoroutine 1 [running]:\nmain.handler(0xc000010000)\n\t/srv/llm/internal/api/handler.go:42 +0x1d\nAPI key in use: sk-live-4f9a2b7c\n"
)

func taxOAChunk(delta string) string {
	return `data: {"id":"chatcmpl-AbC123xyz","object":"chat.completion.chunk","created":1730000000,"model":"` + taxOAModel +
		`","system_fingerprint":"fp_50cad350e4","choices":[{"index":0,"delta":` + delta + `,"logprobs":null,"finish_reason":null}]}` + "\n\n"
}

func taxANDelta(text string) string {
	return `event: content_block_delta` + "\n" + `data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"` + text + `"}}` + "\n\n"
}

// taxWithHeaders returns h and then more.
func taxWithHeaders(h [][2]string, more ...[2]string) [][2]string {
	return append(slices.Clip(h), more...)
}

// taxOAError and taxANError are the bodies of an error answer in each API's shape.
func taxOAError(message, typ, param, code string) string {
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": message, "type": typ, "param": taxNullable(param), "code": taxNullable(code)}})
	return string(b)
}

func taxANError(typ, message string) string {
	b, _ := json.Marshal(map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": message}, "request_id": taxANRequestID})
	return string(b)
}

func taxNullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

var taxOARateLimitHeaders = taxWithHeaders(taxOAHeaders,
	[2]string{"x-ratelimit-limit-requests", "500"}, [2]string{"x-ratelimit-remaining-requests", "499"},
	[2]string{"x-ratelimit-reset-requests", "120ms"}, [2]string{"x-ratelimit-limit-tokens", "30000"},
	[2]string{"x-ratelimit-remaining-tokens", "1000"}, [2]string{"x-ratelimit-reset-tokens", "2s"})

var taxANRateLimitHeaders = taxWithHeaders(taxANHeaders,
	[2]string{"retry-after", "7"},
	[2]string{"anthropic-ratelimit-requests-limit", "50"}, [2]string{"anthropic-ratelimit-requests-remaining", "49"},
	[2]string{"anthropic-ratelimit-requests-reset", "2030-01-01T00:00:07Z"},
	[2]string{"anthropic-ratelimit-input-tokens-limit", "20000"}, [2]string{"anthropic-ratelimit-input-tokens-remaining", "0"},
	[2]string{"anthropic-ratelimit-input-tokens-reset", "2030-01-01T00:00:07Z"})

// taxUpstreamCases are error answers as OpenAI and Anthropic document and
// send them, and the broken answers any HTTP server may give.
var taxUpstreamCases = func() []taxUpstreamCase {
	both := []string{dialectOpenAI, dialectAnthropic}
	oa := []string{dialectOpenAI}
	an := []string{dialectAnthropic}
	w := func(c sluice.Code) taxWant { return taxWant{code: c} }
	var cases []taxUpstreamCase
	add := func(c taxUpstreamCase) {
		if c.plain == (taxWant{}) && !c.streamOnly {
			c.plain = c.stream
		}
		cases = append(cases, c)
	}
	msg := func(name string, dialects []string, status int, header [][2]string, message, body string, code sluice.Code) {
		add(taxUpstreamCase{name: name, dialects: dialects, status: status, header: header, body: body,
			stream: w(code), leaks: []string{message}})
	}

	// OpenAI.
	m := "Incorrect API key provided: sk-proj-abc...xyz. You can find your API key at https://platform.openai.com/account/api-keys."
	msg("oa-401-invalid-api-key", oa, 401, taxOAHeaders, m, taxOAError(m, "invalid_request_error", "", "invalid_api_key"), sluice.CodeUpstreamError)
	m = "Rate limit reached for gpt-4o in organization org-XXXX on tokens per min (TPM): Limit 30000, Used 29000, Requested 1500. Please try again in 1.2s. Visit https://platform.openai.com/account/rate-limits to learn more."
	msg("oa-429-rate-limit", oa, 429, taxOARateLimitHeaders, m, taxOAError(m, "tokens", "", "rate_limit_exceeded"), sluice.CodeRateLimited)
	m = "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors."
	msg("oa-429-insufficient-quota", oa, 429, taxOAHeaders, m, taxOAError(m, "insufficient_quota", "", "insufficient_quota"), sluice.CodeRateLimited)
	m = "This model's maximum context length is 128000 tokens. However, your messages resulted in 131072 tokens. Please reduce the length of the messages."
	msg("oa-400-context-length", oa, 400, taxOAHeaders, m, taxOAError(m, "invalid_request_error", "messages", "context_length_exceeded"), sluice.CodePromptTooLong)
	m = "The model `gpt-5-turbo-preview-internal` does not exist or you do not have access to it."
	msg("oa-404-model-not-found", oa, 404, taxOAHeaders, m, taxOAError(m, "invalid_request_error", "", "model_not_found"), sluice.CodeUpstreamError)
	msg("oa-500-server-error", oa, 500, taxOAHeaders, taxOAServerError, taxOAError(taxOAServerError, "server_error", "", ""), sluice.CodeUpstreamError)
	m = "The engine is currently overloaded, please try again later."
	msg("oa-503-unavailable", oa, 503, taxOAHeaders, m, taxOAError(m, "server_error", "", ""), sluice.CodeUpstreamUnavailable)

	// Anthropic.
	m = `messages: roles must alternate between "user" and "assistant", but found multiple "user" roles in a row`
	msg("an-400-invalid-request", an, 400, taxANHeaders, m, taxANError("invalid_request_error", m), sluice.CodeInvalidRequest)
	m = "invalid x-api-key"
	msg("an-401-authentication", an, 401, taxANHeaders, m, taxANError("authentication_error", m), sluice.CodeUpstreamError)
	m = "Your API key does not have permission to use the specified resource."
	msg("an-403-permission", an, 403, taxANHeaders, m, taxANError("permission_error", m), sluice.CodeUpstreamError)
	m = "model: claude-opus-9-internal-preview"
	msg("an-404-not-found", an, 404, taxANHeaders, m, taxANError("not_found_error", m), sluice.CodeUpstreamError)
	m = "Request exceeds the maximum allowed number of bytes."
	msg("an-413-too-large", an, 413, taxANHeaders, m, taxANError("request_too_large", m), sluice.CodeRequestTooLarge)
	m = "This request would exceed the rate limit for your organization (" + taxANOrgID + ") of 20,000 input tokens per minute. For details, refer to: https://docs.anthropic.com/en/api/rate-limits."
	add(taxUpstreamCase{name: "an-429-rate-limit", dialects: an, status: 429, header: taxANRateLimitHeaders,
		body: taxANError("rate_limit_error", m), leaks: []string{m}, stream: taxWant{code: sluice.CodeRateLimited, retryAfter: "7"}})
	msg("an-500-api-error", an, 500, taxANHeaders, "Internal server error", taxANError("api_error", "Internal server error"), sluice.CodeUpstreamError)
	// "Overloaded" is also in the gateway's own message for the code: the
	// request id and organization stand for the answer here.
	msg("an-529-overloaded", an, 529, taxANHeaders, taxANRequestID, taxANError("overloaded_error", "Overloaded"), sluice.CodeOverloaded)

	// Any server.
	html := "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.25.3 (upstream llm-backend-7.internal:8443)</center>\r\n</body>\r\n</html>\r\n"
	add(taxUpstreamCase{name: "html-502", dialects: both, status: 502, header: [][2]string{{"Content-Type", "text/html"}, {"Server", "nginx/1.25.3"}},
		body: html, stream: w(sluice.CodeUpstreamUnavailable), leaks: []string{"Bad Gateway", "nginx", "llm-backend-7", "<html"}})
	add(taxUpstreamCase{name: "garbage-200", dialects: both, status: 200, header: [][2]string{{"Content-Type", "application/json"}},
		body: "\x00\x1f\x8b}{ not json sk-garbage-9a8b org-garbage", stream: w(sluice.CodeUpstreamError), leaks: []string{"not json", "garbage"}})
	add(taxUpstreamCase{name: "panic-500", dialects: both, status: 500, header: [][2]string{{"Content-Type", "text/plain; charset=utf-8"}},
		body: taxGoPanic, stream: w(sluice.CodeUpstreamError), leaks: []string{"panic", "SIGSEGV", "handler.go", "/srv/llm"}})
	add(taxUpstreamCase{name: "truncated-json-200", dialects: oa, status: 200, header: taxOAHeaders,
		body:   `{"id":"chatcmpl-AbC123xyz","object":"chat.completion","created":1730000000,"model":"` + taxOAModel + `","choices":[{"index":0,"message":{"role":"assistant","content":"Rivers run`,
		stream: w(sluice.CodeUpstreamError), leaks: []string{"Rivers run"}})
	add(taxUpstreamCase{name: "truncated-json-200", dialects: an, status: 200, header: taxANHeaders,
		body:   `{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"` + taxANModel + `","content":[{"type":"text","text":"Rivers run`,
		stream: w(sluice.CodeUpstreamError), leaks: []string{"Rivers run"}})

	// Inside streams.
	sse := func(h [][2]string) [][2]string {
		h = slices.Clone(h)
		h[0] = [2]string{"Content-Type", "text/event-stream"}
		return h
	}
	oaErrorData := "data: " + taxOAError(taxOAServerError, "server_error", "", "") + "\n\n"
	anErrorEvent := "event: error\ndata: " + taxANOverloadedEvent + "\n\n"
	add(taxUpstreamCase{name: "oa-error-chunk-first", dialects: oa, status: 200, header: sse(taxOAHeaders), streamOnly: true,
		body: oaErrorData, stream: w(sluice.CodeUpstreamError), leaks: []string{taxOAServerError}})
	add(taxUpstreamCase{name: "oa-error-chunk-mid-stream", dialects: oa, status: 200, header: sse(taxOAHeaders), streamOnly: true,
		body: taxOAStreamHead + oaErrorData, stream: taxWant{code: sluice.CodeStreamInterrupted, broken: true}, leaks: []string{taxOAServerError}})
	add(taxUpstreamCase{name: "oa-cut-mid-stream", dialects: oa, status: 200, header: sse(taxOAHeaders), streamOnly: true, cut: true,
		body: taxOAStreamHead, stream: taxWant{code: sluice.CodeStreamInterrupted, broken: true}})
	add(taxUpstreamCase{name: "an-overloaded-event-first", dialects: an, status: 200, header: sse(taxANHeaders), streamOnly: true,
		body: taxANStreamStart + anErrorEvent, stream: w(sluice.CodeOverloaded)})
	add(taxUpstreamCase{name: "an-overloaded-event-mid-stream", dialects: an, status: 200, header: sse(taxANHeaders), streamOnly: true,
		body: taxANStreamHead + anErrorEvent, stream: taxWant{code: sluice.CodeStreamInterrupted, broken: true}})
	add(taxUpstreamCase{name: "an-cut-mid-stream", dialects: an, status: 200, header: sse(taxANHeaders), streamOnly: true, cut: true,
		body: taxANStreamHead, stream: taxWant{code: sluice.CodeStreamInterrupted, broken: true}})
	return cases
}()

// taxCaseHeader tells the test upstream which answer to give.
const taxCaseHeader = "X-Taxonomy-Case"

// testTaxonomyProvider is TestErrorTaxonomy/provider: real providers' error
// answers.
func testTaxonomyProvider(t *testing.T) {
	byKey := map[string]*taxUpstreamCase{}
	for i := range taxUpstreamCases {
		c := &taxUpstreamCases[i]
		for _, d := range c.dialects {
			byKey[c.name+"/"+d] = c
		}
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get(taxCaseHeader)
		c := byKey[key]
		if c == nil {
			http.Error(w, "no case "+key, http.StatusTeapot)
			return
		}
		for _, kv := range c.header {
			w.Header().Add(kv[0], kv[1])
		}
		w.WriteHeader(c.status)
		w.Write([]byte(c.body))
		if c.cut {
			http.NewResponseController(w).Flush()
			panic(http.ErrAbortHandler)
		}
	}))
	t.Cleanup(up.Close)
	upAddr := up.Listener.Addr().String()

	const apiKey = "sk-gw-upstream-secret-0123"
	var src strings.Builder
	src.WriteString("providers:\n")
	for _, c := range taxUpstreamCases {
		for _, d := range c.dialects {
			base := up.URL
			if d == dialectOpenAI {
				base += "/v1"
			}
			fmt.Fprintf(&src, "  - {name: %s-%s-up, type: %s, base_url: %s, api_key: %s, headers: {%s: %q, OpenAI-Organization: org-gatewayorg123}}\n",
				c.name, d, d, base, apiKey, taxCaseHeader, c.name+"/"+d)
		}
	}
	src.WriteString("models:\n")
	for _, c := range taxUpstreamCases {
		for _, d := range c.dialects {
			model := taxOAModel
			if d == dialectAnthropic {
				model = taxANModel
			}
			fmt.Fprintf(&src, "  - {name: %s-%s, targets: [{provider: %s-%s-up, model: %s}]}\n", c.name, d, c.name, d, model)
		}
	}
	gw := gatewayFromYAML(t, src.String(), gateway.Options{ResumeGrace: -1, ResumeRetention: -1})

	for _, c := range taxUpstreamCases {
		for _, d := range c.dialects {
			leaks := append([]string{
				"sk-", "org-", apiKey, upAddr, up.URL, taxOARequestID, taxANRequestID, taxANOrgID, "user-q8rz3kxv",
				"chatcmpl-AbC123xyz", "msg_01XFDUDYJgAACzvnptvVoYEL", "fp_50cad350e4", taxOAModel, taxANModel,
				"x-ratelimit", "anthropic-ratelimit", "anthropic-organization", "openai-", "x-should-retry",
				"cf-ray", "__cf_bm", "cloudflare", "goroutine", ".go:", taxCaseHeader, c.name + "-" + d + "-up",
			}, c.leaks...)
			for _, client := range faultDialects {
				for _, stream := range []bool{false, true} {
					want, mode := c.plain, "plain"
					if stream {
						want, mode = c.stream, "stream"
					} else if c.streamOnly {
						continue
					}
					t.Run(c.name+"/"+d+"-upstream/"+client+"-client/"+mode, func(t *testing.T) {
						t.Parallel()
						resp, body := faultCall(t, gw, client, c.name+"-"+d, stream, "")
						a := taxAnswer{client: client, stream: stream, resp: resp, body: body}
						checkTaxonomy(t, a, want, leaks)
						if want.broken {
							if text := taxStreamText(t, a); text != "Rivers run downhill" {
								t.Errorf("the stream's text before its error is %q, want the upstream's three words", text)
							}
						}
					})
				}
			}
		}
	}
}

// checkTaxonomy checks one answer against want: a whole answer, a plain
// error answer with the code's status, type and a client-safe message, or
// a stream that ends with such an error event; and that the answer, body
// and headers, contains none of leaks (compared without case).
func checkTaxonomy(t *testing.T, a taxAnswer, want taxWant, leaks []string) {
	t.Helper()
	defer func() {
		if t.Failed() {
			t.Logf("status %d, headers %v, body:\n%s", a.resp.StatusCode, a.resp.Header, a.body)
		}
	}()
	checkTaxLeaks(t, a.resp, a.body, leaks)

	if want.code == "" || want.broken {
		if a.resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want 200", a.resp.StatusCode)
		}
		if !a.stream {
			checkTaxAnswer(t, a)
			return
		}
		frames := parseFrames(t, a.body)
		last := frames[len(frames)-1]
		errData := taxErrorEvent(a.client, last)
		if want.code == "" {
			if errData != "" || (last.data != "[DONE]" && last.event != "message_stop") {
				t.Errorf("the stream does not end normally: last event %q %s", last.event, last.data)
			}
			return
		}
		if errData == "" {
			t.Fatalf("the stream does not end with an error event: last event %q %s", last.event, last.data)
		}
		for _, f := range frames[:len(frames)-1] {
			if taxErrorEvent(a.client, f) != "" {
				t.Errorf("an error event before the last: %s", f.data)
			}
		}
		checkTaxonomyError(t, a, errData, want.code)
		return
	}

	if a.resp.StatusCode != want.code.HTTPStatus() {
		t.Fatalf("status %d, want %d (%s)", a.resp.StatusCode, want.code.HTTPStatus(), want.code)
	}
	if ct := a.resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	ra := a.resp.Header.Get("Retry-After")
	switch {
	case want.retryAfter != "":
		if ra != want.retryAfter {
			t.Errorf("Retry-After %q, want %q", ra, want.retryAfter)
		}
	case taxRetryable(want.code):
		if n, err := strconv.Atoi(ra); err != nil || n <= 0 {
			t.Errorf("Retry-After %q, want a number of seconds for %s", ra, want.code)
		}
	default:
		if ra != "" {
			t.Errorf("Retry-After %q on %s, which a retry does not cure", ra, want.code)
		}
	}
	checkTaxonomyError(t, a, a.body, want.code)
}

// taxErrorEvent returns the data of f when it is an error event of the
// client's dialect, else "".
func taxErrorEvent(client string, f sseFrame) string {
	if client == dialectAnthropic {
		if f.event == "error" {
			return f.data
		}
		return ""
	}
	if strings.HasPrefix(f.data, `{"error":`) {
		return f.data
	}
	return ""
}

// checkTaxAnswer checks that a non-streaming answer is one answer of the
// client's dialect, not an error.
func checkTaxAnswer(t *testing.T, a taxAnswer) {
	t.Helper()
	var r struct {
		Object string          `json:"object"`
		Type   string          `json:"type"`
		Error  json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal([]byte(a.body), &r); err != nil {
		t.Fatalf("the answer is not JSON: %v", err)
	}
	if r.Error != nil || (a.client == dialectOpenAI && r.Object != "chat.completion") || (a.client == dialectAnthropic && r.Type != "message") {
		t.Errorf("the answer is not a %s answer", a.client)
	}
}

// checkTaxonomyError checks one error object, a plain error answer's body or
// an error event's data: the dialect's fields and no others, the type of
// code, a code of the closed set (OpenAI) and a client-safe message, then
// the request id.
func checkTaxonomyError(t *testing.T, a taxAnswer, data string, code sluice.Code) {
	t.Helper()
	want, ok := taxonomy[code]
	if !ok {
		t.Fatalf("the test expects %q, which is not in the taxonomy", code)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(data), &top); err != nil {
		t.Fatalf("the error %q is not a JSON object: %v", data, err)
	}
	var inner map[string]any
	if err := json.Unmarshal(top["error"], &inner); err != nil {
		t.Fatalf("the error %s has no error object: %v", data, err)
	}
	allowedTop := []string{"error", "request_id"}
	allowedInner := []string{"type", "message", "details"}
	if a.client == dialectOpenAI {
		allowedInner = append(allowedInner, "param", "code")
		if inner["param"] != nil {
			t.Errorf("param %v, want null: no upstream field names the client's", inner["param"])
		}
		got, _ := inner["code"].(string)
		if _, ok := taxonomy[sluice.Code(got)]; !ok {
			t.Errorf("code %q is not in the taxonomy", got)
		}
		if got != string(code) || inner["type"] != want.openai {
			t.Errorf("type %v code %v, want %q and %q", inner["type"], inner["code"], want.openai, code)
		}
	} else {
		allowedTop = append(allowedTop, "type")
		if string(top["type"]) != `"error"` {
			t.Errorf("top-level type %s, want \"error\"", top["type"])
		}
		typ, _ := inner["type"].(string)
		known := false
		for _, v := range taxonomy {
			known = known || v.anthropic == typ
		}
		if !known || typ != want.anthropic {
			t.Errorf("type %q, want %q", typ, want.anthropic)
		}
	}
	for k := range top {
		if !slices.Contains(allowedTop, k) {
			t.Errorf("unexpected top-level field %q", k)
		}
	}
	for k := range inner {
		if !slices.Contains(allowedInner, k) {
			t.Errorf("unexpected error field %q", k)
		}
	}
	_, hasDetails := inner["details"]
	if hasDetails != (code == sluice.CodeSchemaViolation) {
		t.Errorf("details present: %t; want them only for schema_violation", hasDetails)
	}
	msg, _ := inner["message"].(string)
	switch {
	case code == sluice.CodeSchemaViolation:
		// The message says where the answer broke the schema: paths and
		// rules, never the answer.
		if !strings.HasPrefix(msg, "The model's answer did not match the schema") {
			t.Errorf("message %q, want the schema violations", msg)
		}
	case msg != code.DefaultMessage() && msg != taxUpstreamMessages[code]:
		t.Errorf("message %q is not one of the gateway's own for %s", msg, code)
	}
	checkRequestID(t, a.resp, data)
}

// checkRequestID checks that an error object names the request as its
// response does: a top-level request_id equal to the Sluice-Request-Id
// header. Without the header there is nothing to compare with, and a
// request_id alone is an error.
func checkRequestID(t *testing.T, resp *http.Response, data string) {
	t.Helper()
	var top struct {
		RequestID *string `json:"request_id"`
	}
	if err := json.Unmarshal([]byte(data), &top); err != nil {
		t.Fatalf("the error %q is not a JSON object: %v", data, err)
	}
	hdr := resp.Header.Get(sluice.RequestIDHeader)
	if hdr == "" {
		if top.RequestID != nil {
			t.Errorf("request_id %q without a %s header", *top.RequestID, sluice.RequestIDHeader)
		} else {
			t.Logf("no %s header: the request id is not checked", sluice.RequestIDHeader)
		}
		return
	}
	if top.RequestID == nil || *top.RequestID != hdr {
		t.Errorf("request_id %v, want %q as in %s", top.RequestID, hdr, sluice.RequestIDHeader)
	}
}

// checkTaxLeaks fails the test if the answer's body, header names or header
// values contain any of leaks, compared without case.
func checkTaxLeaks(t *testing.T, resp *http.Response, body string, leaks []string) {
	t.Helper()
	low := answerText(resp, body)
	for _, bad := range leaks {
		if bad != "" && strings.Contains(low, strings.ToLower(bad)) {
			t.Errorf("the answer leaks %q", bad)
		}
	}
}

// taxStreamText returns the text a stream carried before its end.
func taxStreamText(t *testing.T, a taxAnswer) string {
	t.Helper()
	frames := parseFrames(t, a.body)
	if a.client == dialectOpenAI {
		return taxOpenAIText(t, frames)
	}
	var b strings.Builder
	for _, f := range frames {
		var e struct {
			Type  string
			Delta struct{ Type, Text string }
		}
		if json.Unmarshal([]byte(f.data), &e) == nil && e.Type == "content_block_delta" && e.Delta.Type == "text_delta" {
			b.WriteString(e.Delta.Text)
		}
	}
	return b.String()
}

// taxOpenAIText returns the text of an OpenAI stream's chunks.
func taxOpenAIText(t *testing.T, frames []sseFrame) string {
	t.Helper()
	var b strings.Builder
	for _, f := range frames {
		var c struct {
			Choices []struct {
				Delta struct{ Content string }
			}
		}
		if json.Unmarshal([]byte(f.data), &c) == nil {
			for _, ch := range c.Choices {
				b.WriteString(ch.Delta.Content)
			}
		}
	}
	return b.String()
}
