package eval_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sluice-gw/sluice/eval"
)

// baselineReport is the fixture's run as it went before: "weather-json"
// passed every repetition on "fast", and a third target "gone" ran too.
func baselineReport() *eval.Report {
	info, cases, as := reportFixture()
	info.Targets = append(info.Targets, "gone")
	for i := range as {
		a := &as[i]
		if a.Case == "weather-json" && a.Target == "fast" {
			a.Pass, a.Code = true, ""
			a.Checks = []eval.Check{{Kind: "call", Pass: true}}
		}
	}
	as = append(as, eval.Attempt{Case: "capital", Target: "gone", Pass: true})
	return eval.NewReport(info, cases, as)
}

// comparedReport is the fixture's report compared with baselineReport, as
// the command line sets it.
func comparedReport() *eval.Report {
	base, cur := baselineReport(), fixtureReport()
	cur.Baseline = "base.json"
	cur.Regressions = eval.Compare(base, cur, eval.Thresholds{})
	cur.Notes = eval.Notes(base, cur)
	return cur
}

func TestCompareWithItself(t *testing.T) {
	r := fixtureReport()
	if got := eval.Compare(r, r, eval.Thresholds{}); len(got) != 0 {
		t.Errorf("Compare(r, r) = %v, want none", got)
	}
	strict := eval.Thresholds{PassRateDrop: -1, LatencyIncrease: -1, CostIncrease: -1}
	if got := eval.Compare(r, r, strict); len(got) != 0 {
		t.Errorf("Compare(r, r) with zero tolerance = %v, want none", got)
	}
	if got := eval.Notes(r, r); len(got) != 0 {
		t.Errorf("Notes(r, r) = %v, want none", got)
	}
}

func TestCompareNewFailure(t *testing.T) {
	got := comparedReport().Regressions
	want := []eval.Regression{
		{Target: "fast", Kind: "pass_rate"},
		{Target: "fast", Case: "weather-json", Kind: "new_failure"},
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(eval.Regression{}, "Detail")); diff != "" {
		t.Fatalf("regressions (-want +got):\n%s", diff)
	}
	// "refuse" failed in the baseline too: not new.
	for _, d := range []struct{ got, want string }{
		{got[0].Detail, "pass rate 66.7% -> 44.4%: down 22.2 points, allowed 5.0"},
		{got[1].Detail, `passed 3/3 in the baseline, 1/3 now: json $.city: got "Lyon", want "Paris"; call: upstream_timeout`},
	} {
		if d.got != d.want {
			t.Errorf("detail %q, want %q", d.got, d.want)
		}
	}
}

func TestNotes(t *testing.T) {
	base := baselineReport()
	cur := fixtureTarget("fast")
	// The run stopped before "refuse".
	var kept []eval.Attempt
	for _, a := range cur.Attempts {
		if a.Case != "refuse" {
			kept = append(kept, a)
		}
	}
	_, cases, _ := reportFixture()
	cur = eval.NewReport(cur.Run, cases, kept)
	want := []eval.Regression{
		{Target: "smart", Kind: "missing", Detail: "target in the baseline, not run now"},
		{Target: "gone", Kind: "missing", Detail: "target in the baseline, not run now"},
		{Target: "fast", Case: "refuse", Kind: "missing", Detail: "case in the baseline, not run now"},
	}
	if diff := cmp.Diff(want, eval.Notes(base, cur)); diff != "" {
		t.Errorf("notes (-want +got):\n%s", diff)
	}
	for _, g := range eval.Compare(base, cur, eval.Thresholds{}) {
		if g.Kind == "missing" || g.Target != "fast" {
			t.Errorf("Compare reported %v", g)
		}
	}
}

// targetReport builds a one-target report by hand: its pass rate, p95 latency
// and cost over a number of attempts.
func targetReport(passRate, p95, cost float64, attempts int) *eval.Report {
	return &eval.Report{Version: 1, Targets: []eval.TargetSummary{{
		Target: "t", Attempts: attempts, Passed: int(passRate * float64(attempts)), PassRate: passRate,
		Latency: eval.Percentiles{P95: p95}, CostUSD: cost,
	}}}
}

func TestCompareThresholds(t *testing.T) {
	base := targetReport(0.95, 200, 1, 100)
	for _, tc := range []struct {
		name string
		cur  *eval.Report
		th   eval.Thresholds
		want []string // kinds
	}{
		{"same", targetReport(0.95, 200, 1, 100), eval.Thresholds{}, nil},
		{"pass rate drop at the default", targetReport(0.90, 200, 1, 100), eval.Thresholds{}, nil},
		{"pass rate drop beyond the default", targetReport(0.89, 200, 1, 100), eval.Thresholds{}, []string{"pass_rate"}},
		{"pass rate drop within a wider threshold", targetReport(0.86, 200, 1, 100), eval.Thresholds{PassRateDrop: 0.1}, nil},
		{"pass rate drop beyond a wider threshold", targetReport(0.84, 200, 1, 100), eval.Thresholds{PassRateDrop: 0.1}, []string{"pass_rate"}},
		{"any pass rate drop with no tolerance", targetReport(0.94, 200, 1, 100), eval.Thresholds{PassRateDrop: -1}, []string{"pass_rate"}},
		{"pass rate rise", targetReport(1, 200, 1, 100), eval.Thresholds{PassRateDrop: -1}, nil},
		{"latency up 25%", targetReport(0.95, 250, 1, 100), eval.Thresholds{}, nil},
		{"latency up 26%", targetReport(0.95, 252, 1, 100), eval.Thresholds{}, []string{"latency"}},
		{"latency up 26% within 50%", targetReport(0.95, 252, 1, 100), eval.Thresholds{LatencyIncrease: 0.5}, nil},
		{"latency down", targetReport(0.95, 100, 1, 100), eval.Thresholds{LatencyIncrease: -1}, nil},
		{"cost up 25%", targetReport(0.95, 200, 1.25, 100), eval.Thresholds{}, nil},
		{"cost up 30%", targetReport(0.95, 200, 1.3, 100), eval.Thresholds{}, []string{"cost"}},
		{"cost doubled over twice the attempts", targetReport(0.95, 200, 2, 200), eval.Thresholds{}, nil},
		{"cost up 30% within 50%", targetReport(0.95, 200, 1.3, 100), eval.Thresholds{CostIncrease: 0.5}, nil},
		{"everything worse", targetReport(0.5, 400, 3, 100), eval.Thresholds{}, []string{"pass_rate", "latency", "cost"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, g := range eval.Compare(base, tc.cur, tc.th) {
				got = append(got, g.Kind)
				if g.Target != "t" || g.Case != "" || g.Detail == "" {
					t.Errorf("regression %+v", g)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("kinds (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCompareDetails(t *testing.T) {
	got := eval.Compare(targetReport(0.95, 200, 1, 100), targetReport(0.5, 400, 3, 100), eval.Thresholds{})
	want := []string{
		"t: pass_rate: pass rate 95.0% -> 50.0%: down 45.0 points, allowed 5.0",
		"t: latency: p95 latency 200 ms -> 400 ms: up 100.0%, allowed 25.0%",
		"t: cost: cost per attempt $0.010000 -> $0.030000: up 200.0%, allowed 25.0%",
	}
	var lines []string
	for _, g := range got {
		lines = append(lines, g.String())
	}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestDefaultThresholds(t *testing.T) {
	want := eval.Thresholds{PassRateDrop: 0.05, LatencyIncrease: 0.25, LatencyMinMS: 50, CostIncrease: 0.25}
	if got := eval.DefaultThresholds(); got != want {
		t.Fatalf("DefaultThresholds() = %+v, want %+v", got, want)
	}
	// A zero field takes its default, whichever others are set.
	base := targetReport(0.95, 200, 1, 100)
	for _, cur := range []*eval.Report{
		targetReport(0.90, 250, 1.25, 100), targetReport(0.89, 250, 1.25, 100),
		targetReport(0.90, 251, 1.25, 100), targetReport(0.90, 250, 1.26, 100),
	} {
		want := eval.Compare(base, cur, eval.DefaultThresholds())
		for _, th := range []eval.Thresholds{{}, {PassRateDrop: 0.05}, {LatencyIncrease: 0.25}, {CostIncrease: 0.25}} {
			if got := eval.Compare(base, cur, th); !cmp.Equal(got, want) {
				t.Errorf("Compare with %+v = %v, with the defaults %v", th, got, want)
			}
		}
		if len(want) > 1 {
			t.Errorf("more than one regression: %v", want)
		}
	}
	if n := len(eval.Compare(base, targetReport(0.90, 250, 1.25, 100), eval.Thresholds{})); n != 0 {
		t.Errorf("changes of exactly the defaults gave %d regressions", n)
	}
}

// Only targets both runs made are compared; a target with no attempts
// has no rates to compare.
func TestCompareSkipsUnmatchedTargets(t *testing.T) {
	base := targetReport(1, 100, 1, 10)
	cur := targetReport(0, 1000, 10, 10)
	cur.Targets[0].Target = "other"
	if got := eval.Compare(base, cur, eval.Thresholds{}); len(got) != 0 {
		t.Errorf("Compare across different targets = %v", got)
	}
	if got := eval.Compare(base, targetReport(0, 0, 0, 0), eval.Thresholds{}); len(got) != 0 {
		t.Errorf("Compare with a target that made no attempt = %v", got)
	}
	if got := eval.Notes(base, cur); len(got) != 1 || !strings.Contains(got[0].Detail, "not run now") {
		t.Errorf("Notes = %v", got)
	}
}
