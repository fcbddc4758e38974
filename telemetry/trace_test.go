package telemetry_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-gw/sluice/telemetry"
)

// hermetic are the provider options the SDK would otherwise take from the
// process environment (OTEL_TRACES_SAMPLER, OTEL_SPAN_*_LIMIT).
var hermetic = []sdktrace.TracerProviderOption{
	sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
	sdktrace.WithRawSpanLimits(sdktrace.SpanLimits{
		AttributeValueLengthLimit: sdktrace.DefaultAttributeValueLengthLimit,
		AttributeCountLimit:       sdktrace.DefaultAttributeCountLimit, EventCountLimit: sdktrace.DefaultEventCountLimit,
		LinkCountLimit: sdktrace.DefaultLinkCountLimit, AttributePerEventCountLimit: sdktrace.DefaultAttributePerEventCountLimit,
		AttributePerLinkCountLimit: sdktrace.DefaultAttributePerLinkCountLimit,
	}),
}

// recorded returns tracing whose ended spans sr keeps.
func recorded(t testing.TB) (*telemetry.Tracing, *tracetest.SpanRecorder, *sdktrace.TracerProvider) {
	t.Helper()
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(append(hermetic, sdktrace.WithSpanProcessor(sr))...)
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return telemetry.NewTracingWith(tp), sr, tp
}

// attrs returns a span's attributes as plain Go values, for cmp.
func attrs(kvs []attribute.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.AsInterface()
	}
	return m
}

func eventNames(s sdktrace.ReadOnlySpan) []string {
	var names []string
	for _, ev := range s.Events() {
		names = append(names, ev.Name)
	}
	return names
}

// TestTracingCallWithFallback records a call whose first attempt failed and
// whose fallback answered: one call span, two attempt spans below it at the
// times given, the fallback event, and the GenAI attributes.
func TestTracingCallWithFallback(t *testing.T) {
	tr, sr, _ := recorded(t)
	ctx := tr.StartCall(context.Background(), telemetry.CallStart{
		Operation: "chat", Route: "smart", RequestModel: "smart", Stream: true, MaxTokens: 256,
		RequestID: "req-1", Dialect: "openai",
	})
	t0 := time.Now()
	first := telemetry.AttemptSpan{Provider: "openai", Model: "gpt-4o", Start: t0, Duration: 120 * time.Millisecond,
		Outcome: "upstream_unavailable", InputTokens: 7}
	second := telemetry.AttemptSpan{Provider: "anthropic", Model: "claude-sonnet", Start: t0.Add(150 * time.Millisecond),
		Duration: 900 * time.Millisecond, Wait: 30 * time.Millisecond, Outcome: "ok", Fallback: true,
		InputTokens: 12, OutputTokens: 34}
	tr.Attempt(ctx, first)
	tr.Attempt(ctx, second)
	tr.EndCall(ctx, telemetry.CallEnd{Provider: "anthropic", ResponseModel: "claude-sonnet-20250101", ResponseID: "msg_1",
		FinishReasons: []string{"stop"}, InputTokens: 12, OutputTokens: 34, CostUSD: 0.0042, TTFT: 200 * time.Millisecond, Code: "ok"})

	spans := sr.Ended()
	if len(spans) != 3 {
		t.Fatalf("%d spans ended, want 3 (a call and two attempts)", len(spans))
	}
	var call sdktrace.ReadOnlySpan
	var tries []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.SpanKind() == trace.SpanKindServer {
			if call != nil {
				t.Fatalf("two call spans: %q and %q", call.Name(), s.Name())
			}
			call = s
		} else {
			tries = append(tries, s)
		}
	}
	if call == nil {
		t.Fatal("no call span of kind Server")
	}
	if call.Name() != "chat smart" {
		t.Errorf("call span %q, want %q", call.Name(), "chat smart")
	}
	if call.Parent().IsValid() {
		t.Errorf("call span has parent %v, want a root", call.Parent())
	}
	wantCall := map[string]any{
		"gen_ai.operation.name":               "chat",
		"gen_ai.request.model":                "smart",
		"gen_ai.request.stream":               true,
		"gen_ai.request.max_tokens":           int64(256),
		"sluice.route":                        "smart",
		"sluice.dialect":                      "openai",
		"sluice.request_id":                   "req-1",
		"gen_ai.provider.name":                "anthropic",
		"gen_ai.response.model":               "claude-sonnet-20250101",
		"gen_ai.response.id":                  "msg_1",
		"gen_ai.response.finish_reasons":      []string{"stop"},
		"gen_ai.usage.input_tokens":           int64(12),
		"gen_ai.usage.output_tokens":          int64(34),
		"sluice.cost_usd":                     0.0042,
		"gen_ai.response.time_to_first_chunk": 0.2,
	}
	if d := cmp.Diff(wantCall, attrs(call.Attributes())); d != "" {
		t.Errorf("call attributes (-want +got):\n%s", d)
	}
	if call.Status().Code != codes.Unset {
		t.Errorf("call status %v, want Unset", call.Status())
	}
	if d := cmp.Diff([]string{"fallback", "first_token"}, eventNames(call)); d != "" {
		t.Fatalf("call events (-want +got):\n%s", d)
	}
	if ev := call.Events()[0]; !ev.Time.Equal(second.Start) ||
		!cmp.Equal(attrs(ev.Attributes), map[string]any{"gen_ai.provider.name": "anthropic", "gen_ai.request.model": "claude-sonnet"}) {
		t.Errorf("fallback event at %v with %v, want at %v with the fallback's target", ev.Time, ev.Attributes, second.Start)
	}
	if ev := call.Events()[1]; !ev.Time.Equal(call.StartTime().Add(200 * time.Millisecond)) {
		t.Errorf("first_token at %v, want the call's start + TTFT = %v", ev.Time, call.StartTime().Add(200*time.Millisecond))
	}

	for i, tc := range []struct {
		a      telemetry.AttemptSpan
		name   string
		attrs  map[string]any
		status sdktrace.Status
	}{
		{first, "chat gpt-4o", map[string]any{
			"gen_ai.operation.name":     "chat",
			"gen_ai.provider.name":      "openai",
			"gen_ai.request.model":      "gpt-4o",
			"gen_ai.usage.input_tokens": int64(7),
			"sluice.outcome":            "upstream_unavailable",
			"error.type":                "upstream_unavailable",
		}, sdktrace.Status{Code: codes.Error, Description: "upstream_unavailable"}},
		{second, "chat claude-sonnet", map[string]any{
			"gen_ai.operation.name":      "chat",
			"gen_ai.provider.name":       "anthropic",
			"gen_ai.request.model":       "claude-sonnet",
			"gen_ai.usage.input_tokens":  int64(12),
			"gen_ai.usage.output_tokens": int64(34),
			"sluice.outcome":             "ok",
			"sluice.fallback":            true,
			"sluice.wait":                0.03,
		}, sdktrace.Status{Code: codes.Unset}},
	} {
		s := tries[i]
		if s.Name() != tc.name || s.SpanKind() != trace.SpanKindClient {
			t.Errorf("attempt %d: span %q of kind %v, want %q of kind Client", i, s.Name(), s.SpanKind(), tc.name)
		}
		if s.Parent().SpanID() != call.SpanContext().SpanID() || s.SpanContext().TraceID() != call.SpanContext().TraceID() {
			t.Errorf("attempt %d: parent %v, want the call span %v", i, s.Parent(), call.SpanContext())
		}
		if !s.StartTime().Equal(tc.a.Start) || !s.EndTime().Equal(tc.a.Start.Add(tc.a.Duration)) {
			t.Errorf("attempt %d: from %v to %v, want %v to %v", i, s.StartTime(), s.EndTime(), tc.a.Start, tc.a.Start.Add(tc.a.Duration))
		}
		if d := cmp.Diff(tc.attrs, attrs(s.Attributes())); d != "" {
			t.Errorf("attempt %d attributes (-want +got):\n%s", i, d)
		}
		if s.Status() != tc.status {
			t.Errorf("attempt %d: status %v, want %v", i, s.Status(), tc.status)
		}
		if len(s.Events()) != 0 {
			t.Errorf("attempt %d: events %v, want none", i, eventNames(s))
		}
	}
}

// TestTracingFailedCall checks that a failed call's span carries its code
// and nothing else of the failure.
func TestTracingFailedCall(t *testing.T) {
	tr, sr, _ := recorded(t)
	ctx := tr.StartCall(context.Background(), telemetry.CallStart{Route: "smart", RequestModel: "smart"})
	tr.Attempt(ctx, telemetry.AttemptSpan{Provider: "openai", Model: "gpt-4o", Start: time.Now(), Duration: time.Second,
		Outcome: "upstream_timeout"})
	tr.EndCall(ctx, telemetry.CallEnd{Provider: "openai", Code: "upstream_unavailable"})
	tr.EndCall(ctx, telemetry.CallEnd{Code: "internal"}) // a second end is ignored

	spans := sr.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	call := spans[1]
	if call.SpanKind() != trace.SpanKindServer {
		t.Fatalf("last span ended is %q, want the call", call.Name())
	}
	if want := (sdktrace.Status{Code: codes.Error, Description: "upstream_unavailable"}); call.Status() != want {
		t.Errorf("status %+v, want %+v", call.Status(), want)
	}
	want := map[string]any{
		"gen_ai.operation.name": "chat",
		"gen_ai.request.model":  "smart",
		"gen_ai.request.stream": false,
		"sluice.route":          "smart",
		"gen_ai.provider.name":  "openai",
		"error.type":            "upstream_unavailable",
	}
	if d := cmp.Diff(want, attrs(call.Attributes())); d != "" {
		t.Errorf("attributes (-want +got):\n%s", d)
	}
	if len(call.Events()) != 0 {
		t.Errorf("events %v, want none (no exception event, no message)", eventNames(call))
	}
}

// TestTracingAttemptKinds checks the flags, events and status of retries,
// hedges and skipped targets.
func TestTracingAttemptKinds(t *testing.T) {
	for _, tc := range []struct {
		name       string
		a          telemetry.AttemptSpan
		events     []string
		flags      []string
		wantStatus codes.Code
	}{
		{"retry", telemetry.AttemptSpan{Retry: true, Outcome: "ok", Wait: time.Second}, []string{"retry"}, []string{"sluice.retry"}, codes.Unset},
		{"hedge lost", telemetry.AttemptSpan{Hedge: true, Lost: true, Outcome: "internal"}, []string{"hedge"},
			[]string{"sluice.hedge", "sluice.hedge_lost"}, codes.Unset},
		{"hedge failed", telemetry.AttemptSpan{Hedge: true, Outcome: "upstream_error"}, []string{"hedge"}, []string{"sluice.hedge"}, codes.Error},
		{"skipped", telemetry.AttemptSpan{Skipped: true, Fallback: true, Outcome: "upstream_unavailable"}, []string{"fallback"},
			[]string{"sluice.fallback", "sluice.skipped"}, codes.Error},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, sr, _ := recorded(t)
			ctx := tr.StartCall(context.Background(), telemetry.CallStart{Route: "r"})
			tc.a.Provider, tc.a.Model = "p", "m"
			tr.Attempt(ctx, tc.a) // zero Start: ends now
			tr.EndCall(ctx, telemetry.CallEnd{})
			spans := sr.Ended()
			if len(spans) != 2 {
				t.Fatalf("%d spans, want 2", len(spans))
			}
			attempt, call := spans[0], spans[1]
			if d := cmp.Diff(tc.events, eventNames(call)); d != "" {
				t.Errorf("call events (-want +got):\n%s", d)
			}
			got := attrs(attempt.Attributes())
			for _, f := range tc.flags {
				if got[f] != true {
					t.Errorf("%s = %v, want true", f, got[f])
				}
			}
			for _, f := range []string{"sluice.retry", "sluice.fallback", "sluice.hedge", "sluice.hedge_lost", "sluice.skipped"} {
				if _, ok := got[f]; ok && !contains(tc.flags, f) {
					t.Errorf("%s set, want it absent", f)
				}
			}
			if attempt.Status().Code != tc.wantStatus {
				t.Errorf("status %v, want %v", attempt.Status(), tc.wantStatus)
			}
			if _, ok := got["error.type"]; ok != (tc.wantStatus == codes.Error) {
				t.Errorf("error.type = %v, want it only on a failure", got["error.type"])
			}
			if d := attempt.EndTime().Sub(attempt.StartTime()); d != tc.a.Duration {
				t.Errorf("attempt lasted %v, want %v", d, tc.a.Duration)
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestTracingAttemptUnderChild checks that an attempt is the call's child
// even when the context given carries a span begun below the call's.
func TestTracingAttemptUnderChild(t *testing.T) {
	tr, sr, tp := recorded(t)
	ctx := tr.StartCall(context.Background(), telemetry.CallStart{Route: "r"})
	call := trace.SpanContextFromContext(ctx)
	inner, child := tp.Tracer("test").Start(ctx, "child")
	tr.Attempt(inner, telemetry.AttemptSpan{Provider: "p", Model: "m", Outcome: "ok"})
	child.End()
	tr.EndCall(inner, telemetry.CallEnd{}) // ends the call, not the child
	spans := sr.Ended()
	if len(spans) != 3 {
		t.Fatalf("%d spans, want 3", len(spans))
	}
	if a := spans[0]; a.Name() != "chat m" || a.Parent().SpanID() != call.SpanID() {
		t.Errorf("attempt %q under %v, want under the call %v", a.Name(), a.Parent().SpanID(), call.SpanID())
	}
	if c := spans[2]; c.SpanContext().SpanID() != call.SpanID() {
		t.Errorf("EndCall ended %q, want the call", c.Name())
	}
}

// TestTracingWithoutCall checks that Attempt and EndCall leave alone a
// context that StartCall did not make, even one carrying another span.
func TestTracingWithoutCall(t *testing.T) {
	tr, sr, tp := recorded(t)
	ctx, other := tp.Tracer("test").Start(context.Background(), "other")
	tr.Attempt(ctx, telemetry.AttemptSpan{Provider: "p", Model: "m", Outcome: "ok"})
	tr.EndCall(ctx, telemetry.CallEnd{Code: "internal"})
	if !other.IsRecording() {
		t.Error("EndCall ended a span that is not a call's")
	}
	other.End()
	if n := len(sr.Ended()); n != 1 {
		t.Errorf("%d spans ended, want only the other one", n)
	}
}

// TestTracingExtract checks that a call continues the trace of the client's
// traceparent, and that baggage comes through.
func TestTracingExtract(t *testing.T) {
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	h := http.Header{}
	h.Set("Traceparent", "00-"+traceID+"-"+parentID+"-01")
	h.Set("Tracestate", "congo=t61rcWkgMzE")
	h.Set("Baggage", "tenant=acme")

	t.Run("remote parent", func(t *testing.T) {
		tr, sr, _ := recorded(t)
		ctx := tr.Extract(context.Background(), h)
		if v := baggage.FromContext(ctx).Member("tenant").Value(); v != "acme" {
			t.Errorf("baggage tenant = %q, want acme", v)
		}
		ctx = tr.StartCall(ctx, telemetry.CallStart{Route: "r"})
		tr.EndCall(ctx, telemetry.CallEnd{})
		spans := sr.Ended()
		if len(spans) != 1 {
			t.Fatalf("%d spans, want 1", len(spans))
		}
		s := spans[0]
		if got := s.SpanContext().TraceID().String(); got != traceID {
			t.Errorf("trace id %s, want the client's %s", got, traceID)
		}
		if got := s.Parent().SpanID().String(); got != parentID || !s.Parent().IsRemote() {
			t.Errorf("parent %s (remote %v), want the client's %s", got, s.Parent().IsRemote(), parentID)
		}
		if got := s.SpanContext().TraceState().String(); got != "congo=t61rcWkgMzE" {
			t.Errorf("tracestate %q, want the client's", got)
		}
		if s.SpanKind() != trace.SpanKindServer {
			t.Errorf("kind %v, want Server: the call enters the process", s.SpanKind())
		}
	})
	t.Run("not sampled", func(t *testing.T) {
		tr, sr, _ := recorded(t)
		h := h.Clone()
		h.Set("Traceparent", "00-"+traceID+"-"+parentID+"-00")
		ctx := tr.StartCall(tr.Extract(context.Background(), h), telemetry.CallStart{Route: "r"})
		if trace.SpanFromContext(ctx).IsRecording() {
			t.Error("call recorded although the client's trace is not sampled")
		}
		tr.Attempt(ctx, telemetry.AttemptSpan{Model: "m", Outcome: "ok"})
		tr.EndCall(ctx, telemetry.CallEnd{})
		if n := len(sr.Ended()); n != 0 {
			t.Errorf("%d spans, want none", n)
		}
	})
	t.Run("local parent", func(t *testing.T) {
		tr, sr, tp := recorded(t)
		ctx, parent := tp.Tracer("test").Start(context.Background(), "http")
		ctx = tr.StartCall(ctx, telemetry.CallStart{Route: "r"})
		tr.EndCall(ctx, telemetry.CallEnd{})
		parent.End()
		spans := sr.Ended()
		if len(spans) != 2 {
			t.Fatalf("%d spans, want 2", len(spans))
		}
		s := spans[0]
		if s.SpanKind() != trace.SpanKindInternal || s.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("kind %v under %v, want Internal under the local span", s.SpanKind(), s.Parent())
		}
	})
}

// roundTripFunc is a fake http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestTracingTransport checks what upstream requests carry.
func TestTracingTransport(t *testing.T) {
	t.Run("upstream sees the call", func(t *testing.T) {
		got := make(chan http.Header, 1)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got <- r.Header.Clone()
		}))
		defer srv.Close()
		tr, _, _ := recorded(t)
		in := http.Header{"Baggage": {"tenant=acme"}}
		ctx := tr.StartCall(tr.Extract(context.Background(), in), telemetry.CallStart{Route: "r"})
		defer tr.EndCall(ctx, telemetry.CallEnd{})
		call := trace.SpanContextFromContext(ctx)

		client := &http.Client{Transport: tr.Transport(srv.Client().Transport)}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Keep", "1")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := <-got
		want := "00-" + call.TraceID().String() + "-" + call.SpanID().String() + "-01"
		if tp := h.Get("Traceparent"); tp != want {
			t.Errorf("upstream got traceparent %q, want %q (the call's trace, the call span as parent)", tp, want)
		}
		if h.Get("X-Keep") != "1" {
			t.Error("upstream lost the request's own header")
		}
		if b := h.Get("Baggage"); b != "" {
			t.Errorf("upstream got the client's baggage %q, want none", b)
		}
		if d := cmp.Diff(http.Header{"X-Keep": {"1"}}, req.Header); d != "" {
			t.Errorf("caller's request header changed (-want +got):\n%s", d)
		}
	})

	t.Run("cloned only with a span", func(t *testing.T) {
		var got *http.Request
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			got = r
			return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
		})
		tr, _, _ := recorded(t)
		rt := tr.Transport(base)

		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://upstream.test/", nil)
		req.Header.Set("X-Keep", "1")
		if _, err := rt.RoundTrip(req); err != nil {
			t.Fatal(err)
		}
		if got != req {
			t.Error("without a span the request was copied; want it passed as it is")
		}
		if got.Header.Get("Traceparent") != "" {
			t.Error("traceparent added without a span")
		}

		ctx := tr.StartCall(context.Background(), telemetry.CallStart{Route: "r"})
		defer tr.EndCall(ctx, telemetry.CallEnd{})
		req = req.WithContext(ctx)
		if _, err := rt.RoundTrip(req); err != nil {
			t.Fatal(err)
		}
		if got == req || got.Header.Get("Traceparent") == "" || got.Header.Get("X-Keep") != "1" {
			t.Errorf("with a span: same request %v, traceparent %q, X-Keep %q; want a copy with both",
				got == req, got.Header.Get("Traceparent"), got.Header.Get("X-Keep"))
		}
		if d := cmp.Diff(http.Header{"X-Keep": {"1"}}, req.Header); d != "" {
			t.Errorf("caller's request header changed (-want +got):\n%s", d)
		}
	})
}

// TestTracingNil checks that nil tracing does nothing, without allocating.
func TestTracingNil(t *testing.T) {
	if telemetry.NewTracingWith(nil) != nil {
		t.Error("NewTracingWith(nil) is not nil")
	}
	var tr *telemetry.Tracing
	ctx := context.Background()
	h := http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	cs := telemetry.CallStart{Route: "r", RequestModel: "m"}
	a := telemetry.AttemptSpan{Provider: "p", Model: "m", Outcome: "upstream_error", Retry: true}
	ce := telemetry.CallEnd{FinishReasons: []string{"stop"}, Code: "internal"}
	base := http.DefaultTransport
	allocs := testing.AllocsPerRun(100, func() {
		c := tr.StartCall(tr.Extract(ctx, h), cs)
		tr.Attempt(c, a)
		tr.EndCall(c, ce)
		if c != ctx {
			t.Fatal("nil tracing changed the context")
		}
		if tr.Transport(base) != base {
			t.Fatal("nil tracing wrapped the transport")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per call, want 0", allocs)
	}
	if tr.Transport(nil) != nil {
		t.Error("Transport(nil) of nil tracing is not nil")
	}
	if err := tr.Shutdown(ctx); err != nil {
		t.Error(err)
	}
	if err := telemetry.NewTracingWith(sdktrace.NewTracerProvider()).Shutdown(ctx); err != nil {
		t.Errorf("Shutdown of NewTracingWith: %v", err)
	}
}

// mapenv returns a getenv over m.
func mapenv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// TestNewTracingOff checks the settings that leave tracing off.
func TestNewTracingOff(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
	}{
		{"default", nil},
		{"only a service name", map[string]string{"OTEL_SERVICE_NAME": "s"}},
		{"sdk disabled", map[string]string{"OTEL_SDK_DISABLED": "TRUE", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_TRACES_EXPORTER": "otlp"}},
		{"exporter none", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:1"}},
		{"none in a list", map[string]string{"OTEL_TRACES_EXPORTER": "otlp, none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := telemetry.NewTracing(context.Background(), mapenv(tc.env))
			if tr != nil || err != nil {
				tr.Shutdown(context.Background())
				t.Errorf("NewTracing = %v, %v; want nil, nil", tr, err)
			}
		})
	}
	t.Run("otlp without endpoint", func(t *testing.T) {
		tr, err := telemetry.NewTracing(context.Background(), mapenv(map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}))
		if tr == nil || err != nil {
			t.Fatalf("NewTracing = %v, %v; want tracing to the default endpoint", tr, err)
		}
		if err := tr.Shutdown(context.Background()); err != nil { // nothing to flush: nothing dialled
			t.Error(err)
		}
	})
}

// TestNewTracingErrors checks that bad settings fail at start-up, naming the
// variable and never quoting a header.
func TestNewTracingErrors(t *testing.T) {
	on := "http://127.0.0.1:1"
	for _, tc := range []struct {
		name, key, value string
		mention          string
	}{
		{"exporter", "OTEL_TRACES_EXPORTER", "zipkin", "OTEL_TRACES_EXPORTER"},
		{"sampler", "OTEL_TRACES_SAMPLER", "xray", "OTEL_TRACES_SAMPLER"},
		{"protocol", "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{"compression", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "zstd", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"},
		{"endpoint", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "localhost:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		{"headers", "OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20sekrit,broken", "OTEL_EXPORTER_OTLP_HEADERS"},
		{"resource", "OTEL_RESOURCE_ATTRIBUTES", "team", "OTEL_RESOURCE_ATTRIBUTES"},
		{"queue", "OTEL_BSP_MAX_QUEUE_SIZE", "-1", "OTEL_BSP_MAX_QUEUE_SIZE"},
		{"timeout", "OTEL_EXPORTER_OTLP_TIMEOUT", "10s", "OTEL_EXPORTER_OTLP_TIMEOUT"},
		{"certificate", "OTEL_EXPORTER_OTLP_CERTIFICATE", filepath.Join(t.TempDir(), "missing.pem"), "OTEL_EXPORTER_OTLP_CERTIFICATE"},
		{"client key", "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "cert.pem", "OTEL_EXPORTER_OTLP_CLIENT_KEY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": on, tc.key: tc.value}
			tr, err := telemetry.NewTracing(context.Background(), mapenv(env))
			if err == nil || tr != nil {
				tr.Shutdown(context.Background())
				t.Fatalf("NewTracing = %v, %v; want an error", tr, err)
			}
			if !strings.Contains(err.Error(), tc.mention) || strings.Contains(err.Error(), "sekrit") {
				t.Errorf("error %q: want it to name %s and quote no header", err, tc.mention)
			}
		})
	}
	t.Run("sampler ratio", func(t *testing.T) {
		_, err := telemetry.NewTracing(context.Background(), mapenv(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": on,
			"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.5"}))
		if err == nil || !strings.Contains(err.Error(), "OTEL_TRACES_SAMPLER_ARG") {
			t.Errorf("err = %v, want OTEL_TRACES_SAMPLER_ARG named", err)
		}
	})
}

// export is one request the OTLP receiver got.
type export struct {
	path, contentType, tenant string
	body                      []byte
}

// receiver is an OTLP/HTTP receiver that keeps what it is sent.
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	exports []export
}

func newReceiver(t *testing.T, tls bool) *receiver {
	t.Helper()
	r := &receiver{}
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		var body io.Reader = req.Body
		if req.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(req.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		b, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.exports = append(r.exports, export{req.URL.Path, req.Header.Get("Content-Type"), req.Header.Get("X-Tenant"), b})
		r.mu.Unlock()
	})
	if tls {
		r.Server = httptest.NewTLSServer(h)
	} else {
		r.Server = httptest.NewServer(h)
	}
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) got() []export {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]export(nil), r.exports...)
}

// certFile writes the receiver's certificate to a PEM file.
func (r *receiver) certFile(t *testing.T) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(name, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

// TestNewTracingExports checks that spans reach an OTLP/HTTP receiver by the
// endpoint, encoding, headers, TLS and resource the environment gives.
func TestNewTracingExports(t *testing.T) {
	for _, tc := range []struct {
		name        string
		tls         bool
		env         func(t *testing.T, r *receiver) map[string]string
		path        string
		contentType string
	}{
		{"base endpoint", false, func(t *testing.T, r *receiver) map[string]string {
			return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": r.URL + "/otlp"}
		}, "/otlp/v1/traces", "application/x-protobuf"},
		{"traces endpoint first", false, func(t *testing.T, r *receiver) map[string]string {
			return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": r.URL + "/custom"}
		}, "/custom", "application/x-protobuf"},
		{"json gzip", false, func(t *testing.T, r *receiver) map[string]string {
			return map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": r.URL,
				"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json", "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"}
		}, "/v1/traces", "application/json"},
		{"tls", true, func(t *testing.T, r *receiver) map[string]string {
			return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": r.URL, "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": r.certFile(t)}
		}, "/v1/traces", "application/x-protobuf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newReceiver(t, tc.tls)
			env := tc.env(t, r)
			env["OTEL_SERVICE_NAME"] = "svc-test"
			env["OTEL_RESOURCE_ATTRIBUTES"] = "service.name=overridden, deployment.environment.name=stage%20one"
			env["OTEL_EXPORTER_OTLP_HEADERS"] = "x-tenant=acme%2Fone"
			tr, err := telemetry.NewTracing(context.Background(), mapenv(env))
			if err != nil || tr == nil {
				t.Fatalf("NewTracing = %v, %v; want tracing", tr, err)
			}
			ctx := tr.StartCall(context.Background(), telemetry.CallStart{Route: "smart"})
			tr.Attempt(ctx, telemetry.AttemptSpan{Provider: "openai", Model: "gpt-4o", Outcome: "ok"})
			tr.EndCall(ctx, telemetry.CallEnd{Provider: "openai"})
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := tr.Shutdown(sctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			got := r.got()
			if len(got) == 0 {
				t.Fatal("Shutdown did not flush: the receiver got nothing")
			}
			e := got[0]
			if e.path != tc.path || e.contentType != tc.contentType || e.tenant != "acme/one" {
				t.Errorf("export to %s as %s with X-Tenant %q; want %s as %s with acme/one", e.path, e.contentType, e.tenant, tc.path, tc.contentType)
			}
			for _, s := range []string{"svc-test", "service.name", "stage one", "chat smart", "chat gpt-4o"} {
				if !bytes.Contains(e.body, []byte(s)) {
					t.Errorf("export lacks %q", s)
				}
			}
			if bytes.Contains(e.body, []byte("overridden")) {
				t.Error("OTEL_SERVICE_NAME did not win over service.name in OTEL_RESOURCE_ATTRIBUTES")
			}
		})
	}
}

// TestNewTracingSampler checks that OTEL_TRACES_SAMPLER decides which calls
// are recorded.
func TestNewTracingSampler(t *testing.T) {
	sampled := http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	for _, tc := range []struct {
		name, sampler, arg string
		parent             http.Header
		want               bool
	}{
		{"default", "", "", nil, true},
		{"always_off", "always_off", "", nil, false},
		{"ratio 0", "traceidratio", "0", nil, false},
		{"ratio 0 under a sampled parent", "parentbased_traceidratio", "0", sampled, true},
		{"parentbased_always_off", "parentbased_always_off", "", nil, false},
		{"always_on", "ALWAYS_ON", "", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newReceiver(t, false)
			tr, err := telemetry.NewTracing(context.Background(), mapenv(map[string]string{
				"OTEL_EXPORTER_OTLP_ENDPOINT": r.URL, "OTEL_TRACES_SAMPLER": tc.sampler, "OTEL_TRACES_SAMPLER_ARG": tc.arg}))
			if err != nil {
				t.Fatal(err)
			}
			ctx := tr.StartCall(tr.Extract(context.Background(), tc.parent), telemetry.CallStart{Route: "r"})
			got := trace.SpanFromContext(ctx).IsRecording()
			tr.EndCall(ctx, telemetry.CallEnd{})
			if err := tr.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("recording = %v, want %v", got, tc.want)
			}
			if exported := len(r.got()) > 0; exported != tc.want {
				t.Errorf("exported = %v, want %v", exported, tc.want)
			}
		})
	}
}

// BenchmarkTracingNil measures a whole call with tracing off.
func BenchmarkTracingNil(b *testing.B) {
	var tr *telemetry.Tracing
	benchmarkCall(b, tr)
}

// BenchmarkTracingCall measures a whole call of two attempts, with spans
// recorded and handed to an exporter that drops them.
func BenchmarkTracingCall(b *testing.B) {
	tp := sdktrace.NewTracerProvider(append(hermetic, sdktrace.WithSyncer(tracetest.NewNoopExporter()))...)
	b.Cleanup(func() { tp.Shutdown(context.Background()) })
	benchmarkCall(b, telemetry.NewTracingWith(tp))
}

func benchmarkCall(b *testing.B, tr *telemetry.Tracing) {
	h := http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	cs := telemetry.CallStart{Operation: "chat", Route: "smart", RequestModel: "smart", Stream: true, MaxTokens: 256, RequestID: "req-1", Dialect: "openai"}
	now := time.Now()
	a1 := telemetry.AttemptSpan{Provider: "openai", Model: "gpt-4o", Start: now, Duration: time.Millisecond, Outcome: "upstream_unavailable"}
	a2 := telemetry.AttemptSpan{Provider: "anthropic", Model: "claude", Start: now, Duration: time.Millisecond, Outcome: "ok", Fallback: true,
		InputTokens: 10, OutputTokens: 20}
	ce := telemetry.CallEnd{Provider: "anthropic", ResponseModel: "claude", FinishReasons: []string{"stop"}, InputTokens: 10, OutputTokens: 20,
		CostUSD: 0.001, TTFT: time.Millisecond, Code: "ok"}
	b.ReportAllocs()
	for b.Loop() {
		ctx := tr.StartCall(tr.Extract(context.Background(), h), cs)
		tr.Attempt(ctx, a1)
		tr.Attempt(ctx, a2)
		tr.EndCall(ctx, ce)
	}
}
