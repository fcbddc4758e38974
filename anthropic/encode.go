package anthropic

import (
	"net/http"
	"strconv"
	"time"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/internal/jsonw"
)

// ErrorType returns the Anthropic error type for c, from the dialect's list:
// invalid_request_error, authentication_error, permission_error,
// not_found_error, request_too_large, rate_limit_error, api_error,
// timeout_error and overloaded_error.
//
// Codes without a type of their own take the nearest one: prompt_too_long and
// idempotency_conflict are invalid_request_error (Anthropic uses it for other
// 4xx answers too); budget_exceeded, sent as a 429, is rate_limit_error; the
// upstream and internal failures are api_error.
func ErrorType(c sluice.Code) string {
	switch c {
	case sluice.CodeInvalidRequest, sluice.CodePromptTooLong, sluice.CodeIdempotencyConflict:
		return "invalid_request_error"
	case sluice.CodeUnauthenticated:
		return "authentication_error"
	case sluice.CodePermissionDenied:
		return "permission_error"
	case sluice.CodeNotFound:
		return "not_found_error"
	case sluice.CodeRequestTooLarge:
		return "request_too_large"
	case sluice.CodeRateLimited, sluice.CodeBudgetExceeded:
		return "rate_limit_error"
	case sluice.CodeOverloaded:
		return "overloaded_error"
	case sluice.CodeUpstreamTimeout:
		return "timeout_error"
	}
	return "api_error"
}

// typeStatus is the HTTP status Anthropic's documentation gives each error
// type. It classifies error events inside a stream, which carry no status,
// through the same table (sluice.StatusCode) as error answers.
func typeStatus(t string) int {
	switch t {
	case "invalid_request_error":
		return http.StatusBadRequest
	case "authentication_error":
		return http.StatusUnauthorized
	case "billing_error":
		return http.StatusPaymentRequired
	case "permission_error":
		return http.StatusForbidden
	case "not_found_error":
		return http.StatusNotFound
	case "request_too_large":
		return http.StatusRequestEntityTooLarge
	case "rate_limit_error":
		return http.StatusTooManyRequests
	case "timeout_error":
		return http.StatusGatewayTimeout
	case "overloaded_error":
		return 529
	}
	return http.StatusInternalServerError // api_error and anything new
}

// clientError returns err's client-safe fields, making a nil err internal.
func clientError(err *sluice.Error) (typ, msg string) {
	if err == nil {
		return ErrorType(sluice.CodeInternal), sluice.CodeInternal.DefaultMessage()
	}
	msg = err.Message
	if msg == "" {
		msg = err.Code.DefaultMessage()
	}
	return ErrorType(err.Code), msg
}

// appendError appends the dialect's error object for err, with its request
// id beside it when there is one.
func appendError(b []byte, err *sluice.Error) []byte {
	typ, msg := clientError(err)
	b = append(b, `{"type":"error","error":{"type":`...)
	b = appendString(b, typ)
	b = append(b, `,"message":`...)
	b = appendString(b, msg)
	if err != nil {
		b = jsonw.AppendErrorDetails(b, err) // Sluice's extension
	}
	b = append(b, '}')
	if err != nil && err.RequestID != "" {
		// Where Anthropic's API puts its own request id.
		b = append(b, `,"request_id":`...)
		b = appendString(b, err.RequestID)
	}
	return append(b, '}')
}

// MarshalError returns the body of an error answer:
// {"type":"error","error":{"type":...,"message":...}}. Only err's Code and
// Message are used; its cause never leaves the gateway. A nil err is internal.
func MarshalError(err *sluice.Error) []byte {
	return appendError(make([]byte, 0, 128), err)
}

// WriteError writes err as an error answer: status err.Code.HTTPStatus(), a
// Retry-After header in whole seconds rounded up when err.RetryAfter is set,
// and the MarshalError body. An err without a RequestID takes the one in
// the response's Sluice-Request-Id header, if set.
func WriteError(w http.ResponseWriter, err *sluice.Error) {
	if err == nil {
		err = sluice.WrapError(sluice.CodeInternal, nil)
	}
	err = sluice.WithRequestID(err, w.Header().Get(sluice.RequestIDHeader))
	if err.RetryAfter > 0 {
		secs := (err.RetryAfter + time.Second - 1) / time.Second
		w.Header().Set("Retry-After", strconv.FormatInt(int64(secs), 10))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(err.Code.HTTPStatus())
	w.Write(MarshalError(err))
}

// MarshalResponse returns resp as a "message" object, with resp.ID and
// resp.Model as given:
//
//	{"id","type":"message","role":"assistant","model","content":[...],
//	 "stop_reason","stop_sequence","usage":{...}}
//
// Content blocks follow resp.Message.Parts in order: text, tool_use, thinking
// and redacted_thinking. Parts an assistant message cannot hold on this wire
// (images, tool results) and empty text parts are left out. A tool call whose
// arguments are not a JSON object is an upstream_error: the answer cannot be
// written faithfully.
func MarshalResponse(resp *sluice.Response) ([]byte, error) {
	if resp == nil {
		return nil, sluice.NewError(sluice.CodeInternal, sluice.CodeInternal.DefaultMessage())
	}
	b := make([]byte, 0, 256+responseSize(resp))
	b = append(b, `{"id":`...)
	b = appendString(b, resp.ID)
	b = append(b, `,"type":"message","role":"assistant","model":`...)
	b = appendString(b, resp.Model)
	b = append(b, `,"content":[`...)
	first := true
	for i := range resp.Message.Parts {
		p := &resp.Message.Parts[i]
		n := len(b)
		if !first {
			b = append(b, ',')
		}
		var ok, wrote bool
		b, wrote, ok = appendResponseBlock(b, p)
		if !ok {
			return nil, &sluice.Error{
				Code:    sluice.CodeUpstreamError,
				Message: "The model provider returned tool call arguments that are not a JSON object.",
			}
		}
		if !wrote {
			b = b[:n]
			continue
		}
		first = false
	}
	b = append(b, `],"stop_reason":`...)
	b = appendString(b, stopReason(resp.FinishReason, resp.StopSequence))
	b = append(b, `,"stop_sequence":`...)
	b = appendStopSequence(b, resp.StopSequence)
	b = append(b, `,"usage":`...)
	b = appendUsage(b, resp.Usage, resp.Usage.OutputTokens)
	return append(b, '}'), nil
}

// responseSize estimates the bytes of resp's content, to size the buffer once.
func responseSize(resp *sluice.Response) int {
	n := 0
	for i := range resp.Message.Parts {
		p := &resp.Message.Parts[i]
		n += 48 + len(p.Text) + len(p.Arguments) + len(p.Signature) + len(p.Data) + len(p.ToolCallID) + len(p.ToolName)
	}
	return n + n/8
}

// appendResponseBlock appends the content block of an assistant part. wrote
// is false for a part with no block; ok is false for a tool call whose
// arguments are not a JSON object.
func appendResponseBlock(b []byte, p *sluice.Part) (out []byte, wrote, ok bool) {
	switch p.Type {
	case sluice.PartText:
		if p.Text == "" {
			return b, false, true
		}
		b = append(b, `{"type":"text","text":`...)
		b = appendString(b, p.Text)
		return append(b, '}'), true, true
	case sluice.PartToolCall:
		b, ok = appendToolUse(b, p)
		return b, ok, ok
	case sluice.PartThinking:
		if p.Redacted {
			b = append(b, `{"type":"redacted_thinking","data":`...)
			b = appendString(b, p.Data)
			return append(b, '}'), true, true
		}
		b = append(b, `{"type":"thinking","thinking":`...)
		b = appendString(b, p.Text)
		b = append(b, `,"signature":`...)
		b = appendString(b, p.Signature)
		return append(b, '}'), true, true
	}
	return b, false, true
}

// appendToolUse appends the tool_use block of a tool-call part; ok is false
// when its arguments are not a JSON object.
func appendToolUse(b []byte, p *sluice.Part) (out []byte, ok bool) {
	b = append(b, `{"type":"tool_use","id":`...)
	b = appendString(b, p.ToolCallID)
	b = append(b, `,"name":`...)
	b = appendString(b, p.ToolName)
	b = append(b, `,"input":`...)
	if b, ok = appendObject(b, p.Arguments); !ok {
		return b, false
	}
	return append(b, '}'), true
}
