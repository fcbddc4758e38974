package openai

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/sse"
)

// decodeResponse decodes an upstream's non-streaming answer.
func (p *Provider) decodeResponse(body []byte) (*sluice.Response, error) {
	var w wireResponse
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, sluice.WrapError(sluice.CodeUpstreamError, fmt.Errorf("openai provider %s: decode answer: %w", p.cfg.Name, err))
	}
	if w.Error != nil && len(w.Choices) == 0 {
		return nil, errorEvent(p.cfg.Name, w.Error)
	}
	var ch *wireChoice
	for i := range w.Choices {
		if w.Choices[i].Index == 0 {
			ch = &w.Choices[i]
			break
		}
	}
	if ch == nil {
		if len(w.Choices) == 0 {
			return nil, sluice.WrapError(sluice.CodeUpstreamError, fmt.Errorf("openai provider %s: answer has no choices", p.cfg.Name))
		}
		ch = &w.Choices[0]
	}
	m := &ch.Message
	resp := &sluice.Response{ID: w.ID, Model: w.Model, Created: int64(w.Created)}
	resp.Message.Role = sluice.RoleAssistant
	parts := make([]sluice.Part, 0, 2+len(m.ToolCalls))
	if t := m.ReasoningContent; t != "" {
		parts = append(parts, sluice.Part{Type: sluice.PartThinking, Text: t})
	} else if m.Reasoning != "" {
		parts = append(parts, sluice.Part{Type: sluice.PartThinking, Text: string(m.Reasoning)})
	}
	switch firstByte(m.Content) {
	case '"':
		var s string
		if err := json.Unmarshal(m.Content, &s); err != nil {
			return nil, sluice.WrapError(sluice.CodeUpstreamError, fmt.Errorf("openai provider %s: decode content: %w", p.cfg.Name, err))
		}
		if s != "" {
			parts = append(parts, sluice.TextPart(s))
		}
	case '[':
		var cps []struct {
			Type    string `json:"type"`
			Text    string `json:"text"`
			Refusal string `json:"refusal"`
		}
		if err := json.Unmarshal(m.Content, &cps); err != nil {
			return nil, sluice.WrapError(sluice.CodeUpstreamError, fmt.Errorf("openai provider %s: decode content: %w", p.cfg.Name, err))
		}
		for _, cp := range cps {
			if t := cp.Text + cp.Refusal; t != "" && (cp.Type == "text" || cp.Type == "refusal") {
				parts = append(parts, sluice.TextPart(t))
			}
		}
	}
	if m.Refusal != "" {
		parts = append(parts, sluice.TextPart(m.Refusal))
	}
	for i := range m.ToolCalls {
		tc := &m.ToolCalls[i]
		args, err := decodeArguments(tc.Function.Arguments)
		if err != nil {
			return nil, sluice.WrapError(sluice.CodeUpstreamError, fmt.Errorf("openai provider %s: decode tool call arguments: %w", p.cfg.Name, err))
		}
		id := tc.ID
		if id == "" {
			id = newCallID()
		}
		parts = append(parts, sluice.Part{Type: sluice.PartToolCall, ToolCallID: id, ToolName: tc.Function.Name, Arguments: args})
	}
	resp.Message.Parts = parts
	resp.FinishReason = mapFinish(ch.FinishReason, len(m.ToolCalls) > 0, m.Refusal != "")
	if w.Usage != nil {
		resp.Usage = usageFrom(w.Usage)
	}
	return resp, nil
}

// mapFinish maps an upstream finish_reason. Servers that end a tool-calling
// answer with "stop" get tool_calls, so the client sees why it stopped; a
// refusal is content_filter (Anthropic's refusal maps there too); "error" is
// error; any other reason, or none, is stop.
func mapFinish(reason string, calls, refusal bool) sluice.FinishReason {
	switch reason {
	case "length":
		return sluice.FinishLength
	case "tool_calls", "function_call":
		return sluice.FinishToolCalls
	case "content_filter":
		return sluice.FinishContentFilter
	case "error":
		return sluice.FinishError
	}
	switch {
	case calls:
		return sluice.FinishToolCalls
	case refusal:
		return sluice.FinishContentFilter
	}
	return sluice.FinishStop
}

func usageFrom(w *wireUsage) sluice.Usage {
	u := sluice.Usage{InputTokens: w.PromptTokens, OutputTokens: w.CompletionTokens}
	if d := w.PromptTokensDetails; d != nil && d.CachedTokens > 0 {
		u.CacheReadTokens = d.CachedTokens
	} else {
		u.CacheReadTokens = w.PromptCacheHitTokens
	}
	if d := w.CompletionTokensDetails; d != nil {
		u.ReasoningTokens = d.ReasoningTokens
	}
	return u
}

// newCallID makes a tool call id for servers that send none.
func newCallID() string { return "call_" + rand.Text() }

// statusError maps an upstream's non-2xx answer.
func (p *Provider) statusError(status int, h http.Header, body []byte) *sluice.Error {
	typ, code, msg := parseErrorBody(body)
	ue := &sluice.UpstreamError{
		Provider:   p.cfg.Name,
		StatusCode: status,
		Type:       typ,
		Message:    msg,
		RetryAfter: retryAfter(h, status, time.Now()),
	}
	if ue.Type == "" {
		ue.Type = code
	}
	e := sluice.FromUpstream(ue)
	if code == "context_length_exceeded" {
		e.Code, e.Message = sluice.CodePromptTooLong, "The prompt is longer than the model's context window."
	}
	return e
}

// parseErrorBody reads an error body in the shapes servers use: OpenAI's
// {"error":{"message","type","code"}}, {"error":"text"} (Ollama and others),
// a top-level {"message","type","code"} (older vLLM) or FastAPI's
// {"detail":...}. Anything else is kept, cut short, as the message.
func parseErrorBody(body []byte) (typ, code, msg string) {
	var eb struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Type    string          `json:"type"`
		Code    json.RawMessage `json:"code"`
		Detail  json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(body, &eb) == nil {
		switch firstByte(eb.Error) {
		case '{':
			var we wireError
			if json.Unmarshal(eb.Error, &we) == nil {
				return we.Type, we.codeString(), we.Message
			}
		case '"':
			var s string
			if json.Unmarshal(eb.Error, &s) == nil {
				return "", "", s
			}
		}
		if eb.Message != "" || eb.Type != "" {
			we := wireError{Code: eb.Code}
			return eb.Type, we.codeString(), eb.Message
		}
		if len(eb.Detail) > 0 && !isNull(eb.Detail) {
			var s string
			if json.Unmarshal(eb.Detail, &s) == nil {
				return "", "", s
			}
			return "", "", truncate(string(eb.Detail))
		}
	}
	return "", "", truncate(string(bytes.TrimSpace(body)))
}

func truncate(s string) string {
	const max = 512
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

// retryAfter reads how long the upstream asks us to wait: Retry-After and
// retry-after-ms, or, on a 429 without them, OpenAI's x-ratelimit-reset-*
// header for whichever limit is exhausted.
func retryAfter(h http.Header, status int, now time.Time) time.Duration {
	if d := sluice.ParseRetryAfter(h, now); d > 0 || status != http.StatusTooManyRequests {
		return d
	}
	var d time.Duration
	for _, kind := range [...]string{"requests", "tokens"} {
		if strings.TrimSpace(h.Get("X-Ratelimit-Remaining-"+kind)) != "0" {
			continue
		}
		if v, err := time.ParseDuration(strings.TrimSpace(h.Get("X-Ratelimit-Reset-" + kind))); err == nil && v > d {
			d = v
		}
	}
	return d
}

// passedCodes are the Sluice codes an upstream that is itself Sluice (or its
// simulator) may put in an error's code and that keep their meaning one hop
// further. Codes about the caller's own key or budget do not: for us they
// are the upstream failing.
var passedCodes = map[sluice.Code]sluice.Code{
	sluice.CodeInvalidRequest:      sluice.CodeInvalidRequest,
	sluice.CodeRequestTooLarge:     sluice.CodeRequestTooLarge,
	sluice.CodePromptTooLong:       sluice.CodePromptTooLong,
	sluice.CodeRateLimited:         sluice.CodeRateLimited,
	sluice.CodeOverloaded:          sluice.CodeOverloaded,
	sluice.CodeUpstreamTimeout:     sluice.CodeUpstreamTimeout,
	sluice.CodeUpstreamUnavailable: sluice.CodeUpstreamUnavailable,
	sluice.CodeStreamInterrupted:   sluice.CodeStreamInterrupted,
}

// errorEvent maps an error object that came inside a 200 answer: an error
// chunk in a stream, or an error body sent with 200. The code comes from the
// error's numeric code when it is an HTTP status (vLLM), else from a Sluice
// code in passedCodes, else from its type and code words; upstream_error when
// nothing matches.
func errorEvent(provider string, we *wireError) *sluice.Error {
	code := we.codeString()
	ue := &sluice.UpstreamError{Provider: provider, Type: we.Type, Message: we.Message}
	if ue.Type == "" {
		ue.Type = code
	}
	var c sluice.Code
	if n, err := strconv.Atoi(code); err == nil && n >= 400 && n <= 599 {
		c = sluice.StatusCode(n)
	} else if sc, ok := passedCodes[sluice.Code(code)]; ok {
		c = sc
	} else {
		words := strings.ToLower(we.Type + " " + code)
		switch {
		case strings.Contains(words, "context_length"):
			c = sluice.CodePromptTooLong
		case strings.Contains(words, "rate_limit"):
			c = sluice.CodeRateLimited
		case strings.Contains(words, "overloaded"):
			c = sluice.CodeOverloaded
		case strings.Contains(words, "timeout"):
			c = sluice.CodeUpstreamTimeout
		case strings.Contains(words, "invalid_request"):
			c = sluice.CodeInvalidRequest
		default:
			c = sluice.CodeUpstreamError
		}
	}
	msg := c.DefaultMessage()
	switch c {
	case sluice.CodeInvalidRequest:
		msg = "The model provider rejected the request."
	case sluice.CodePromptTooLong:
		msg = "The prompt is longer than the model's context window."
	}
	return &sluice.Error{Code: c, Message: msg, Err: ue}
}

// A streamDecoder turns an upstream's chat.completion.chunk events into
// sluice events, one pull at a time. It tolerates what real servers send:
// comment lines, chunks with no choices (usage, content-filter results), empty
// ids on continuation chunks, tool call indexes that do not start at 0 or
// repeat for a new call, reasoning as reasoning_content or reasoning, trailing
// white space after [DONE], and a stream that ends after a finish_reason
// without [DONE]. The finish_reason is held until the end, so EventUsage, then
// EventFinish, come last.
type streamDecoder struct {
	// ctx is the call's context, held for the stream's life to tell a read
	// error caused by its cancellation from a dropped connection.
	ctx      context.Context
	provider string
	body     io.ReadCloser
	r        *sse.Reader
	whole    *Provider // non-nil: the answer is one JSON object, not events

	chunk     wireChunk
	scratch   []byte // fastChunk's unescaping buffer
	queue     []sluice.Event
	qi        int
	started   bool
	done      bool
	sawDone   bool // the upstream sent [DONE]
	finish    string
	refusal   bool
	haveUsage bool
	usage     sluice.Usage
	calls     []streamCall
}

// streamCall maps an upstream tool call to its sluice Index (its position in
// calls).
type streamCall struct {
	upstream int // the upstream's index, -1 when it sent none
	id       string
}

// release closes the body; after a clean [DONE] the connection is kept for
// reuse (see sse.CloseBody).
func (d *streamDecoder) release() error {
	return sse.CloseBody(d.body, d.sawDone && d.ctx.Err() == nil)
}

func (d *streamDecoder) push(ev sluice.Event) { d.queue = append(d.queue, ev) }

func (d *streamDecoder) next() (sluice.Event, error) {
	for {
		if d.qi < len(d.queue) {
			ev := d.queue[d.qi]
			d.queue[d.qi] = sluice.Event{}
			d.qi++
			return ev, nil
		}
		d.queue, d.qi = d.queue[:0], 0
		if d.done {
			return sluice.Event{}, io.EOF
		}
		if d.whole != nil {
			if err := d.readWhole(); err != nil {
				d.done = true
				return sluice.Event{}, err
			}
			continue
		}
		ev, err := d.r.Next()
		if err != nil {
			if d.ctx.Err() == nil && d.finish != "" {
				d.end() // finished, and then the connection closed
				continue
			}
			d.done = true
			return sluice.Event{}, d.readError(err)
		}
		data := bytes.TrimSpace(ev.Data)
		if len(data) == 0 {
			continue
		}
		if bytes.Equal(data, doneData) {
			d.sawDone = true
			d.end()
			continue
		}
		if err := d.decodeChunk(data); err != nil {
			d.done = true
			return sluice.Event{}, err
		}
	}
}

// readError maps a failure to read the stream before it finished.
func (d *streamDecoder) readError(err error) *sluice.Error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	cause := fmt.Errorf("openai provider %s: stream ended before a finish_reason: %w", d.provider, err)
	if ctxErr := d.ctx.Err(); ctxErr != nil {
		if !errors.Is(cause, ctxErr) {
			cause = fmt.Errorf("%w: %w", ctxErr, cause)
		}
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			return sluice.WrapError(sluice.CodeUpstreamTimeout, cause)
		}
	}
	return &sluice.Error{Code: sluice.CodeStreamInterrupted, Message: sluice.CodeStreamInterrupted.DefaultMessage(), Err: cause}
}

// end queues the last events: start if none was sent, usage if any, finish.
func (d *streamDecoder) end() {
	d.begin("", "")
	if d.haveUsage {
		d.push(sluice.Event{Type: sluice.EventUsage, Usage: d.usage})
	}
	d.push(sluice.Event{Type: sluice.EventFinish, FinishReason: mapFinish(d.finish, len(d.calls) > 0, d.refusal)})
	d.done = true
}

// begin queues EventStart once.
func (d *streamDecoder) begin(id, model string) {
	if !d.started {
		d.started = true
		d.push(sluice.Event{Type: sluice.EventStart, ID: id, Model: model})
	}
}

func (d *streamDecoder) decodeChunk(data []byte) error {
	c := &d.chunk
	if !fastChunk(data, c, &d.scratch) {
		// Reset without freeing: encoding/json decodes into existing elements.
		clear(c.Choices[:cap(c.Choices)])
		*c = wireChunk{Choices: c.Choices[:0]}
		if err := json.Unmarshal(data, c); err != nil {
			return sluice.WrapError(sluice.CodeUpstreamError, fmt.Errorf("openai provider %s: decode chunk: %w", d.provider, err))
		}
	}
	if c.Error != nil {
		return errorEvent(d.provider, c.Error)
	}
	if c.ID != "" || len(c.Choices) > 0 {
		// A first chunk with no id and no choices (Azure's content-filter
		// results) says nothing yet.
		d.begin(c.ID, c.Model)
	}
	for i := range c.Choices {
		ch := &c.Choices[i]
		if ch.Index != 0 {
			continue
		}
		dl := &ch.Delta
		if dl.ReasoningContent != "" {
			d.push(sluice.Event{Type: sluice.EventThinking, Text: dl.ReasoningContent})
		} else if dl.Reasoning != "" {
			d.push(sluice.Event{Type: sluice.EventThinking, Text: string(dl.Reasoning)})
		}
		if dl.Content != "" {
			d.push(sluice.Event{Type: sluice.EventText, Text: dl.Content})
		}
		if dl.Refusal != "" {
			d.refusal = true
			d.push(sluice.Event{Type: sluice.EventText, Text: dl.Refusal})
		}
		for j := range dl.ToolCalls {
			d.toolDelta(&dl.ToolCalls[j])
		}
		if ch.FinishReason != "" {
			d.finish = ch.FinishReason
		}
	}
	if c.Usage != nil {
		d.begin(c.ID, c.Model)
		d.usage, d.haveUsage = usageFrom(c.Usage), true
	}
	return nil
}

// toolDelta queues the event for one tool call delta. A delta belongs to the
// latest call with the same upstream index (any call when it has none) unless
// it carries a different id, which starts a new call.
func (d *streamDecoder) toolDelta(tc *wireChunkToolCall) {
	up := -1
	if tc.Index != nil {
		up = *tc.Index
	}
	k := -1
	for j := len(d.calls) - 1; j >= 0; j-- {
		if up < 0 || d.calls[j].upstream == up {
			k = j
			break
		}
	}
	if k >= 0 && tc.ID != "" && tc.ID != d.calls[k].id {
		k = -1
	}
	if k < 0 {
		id := tc.ID
		if id == "" {
			id = newCallID()
		}
		k = len(d.calls)
		d.calls = append(d.calls, streamCall{upstream: up, id: id})
		d.push(sluice.Event{Type: sluice.EventToolCall, Index: k, ToolCallID: id, ToolName: tc.Function.Name, Arguments: tc.Function.Arguments})
		return
	}
	if tc.Function.Arguments != "" {
		d.push(sluice.Event{Type: sluice.EventToolCall, Index: k, Arguments: tc.Function.Arguments})
	}
}

// readWhole turns a whole JSON answer, sent by a server that ignored
// "stream":true, into the events of a stream.
func (d *streamDecoder) readWhole() error {
	body, err := io.ReadAll(io.LimitReader(d.body, maxResponseBody))
	if err != nil {
		return d.readError(err)
	}
	resp, err := d.whole.decodeResponse(body)
	if err != nil {
		return err
	}
	d.begin(resp.ID, resp.Model)
	k := 0
	for _, p := range resp.Message.Parts {
		switch p.Type {
		case sluice.PartThinking:
			d.push(sluice.Event{Type: sluice.EventThinking, Text: p.Text})
		case sluice.PartText:
			d.push(sluice.Event{Type: sluice.EventText, Text: p.Text})
		case sluice.PartToolCall:
			d.push(sluice.Event{Type: sluice.EventToolCall, Index: k, ToolCallID: p.ToolCallID, ToolName: p.ToolName, Arguments: p.Arguments})
			k++
		}
	}
	d.push(sluice.Event{Type: sluice.EventUsage, Usage: resp.Usage})
	d.push(sluice.Event{Type: sluice.EventFinish, FinishReason: resp.FinishReason})
	d.done = true
	return nil
}
