package telemetry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"
)

// Tracing creates spans for calls and their upstream attempts, following the
// OpenTelemetry GenAI conventions (gen_ai.* attributes of semconv v1.41.0).
// The zero of *Tracing (nil) is valid and does nothing, cheaply: every method
// on a nil *Tracing returns at once without allocating. A Tracing is safe for
// concurrent use.
//
// A call span (StartCall, EndCall) is named "{operation} {route}" and
// carries gen_ai.operation.name, gen_ai.request.model, gen_ai.request.stream,
// gen_ai.request.max_tokens, gen_ai.response.model, gen_ai.response.id,
// gen_ai.response.finish_reasons, gen_ai.provider.name,
// gen_ai.usage.input_tokens, gen_ai.usage.output_tokens,
// gen_ai.response.time_to_first_chunk (seconds) and error.type, plus
// sluice.route, sluice.dialect, sluice.request_id and sluice.cost_usd, and
// the events first_token, retry, fallback and hedge. An attempt span
// (Attempt) is named "{operation} {upstream model}", is of kind Client and
// carries gen_ai.operation.name, gen_ai.provider.name, gen_ai.request.model
// (the upstream model), gen_ai.usage.*, error.type, sluice.outcome,
// sluice.wait (seconds), and sluice.retry, sluice.fallback, sluice.hedge,
// sluice.hedge_lost and sluice.skipped when true. No span carries a
// provider's error message: failures are recorded by their client-safe code.
type Tracing struct {
	tracer   trace.Tracer
	prop     propagation.TextMapPropagator // W3C trace context and baggage, for Extract
	shutdown func(context.Context) error   // nil unless NewTracing built the provider
}

// scope is the instrumentation scope of Sluice's spans.
const scope = "github.com/sluice-gw/sluice/telemetry"

// Attribute keys of our own, beside the semantic conventions' gen_ai.*.
const (
	keyRoute     = attribute.Key("sluice.route")
	keyDialect   = attribute.Key("sluice.dialect")
	keyRequestID = attribute.Key("sluice.request_id")
	keyCost      = attribute.Key("sluice.cost_usd")
	keyOutcome   = attribute.Key("sluice.outcome")
	keyWait      = attribute.Key("sluice.wait")
	keyRetry     = attribute.Key("sluice.retry")
	keyFallback  = attribute.Key("sluice.fallback")
	keyHedge     = attribute.Key("sluice.hedge")
	keyLost      = attribute.Key("sluice.hedge_lost")
	keySkipped   = attribute.Key("sluice.skipped")
)

// NewTracingWith returns tracing whose spans go to tp, for tests and for Go
// programs that own their TracerProvider (an sdktrace.TracerProvider with
// the span processors they want). The caller keeps ownership of tp:
// Shutdown does not stop it. A nil tp returns nil, which traces nothing.
func NewTracingWith(tp trace.TracerProvider) *Tracing {
	if tp == nil {
		return nil
	}
	return &Tracing{
		tracer: tp.Tracer(scope, trace.WithSchemaURL(semconv.SchemaURL)),
		prop:   propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}
}

// NewTracing returns tracing configured by the standard OTEL_* environment
// variables, all read through getenv. It returns nil and no error (tracing
// off) unless OTEL_TRACES_EXPORTER is "otlp" or an OTLP endpoint is set
// (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT); it is
// off as well when OTEL_SDK_DISABLED is "true" or OTEL_TRACES_EXPORTER lists
// "none". Any other exporter is an error.
//
// Spans go through a batch span processor (OTEL_BSP_SCHEDULE_DELAY,
// OTEL_BSP_EXPORT_TIMEOUT, OTEL_BSP_MAX_QUEUE_SIZE,
// OTEL_BSP_MAX_EXPORT_BATCH_SIZE) to an OTLP/HTTP exporter:
//   - OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is the URL spans are posted to, as
//     is; else OTEL_EXPORTER_OTLP_ENDPOINT is a base URL, with /v1/traces
//     appended; else http://localhost:4318/v1/traces. The scheme, http or
//     https, decides whether TLS is used.
//   - OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL is http/protobuf (the default) or
//     http/json; grpc is not built in and is an error.
//   - OTEL_EXPORTER_OTLP_[TRACES_]HEADERS, _TIMEOUT (milliseconds, default
//     10000), _COMPRESSION (gzip or none), _CERTIFICATE, _CLIENT_CERTIFICATE
//     and _CLIENT_KEY (PEM files) are honoured, the TRACES_ form first.
//
// The resource has service.name from OTEL_SERVICE_NAME, else from
// OTEL_RESOURCE_ATTRIBUTES, else "sluice", and the attributes of
// OTEL_RESOURCE_ATTRIBUTES. OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG
// choose the sampler: always_on, always_off, traceidratio,
// parentbased_always_on (the default), parentbased_always_off or
// parentbased_traceidratio. The span limits OTEL_SPAN_*_LIMIT,
// OTEL_ATTRIBUTE_*_LIMIT, OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT and
// OTEL_LINK_ATTRIBUTE_COUNT_LIMIT apply as well.
//
// Every setting above is passed to the SDK explicitly, so the process
// environment, which the OpenTelemetry SDK and exporter also read on their
// own, does not change it. What still comes from the process environment:
// the SDK merges the process's OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME
// under the resource built here (ours win on a clash, so with getenv =
// os.Getenv nothing differs); the proxy of the exporter's requests
// (HTTP_PROXY, HTTPS_PROXY, NO_PROXY, through http.ProxyFromEnvironment); and
// the SDK's experimental OTEL_GO_X_* switches. Export failures go to
// OpenTelemetry's global error handler, which logs them.
//
// An invalid value is an error naming the variable, never quoting a header.
// The caller must call Shutdown to flush the spans and stop the exporter.
func NewTracing(ctx context.Context, getenv func(string) string) (*Tracing, error) {
	e := &env{getenv: getenv}
	if strings.EqualFold(e.str("OTEL_SDK_DISABLED"), "true") {
		return nil, nil
	}
	on := e.str("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT") != ""
	for name := range strings.SplitSeq(e.str("OTEL_TRACES_EXPORTER"), ",") {
		switch name = strings.ToLower(strings.TrimSpace(name)); name {
		case "":
		case "none":
			return nil, nil
		case "otlp":
			on = true
		default:
			return nil, fmt.Errorf("tracing: OTEL_TRACES_EXPORTER %q: only otlp and none are supported", name)
		}
	}
	if !on {
		return nil, nil
	}

	sampler := e.sampler()
	res := e.resource()
	limits := e.spanLimits()
	batch := e.batchOptions()
	opts, client := e.exporterOptions()
	if e.err != nil {
		return nil, fmt.Errorf("tracing: %w", e.err)
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		client.CloseIdleConnections()
		return nil, fmt.Errorf("tracing: start exporter: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, batch...),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sampler),
		sdktrace.WithRawSpanLimits(limits),
	)
	t := NewTracingWith(tp)
	t.shutdown = func(ctx context.Context) error {
		defer client.CloseIdleConnections()
		return tp.Shutdown(ctx)
	}
	return t, nil
}

// Shutdown flushes the spans not yet exported and stops the exporter that
// NewTracing started, within ctx. It does nothing for tracing made by
// NewTracingWith, nor for nil. Spans begun after Shutdown are not recorded.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.shutdown == nil {
		return nil
	}
	return t.shutdown(ctx)
}

// Extract returns ctx carrying the remote span context of an incoming
// request's W3C traceparent and tracestate headers, and its W3C baggage, so
// that the call's span continues the client's trace. Without those headers
// it returns ctx.
func (t *Tracing) Extract(ctx context.Context, h http.Header) context.Context {
	if t == nil {
		return ctx
	}
	return t.prop.Extract(ctx, propagation.HeaderCarrier(h))
}

// CallStart is what a call's span records when it starts.
type CallStart struct {
	// Operation is the GenAI operation name; "" means "chat".
	Operation string
	// Route is the public model name the call was routed by, or "other"; it
	// names the span, as it is bounded where RequestModel, which the client
	// chose, is not. RequestModel names the span when Route is "".
	Route        string
	RequestModel string
	Stream       bool
	MaxTokens    int    // zero if the request set none
	RequestID    string // the gateway's id of the call; "" if none
	Dialect      string // the client's API dialect, such as "openai"
}

// callKey is the context key of the *call StartCall begins.
type callKey struct{}

// call is the span of one call and what its attempts need of it.
type call struct {
	span  trace.Span
	op    string
	start time.Time
}

// StartCall starts the span of one call and returns ctx carrying it, for
// Attempt, EndCall and Transport, and for any span begun below it. Every
// StartCall must be followed by one EndCall with the returned context.
//
// The span is of kind Server when the call enters the process: ctx carries
// no span, or only the remote one Extract found. It is Internal when ctx
// already carries a local span, such as an HTTP server middleware's or that
// of a Go program embedding the pipeline, which then is the entry span.
func (t *Tracing) StartCall(ctx context.Context, c CallStart) context.Context {
	if t == nil {
		return ctx
	}
	op := c.Operation
	if op == "" {
		op = "chat"
	}
	name := op
	if m := c.Route; m != "" {
		name = op + " " + m
	} else if m := c.RequestModel; m != "" {
		name = op + " " + m
	}
	kind := trace.SpanKindServer
	if p := trace.SpanContextFromContext(ctx); p.IsValid() && !p.IsRemote() {
		kind = trace.SpanKindInternal
	}
	attrs := make([]attribute.KeyValue, 0, 7)
	attrs = append(attrs, semconv.GenAIOperationNameKey.String(op), semconv.GenAIRequestStreamKey.Bool(c.Stream))
	attrs = appendString(attrs, semconv.GenAIRequestModelKey, c.RequestModel)
	attrs = appendString(attrs, keyRoute, c.Route)
	attrs = appendString(attrs, keyDialect, c.Dialect)
	attrs = appendString(attrs, keyRequestID, c.RequestID)
	if c.MaxTokens > 0 {
		attrs = append(attrs, semconv.GenAIRequestMaxTokensKey.Int(c.MaxTokens))
	}
	start := time.Now()
	ctx, span := t.tracer.Start(ctx, name, trace.WithSpanKind(kind), trace.WithTimestamp(start), trace.WithAttributes(attrs...))
	return context.WithValue(ctx, callKey{}, &call{span: span, op: op, start: start})
}

// AttemptSpan is one finished upstream attempt, as the router reports it.
type AttemptSpan struct {
	Provider string // the provider's configured name
	Model    string // the upstream model
	// Start is when the upstream was called and Duration how long it took
	// to answer or fail; a zero Start means the attempt ended now. Wait is
	// the time spent before Start: the backoff before a retry, the queue of
	// a bulkhead.
	Start          time.Time
	Duration, Wait time.Duration
	// Outcome is "ok", or the client-safe error code the attempt failed
	// with (never a provider's message).
	Outcome string
	// Retry, Fallback and Hedge report whether the attempt retried the same
	// target, moved on to another after a failure, or ran beside a slow
	// one. Lost reports whether it lost a hedged race and was cancelled,
	// Skipped whether the target was not called at all (breaker open,
	// bulkhead full).
	Retry, Fallback, Hedge, Lost, Skipped bool
	// InputTokens and OutputTokens are what the upstream reported of this
	// attempt; zero if nothing.
	InputTokens, OutputTokens int
}

// Attempt records one finished upstream attempt as a Client span, child of
// the call's span in ctx, from a.Start to a.Start+a.Duration. A failed
// attempt (Outcome neither "" nor "ok") has error.type and status Error with
// the Outcome as description, unless it lost a hedged race: being cancelled
// because another won is not a failure. A retry, a fallback and a hedge also
// add an event of that name to the call's span at a.Start. Without a call in
// ctx, or when the call is not sampled, Attempt does nothing.
func (t *Tracing) Attempt(ctx context.Context, a AttemptSpan) {
	if t == nil {
		return
	}
	c, ok := ctx.Value(callKey{}).(*call)
	if !ok || !c.span.IsRecording() {
		return
	}
	start := a.Start
	if start.IsZero() {
		start = time.Now().Add(-a.Duration)
	}
	target := make([]attribute.KeyValue, 0, 2)
	target = appendString(target, semconv.GenAIProviderNameKey, a.Provider)
	target = appendString(target, semconv.GenAIRequestModelKey, a.Model)
	for _, ev := range [...]struct {
		on   bool
		name string
	}{{a.Retry, "retry"}, {a.Fallback, "fallback"}, {a.Hedge, "hedge"}} {
		if ev.on {
			c.span.AddEvent(ev.name, trace.WithTimestamp(start), trace.WithAttributes(target...))
		}
	}

	attrs := make([]attribute.KeyValue, 0, 14)
	attrs = append(attrs, semconv.GenAIOperationNameKey.String(c.op))
	attrs = append(attrs, target...)
	attrs = appendString(attrs, keyOutcome, a.Outcome)
	if a.Wait > 0 {
		attrs = append(attrs, keyWait.Float64(a.Wait.Seconds()))
	}
	for _, f := range [...]struct {
		on  bool
		key attribute.Key
	}{{a.Retry, keyRetry}, {a.Fallback, keyFallback}, {a.Hedge, keyHedge}, {a.Lost, keyLost}, {a.Skipped, keySkipped}} {
		if f.on {
			attrs = append(attrs, f.key.Bool(true))
		}
	}
	attrs = appendTokens(attrs, a.InputTokens, a.OutputTokens)
	failed := a.Outcome != "" && a.Outcome != "ok" && !a.Lost
	if failed {
		attrs = append(attrs, semconv.ErrorTypeKey.String(a.Outcome))
	}

	name := c.op
	if a.Model != "" {
		name = c.op + " " + a.Model
	}
	if trace.SpanFromContext(ctx) != c.span {
		ctx = trace.ContextWithSpan(ctx, c.span) // a span begun below the call's: the attempt is the call's child all the same
	}
	_, s := t.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(start), trace.WithAttributes(attrs...))
	if failed {
		s.SetStatus(codes.Error, a.Outcome)
	}
	s.End(trace.WithTimestamp(start.Add(a.Duration)))
}

// CallEnd is what a call's span records when it ends.
type CallEnd struct {
	Provider      string // the provider that served the call; "" if none did
	ResponseModel string // the model that answered, as the upstream named it
	ResponseID    string // the upstream's id of the answer
	FinishReasons []string
	// InputTokens and OutputTokens are the call's usage; CostUSD its cost
	// in US dollars.
	InputTokens, OutputTokens int
	CostUSD                   float64
	// TTFT is a stream's time from the call's start to its first content;
	// zero if none.
	TTFT time.Duration
	// Code is "" or "ok" when the call succeeded, else its client-safe
	// error code.
	Code string
}

// EndCall ends the call's span in ctx with its result. A first content
// (TTFT) adds gen_ai.response.time_to_first_chunk and a "first_token" event
// at that time. A failed call (Code neither "" nor "ok") has error.type and
// status Error with the code as its only text. Without a call in ctx,
// EndCall does nothing; a second EndCall of the same call is ignored.
func (t *Tracing) EndCall(ctx context.Context, r CallEnd) {
	if t == nil {
		return
	}
	c, ok := ctx.Value(callKey{}).(*call)
	if !ok {
		return
	}
	if c.span.IsRecording() {
		attrs := make([]attribute.KeyValue, 0, 9)
		attrs = appendString(attrs, semconv.GenAIProviderNameKey, r.Provider)
		attrs = appendString(attrs, semconv.GenAIResponseModelKey, r.ResponseModel)
		attrs = appendString(attrs, semconv.GenAIResponseIDKey, r.ResponseID)
		if len(r.FinishReasons) > 0 {
			attrs = append(attrs, semconv.GenAIResponseFinishReasonsKey.StringSlice(r.FinishReasons))
		}
		attrs = appendTokens(attrs, r.InputTokens, r.OutputTokens)
		if r.CostUSD > 0 {
			attrs = append(attrs, keyCost.Float64(r.CostUSD))
		}
		if r.TTFT > 0 {
			attrs = append(attrs, semconv.GenAIResponseTimeToFirstChunkKey.Float64(r.TTFT.Seconds()))
			c.span.AddEvent("first_token", trace.WithTimestamp(c.start.Add(r.TTFT)))
		}
		if r.Code != "" && r.Code != "ok" {
			attrs = append(attrs, semconv.ErrorTypeKey.String(r.Code))
			c.span.SetStatus(codes.Error, r.Code)
		}
		c.span.SetAttributes(attrs...)
	}
	c.span.End()
}

// Transport returns an http.RoundTripper that puts the W3C traceparent and
// tracestate of the span in each request's context into the request it
// passes to base (http.DefaultTransport if nil), for upstream calls to
// continue the call's trace. A request whose context carries no span goes to
// base as it is; one that does is copied with its header cloned, so the
// caller's request is never changed. Baggage is not forwarded: it came from
// the client and is not the upstream provider's to see. With nil tracing,
// Transport returns base unchanged.
func (t *Tracing) Transport(base http.RoundTripper) http.RoundTripper {
	if t == nil {
		return base
	}
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{base: base}
}

// transport is the RoundTripper of Transport.
type transport struct{ base http.RoundTripper }

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return t.base.RoundTrip(req)
	}
	r := *req // what Request.WithContext does: a shallow copy, with our own header
	r.Header = req.Header.Clone()
	if r.Header == nil {
		r.Header = make(http.Header, 2)
	}
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(r.Header))
	return t.base.RoundTrip(&r)
}

// CloseIdleConnections closes base's idle connections, if it has any, so
// that http.Client.CloseIdleConnections reaches through the wrapper.
func (t *transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// appendString appends key=v unless v is "".
func appendString(attrs []attribute.KeyValue, key attribute.Key, v string) []attribute.KeyValue {
	if v == "" {
		return attrs
	}
	return append(attrs, key.String(v))
}

// appendTokens appends the usage attributes that are not zero.
func appendTokens(attrs []attribute.KeyValue, in, out int) []attribute.KeyValue {
	if in > 0 {
		attrs = append(attrs, semconv.GenAIUsageInputTokensKey.Int(in))
	}
	if out > 0 {
		attrs = append(attrs, semconv.GenAIUsageOutputTokensKey.Int(out))
	}
	return attrs
}

// env reads OTEL_* variables through getenv and keeps every error, so one
// start-up reports all the bad settings at once.
type env struct {
	getenv func(string) string
	err    error
}

func (e *env) fail(format string, args ...any) {
	e.err = errors.Join(e.err, fmt.Errorf(format, args...))
}

// str returns the trimmed value of the first of keys that is set, or "".
func (e *env) str(keys ...string) string {
	_, v := e.lookup(keys...)
	return v
}

// lookup returns the first of keys that is set, and its trimmed value.
func (e *env) lookup(keys ...string) (key, value string) {
	for _, k := range keys {
		if v := strings.TrimSpace(e.getenv(k)); v != "" {
			return k, v
		}
	}
	return "", ""
}

// integer returns the integer value of the first of keys that is set, or
// def. A value below least is an error.
func (e *env) integer(def, least int, keys ...string) int {
	k, v := e.lookup(keys...)
	if k == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < least {
		e.fail("%s %q: want an integer of at least %d", k, v, least)
		return def
	}
	return n
}

// millis returns the duration in milliseconds of the first of keys that is
// set, or def milliseconds.
func (e *env) millis(def int, keys ...string) time.Duration {
	return time.Duration(e.integer(def, 0, keys...)) * time.Millisecond
}

// sampler returns the sampler OTEL_TRACES_SAMPLER and its argument choose.
func (e *env) sampler() sdktrace.Sampler {
	name := strings.ToLower(e.str("OTEL_TRACES_SAMPLER"))
	ratio := func() sdktrace.Sampler {
		arg := e.str("OTEL_TRACES_SAMPLER_ARG")
		if arg == "" {
			return sdktrace.TraceIDRatioBased(1)
		}
		f, err := strconv.ParseFloat(arg, 64)
		if err != nil || !(f >= 0 && f <= 1) {
			e.fail("OTEL_TRACES_SAMPLER_ARG %q: want a ratio from 0 to 1", arg)
			return sdktrace.TraceIDRatioBased(1)
		}
		return sdktrace.TraceIDRatioBased(f)
	}
	switch name {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample())
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample())
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(ratio())
	case "always_on":
		return sdktrace.AlwaysSample()
	case "always_off":
		return sdktrace.NeverSample()
	case "traceidratio":
		return ratio()
	}
	e.fail("OTEL_TRACES_SAMPLER %q is not supported", name)
	return sdktrace.ParentBased(sdktrace.AlwaysSample())
}

// resource returns the resource of every span: the SDK's identity, the
// attributes of OTEL_RESOURCE_ATTRIBUTES and the service name.
func (e *env) resource() *resource.Resource {
	attrs := []attribute.KeyValue{
		semconv.TelemetrySDKName("opentelemetry"),
		semconv.TelemetrySDKLanguageGo,
		semconv.TelemetrySDKVersion(sdk.Version()),
	}
	service := "sluice"
	pairs, ok := parsePairs(e.str("OTEL_RESOURCE_ATTRIBUTES"))
	if !ok {
		e.fail("OTEL_RESOURCE_ATTRIBUTES: want key=value pairs separated by commas, values percent-encoded")
	}
	for _, p := range pairs {
		if p.key == string(semconv.ServiceNameKey) {
			service = p.value
			continue
		}
		attrs = append(attrs, attribute.String(p.key, p.value))
	}
	if s := e.str("OTEL_SERVICE_NAME"); s != "" {
		service = s
	}
	attrs = append(attrs, semconv.ServiceName(service))
	return resource.NewWithAttributes(semconv.SchemaURL, attrs...)
}

// spanLimits returns the span limits of the OTEL_*_LIMIT variables, the
// span-specific form first.
func (e *env) spanLimits() sdktrace.SpanLimits {
	return sdktrace.SpanLimits{
		AttributeValueLengthLimit: e.integer(sdktrace.DefaultAttributeValueLengthLimit, -1,
			"OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"),
		AttributeValueDepthLimit:    sdktrace.DefaultAttributeValueDepthLimit,
		AttributeCountLimit:         e.integer(sdktrace.DefaultAttributeCountLimit, 0, "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "OTEL_ATTRIBUTE_COUNT_LIMIT"),
		EventCountLimit:             e.integer(sdktrace.DefaultEventCountLimit, 0, "OTEL_SPAN_EVENT_COUNT_LIMIT"),
		LinkCountLimit:              e.integer(sdktrace.DefaultLinkCountLimit, 0, "OTEL_SPAN_LINK_COUNT_LIMIT"),
		AttributePerEventCountLimit: e.integer(sdktrace.DefaultAttributePerEventCountLimit, 0, "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT"),
		AttributePerLinkCountLimit:  e.integer(sdktrace.DefaultAttributePerLinkCountLimit, 0, "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT"),
	}
}

// batchOptions returns the batch span processor's settings of OTEL_BSP_*.
func (e *env) batchOptions() []sdktrace.BatchSpanProcessorOption {
	queue := e.integer(sdktrace.DefaultMaxQueueSize, 1, "OTEL_BSP_MAX_QUEUE_SIZE")
	batch := min(e.integer(sdktrace.DefaultMaxExportBatchSize, 1, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"), queue)
	return []sdktrace.BatchSpanProcessorOption{
		sdktrace.WithBatchTimeout(e.millis(sdktrace.DefaultScheduleDelay, "OTEL_BSP_SCHEDULE_DELAY")),
		sdktrace.WithExportTimeout(e.millis(sdktrace.DefaultExportTimeout, "OTEL_BSP_EXPORT_TIMEOUT")),
		sdktrace.WithMaxQueueSize(queue),
		sdktrace.WithMaxExportBatchSize(batch),
	}
}

// exporterOptions returns the OTLP/HTTP exporter's options and the HTTP
// client it posts with. Each setting is given explicitly, overriding what
// the exporter reads of the process environment by itself; the client is
// ours so that Shutdown can close its idle connections.
func (e *env) exporterOptions() ([]otlptracehttp.Option, *http.Client) {
	const general, traces = "OTEL_EXPORTER_OTLP_", "OTEL_EXPORTER_OTLP_TRACES_"
	endpoint := "http://localhost:4318/v1/traces"
	if k, v := e.lookup(traces + "ENDPOINT"); k != "" {
		if u, ok := httpURL(v); ok {
			endpoint = u.String()
		} else {
			e.fail("%s: want an http or https URL", k)
		}
	} else if k, v := e.lookup(general + "ENDPOINT"); k != "" {
		if u, ok := httpURL(v); ok {
			u.Path, u.RawPath = path.Join("/", u.Path, "v1/traces"), ""
			endpoint = u.String()
		} else {
			e.fail("%s: want an http or https URL", k)
		}
	}

	encoding := otlptracehttp.EncodingProtobuf
	switch k, v := e.lookup(traces+"PROTOCOL", general+"PROTOCOL"); v {
	case "", "http/protobuf":
	case "http/json":
		encoding = otlptracehttp.EncodingJSON
	default:
		e.fail("%s %q: want http/protobuf or http/json", k, v)
	}

	compression := otlptracehttp.NoCompression
	switch k, v := e.lookup(traces+"COMPRESSION", general+"COMPRESSION"); strings.ToLower(v) {
	case "", "none":
	case "gzip":
		compression = otlptracehttp.GzipCompression
	default:
		e.fail("%s %q: want gzip or none", k, v)
	}

	headers := map[string]string{}
	if k, v := e.lookup(traces+"HEADERS", general+"HEADERS"); k != "" {
		pairs, ok := parsePairs(v)
		if !ok {
			e.fail("%s: want key=value pairs separated by commas, values percent-encoded", k) // never the value: it may hold a key
		}
		for _, p := range pairs {
			headers[p.key] = p.value
		}
	}

	var tlsConfig *tls.Config
	caKey, ca := e.lookup(traces+"CERTIFICATE", general+"CERTIFICATE")
	certKey, cert := traces+"CLIENT_CERTIFICATE", e.str(traces+"CLIENT_CERTIFICATE")
	keyKey, key := traces+"CLIENT_KEY", e.str(traces+"CLIENT_KEY")
	if cert == "" && key == "" {
		certKey, cert = general+"CLIENT_CERTIFICATE", e.str(general+"CLIENT_CERTIFICATE")
		keyKey, key = general+"CLIENT_KEY", e.str(general+"CLIENT_KEY")
	}
	if ca != "" || cert != "" || key != "" {
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		pool := x509.NewCertPool()
		if err != nil {
			e.fail("%s: %w", caKey, err)
		} else if !pool.AppendCertsFromPEM(pem) {
			e.fail("%s: no PEM certificate in %s", caKey, ca)
		}
		tlsConfig.RootCAs = pool
	}
	switch {
	case cert != "" && key != "":
		c, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			e.fail("%s and %s: %w", certKey, keyKey, err)
		}
		tlsConfig.Certificates = []tls.Certificate{c}
	case cert != "":
		e.fail("%s is set without %s", certKey, keyKey)
	case key != "":
		e.fail("%s is set without %s", keyKey, certKey)
	}

	client := &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          10,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
			TLSClientConfig:       tlsConfig,
		},
		Timeout: e.millis(10000, traces+"TIMEOUT", general+"TIMEOUT"),
	}
	return []otlptracehttp.Option{
		otlptracehttp.WithEndpointURL(endpoint),
		otlptracehttp.WithEncoding(encoding),
		otlptracehttp.WithCompression(compression),
		otlptracehttp.WithHeaders(headers),
		otlptracehttp.WithHTTPClient(client),
		// TLS is the client's; drop any configuration the exporter read
		// from the process environment, which it would refuse beside an
		// http endpoint.
		otlptracehttp.WithTLSClientConfig(nil),
	}, client
}

// httpURL parses an endpoint: an http or https URL with a host.
func httpURL(s string) (*url.URL, bool) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, false
	}
	return u, true
}

// pair is one key=value of a list such as OTEL_RESOURCE_ATTRIBUTES.
type pair struct{ key, value string }

// parsePairs parses the list format of OTEL_RESOURCE_ATTRIBUTES and
// OTEL_EXPORTER_OTLP_HEADERS: key=value pairs separated by commas, with
// percent-encoded values and spaces around each trimmed. It reports false
// for an entry that is not key=value or a value that does not decode, and
// returns the pairs before it.
func parsePairs(s string) ([]pair, bool) {
	var pairs []pair
	for entry := range strings.SplitSeq(s, ",") {
		if strings.TrimSpace(entry) == "" {
			continue
		}
		k, v, ok := strings.Cut(entry, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return pairs, false
		}
		v, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return pairs, false
		}
		pairs = append(pairs, pair{k, v})
	}
	return pairs, true
}
