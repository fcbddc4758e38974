package openai

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
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
	// Name is the provider's configured name, used in errors and logs.
	Name string
	// BaseURL is the API root, such as https://api.openai.com/v1; requests go
	// to BaseURL + "/chat/completions".
	BaseURL string
	// APIKey is sent as "Authorization: Bearer <APIKey>" when set.
	// Self-hosted servers often need none.
	APIKey string
	// Headers are added to every request, after the provider's own, so they
	// may replace them (Azure's "api-key", for one).
	Headers map[string]string
	// Client sends the requests. Nil means a client shared by all providers,
	// on a transport with connection pooling suited to many concurrent calls
	// and no overall timeout: deadlines come from the request's context.
	Client *http.Client
	// MaxTokensField names the request field that carries the token cap:
	// MaxTokens ("max_tokens") or MaxCompletionTokens
	// ("max_completion_tokens"). Empty means by model: max_completion_tokens
	// for OpenAI's reasoning models (names starting o1, o3, o4 or gpt-5),
	// which refuse max_tokens, and max_tokens otherwise, which every
	// OpenAI-compatible server knows.
	MaxTokensField string
	// DefaultMaxTokens is the token cap sent when a request sets none; zero
	// sends none, leaving the upstream's own default.
	DefaultMaxTokens int
	// StructuredOutput says how a request for JSON output (a JSON object or
	// a JSON Schema) reaches the upstream: StructuredNative (the default
	// when empty) as the constraint the server applies while decoding,
	// spelled for Server; StructuredPrompt as a system instruction carrying
	// the schema and no constraint, for servers that support none. Sluice
	// checks the answer on its side either way.
	StructuredOutput string
	// Server is the kind of server behind BaseURL, for the fields only it
	// understands: ServerOpenAI (the default when empty) and ServerOllama
	// get response_format, which Ollama's OpenAI-compatible endpoint
	// reads; ServerVLLM gets vLLM's structured_outputs field instead.
	Server string
}

// A Provider calls an OpenAI or OpenAI-compatible chat completions API. It is
// safe for concurrent use.
type Provider struct {
	cfg    Config
	url    string
	client *http.Client
}

var _ sluice.Provider = (*Provider)(nil)

// sharedClient is the client of every Provider configured without one. It
// holds nothing but pooled connections.
var sharedClient = sync.OnceValue(func() *http.Client {
	t, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		t = &http.Transport{Proxy: http.ProxyFromEnvironment}
	} else {
		t = t.Clone()
	}
	t.MaxIdleConns = 512
	t.MaxIdleConnsPerHost = 128
	t.IdleConnTimeout = 90 * time.Second
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ExpectContinueTimeout = time.Second
	t.ForceAttemptHTTP2 = true
	return &http.Client{Transport: t}
})

// NewProvider returns a Provider for cfg. It panics if cfg.MaxTokensField is
// set to something other than MaxTokens or MaxCompletionTokens, or
// cfg.StructuredOutput or cfg.Server to an unknown value: programming errors
// that configuration validation catches first.
func NewProvider(cfg Config) *Provider {
	switch cfg.MaxTokensField {
	case "", MaxTokens, MaxCompletionTokens:
	default:
		panic("openai: invalid MaxTokensField " + cfg.MaxTokensField)
	}
	switch cfg.StructuredOutput {
	case "", StructuredNative, StructuredPrompt:
	default:
		panic("openai: invalid StructuredOutput " + cfg.StructuredOutput)
	}
	switch cfg.Server {
	case "", ServerOpenAI, ServerVLLM, ServerOllama:
	default:
		panic("openai: invalid Server " + cfg.Server)
	}
	c := cfg.Client
	if c == nil {
		c = sharedClient()
	}
	return &Provider{cfg: cfg, url: strings.TrimRight(cfg.BaseURL, "/") + "/chat/completions", client: c}
}

// The most the provider reads of an answer, and of an error body.
const (
	maxResponseBody = 64 << 20
	maxErrorBody    = 1 << 20
)

// Complete sends req and returns the whole answer.
//
// Errors are *sluice.Error: the upstream's error answers are mapped by status
// (sluice.StatusCode) with the upstream's detail kept in a
// *sluice.UpstreamError cause; a transport failure is upstream_unavailable,
// or upstream_timeout when the deadline passed; a cancelled ctx gives an error
// that wraps context.Canceled.
func (p *Provider) Complete(ctx context.Context, req *sluice.Request) (*sluice.Response, error) {
	resp, err := p.do(ctx, req, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody+1))
	if err != nil {
		return nil, p.transportError(ctx, err)
	}
	if len(body) > maxResponseBody {
		return nil, sluice.WrapError(sluice.CodeUpstreamError, fmt.Errorf("openai provider %s: answer larger than %d bytes", p.cfg.Name, maxResponseBody))
	}
	return p.decodeResponse(body)
}

// Stream sends req with "stream":true and returns once the upstream has
// answered with a 2xx status; an error answer is mapped as Complete maps it.
// The Stream decodes the upstream's events as they are pulled, with no
// goroutine of its own; see streamDecoder for what it tolerates. Its release
// closes the response body, and cancelling ctx ends the upstream call.
func (p *Provider) Stream(ctx context.Context, req *sluice.Request) (sluice.Stream, error) {
	resp, err := p.do(ctx, req, true)
	if err != nil {
		return nil, err
	}
	d := &streamDecoder{ctx: ctx, provider: p.cfg.Name, body: resp.Body, r: sse.NewReader(resp.Body)}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/json" {
		// The server ignored "stream": its whole answer comes as one object.
		d.whole = p
	}
	return sluice.NewStream(d.next, d.release), nil
}

// do sends req and returns a 2xx response, or the mapped error after reading
// and closing an error answer's body.
func (p *Provider) do(ctx context.Context, req *sluice.Request, stream bool) (*http.Response, error) {
	if req.MaxOutputTokens == 0 && p.cfg.DefaultMaxTokens > 0 {
		cp := *req
		cp.MaxOutputTokens = p.cfg.DefaultMaxTokens
		req = &cp
	}
	if req.Output.Type != sluice.OutputText && p.cfg.StructuredOutput == StructuredPrompt {
		var err error
		if req, err = promptRequest(req); err != nil {
			return nil, err
		}
	}
	body, err := appendRequest(make([]byte, 0, requestSize(req)), req, stream, maxTokensField(p.cfg.MaxTokensField, req.Model), p.cfg.Server)
	if err != nil {
		return nil, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return nil, sluice.WrapError(sluice.CodeInternal, fmt.Errorf("openai provider %s: build request: %w", p.cfg.Name, err))
	}
	h := hreq.Header
	h.Set("Content-Type", "application/json")
	if stream {
		h.Set("Accept", "text/event-stream")
	} else {
		h.Set("Accept", "application/json")
	}
	if p.cfg.APIKey != "" {
		h.Set("Authorization", "Bearer "+p.cfg.APIKey)
	}
	for k, v := range p.cfg.Headers {
		h.Set(k, v)
	}
	resp, err := p.client.Do(hreq)
	if err != nil {
		return nil, p.transportError(ctx, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		eb, rerr := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		if rerr != nil && ctx.Err() != nil {
			return nil, p.transportError(ctx, rerr)
		}
		return nil, p.statusError(resp.StatusCode, resp.Header, eb)
	}
	return resp, nil
}

// requestSize estimates the encoded size of req, to size the buffer once.
func requestSize(req *sluice.Request) int {
	n := 256 + len(req.Output.Schema)
	for i := range req.System {
		n += len(req.System[i].Text) + 32
	}
	for i := range req.Messages {
		for j := range req.Messages[i].Parts {
			p := &req.Messages[i].Parts[j]
			n += len(p.Text) + len(p.Arguments) + len(p.ImageURL) + len(p.ImageData)*4/3 + 64
		}
	}
	for i := range req.Tools {
		n += len(req.Tools[i].Name) + len(req.Tools[i].Description) + len(req.Tools[i].Parameters) + 64
	}
	return n + n/16
}

// transportError classifies a failure to talk to the upstream.
func (p *Provider) transportError(ctx context.Context, err error) *sluice.Error {
	cause := fmt.Errorf("openai provider %s: %w", p.cfg.Name, err)
	ctxErr := ctx.Err()
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(ctxErr, context.Canceled):
		if !errors.Is(cause, context.Canceled) {
			cause = fmt.Errorf("%w: %w", context.Canceled, cause)
		}
		return &sluice.Error{Code: sluice.CodeInternal, Message: "The request was cancelled.", Err: cause}
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctxErr, context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout()):
		return sluice.WrapError(sluice.CodeUpstreamTimeout, cause)
	}
	return sluice.WrapError(sluice.CodeUpstreamUnavailable, cause)
}
