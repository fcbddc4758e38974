package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/sse"
)

// Config configures a Provider.
type Config struct {
	// Name identifies the provider in errors and logs; "" means "anthropic".
	Name string
	// BaseURL is the upstream's address, e.g. https://api.anthropic.com;
	// requests go to BaseURL + "/v1/messages".
	BaseURL string
	// APIKey is sent as x-api-key; "" sends none.
	APIKey string
	// Version is the anthropic-version header; "" means "2023-06-01".
	Version string
	// Headers are extra headers sent with every request (e.g.
	// anthropic-beta). They are set after the others and may replace them.
	Headers map[string]string
	// DefaultMaxTokens is max_tokens for a request without MaxOutputTokens
	// (Anthropic requires the field); 0 means 4096.
	DefaultMaxTokens int
	// Client sends the requests; nil means a client on a transport shared by
	// all Providers, without an overall timeout: deadlines come from the
	// context.
	Client *http.Client
	// StructuredOutput says how a request for a JSON Schema answer reaches
	// the upstream: StructuredNative (the default when empty) as
	// output_config.format; StructuredTool as one tool, whose input schema
	// is the schema, that the model must call, its input given back as the
	// answer's text (a request with tools of its own, or a schema not of
	// type object, falls back to StructuredPrompt); StructuredPrompt as a
	// system instruction carrying the schema, with no constraint. A JSON
	// object answer is asked for in the system prompt in every mode. Sluice
	// checks the answer on its side either way.
	StructuredOutput string
}

// DefaultVersion is the anthropic-version a Provider sends unless told
// otherwise.
const DefaultVersion = "2023-06-01"

// defaultMaxTokens is max_tokens when neither the request nor the Config sets
// it.
const defaultMaxTokens = 4096

// maxErrorBody caps how much of an error answer is read; maxAnswerBody caps
// a non-streaming answer, far above what max_tokens allows.
const (
	maxErrorBody  = 64 << 10
	maxAnswerBody = 32 << 20
)

// sharedClient is the client of Providers configured without one: one
// connection pool for every upstream, built on first use and never changed.
var sharedClient = sync.OnceValue(func() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 64
	return &http.Client{Transport: t}
})

// A Provider calls an upstream that speaks the Messages API. It is safe for
// concurrent use.
type Provider struct {
	name      string
	url       string
	apiKey    string
	version   string
	headers   map[string]string
	maxTokens int
	client    *http.Client
	output    string // Config.StructuredOutput
}

var _ sluice.Provider = (*Provider)(nil)

// NewProvider returns a Provider for cfg. It panics if cfg.StructuredOutput
// is not one of the Structured values or empty, a programming error that
// configuration validation catches first.
func NewProvider(cfg Config) *Provider {
	switch cfg.StructuredOutput {
	case "", StructuredNative, StructuredTool, StructuredPrompt:
	default:
		panic("anthropic: invalid StructuredOutput " + cfg.StructuredOutput)
	}
	p := &Provider{
		name:      cfg.Name,
		url:       strings.TrimRight(cfg.BaseURL, "/") + "/v1/messages",
		apiKey:    cfg.APIKey,
		version:   cfg.Version,
		headers:   cfg.Headers,
		maxTokens: cfg.DefaultMaxTokens,
		client:    cfg.Client,
		output:    cfg.StructuredOutput,
	}
	if p.name == "" {
		p.name = "anthropic"
	}
	if p.version == "" {
		p.version = DefaultVersion
	}
	if p.maxTokens <= 0 {
		p.maxTokens = defaultMaxTokens
	}
	if p.client == nil {
		p.client = sharedClient()
	}
	return p
}

// Complete sends req as a non-streaming call and returns the answer. A JSON
// Schema answer given as a tool call (StructuredTool) comes back as text.
//
// An error answer is an *sluice.Error classified by sluice.FromUpstream, its
// cause a *sluice.UpstreamError with the upstream's type and message. A
// transport failure is upstream_unavailable, or upstream_timeout when ctx's
// deadline passed; a cancelled ctx gives an error wrapping context.Canceled.
func (p *Provider) Complete(ctx context.Context, req *sluice.Request) (*sluice.Response, error) {
	req, answerTool, err := structuredRequest(req, p.output)
	if err != nil {
		return nil, err
	}
	resp, err := p.send(ctx, req, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBody+1))
	if err != nil {
		return nil, p.readError(ctx, err)
	}
	if len(body) > maxAnswerBody {
		return nil, sluice.WrapError(sluice.CodeUpstreamError, fmt.Errorf("anthropic %s: answer larger than %d bytes", p.name, maxAnswerBody))
	}
	var w wireResponse
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, sluice.WrapError(sluice.CodeUpstreamError, fmt.Errorf("anthropic %s: decode answer: %w", p.name, err))
	}
	if w.Type == "error" {
		return nil, typeError(p.name, resp.StatusCode, &w.Error)
	}
	r, err := w.response()
	if err != nil || answerTool == "" {
		return r, err
	}
	unwrapAnswer(r, answerTool)
	return r, nil
}

// unwrapAnswer turns the call of the tool named answerTool (see
// StructuredTool) into the answer's text: its input, compacted, as a text
// part, and the finish reason of a call into stop. Text beside it is
// dropped, since the answer is the input alone (a forced call has none).
func unwrapAnswer(r *sluice.Response, answerTool string) {
	parts := r.Message.Parts[:0]
	unwrapped := false
	for _, p := range r.Message.Parts {
		switch {
		case p.Type == sluice.PartToolCall && p.ToolName == answerTool:
			parts = append(parts, sluice.TextPart(p.Arguments))
			unwrapped = true
		case p.Type == sluice.PartText:
		default:
			parts = append(parts, p)
		}
	}
	r.Message.Parts = parts
	if unwrapped && r.FinishReason == sluice.FinishToolCalls {
		r.FinishReason = sluice.FinishStop
	}
}

// typeError builds the error of an error object that came without an error
// status (inside a stream, or in a 2xx answer): its code comes from the
// error type, through the status Anthropic documents for it.
func typeError(name string, status int, e *wireErrorBody) *sluice.Error {
	ue := &sluice.UpstreamError{Provider: name, StatusCode: status, Type: e.Type, Message: e.Message}
	c := sluice.StatusCode(typeStatus(e.Type))
	msg := c.DefaultMessage()
	if c == sluice.CodeInvalidRequest {
		msg = "The model provider rejected the request."
	}
	return &sluice.Error{Code: c, Message: msg, Err: ue}
}

// Stream sends req as a streaming call. It returns once the upstream has
// answered with a 2xx status; errors before then are those of Complete. A
// JSON Schema answer given as a tool call (StructuredTool) streams as text
// deltas.
//
// The stream's errors: an error event is an *sluice.Error classified from its
// type (overloaded_error is overloaded, rate_limit_error rate_limited,
// api_error upstream_error, ...) with a *sluice.UpstreamError cause; a stream
// that ends or breaks before message_stop is stream_interrupted; a cancelled
// ctx ends the stream with an error wrapping context.Canceled.
func (p *Provider) Stream(ctx context.Context, req *sluice.Request) (sluice.Stream, error) {
	req, answerTool, err := structuredRequest(req, p.output)
	if err != nil {
		return nil, err
	}
	resp, err := p.send(ctx, req, true)
	if err != nil {
		return nil, err
	}
	if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/json") {
		// Not a stream: an error object, or a server that ignored "stream".
		defer resp.Body.Close()
		raw, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		if err != nil {
			return nil, p.readError(ctx, err)
		}
		var w wireError
		if json.Unmarshal(raw, &w) == nil && w.Type == "error" {
			return nil, typeError(p.name, resp.StatusCode, &w.Error)
		}
		return nil, sluice.WrapError(sluice.CodeUpstreamError, fmt.Errorf("anthropic %s: answered a stream request with %s", p.name, ct))
	}
	d := &streamDecoder{ctx: ctx, name: p.name, rd: sse.NewReader(resp.Body), answerTool: answerTool}
	return sluice.NewStream(d.next, func() error {
		// After message_stop the connection is kept for reuse.
		return sse.CloseBody(resp.Body, d.stopped && ctx.Err() == nil)
	}), nil
}

// send posts req and returns the 2xx answer; any other answer is turned into
// an error and its body closed.
func (p *Provider) send(ctx context.Context, req *sluice.Request, stream bool) (*http.Response, error) {
	body, err := encodeRequest(req, p.maxTokens, stream)
	if err != nil {
		return nil, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return nil, sluice.WrapError(sluice.CodeInternal, fmt.Errorf("anthropic %s: build request: %w", p.name, err))
	}
	h := hreq.Header
	if p.apiKey != "" {
		h.Set("x-api-key", p.apiKey)
	}
	h.Set("anthropic-version", p.version)
	h.Set("content-type", "application/json")
	if stream {
		h.Set("accept", "text/event-stream")
	} else {
		h.Set("accept", "application/json")
	}
	for k, v := range p.headers {
		h.Set(k, v)
	}
	resp, err := p.client.Do(hreq)
	if err != nil {
		return nil, p.transportError(ctx, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, p.statusError(resp)
}

// statusError builds the error of a non-2xx answer.
func (p *Provider) statusError(resp *http.Response) *sluice.Error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	ue := &sluice.UpstreamError{
		Provider:   p.name,
		StatusCode: resp.StatusCode,
		RetryAfter: retryAfter(resp.Header, time.Now()),
	}
	var w wireError
	if json.Unmarshal(raw, &w) == nil && w.Error.Type != "" {
		ue.Type, ue.Message = w.Error.Type, w.Error.Message
	} else {
		ue.Message = string(raw[:min(len(raw), 512)])
	}
	return sluice.FromUpstream(ue)
}

// retryAfter reads how long the upstream asks us to wait: Retry-After, or
// else the latest reset time of a rate limit that Anthropic's
// anthropic-ratelimit-*-remaining headers report exhausted.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if d := sluice.ParseRetryAfter(h, now); d > 0 {
		return d
	}
	var d time.Duration
	for _, limit := range [...]string{"requests", "tokens", "input-tokens", "output-tokens"} {
		if strings.TrimSpace(h.Get("anthropic-ratelimit-"+limit+"-remaining")) != "0" {
			continue
		}
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(h.Get("anthropic-ratelimit-"+limit+"-reset")))
		if err == nil && t.Sub(now) > d {
			d = t.Sub(now)
		}
	}
	return d
}

// transportError classifies a failure to get an answer at all.
func (p *Provider) transportError(ctx context.Context, err error) error {
	return p.classify(ctx, fmt.Errorf("anthropic %s: %w", p.name, err))
}

// readError classifies a failure to read a 2xx answer's body.
func (p *Provider) readError(ctx context.Context, err error) error {
	return p.classify(ctx, fmt.Errorf("anthropic %s: read answer: %w", p.name, err))
}

// classify turns a network failure into the error callers see. A cancelled
// ctx is the caller's doing, not the upstream's: the error wraps
// context.Canceled and is no *sluice.Error, so the router neither retries it
// nor counts it against the upstream (sluice.AsError makes it internal).
func (p *Provider) classify(ctx context.Context, err error) error {
	cerr := ctx.Err()
	switch {
	case errors.Is(cerr, context.Canceled) || (cerr == nil && errors.Is(err, context.Canceled)):
		if !errors.Is(err, context.Canceled) {
			err = fmt.Errorf("%w: %w", context.Canceled, err)
		}
		return err
	case cerr != nil || errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return sluice.WrapError(sluice.CodeUpstreamTimeout, err)
	}
	return sluice.WrapError(sluice.CodeUpstreamUnavailable, err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// wireResponse is an upstream's "message" answer.
type wireResponse struct {
	Type         string        `json:"type"`
	Error        wireErrorBody `json:"error"`
	ID           string        `json:"id"`
	Model        string        `json:"model"`
	Content      []wireBlock   `json:"content"`
	StopReason   string        `json:"stop_reason"`
	StopSequence string        `json:"stop_sequence"`
	Usage        wireUsage     `json:"usage"`
}

// response converts the answer. Content blocks of server tools and other
// types the core model has no part for are left out.
func (w *wireResponse) response() (*sluice.Response, error) {
	resp := &sluice.Response{
		ID:           w.ID,
		Model:        w.Model,
		FinishReason: finishReason(w.StopReason),
		StopSequence: w.StopSequence,
		Usage:        toUsage(w.Usage.InputTokens, w.Usage.OutputTokens, w.Usage.CacheCreationInputTokens, w.Usage.CacheReadInputTokens),
		Message:      sluice.Message{Role: sluice.RoleAssistant},
	}
	parts := make([]sluice.Part, 0, len(w.Content))
	for i := range w.Content {
		b := &w.Content[i]
		switch b.Type {
		case "text":
			parts = append(parts, sluice.TextPart(b.Text))
		case "tool_use":
			args, ok := compactObject(nullToEmpty(b.Input))
			if !ok {
				return nil, sluice.WrapError(sluice.CodeUpstreamError, errors.New("anthropic: tool_use input is not an object"))
			}
			parts = append(parts, sluice.Part{Type: sluice.PartToolCall, ToolCallID: b.ID, ToolName: b.Name, Arguments: args})
		case "thinking":
			parts = append(parts, sluice.Part{Type: sluice.PartThinking, Text: b.Thinking, Signature: b.Signature})
		case "redacted_thinking":
			parts = append(parts, sluice.Part{Type: sluice.PartThinking, Redacted: true, Data: b.Data})
		}
	}
	resp.Message.Parts = parts
	return resp, nil
}
