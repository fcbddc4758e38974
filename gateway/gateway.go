// Package gateway is the HTTP server of Sluice: the OpenAI and Anthropic
// dialect endpoints, health and model listings, and the middleware around
// them, over a pipeline.Pipeline. It holds no logic of its own beyond HTTP:
// decoding and encoding belong to the dialect packages, the call to the
// pipeline.
package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-gw/sluice"

	"github.com/sluice-gw/sluice/pipeline"
	"github.com/sluice-gw/sluice/telemetry"
)

// Options configure a Gateway. The zero value of each field means its
// default.
type Options struct {
	// MaxBodyBytes limits a request body; 0 means 4 MiB.
	MaxBodyBytes int64
	// BodyTimeout bounds reading a request body, so a client that sends it
	// slowly cannot hold a handler; 0 means 30s.
	BodyTimeout time.Duration
	// StreamWriteTimeout bounds each write of a stream to the client: a
	// client that stops reading for longer is disconnected and its upstream
	// call cancelled; 0 means 30s.
	StreamWriteTimeout time.Duration
	// Heartbeat is the longest silence on an open stream: after it the
	// gateway writes an SSE comment, which clients ignore and proxies take as
	// traffic. 0 means 15s; negative turns heartbeats off.
	Heartbeat time.Duration
	// ResumeGrace is how long an upstream call goes on after its client
	// disconnected, waiting for the client to resume the stream; while a
	// resumed reader is attached it goes on, and ends about a grace period
	// after the last one leaves. 0 means 30s; negative cancels the upstream
	// call when the client goes.
	ResumeGrace time.Duration
	// ResumeRetention is how long a finished stream stays replayable. 0
	// means 5m; negative drops the log shortly (10s) after the stream ends,
	// once attached readers had time to read the end. With both negative,
	// streams are not logged and have no id.
	ResumeRetention time.Duration
	// TrustedProxies are the addresses (netip prefixes) of proxies whose
	// X-Forwarded-For names the client; from anyone else it is ignored.
	TrustedProxies []netip.Prefix
	// JobRetryDelay is the wait before a queued job's second attempt,
	// doubling for each later one (at most 5 minutes); 0 means 5s.
	JobRetryDelay time.Duration
	// AdminKey protects the admin API (/admin/keys, /admin/usage); empty:
	// there is none.
	AdminKey string
	// IdempotencyTTL is how long the answer to a request with an
	// Idempotency-Key is kept for repeats; 0 means 24 hours.
	IdempotencyTTL time.Duration
	// Metrics serves GET /metrics (a Prometheus handler over the registry
	// the pipeline's metrics are on); nil: no metrics endpoint.
	Metrics http.Handler
	// Registry is the registry the pipeline's metrics are on, which the
	// dashboard's overview reads (/ui); nil: an overview without metrics.
	Registry prometheus.Gatherer
	// Tracing, when set, continues a client's trace (W3C traceparent) in
	// the call's span; the pipeline's Options.Tracing makes the spans.
	Tracing *telemetry.Tracing
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// A Gateway serves the HTTP API over a pipeline. It is safe for concurrent
// use.
type Gateway struct {
	p       *pipeline.Pipeline
	logger  *slog.Logger
	opts    Options
	handler http.Handler
	jobWake chan struct{} // a job was queued here: wake a runner

	// draining is set once shutdown begins: /readyz fails so that load
	// balancers stop sending new work.
	draining atomic.Bool
	// abort is cancelled when the drain time is over: streams still running
	// end with an error event.
	abortCtx context.Context
	abort    context.CancelFunc
	// drainCtx is cancelled by Drain: long-lived views (the dashboard's
	// live stream) end then, so that shutdown need not wait for them.
	drainCtx context.Context
	drain    context.CancelFunc
	once     sync.Once
}

// New returns a Gateway over p. logger receives access and error logs.
func New(logger *slog.Logger, p *pipeline.Pipeline, opts Options) *Gateway {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 4 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.JobRetryDelay <= 0 {
		opts.JobRetryDelay = 5 * time.Second
	}
	if opts.IdempotencyTTL <= 0 {
		opts.IdempotencyTTL = 24 * time.Hour
	}
	if opts.BodyTimeout <= 0 {
		opts.BodyTimeout = 30 * time.Second
	}
	if opts.StreamWriteTimeout <= 0 {
		opts.StreamWriteTimeout = 30 * time.Second
	}
	if opts.Heartbeat == 0 {
		opts.Heartbeat = 15 * time.Second
	}
	if opts.ResumeGrace == 0 {
		opts.ResumeGrace = 30 * time.Second
	}
	if opts.ResumeRetention == 0 {
		opts.ResumeRetention = 5 * time.Minute
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	g := &Gateway{p: p, logger: logger, opts: opts, jobWake: make(chan struct{}, 1)}
	g.abortCtx, g.abort = context.WithCancel(context.Background())
	g.drainCtx, g.drain = context.WithCancel(context.Background())
	g.handler = g.routes()
	return g
}

// NewServer returns the gateway's HTTP handler, for callers that need no
// shutdown control (tests, embedding).
func NewServer(logger *slog.Logger, p *pipeline.Pipeline, opts Options) http.Handler {
	return New(logger, p, opts)
}

// ServeHTTP serves the API.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.handler.ServeHTTP(w, r) }

// Drain marks the gateway as shutting down: /readyz answers 503 from now on,
// for whoever can still reach it (sluice serve closes its listener at the same
// moment). In-flight requests go on.
func (g *Gateway) Drain() {
	g.draining.Store(true)
	g.drain()
}

// Abort ends every call still running: its upstream call is cancelled and a
// stream ends with a stream_interrupted error event in the client's dialect.
// Call it when the drain time is over, then wait for the handlers to return
// (http.Server.Shutdown does).
func (g *Gateway) Abort() {
	g.draining.Store(true)
	g.drain()
	g.once.Do(g.abort)
}

// callContext returns the context of the upstream call: the request's,
// cancelled also by Abort. stop releases it.
func (g *Gateway) callContext(r *http.Request) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(r.Context())
	unhook := context.AfterFunc(g.abortCtx, cancel)
	return ctx, func() { unhook(); cancel() }
}

// detachedCallContext returns the context of an upstream call that may
// outlive its client (a resumable stream): the request's values, cancelled
// by Abort or by cancel, not by the client's leaving. stop releases it.
func (g *Gateway) detachedCallContext(r *http.Request) (ctx context.Context, cancel context.CancelCauseFunc, stop func()) {
	ctx, cancel = context.WithCancelCause(context.WithoutCancel(r.Context()))
	unhook := context.AfterFunc(g.abortCtx, func() { cancel(nil) })
	return ctx, cancel, func() { unhook(); cancel(nil) }
}

// aborted reports whether the gateway's drain time is over.
func (g *Gateway) aborted() bool { return g.abortCtx.Err() != nil }

// shutdownError is the error event of a stream ended by Abort.
var shutdownError = &sluice.Error{Code: sluice.CodeStreamInterrupted, Message: "The gateway is shutting down; the stream was ended. Try again."}

// newID returns a random hexadecimal id of n bytes.
func newID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
