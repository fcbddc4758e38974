package sluice

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// UpstreamError is the cause kept inside an *Error made from an upstream's
// error answer. It holds provider detail for operators' logs and for the
// router's retry decisions; it never reaches a client.
type UpstreamError struct {
	Provider   string        // the configured provider name
	StatusCode int           // the HTTP status, or 0 for an error event inside a stream
	Type       string        // the provider's error type, e.g. "rate_limit_error"
	Message    string        // the provider's message: for logs only
	RetryAfter time.Duration // from Retry-After and the providers' reset headers
}

func (e *UpstreamError) Error() string {
	return fmt.Sprintf("upstream %s: status %d %s: %s", e.Provider, e.StatusCode, e.Type, e.Message)
}

// StatusCode maps an upstream HTTP error status to a client-safe code. This is
// the one table both dialects' providers use.
//
// A 400-class answer other than the listed ones means the provider refused the
// request as sent, which the client may fix: invalid_request. Authentication
// and permission failures are the gateway's own credentials, not the client's:
// upstream_error.
func StatusCode(status int) Code {
	switch status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return CodeInvalidRequest
	case http.StatusRequestEntityTooLarge:
		return CodeRequestTooLarge
	case http.StatusTooManyRequests:
		return CodeRateLimited
	case http.StatusRequestTimeout, http.StatusGatewayTimeout:
		return CodeUpstreamTimeout
	case http.StatusServiceUnavailable, http.StatusBadGateway:
		return CodeUpstreamUnavailable
	case 529: // Anthropic's "overloaded"
		return CodeOverloaded
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		return CodeUpstreamError
	}
	return CodeUpstreamError
}

// FromUpstream returns the client-safe *Error for an upstream error answer,
// with ue as its cause. The message is the code's generic one: the provider's
// own text stays in the cause.
func FromUpstream(ue *UpstreamError) *Error {
	c := StatusCode(ue.StatusCode)
	msg := c.DefaultMessage()
	if c == CodeInvalidRequest {
		msg = "The model provider rejected the request."
	}
	return &Error{Code: c, Message: msg, RetryAfter: ue.RetryAfter, Err: ue}
}

// ParseRetryAfter reads how long an upstream asks us to wait: the standard
// Retry-After header (seconds or an HTTP date), OpenAI's retry-after-ms, or
// zero when none is present or parseable. now is the time the answer arrived.
func ParseRetryAfter(h http.Header, now time.Time) time.Duration {
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			return clampWait(ms * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		return clampWait(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		return clampWait(float64(t.Sub(now)))
	}
	return 0
}

// MaxRetryAfter caps the wait an upstream can ask for.
const MaxRetryAfter = 24 * time.Hour

// clampWait turns nanoseconds into a wait in [0, MaxRetryAfter]; NaN and
// negative values are no wait.
func clampWait(ns float64) time.Duration {
	if !(ns > 0) {
		return 0
	}
	if ns >= float64(MaxRetryAfter) {
		return MaxRetryAfter
	}
	return time.Duration(ns)
}
