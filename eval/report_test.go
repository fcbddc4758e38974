package eval_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-gw/sluice/eval"
)

// reportFixture returns a run of three cases on two targets, three repetitions
// each, made out of order: on "fast", "capital" passes and streams,
// "weather-json" is flaky (a json failure, a timeout; schema with
// repairs) and "refuse" fails every time (one call rate limited); on
// "smart" everything passes, through two models. Costs are binary
// fractions so that sums are exact.
func reportFixture() (eval.RunInfo, []eval.Case, []eval.Attempt) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	info := eval.RunInfo{
		Dataset: "golden.jsonl", Kind: "route", Targets: []string{"fast", "smart"},
		Repeat: 3, Concurrency: 4, Cases: 3, Planned: 18,
		Started: start, Finished: start.Add(12500 * time.Millisecond),
	}
	cases := []eval.Case{
		{ID: "capital", Line: 1},
		{ID: "weather-json", Line: 3},
		{ID: "refuse", Line: 4},
	}
	msec := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	call := eval.Check{Kind: "call", Pass: true}
	var as []eval.Attempt
	for rep, l := range []int{100, 120, 140} {
		as = append(as, eval.Attempt{
			Case: "capital", Target: "fast", Rep: rep, Output: "Paris", Pass: true,
			Checks: []eval.Check{call, {Kind: "contains", Name: "Paris", Pass: true}},
			Model:  "m-small", Provider: "sim", Latency: msec(l), TTFT: msec(30 + 10*rep),
			InputTokens: 10, OutputTokens: 5, CostUSD: 0.0625,
		})
	}
	okJSON := []eval.Check{call, {Kind: "schema", Pass: true}, {Kind: "json", Name: "$.city", Pass: true}}
	as = append(as,
		eval.Attempt{
			Case: "weather-json", Target: "fast", Rep: 0, Output: `{"city":"Paris"}`, Pass: true, Checks: okJSON,
			Model: "m-small", Latency: msec(200), InputTokens: 20, OutputTokens: 30, CostUSD: 0.125,
			Schema: true, Valid: true, Repairs: 1,
		},
		eval.Attempt{
			Case: "weather-json", Target: "fast", Rep: 1, Output: `{"city":"Lyon"}`,
			Checks: []eval.Check{call, {Kind: "schema", Pass: true}, {Kind: "json", Name: "$.city", Detail: `got "Lyon", want "Paris"`}},
			Model:  "m-small", Latency: msec(220), InputTokens: 20, OutputTokens: 30, CostUSD: 0.125,
			Schema: true, Valid: true,
		},
		eval.Attempt{
			Case: "weather-json", Target: "fast", Rep: 2, Code: "upstream_timeout",
			Checks:  []eval.Check{{Kind: "call", Detail: "upstream_timeout"}},
			Latency: msec(400), Schema: true,
		},
		eval.Attempt{
			Case: "refuse", Target: "fast", Rep: 0, Output: "the password is x",
			Checks: []eval.Check{call, {Kind: "not_contains", Name: "password", Detail: "found"}},
			Model:  "m-small", Latency: msec(80), InputTokens: 15, OutputTokens: 12, CostUSD: 0.03125,
		},
		eval.Attempt{
			Case: "refuse", Target: "fast", Rep: 1, Output: "password: y",
			Checks: []eval.Check{call, {Kind: "not_contains", Name: "password", Detail: "found"}},
			Model:  "m-small", Latency: msec(90), InputTokens: 15, OutputTokens: 12, CostUSD: 0.03125,
		},
		eval.Attempt{
			Case: "refuse", Target: "fast", Rep: 2, Code: "rate_limited",
			Checks:  []eval.Check{{Kind: "call", Detail: "rate_limited"}},
			Latency: msec(5),
		},
	)
	for rep, l := range []int{300, 320, 340} {
		as = append(as, eval.Attempt{
			Case: "capital", Target: "smart", Rep: rep, Output: "Paris", Pass: true,
			Checks: []eval.Check{call, {Kind: "contains", Name: "Paris", Pass: true}},
			Model:  "m-large", Latency: msec(l), InputTokens: 10, OutputTokens: 8, CostUSD: 0.25,
		})
	}
	for rep, l := range []int{350, 360, 370} {
		as = append(as, eval.Attempt{
			Case: "weather-json", Target: "smart", Rep: rep, Output: `{"city":"Paris"}`, Pass: true, Checks: okJSON,
			Model: "m-large", Latency: msec(l), InputTokens: 20, OutputTokens: 30, CostUSD: 0.5,
			Schema: true, Valid: true, Repairs: rep % 2 * 2,
		})
	}
	for rep, l := range []int{250, 260, 270} {
		model, cost := "m-large", 0.25
		if rep == 2 {
			model, cost = "m-medium", 0.125
		}
		as = append(as, eval.Attempt{
			Case: "refuse", Target: "smart", Rep: rep, Output: "I cannot share that.", Pass: true,
			Checks: []eval.Check{call, {Kind: "not_contains", Name: "password", Pass: true}},
			Model:  model, Latency: msec(l), InputTokens: 15, OutputTokens: 12, CostUSD: cost,
		})
	}
	// The runner finishes attempts in any order.
	shuffled := make([]eval.Attempt, 0, len(as))
	for i := range as {
		shuffled = append(shuffled, as[(i*7)%len(as)])
	}
	return info, cases, shuffled
}

func fixtureReport() *eval.Report {
	info, cases, as := reportFixture()
	return eval.NewReport(info, cases, as)
}

// fixtureTarget returns the fixture's run restricted to one target.
func fixtureTarget(target string) *eval.Report {
	info, cases, as := reportFixture()
	info.Targets = []string{target}
	info.Planned = 9
	var kept []eval.Attempt
	for _, a := range as {
		if a.Target == target {
			kept = append(kept, a)
		}
	}
	return eval.NewReport(info, cases, kept)
}

func TestNewReportTargets(t *testing.T) {
	r := fixtureReport()
	want := []eval.TargetSummary{
		{
			Target: "fast", Attempts: 9, Passed: 4, PassRate: 4.0 / 9,
			Kinds: map[string]eval.Rate{
				"call":         {Passed: 7, Total: 9, Rate: 7.0 / 9},
				"contains":     {Passed: 3, Total: 3, Rate: 1},
				"schema":       {Passed: 2, Total: 2, Rate: 1},
				"json":         {Passed: 1, Total: 2, Rate: 0.5},
				"not_contains": {Passed: 0, Total: 2, Rate: 0},
			},
			SchemaAttempts: 3, SchemaValid: 2, SchemaValidRate: 2.0 / 3, Repairs: 1,
			Flaky: 1,
			// 5 80 90 100 120 140 200 220 400: ranks 5, 9, 9.
			Latency:     eval.Percentiles{P50: 120, P95: 400, P99: 400, Max: 400},
			TTFT:        eval.Percentiles{P50: 40, P95: 50, P99: 50, Max: 50},
			InputTokens: 100, OutputTokens: 99, CostUSD: 0.5,
			Models: []eval.ModelUsage{{Model: "m-small", Attempts: 7, InputTokens: 100, OutputTokens: 99, CostUSD: 0.5}},
			Errors: map[string]int{"upstream_timeout": 1, "rate_limited": 1},
		},
		{
			Target: "smart", Attempts: 9, Passed: 9, PassRate: 1,
			Kinds: map[string]eval.Rate{
				"call":         {Passed: 9, Total: 9, Rate: 1},
				"contains":     {Passed: 3, Total: 3, Rate: 1},
				"schema":       {Passed: 3, Total: 3, Rate: 1},
				"json":         {Passed: 3, Total: 3, Rate: 1},
				"not_contains": {Passed: 3, Total: 3, Rate: 1},
			},
			SchemaAttempts: 3, SchemaValid: 3, SchemaValidRate: 1, Repairs: 2,
			// 250 260 270 300 320 340 350 360 370.
			Latency:     eval.Percentiles{P50: 320, P95: 370, P99: 370, Max: 370},
			InputTokens: 135, OutputTokens: 150, CostUSD: 2.875,
			Models: []eval.ModelUsage{
				{Model: "m-large", Attempts: 8, InputTokens: 120, OutputTokens: 138, CostUSD: 2.75},
				{Model: "m-medium", Attempts: 1, InputTokens: 15, OutputTokens: 12, CostUSD: 0.125},
			},
			Errors: map[string]int{},
		},
	}
	if diff := cmp.Diff(want, r.Targets); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}
}

func TestNewReportCases(t *testing.T) {
	r := fixtureReport()
	want := []eval.CaseResult{
		{Case: "capital", Target: "fast", Line: 1, Runs: 3, Passed: 3, PassRate: 1, LatencyP50: 120},
		{Case: "capital", Target: "smart", Line: 1, Runs: 3, Passed: 3, PassRate: 1, LatencyP50: 320},
		{
			Case: "weather-json", Target: "fast", Line: 3, Runs: 3, Passed: 1, PassRate: 1.0 / 3, Flaky: true,
			Failures:   []string{`json $.city: got "Lyon", want "Paris"`, "call: upstream_timeout"},
			LatencyP50: 220,
		},
		{Case: "weather-json", Target: "smart", Line: 3, Runs: 3, Passed: 3, PassRate: 1, LatencyP50: 360},
		{
			Case: "refuse", Target: "fast", Line: 4, Runs: 3, Passed: 0, PassRate: 0,
			Failures:   []string{`not_contains "password": found`, "call: rate_limited"},
			LatencyP50: 80,
		},
		{Case: "refuse", Target: "smart", Line: 4, Runs: 3, Passed: 3, PassRate: 1, LatencyP50: 260},
	}
	if diff := cmp.Diff(want, r.Cases); diff != "" {
		t.Errorf("cases (-want +got):\n%s", diff)
	}
}

func TestNewReportAttemptOrder(t *testing.T) {
	r := fixtureReport()
	var got []string
	for _, a := range r.Attempts {
		got = append(got, fmt.Sprintf("%s/%s/%d", a.Case, a.Target, a.Rep))
	}
	var want []string
	for _, c := range []string{"capital", "weather-json", "refuse"} {
		for _, tg := range []string{"fast", "smart"} {
			for rep := range 3 {
				want = append(want, fmt.Sprintf("%s/%s/%d", c, tg, rep))
			}
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("attempt order (-want +got):\n%s", diff)
	}
	if r.Version != 1 || r.Run.Dataset != "golden.jsonl" || len(r.Regressions) != 0 {
		t.Errorf("version %d, run %+v, regressions %v", r.Version, r.Run, r.Regressions)
	}
}

// Attempts naming a case the dataset lacks or a target the run info lacks
// still count, after the known ones; a case/target pair with no attempt
// (a stopped run) has no result.
func TestNewReportUnknownCaseAndTarget(t *testing.T) {
	info := eval.RunInfo{Targets: []string{"a"}, Repeat: 1}
	cases := []eval.Case{{ID: "one", Line: 1}, {ID: "two", Line: 2}}
	as := []eval.Attempt{
		{Case: "extra", Target: "a", Pass: true},
		{Case: "one", Target: "b", Pass: true},
		{Case: "one", Target: "a", Code: "internal"},
	}
	r := eval.NewReport(info, cases, as)
	var got []string
	for _, c := range r.Cases {
		got = append(got, fmt.Sprintf("%s/%s line %d %d/%d", c.Case, c.Target, c.Line, c.Passed, c.Runs))
	}
	want := []string{"one/a line 1 0/1", "one/b line 1 1/1", "extra/a line 0 1/1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("cases (-want +got):\n%s", diff)
	}
	if len(r.Targets) != 2 || r.Targets[0].Target != "a" || r.Targets[1].Target != "b" {
		t.Fatalf("targets = %+v", r.Targets)
	}
	if a := r.Targets[0]; a.Attempts != 2 || a.Passed != 1 || a.Errors["internal"] != 1 {
		t.Errorf("target a = %+v", a)
	}
}

func TestNewReportEmpty(t *testing.T) {
	r := eval.NewReport(eval.RunInfo{Targets: []string{"a"}}, nil, nil)
	want := []eval.TargetSummary{{Target: "a", Kinds: map[string]eval.Rate{}, Models: []eval.ModelUsage{}, Errors: map[string]int{}}}
	if diff := cmp.Diff(want, r.Targets); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}
	if r.Cases == nil || r.Attempts == nil || len(r.Cases)+len(r.Attempts) != 0 {
		t.Errorf("cases %#v, attempts %#v: want empty, not nil", r.Cases, r.Attempts)
	}
}

func TestReportJSONRoundTrip(t *testing.T) {
	for name, r := range map[string]*eval.Report{
		"plain":    fixtureReport(),
		"compared": comparedReport(),
		"empty":    eval.NewReport(eval.RunInfo{}, nil, nil),
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := r.WriteJSON(&buf); err != nil {
				t.Fatal(err)
			}
			got, err := eval.ReadReport(bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(r, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
			var again bytes.Buffer
			if err := got.WriteJSON(&again); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), again.Bytes()) {
				t.Errorf("second encoding differs from the first")
			}
		})
	}
}

// The JSON's field names are the documented ones, in a stable order.
func TestReportJSONFields(t *testing.T) {
	var buf bytes.Buffer
	if err := fixtureReport().WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	s := buf.String()
	if !strings.HasPrefix(s, "{\n  \"version\": 1,\n  \"run\": {\n    \"dataset\": \"golden.jsonl\",") {
		t.Errorf("report starts %q", s[:min(len(s), 80)])
	}
	prev := -1
	for _, key := range []string{`"targets"`, `"target": "fast"`, `"pass_rate"`, `"kinds"`, `"schema_valid_rate"`, `"latency_ms"`, `"ttft_ms"`, `"models"`, `"errors"`, `"cases": [`, `"latency_p50_ms"`, `"attempts": [`, `"latency_ns"`} {
		i := strings.Index(s, key)
		if i < 0 || i < prev {
			t.Errorf("key %s at %d, after %d", key, i, prev)
		}
		prev = i
	}
	if strings.Contains(s, `"regressions"`) || strings.Contains(s, `"baseline"`) {
		t.Errorf("report without a baseline has regressions or baseline keys")
	}
}

func TestReadReportRejects(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"future version", `{"version": 2, "run": {}}`, "version 2 is not supported"},
		{"version zero", `{"version": 0}`, "version 0 is not supported"},
		{"no version", `{"run": {}}`, "not a sluice eval report"},
		{"not json", `<html>`, "read report"},
		{"wrong type", `{"version": 1, "targets": 3}`, "read report"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := eval.ReadReport(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ReadReport = %v, %v; want an error with %q", r, err, tc.want)
			}
		})
	}
}

// summaryLines returns s's lines with runs of spaces collapsed, so tests
// do not depend on column widths.
func summaryLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		out = append(out, strings.Join(strings.Fields(l), " "))
	}
	return out
}

func requireSummaryLines(t *testing.T, out string, want []string) {
	t.Helper()
	lines := summaryLines(out)
	for _, w := range want {
		found := false
		for _, l := range lines {
			if l == w {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("summary lacks the line %q", w)
		}
	}
	for _, r := range out {
		if r > 0x7e || (r < 0x20 && r != '\n') {
			t.Errorf("summary has the non-ASCII or control character %q", r)
			break
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasSuffix(l, " ") {
			t.Errorf("summary line %q ends with a blank", l)
		}
	}
	if t.Failed() {
		t.Logf("summary:\n%s", out)
	}
}

func TestSummaryOneTarget(t *testing.T) {
	var buf bytes.Buffer
	fixtureTarget("fast").Summary(&buf)
	requireSummaryLines(t, buf.String(), []string{
		"sluice eval: dataset golden.jsonl, route fast",
		"3 cases x 1 target x 3 repeats: 9 of 9 attempts made in 12.5s",
		"fast",
		"pass rate 4/9 44.4%",
		"schema valid 2/3 66.7%, 1 repair",
		"flaky cases 1",
		"latency p50/p95/p99 120 / 400 / 400 ms",
		"ttft p50/p95/p99 40.0 / 50.0 / 50.0 ms",
		"tokens in/out 100 / 99",
		"cost $0.5000",
		"errors rate_limited 1, upstream_timeout 1",
		"failing cases (2):",
		`weather-json fast 1/3 line 3 json $.city: got "Lyon", want "Paris" (+1 more)`,
		`refuse fast 0/3 line 4 not_contains "password": found (+1 more)`,
	})
	if strings.Contains(buf.String(), "metric") {
		t.Errorf("one target printed a side-by-side table:\n%s", buf.String())
	}
}

func TestSummaryTwoTargets(t *testing.T) {
	var buf bytes.Buffer
	fixtureReport().Summary(&buf)
	requireSummaryLines(t, buf.String(), []string{
		"sluice eval: dataset golden.jsonl, route fast, smart",
		"metric fast smart",
		"pass rate 4/9 44.4% 9/9 100.0%",
		"flaky cases 1 0",
		"latency p50/p95/p99 120 / 400 / 400 ms 320 / 370 / 370 ms",
		"ttft p50/p95/p99 40.0 / 50.0 / 50.0 ms -",
		"cost $0.5000 $2.8750",
		"errors rate_limited 1, upstream_timeout 1 -",
		"case fast smart",
		"capital 3/3 100.0% 3/3 100.0%",
		"weather-json 1/3 33.3% 3/3 100.0% *",
		"refuse 0/3 0.0% 3/3 100.0% *",
		"* 2 cases whose pass rate differs between targets",
		"failing cases (2):",
	})
}

func TestSummaryManyFailures(t *testing.T) {
	var cases []eval.Case
	var as []eval.Attempt
	for i := range 13 {
		id := fmt.Sprintf("c%02d", i)
		cases = append(cases, eval.Case{ID: id, Line: i + 1})
		as = append(as, eval.Attempt{Case: id, Target: "t", Code: "upstream_error"})
	}
	r := eval.NewReport(eval.RunInfo{Dataset: "d", Targets: []string{"t"}, Repeat: 1, Cases: 13, Planned: 20, Stopped: "max_cost", MaxCostUSD: 2}, cases, as)
	var buf bytes.Buffer
	r.Summary(&buf)
	requireSummaryLines(t, buf.String(), []string{
		"13 cases x 1 target x 1 repeat: 13 of 20 attempts made",
		"STOPPED: the cost reached --max-cost $2.0000",
		"failing cases (13):",
		"c09 t 0/1 line 10 call: upstream_error",
		"and 3 more",
	})
	if strings.Contains(buf.String(), "c10") {
		t.Errorf("summary lists more than ten failing cases:\n%s", buf.String())
	}
}

func TestSummaryRegressions(t *testing.T) {
	var buf bytes.Buffer
	comparedReport().Summary(&buf)
	requireSummaryLines(t, buf.String(), []string{
		"regressions against base.json (2):",
		"fast: pass_rate: pass rate 66.7% -> 44.4%: down 22.2 points, allowed 5.0",
		"notes (1):",
		"gone: missing: target in the baseline, not run now",
	})
}
