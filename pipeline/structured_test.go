package pipeline_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/config"
	"github.com/sluice-gw/sluice/pipeline"
	"github.com/sluice-gw/sluice/telemetry"
)

const citySchema = `{"type":"object","properties":{"city":{"type":"string"},"population":{"type":"integer","minimum":0}},"required":["city","population"],"additionalProperties":false}`

// TestStructuredRepair checks the structured path: answers are validated,
// a broken one is asked again with what was wrong (once by default, as the
// route says otherwise), every attempt's usage counts, and an answer that
// never complies fails with schema_violation and its instance paths.
func TestStructuredRepair(t *testing.T) {
	cfg, err := config.Parse([]byte(`
providers:
  - {name: good, type: sim}
  - {name: prose-once, type: sim, fault: "prose,attempts=1"}
  - {name: break-once, type: sim, fault: "schema_break,attempts=1"}
  - {name: fences, type: sim, fault: fences}
  - {name: prose, type: sim, fault: prose}
  - {name: break, type: sim, fault: schema_break}
models:
  - {name: good, targets: [{provider: good, model: m}]}
  - {name: prose-once, targets: [{provider: prose-once, model: m}]}
  - {name: break-once, targets: [{provider: break-once, model: m}]}
  - {name: fences, targets: [{provider: fences, model: m}]}
  - {name: prose, targets: [{provider: prose, model: m}]}
  - {name: break, repair_attempts: 2, targets: [{provider: break, model: m}]}
  - {name: no-repair, repair_attempts: 0, targets: [{provider: prose-once, model: m}]}
`), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	var recs []pipeline.Record
	p, err := pipeline.New(context.Background(), cfg, pipeline.Options{OnRecord: func(_ context.Context, r pipeline.Record) { recs = append(recs, r) }})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	tests := []struct {
		model            string
		code             sluice.Code
		repairs          int
		parse, violation int
		path             string // of the violation reported
	}{
		{model: "good"},
		{model: "fences"}, // the fence is taken off, no repair needed
		{model: "prose-once", repairs: 1, parse: 1},
		{model: "break-once", repairs: 1, violation: 1},
		{model: "prose", code: sluice.CodeSchemaViolation, repairs: 1, parse: 2, path: ""},
		{model: "break", code: sluice.CodeSchemaViolation, repairs: 2, violation: 3, path: ""},
		{model: "no-repair", code: sluice.CodeSchemaViolation, parse: 1, path: ""},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			recs = nil
			req := userRequest(tt.model, "Name a city and its population.")
			req.Output = sluice.Output{Type: sluice.OutputJSONSchema, Name: "city", Schema: json.RawMessage(citySchema), Strict: true}
			resp, err := p.Complete(context.Background(), req)
			if len(recs) != 1 {
				t.Fatalf("%d records", len(recs))
			}
			rec := recs[0]
			if rec.Repairs != tt.repairs || rec.ParseFailures != tt.parse || rec.SchemaFailures != tt.violation {
				t.Errorf("record repairs %d parse %d schema %d, want %d %d %d", rec.Repairs, rec.ParseFailures, rec.SchemaFailures, tt.repairs, tt.parse, tt.violation)
			}
			if tt.code != "" {
				e := sluice.AsError(err)
				if e.Code != tt.code || len(e.Details) == 0 || e.Details[0].Path != tt.path {
					t.Fatalf("err %+v, want %s with a violation at %q", err, tt.code, tt.path)
				}
				if rec.Usage.OutputTokens == 0 {
					t.Error("failed attempts' usage not counted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var v struct {
				City       string `json:"city"`
				Population *int   `json:"population"`
			}
			if err := json.Unmarshal([]byte(resp.Message.Text()), &v); err != nil || v.City == "" || v.Population == nil {
				t.Fatalf("answer %q: %v", resp.Message.Text(), err)
			}
			if rec.Repaired != (tt.repairs > 0) || resp.Usage != rec.Usage {
				t.Errorf("repaired %v, usage %+v vs record %+v", rec.Repaired, resp.Usage, rec.Usage)
			}
		})
	}

	// A schema that does not compile is the client's error, before any call.
	req := userRequest("good", "x")
	req.Output = sluice.Output{Type: sluice.OutputJSONSchema, Schema: json.RawMessage(`{"type":"nonsense"}`)}
	if _, err := p.Complete(context.Background(), req); sluice.ErrorCode(err) != sluice.CodeInvalidRequest {
		t.Errorf("bad schema: err %v, want invalid_request", err)
	}
	req.Stream = true
	if _, err := p.Stream(context.Background(), req); sluice.ErrorCode(err) != sluice.CodeInvalidRequest {
		t.Errorf("bad schema, stream: err %v, want invalid_request", err)
	}
}

// TestStructuredStream checks that a streamed structured answer is
// validated at its end: a valid one finishes, a broken one ends with
// schema_violation in place of its finish.
func TestStructuredStream(t *testing.T) {
	p := newPipeline(t, `
providers:
  - {name: good, type: sim}
  - {name: break, type: sim, fault: schema_break}
models:
  - {name: good, targets: [{provider: good, model: m}]}
  - {name: break, targets: [{provider: break, model: m}]}
`)
	for model, want := range map[string]sluice.Code{"good": "", "break": sluice.CodeSchemaViolation} {
		req := userRequest(model, "Name a city.")
		req.Stream = true
		req.Output = sluice.Output{Type: sluice.OutputJSONSchema, Schema: json.RawMessage(citySchema)}
		s, err := p.Stream(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		evs, err := drain(s)
		if sluice.ErrorCode(err) != want && !(want == "" && err == nil) {
			t.Errorf("%s: err %v, want %q", model, err, want)
		}
		finished := len(evs) > 0 && evs[len(evs)-1].Type == sluice.EventFinish
		if finished != (want == "") {
			t.Errorf("%s: finished %v", model, finished)
		}
	}
}

// TestStructuredToolCall checks that a structured request whose answer is
// a tool call comes back as that call, unchecked: the JSON answer comes
// after the tool's result.
func TestStructuredToolCall(t *testing.T) {
	p := newPipeline(t, testConfig)
	req := userRequest("fast", "What is the weather in Paris?")
	req.Tools = []sluice.Tool{weatherTool}
	req.Output = sluice.Output{Type: sluice.OutputJSONSchema, Schema: json.RawMessage(citySchema)}
	resp, err := p.Complete(context.Background(), req)
	if err != nil || len(resp.Message.ToolCalls()) != 1 || resp.FinishReason != sluice.FinishToolCalls {
		t.Fatalf("resp %+v, err %v; want the tool call", resp, err)
	}
}

// TestStructuredMetrics checks that a repaired answer shows in the
// metrics: one parse failure, one repair attempted and succeeded, two
// upstream attempts, under the route and the provider that served it; and
// that a model name nobody configured is counted as "other".
func TestStructuredMetrics(t *testing.T) {
	cfg, err := config.Parse([]byte(`
providers:
  - {name: prose-once, type: sim, fault: "prose,attempts=1"}
models:
  - {name: flaky, targets: [{provider: prose-once, model: m}]}
`), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m, err := telemetry.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(context.Background(), cfg, pipeline.Options{Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	req := userRequest("flaky", "Name a city.")
	req.Output = sluice.Output{Type: sluice.OutputJSONSchema, Schema: json.RawMessage(citySchema)}
	if _, err := p.Complete(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	p.Complete(context.Background(), userRequest("made-up-by-a-client", "x"))
	want := `
# HELP sluice_contract_calls_total Calls with a schema to meet that got an answer to check, by outcome: valid, repaired or violation.
# TYPE sluice_contract_calls_total counter
sluice_contract_calls_total{outcome="repaired",route="flaky"} 1
# HELP sluice_contract_failures_total Structured answers that were not JSON (parse) or broke their schema (validation), calls a repair made valid (repaired) and calls that broke it after every repair (exhausted).
# TYPE sluice_contract_failures_total counter
sluice_contract_failures_total{kind="parse",route="flaky"} 1
sluice_contract_failures_total{kind="repaired",route="flaky"} 1
# HELP sluice_contract_repairs_total Repair requests made.
# TYPE sluice_contract_repairs_total counter
sluice_contract_repairs_total{route="flaky"} 1
# HELP sluice_upstream_attempts_total Upstream attempts by provider and outcome: ok, the error code, hedge_lost, breaker_open or bulkhead_full.
# TYPE sluice_upstream_attempts_total counter
sluice_upstream_attempts_total{outcome="ok",provider="prose-once"} 2
# HELP sluice_requests_total Calls by route, upstream model, provider, client dialect, streaming and outcome (ok or the error code).
# TYPE sluice_requests_total counter
sluice_requests_total{code="not_found",dialect="go",model="",provider="",route="other",stream="false"} 1
sluice_requests_total{code="ok",dialect="go",model="m",provider="prose-once",route="flaky",stream="false"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sluice_contract_calls_total", "sluice_contract_failures_total",
		"sluice_contract_repairs_total", "sluice_upstream_attempts_total", "sluice_requests_total"); err != nil {
		t.Error(err)
	}
}
