package eval_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sluice-gw/sluice/config"
	"github.com/sluice-gw/sluice/eval"
	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/pipeline"
)

// runnerConfig has a clean contract, one whose every answer breaks its
// schema, one whose first answer is prose (repaired), and chat routes.
const runnerConfig = `
providers:
  - {name: good, type: sim}
  - {name: broken, type: sim, fault: schema_break}
  - {name: prose-once, type: sim, fault: "prose,attempts=1"}
  - {name: slow, type: sim, fault: "latency=2s"}
models:
  - {name: good, targets: [{provider: good, model: sim-json}]}
  - {name: broken, targets: [{provider: broken, model: sim-json}]}
  - {name: prose-once, targets: [{provider: prose-once, model: sim-json}]}
  - {name: chat, targets: [{provider: good, model: sim-fast}]}
  - {name: slow, targets: [{provider: slow, model: sim-fast}]}
contracts:
  - {name: city, model: good, schema: {type: object, properties: {name: {type: string}, population: {type: integer, minimum: 0}}, required: [name, population], additionalProperties: false}}
  - {name: city-broken, model: broken, schema: {type: object, properties: {name: {type: string}}, required: [name]}}
  - {name: city-repaired, model: prose-once, schema: {type: object, properties: {name: {type: string}}, required: [name]}}
`

func newPipeline(t *testing.T) *pipeline.Pipeline {
	t.Helper()
	cfg, err := config.Parse([]byte(runnerConfig), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(context.Background(), cfg, pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func contractCases(n int) []eval.Case {
	var cs []eval.Case
	for i := range n {
		cs = append(cs, eval.Case{ID: fmt.Sprintf("c%d", i), Line: i + 1, Input: json.RawMessage(fmt.Sprintf(`"City number %d."`, i)),
			Expect: eval.Expect{Valid: true, JSON: []eval.PathAssertion{{Path: "$.name", Matches: "."}}}})
	}
	return cs
}

// TestRunnerContractFaults runs contracts on the simulator, in-process and
// through a gateway over HTTP: the clean contract passes every attempt,
// the broken one fails every attempt on schema validity (violations after
// its repair), and the prose-once one passes after one repair each; the
// report counts them.
func TestRunnerContractFaults(t *testing.T) {
	p := newPipeline(t)
	gw := httptest.NewServer(gateway.NewServer(nil, p, gateway.Options{}))
	defer gw.Close()
	for _, tc := range []struct {
		name   string
		caller eval.Caller
	}{
		{"in-process", eval.Pipeline{P: p}},
		{"http", eval.HTTP{BaseURL: gw.URL, Client: gw.Client()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cases := contractCases(5)
			r := &eval.Runner{Caller: tc.caller, Repeat: 2, Concurrency: 3}
			info := eval.RunInfo{Dataset: "test", Kind: "contract", Targets: []string{"city", "city-broken", "city-repaired"}}
			attempts, info := r.Run(context.Background(), info, cases)
			if len(attempts) != 30 || info.Planned != 30 || info.Stopped != "" {
				t.Fatalf("%d attempts of %d planned, stopped %q", len(attempts), info.Planned, info.Stopped)
			}
			rep := eval.NewReport(info, cases, attempts)
			byTarget := map[string]eval.TargetSummary{}
			for _, s := range rep.Targets {
				byTarget[s.Target] = s
			}
			for _, w := range []struct {
				target                          string
				passed, schemaValid, repairs    int
				violations                      int
				wantTokens, wantCostOrZeroUsage bool
			}{
				{"city", 10, 10, 0, 0, true, true},
				{"city-broken", 0, 0, 10, 10, true, true},
				{"city-repaired", 10, 10, 10, 0, true, true},
			} {
				s := byTarget[w.target]
				if s.Attempts != 10 || s.Passed != w.passed || s.SchemaAttempts != 10 || s.SchemaValid != w.schemaValid || s.Repairs != w.repairs {
					t.Errorf("%s: %d attempts, %d passed, schema %d/%d, %d repairs; want 10, %d, %d/10, %d",
						w.target, s.Attempts, s.Passed, s.SchemaValid, s.SchemaAttempts, s.Repairs, w.passed, w.schemaValid, w.repairs)
				}
				if got := s.Errors["schema_violation"]; got != w.violations {
					t.Errorf("%s: %d schema_violation errors, want %d", w.target, got, w.violations)
				}
				if s.InputTokens == 0 || s.OutputTokens == 0 {
					t.Errorf("%s: tokens %d in, %d out: want the usage", w.target, s.InputTokens, s.OutputTokens)
				}
			}
		})
	}
}

// TestRunnerRouteStreams runs a chat route in-process and over HTTP: text
// checks, time to first token and usage come through.
func TestRunnerRouteStreams(t *testing.T) {
	p := newPipeline(t)
	gw := httptest.NewServer(gateway.NewServer(nil, p, gateway.Options{}))
	defer gw.Close()
	cases := []eval.Case{
		{ID: "hi", Line: 1, Messages: []eval.Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Say hello."}},
			Expect: eval.Expect{NotContains: []string{"<script>"}, MaxTokens: 10000}},
		{ID: "impossible", Line: 2, Messages: []eval.Message{{Role: "user", Content: "Say hello."}},
			Expect: eval.Expect{Contains: []string{"this text the simulator never writes 12345"}}},
	}
	for _, tc := range []struct {
		name   string
		caller eval.Caller
	}{
		{"in-process", eval.Pipeline{P: p}},
		{"http", eval.HTTP{BaseURL: gw.URL, Client: gw.Client()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			attempts, info := (&eval.Runner{Caller: tc.caller}).Run(context.Background(),
				eval.RunInfo{Kind: "route", Targets: []string{"chat"}}, cases)
			if len(attempts) != 2 {
				t.Fatalf("%d attempts", len(attempts))
			}
			hi, imp := attempts[0], attempts[1]
			if !hi.Pass || hi.TTFT <= 0 || hi.TTFT > hi.Latency || hi.OutputTokens == 0 || strings.TrimSpace(hi.Output) == "" {
				t.Errorf("hi: %+v", hi)
			}
			if imp.Pass || imp.Code != "" {
				t.Errorf("impossible passed, or failed as a call: %+v", imp)
			}
			rep := eval.NewReport(info, cases, attempts)
			if s := rep.Targets[0]; s.Kinds["contains"].Total != 1 || s.Kinds["contains"].Passed != 0 || s.Kinds["not_contains"].Passed != 1 {
				t.Errorf("kinds %+v", s.Kinds)
			}
		})
	}
}

// TestRunnerInterrupted cancels a run while calls are in flight: no new
// call starts, the calls cut short are left out, and the run says it was
// interrupted.
func TestRunnerInterrupted(t *testing.T) {
	p := newPipeline(t)
	var cases []eval.Case
	for i := range 20 {
		cases = append(cases, eval.Case{ID: fmt.Sprint(i), Line: i + 1, Messages: []eval.Message{{Role: "user", Content: "hi"}}})
	}
	ctx, cancel := context.WithCancel(context.Background())
	var started atomic.Int32
	caller := countingCaller{eval.Pipeline{P: p}, &started, cancel}
	attempts, info := (&eval.Runner{Caller: caller, Concurrency: 2}).Run(ctx, eval.RunInfo{Kind: "route", Targets: []string{"slow"}}, cases)
	if info.Stopped != "interrupted" || len(attempts) != 0 {
		t.Errorf("stopped %q with %d attempts: want interrupted with none (every call was cut short)", info.Stopped, len(attempts))
	}
	if n := started.Load(); n > 2 {
		t.Errorf("%d calls started after the cancel; want at most the 2 in flight", n)
	}
}

// countingCaller counts calls and cancels the run when the second starts.
type countingCaller struct {
	eval.Caller
	n      *atomic.Int32
	cancel func()
}

func (c countingCaller) Call(ctx context.Context, kind, target string, cs *eval.Case) eval.Attempt {
	if c.n.Add(1) == 2 {
		c.cancel()
	}
	return c.Caller.Call(ctx, kind, target, cs)
}

// TestRunnerMaxCost stops a run once its attempts have cost the limit.
func TestRunnerMaxCost(t *testing.T) {
	var cases []eval.Case
	for i := range 50 {
		cases = append(cases, eval.Case{ID: fmt.Sprint(i), Line: i + 1, Messages: []eval.Message{{Role: "user", Content: "hi"}}})
	}
	attempts, info := (&eval.Runner{Caller: pricedCaller{}, MaxCostUSD: 0.05}).Run(context.Background(),
		eval.RunInfo{Kind: "route", Targets: []string{"x"}}, cases)
	if info.Stopped != "max_cost" || len(attempts) != 5 {
		t.Errorf("stopped %q after %d attempts; want max_cost after 5 (a cent each)", info.Stopped, len(attempts))
	}
}

// pricedCaller answers every call at a cent.
type pricedCaller struct{}

func (pricedCaller) Call(context.Context, string, string, *eval.Case) eval.Attempt {
	return eval.Attempt{Output: "ok", CostUSD: 0.01}
}

// TestHTTPStreamCutShort checks that a gateway stream that ends without
// its [DONE] is a failed call (stream_interrupted), not a short answer.
func TestHTTPStreamCutShort(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n")
	}))
	defer srv.Close()
	c := &eval.Case{ID: "x", Messages: []eval.Message{{Role: "user", Content: "hi"}}}
	a := eval.HTTP{BaseURL: srv.URL, Client: srv.Client()}.Call(context.Background(), "route", "chat", c)
	if a.Code != "stream_interrupted" || a.Output != "Hel" {
		t.Errorf("code %q, output %q: want stream_interrupted with the part received", a.Code, a.Output)
	}
}
