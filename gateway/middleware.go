package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/pipeline"
)

type ctxKey int

const requestIDKey ctxKey = iota

// requestID returns the request's id, set by withRequestID.
func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// withRequestID gives each request an id: the client's X-Request-Id when it is
// short and plain, a new one otherwise. The id is echoed in Sluice-Request-Id,
// X-Request-Id and request-id (which Anthropic's SDKs read), and error
// bodies carry it (request_id).
func (g *Gateway) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !plainID(id) {
			id = newID(12)
		}
		// One value slice for the three (canonical) names: nothing
		// changes it once set.
		v := []string{id}
		h := w.Header()
		h[sluice.RequestIDHeader] = v
		h["X-Request-Id"] = v
		h["Request-Id"] = v
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

// plainID reports whether s is safe to use as a request id: 1 to 64 letters,
// digits, dashes and underscores.
func plainID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// withRecovery turns a panic into an internal error answer (when nothing was
// written yet) and a log line, and keeps the server up.
func (g *Gateway) withRecovery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &statusWriter{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == nil || v == http.ErrAbortHandler {
				if v != nil {
					panic(v)
				}
				return
			}
			g.logger.LogAttrs(r.Context(), slog.LevelError, "panic serving request",
				slog.String("request_id", requestID(r.Context())), slog.Any("panic", v))
			if rw.status != 0 {
				// Part of the answer is out: reset the connection so that the
				// client sees a broken response, not a complete one.
				panic(http.ErrAbortHandler)
			}
			writeErrorFor(rw, r, sluice.NewError(sluice.CodeInternal, sluice.CodeInternal.DefaultMessage()))
		}()
		next.ServeHTTP(rw, r)
	})
}

// withAccessLog logs one line per request: who (the key's id, never the
// key), what (route, model, provider), how it ended (status, error code),
// what it used (tokens, cost) and how long it took (latency, time to first
// token, attempts). Prompts and answers appear only for a route that logs
// content, redacted by the pipeline.
func (g *Gateway) withAccessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.logger.Enabled(r.Context(), slog.LevelInfo) {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		rw, ok := w.(*statusWriter)
		if !ok {
			rw = &statusWriter{ResponseWriter: w}
		}
		// The call's record (model, usage) comes back on this goroutine
		// before the handler returns.
		var rec *pipeline.Record
		r = r.WithContext(pipeline.WithRecordFunc(r.Context(), func(x pipeline.Record) { rec = &x }))
		next.ServeHTTP(rw, r)
		status := rw.status
		if status == 0 {
			status = http.StatusOK
		}
		attrs := make([]slog.Attr, 0, 24)
		attrs = append(attrs,
			slog.String("request_id", requestID(r.Context())),
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", status), slog.Int64("bytes", rw.bytes),
			slog.Float64("latency_ms", ms(time.Since(start))),
		)
		if rec != nil {
			attrs = recordAttrs(attrs, rec)
		}
		g.logger.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
	})
}

// recordAttrs appends the log attributes of a call's record.
func recordAttrs(attrs []slog.Attr, rec *pipeline.Record) []slog.Attr {
	if rec.Caller.Key != "" {
		attrs = append(attrs, slog.String("key_id", rec.Caller.Key))
	}
	if rec.Caller.Tenant != "" {
		attrs = append(attrs, slog.String("tenant", rec.Caller.Tenant))
	}
	route := rec.Model
	if rec.Contract != "" {
		route = rec.Contract
		attrs = append(attrs, slog.String("contract", rec.Contract))
	}
	attrs = append(attrs, slog.String("route", route), slog.String("model", rec.UpstreamModel),
		slog.String("provider", rec.Provider), slog.Bool("stream", rec.Stream))
	if rec.Err != nil {
		attrs = append(attrs, slog.String("error_code", rec.Code()))
	}
	attrs = append(attrs,
		slog.Int("input_tokens", rec.Usage.InputTokens), slog.Int("output_tokens", rec.Usage.OutputTokens),
		slog.Float64("cost_usd", rec.Cost), slog.Int("attempts", rec.Attempts))
	if rec.TTFT > 0 {
		attrs = append(attrs, slog.Float64("ttft_ms", ms(rec.TTFT)))
	}
	if rec.Estimated {
		attrs = append(attrs, slog.Bool("output_estimated", true))
	}
	for _, n := range [...]struct {
		key string
		n   int
	}{{"retries", rec.Retries}, {"fallbacks", rec.Fallbacks}, {"hedges", rec.Hedges}, {"failovers", rec.Failovers}} {
		if n.n > 0 {
			attrs = append(attrs, slog.Int(n.key, n.n))
		}
	}
	if rec.ParseFailures+rec.SchemaFailures > 0 {
		attrs = append(attrs, slog.Int("parse_failures", rec.ParseFailures),
			slog.Int("schema_failures", rec.SchemaFailures), slog.Int("repairs", rec.Repairs),
			slog.Bool("repaired", rec.Repaired))
	}
	if rec.Prompt != "" {
		attrs = append(attrs, slog.String("prompt", rec.Prompt))
	}
	if rec.Completion != "" {
		attrs = append(attrs, slog.String("completion", rec.Completion))
	}
	return attrs
}

// ms returns d in milliseconds.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// withTrace continues the client's trace (W3C traceparent) in the
// request's context, for the call's span.
func (g *Gateway) withTrace(next http.Handler) http.Handler {
	if g.opts.Tracing == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Traceparent") == "" {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r.WithContext(g.opts.Tracing.Extract(r.Context(), r.Header)))
	})
}

// statusWriter records the status and size of a response. Unwrap lets
// http.ResponseController reach the connection for Flush and deadlines.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
