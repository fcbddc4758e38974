package openai

import (
	"net/http"
	"strconv"
	"time"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/internal/jsonw"
)

// finishReason returns the OpenAI spelling of r. OpenAI has no "error"
// reason: an answer that ended in error reports "stop" (a stream reports the
// failure itself with an error chunk), and so does an unset reason.
func finishReason(r sluice.FinishReason) string {
	switch r {
	case sluice.FinishLength:
		return "length"
	case sluice.FinishToolCalls:
		return "tool_calls"
	case sluice.FinishContentFilter:
		return "content_filter"
	}
	return "stop"
}

// appendUsage appends the OpenAI usage object. CacheWriteTokens has no OpenAI
// field and is dropped; the audio and prediction counters are always zero.
func appendUsage(b []byte, u sluice.Usage) []byte {
	b = append(b, `{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(u.InputTokens), 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, int64(u.OutputTokens), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(u.TotalTokens()), 10)
	b = append(b, `,"prompt_tokens_details":{"cached_tokens":`...)
	b = strconv.AppendInt(b, int64(u.CacheReadTokens), 10)
	b = append(b, `,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":`...)
	b = strconv.AppendInt(b, int64(u.ReasoningTokens), 10)
	b = append(b, `,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`...)
	return b
}

// MarshalResponse encodes resp as a "chat.completion" object with one choice.
// It uses resp.ID and resp.Model as given, and resp.Created (zero means now).
//
// Text parts are joined into content (null when there is none), tool calls
// become tool_calls (an empty argument string is sent as "{}", which clients
// can parse), and thinking text is sent as the message's "reasoning_content";
// thinking signatures and redacted thinking are dropped.
func MarshalResponse(resp *sluice.Response) ([]byte, error) {
	created := resp.Created
	if created == 0 {
		created = time.Now().Unix()
	}
	msg := &resp.Message
	b := make([]byte, 0, 512+responseSize(msg))
	b = append(b, `{"id":`...)
	b = appendString(b, resp.ID)
	b = append(b, `,"object":"chat.completion","created":`...)
	b = strconv.AppendInt(b, created, 10)
	b = append(b, `,"model":`...)
	b = appendString(b, resp.Model)
	b = append(b, `,"choices":[{"index":0,"message":{"role":"assistant","content":`...)
	var hasText, hasThinking bool
	for i := range msg.Parts {
		switch p := &msg.Parts[i]; p.Type {
		case sluice.PartText:
			hasText = true
		case sluice.PartThinking:
			hasThinking = hasThinking || (!p.Redacted && p.Text != "")
		}
	}
	if hasText {
		b = appendString(b, sluice.JoinText(msg.Parts))
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"refusal":null`...)
	if hasThinking {
		b = append(b, `,"reasoning_content":`...)
		b = appendJoined(b, msg.Parts, sluice.PartThinking)
	}
	n := 0
	for i := range msg.Parts {
		p := &msg.Parts[i]
		if p.Type != sluice.PartToolCall {
			continue
		}
		if n == 0 {
			b = append(b, `,"tool_calls":[`...)
		} else {
			b = append(b, ',')
		}
		n++
		b = appendToolCall(b, p)
	}
	if n > 0 {
		b = append(b, ']')
	}
	b = append(b, `,"annotations":[]},"logprobs":null,"finish_reason":"`...)
	b = append(b, finishReason(resp.FinishReason)...)
	b = append(b, `"}],"usage":`...)
	b = appendUsage(b, resp.Usage)
	b = append(b, `,"system_fingerprint":null}`...)
	return b, nil
}

// appendJoined appends, as one JSON string, the Text of the parts of type t
// (thinking parts that are redacted are skipped).
func appendJoined(b []byte, parts []sluice.Part, t sluice.PartType) []byte {
	var n, last int
	for i := range parts {
		if parts[i].Type == t && !parts[i].Redacted {
			n++
			last = i
		}
	}
	if n == 1 {
		return appendString(b, parts[last].Text)
	}
	var s []byte
	for i := range parts {
		if parts[i].Type == t && !parts[i].Redacted {
			s = append(s, parts[i].Text...)
		}
	}
	return appendString(b, string(s))
}

func responseSize(m *sluice.Message) int {
	n := 0
	for i := range m.Parts {
		p := &m.Parts[i]
		n += len(p.Text) + len(p.Arguments) + len(p.ToolName) + len(p.ToolCallID) + 64
	}
	return n + n/8
}

// errorType returns the OpenAI error "type" a code is reported under.
func errorType(c sluice.Code) string {
	switch c {
	case sluice.CodeInvalidRequest, sluice.CodeRequestTooLarge, sluice.CodePromptTooLong,
		sluice.CodeNotFound, sluice.CodeIdempotencyConflict:
		return "invalid_request_error"
	case sluice.CodeUnauthenticated:
		return "authentication_error"
	case sluice.CodePermissionDenied:
		return "permission_error"
	case sluice.CodeRateLimited:
		return "rate_limit_error"
	case sluice.CodeBudgetExceeded:
		return "insufficient_quota"
	}
	return "server_error"
}

// appendError appends {"error":{"message","type","param","code"}}: the
// client-safe message, the OpenAI error type of the code, the parameter (or
// null) and the Sluice code itself, and beside it the request id when
// there is one ("request_id"). The cause is never written.
func appendError(b []byte, err *sluice.Error) []byte {
	code := err.Code
	if code == "" {
		code = sluice.CodeInternal
	}
	msg := err.Message
	if msg == "" {
		msg = code.DefaultMessage()
	}
	b = append(b, `{"error":{"message":`...)
	b = appendString(b, msg)
	b = append(b, `,"type":"`...)
	b = append(b, errorType(code)...)
	b = append(b, `","param":`...)
	if err.Param != "" {
		b = appendString(b, err.Param)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"code":`...)
	b = appendString(b, string(code))
	b = jsonw.AppendErrorDetails(b, err)
	b = append(b, '}')
	if err.RequestID != "" {
		b = append(b, `,"request_id":`...)
		b = appendString(b, err.RequestID)
	}
	return append(b, '}')
}

// MarshalError encodes err as an OpenAI error body:
// {"error":{"message":...,"type":...,"param":...|null,"code":...}}. code is the
// Sluice code (invalid_request, rate_limited, ...); type is the nearest OpenAI
// error type (invalid_request_error, authentication_error, permission_error,
// rate_limit_error, insufficient_quota or server_error).
func MarshalError(err *sluice.Error) []byte {
	if err == nil {
		err = sluice.WrapError(sluice.CodeInternal, nil)
	}
	return appendError(make([]byte, 0, 128+len(err.Message)+len(err.Param)), err)
}

// WriteError writes err as an OpenAI error response: status from the code, a
// Retry-After header in whole seconds (rounded up) when err.RetryAfter is set,
// and the MarshalError body. An err without a RequestID takes the one in
// the response's Sluice-Request-Id header, if set.
func WriteError(w http.ResponseWriter, err *sluice.Error) {
	if err == nil {
		err = sluice.WrapError(sluice.CodeInternal, nil)
	}
	h := w.Header()
	err = sluice.WithRequestID(err, h.Get(sluice.RequestIDHeader))
	h.Set("Content-Type", "application/json")
	if err.RetryAfter > 0 {
		secs := (err.RetryAfter + time.Second - 1) / time.Second
		h.Set("Retry-After", strconv.FormatInt(int64(secs), 10))
	}
	w.WriteHeader(err.Code.HTTPStatus())
	w.Write(MarshalError(err))
}

// MarshalModels encodes the GET /v1/models list: one "model" object per name,
// each with the given created time (Unix seconds) and owner.
func MarshalModels(names []string, created int64, ownedBy string) []byte {
	b := make([]byte, 0, 32+len(names)*(64+len(ownedBy)))
	b = append(b, `{"object":"list","data":[`...)
	for i, name := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = appendString(b, name)
		b = append(b, `,"object":"model","created":`...)
		b = strconv.AppendInt(b, created, 10)
		b = append(b, `,"owned_by":`...)
		b = appendString(b, ownedBy)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// appendToolCall appends one tool_calls entry of an assistant message: the
// call's id, its function name and its arguments as a JSON string ("{}" when
// empty).
func appendToolCall(b []byte, p *sluice.Part) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, p.ToolCallID)
	b = append(b, `,"type":"function","function":{"name":`...)
	b = appendString(b, p.ToolName)
	b = append(b, `,"arguments":`...)
	args := p.Arguments
	if args == "" {
		args = "{}"
	}
	b = appendString(b, args)
	return append(b, "}}"...)
}
