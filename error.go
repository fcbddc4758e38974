package sluice

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"
)

// Code is one of the closed set of client-safe error codes. Each has an HTTP
// status; dialects render a code in their own error shape.
type Code string

// The error codes. No other code reaches a client.
const (
	CodeInvalidRequest      Code = "invalid_request"
	CodeUnauthenticated     Code = "unauthenticated"
	CodePermissionDenied    Code = "permission_denied"
	CodeNotFound            Code = "not_found"
	CodeRequestTooLarge     Code = "request_too_large"
	CodePromptTooLong       Code = "prompt_too_long"
	CodeRateLimited         Code = "rate_limited"
	CodeBudgetExceeded      Code = "budget_exceeded"
	CodeOverloaded          Code = "overloaded"
	CodeUpstreamTimeout     Code = "upstream_timeout"
	CodeUpstreamUnavailable Code = "upstream_unavailable"
	CodeUpstreamError       Code = "upstream_error"
	CodeSchemaViolation     Code = "schema_violation"
	CodeStreamInterrupted   Code = "stream_interrupted"
	CodeIdempotencyConflict Code = "idempotency_conflict"
	CodeInternal            Code = "internal"
)

// codeInfo is the one table of statuses and default messages.
var codeInfo = map[Code]struct {
	status  int
	message string
}{
	CodeInvalidRequest:      {http.StatusBadRequest, "The request is not valid."},
	CodeUnauthenticated:     {http.StatusUnauthorized, "A valid API key is required."},
	CodePermissionDenied:    {http.StatusForbidden, "This key may not do that."},
	CodeNotFound:            {http.StatusNotFound, "Not found."},
	CodeRequestTooLarge:     {http.StatusRequestEntityTooLarge, "The request body is too large."},
	CodePromptTooLong:       {http.StatusBadRequest, "The prompt is longer than this route allows."},
	CodeRateLimited:         {http.StatusTooManyRequests, "Rate limit reached; try again later."},
	CodeBudgetExceeded:      {http.StatusTooManyRequests, "The spending budget is exhausted."},
	CodeOverloaded:          {http.StatusTooManyRequests, "The service is overloaded; try again later."},
	CodeUpstreamTimeout:     {http.StatusGatewayTimeout, "The model provider did not answer in time."},
	CodeUpstreamUnavailable: {http.StatusServiceUnavailable, "The model provider is unavailable; try again later."},
	CodeUpstreamError:       {http.StatusBadGateway, "The model provider failed to answer."},
	CodeSchemaViolation:     {http.StatusBadGateway, "The model's answer did not match the required schema."},
	CodeStreamInterrupted:   {http.StatusBadGateway, "The stream was interrupted."},
	CodeIdempotencyConflict: {http.StatusUnprocessableEntity, "This idempotency key was used with a different request."},
	CodeInternal:            {http.StatusInternalServerError, "Internal error."},
}

// Codes returns every code, for documentation and tests.
func Codes() []Code {
	return []Code{
		CodeInvalidRequest, CodeUnauthenticated, CodePermissionDenied, CodeNotFound,
		CodeRequestTooLarge, CodePromptTooLong, CodeRateLimited, CodeBudgetExceeded,
		CodeOverloaded, CodeUpstreamTimeout, CodeUpstreamUnavailable, CodeUpstreamError,
		CodeSchemaViolation, CodeStreamInterrupted, CodeIdempotencyConflict, CodeInternal,
	}
}

// HTTPStatus returns the HTTP status of c; an unknown code is a 500.
func (c Code) HTTPStatus() int {
	if i, ok := codeInfo[c]; ok {
		return i.status
	}
	return http.StatusInternalServerError
}

// DefaultMessage returns the generic client-safe message of c.
func (c Code) DefaultMessage() string {
	if i, ok := codeInfo[c]; ok {
		return i.message
	}
	return codeInfo[CodeInternal].message
}

// Error is an error that is safe to show to a client. Message is written for
// the client; Err is the cause, kept for logs and never sent.
type Error struct {
	Code    Code
	Message string
	// Param names the offending request field, when there is one.
	Param string
	// RetryAfter is how long the client should wait before trying again; zero
	// if there is no advice.
	RetryAfter time.Duration
	// Details list client-safe specifics, such as where an answer broke its
	// schema (schema_violation); the dialects render them beside the
	// message.
	Details []ErrorDetail
	// Output is the model's raw answer that broke its schema. It is set
	// only for a route that opted in (expose_raw_output); the dialects
	// render it beside the details.
	Output string
	// RequestID is the id of the request that failed, for the client to
	// quote to support; the dialects render it beside the error.
	RequestID string
	Err       error
}

// An ErrorDetail is one client-safe specific of an Error: a location (a
// JSON Pointer into the answer) and what is wrong there.
type ErrorDetail struct {
	Path   string
	Reason string
}

// RequestIDHeader is the response header that carries a request's id.
const RequestIDHeader = "Sluice-Request-Id"

// WithRequestID returns e carrying request id id: e itself when it has
// an id already or id is empty, else a copy (e may be shared).
func WithRequestID(e *Error, id string) *Error {
	if e == nil || e.RequestID != "" || id == "" {
		return e
	}
	cp := *e
	cp.RequestID = id
	return &cp
}

// NewError returns an *Error with code c and a client-safe message. The message
// must not contain provider detail.
func NewError(c Code, message string) *Error {
	return &Error{Code: c, Message: message}
}

// WrapError returns an *Error with code c, the code's default message, and
// cause err for the logs.
func WrapError(c Code, err error) *Error {
	return &Error{Code: c, Message: c.DefaultMessage(), Err: err}
}

// Error returns only the client-safe text, so a stray err.Error() on a
// response path leaks nothing. LogValue adds the cause for operators.
func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// LogValue renders the error with its cause, for operators' logs.
func (e *Error) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("code", string(e.Code)), slog.String("msg", e.Message)}
	if e.Err != nil {
		attrs = append(attrs, slog.String("cause", e.Err.Error()))
	}
	return slog.GroupValue(attrs...)
}

// AsError returns the client-safe form of err: the first *Error in its chain,
// or, when there is none, an *Error classified from the chain (a deadline is
// upstream_timeout, a cancellation is internal with the cause kept), with err as
// cause. It never returns nil for a non-nil err.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return WrapError(CodeUpstreamTimeout, err)
	default:
		return WrapError(CodeInternal, err)
	}
}

// ErrorCode returns the code AsError gives err: the Code of the first *Error
// in its chain, else upstream_timeout for a deadline and internal for the
// rest. It returns "" for a nil err.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	return AsError(err).Code
}
