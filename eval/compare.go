package eval

import (
	"fmt"
	"strings"
)

// Thresholds say how much worse a run may be than its baseline before
// Compare calls it a regression. A zero field takes its default; a
// negative one means zero: no change for the worse is allowed.
type Thresholds struct {
	// PassRateDrop is the largest drop of a target's pass rate allowed,
	// absolute (0.05: from 0.95 to 0.90). Default 0.05.
	PassRateDrop float64
	// LatencyIncrease is the largest rise of a target's p95 latency
	// allowed, relative to the baseline's (0.25: 25% slower). Default 0.25.
	LatencyIncrease float64
	// LatencyMinMS is the smallest rise of p95 latency, in milliseconds,
	// that can be a regression, whatever its relative size: a rise from
	// 0.1 to 0.2 ms is noise, not a slower model. Default 50.
	LatencyMinMS float64
	// CostIncrease is the largest rise of a target's mean cost per attempt
	// allowed, relative to the baseline's. Default 0.25.
	CostIncrease float64
}

// DefaultThresholds returns the thresholds a zero Thresholds field takes:
// a pass-rate drop of 0.05, and rises of 25% of p95 latency (and at least
// 50 ms) and of cost.
func DefaultThresholds() Thresholds {
	return Thresholds{PassRateDrop: 0.05, LatencyIncrease: 0.25, LatencyMinMS: 50, CostIncrease: 0.25}
}

// withDefaults returns th with its zero fields set to the defaults and its
// negative ones to zero.
func (th Thresholds) withDefaults() Thresholds {
	fix := func(v, def float64) float64 {
		switch {
		case v == 0:
			return def
		case v < 0:
			return 0
		}
		return v
	}
	def := DefaultThresholds()
	return Thresholds{
		PassRateDrop:    fix(th.PassRateDrop, def.PassRateDrop),
		LatencyIncrease: fix(th.LatencyIncrease, def.LatencyIncrease),
		LatencyMinMS:    fix(th.LatencyMinMS, def.LatencyMinMS),
		CostIncrease:    fix(th.CostIncrease, def.CostIncrease),
	}
}

// A Regression is one way a run is worse than its baseline (Compare), or,
// in Report.Notes, one difference that is not a regression (Notes).
type Regression struct {
	// Target is the route or contract; Case the case's ID, empty for a
	// regression of the whole target.
	Target string `json:"target"`
	Case   string `json:"case,omitempty"`
	// Kind is, for a regression, "pass_rate" (the target's pass rate
	// dropped by more than Thresholds.PassRateDrop), "new_failure" (a case
	// that passed every repetition in the baseline failed some now),
	// "latency" (the target's p95 latency rose by more than
	// Thresholds.LatencyIncrease) or "cost" (its mean cost per attempt
	// rose by more than Thresholds.CostIncrease); for a note, "missing"
	// (a target or a case of the baseline that the run did not make).
	Kind string `json:"kind"`
	// Detail says by how much, in a few words.
	Detail string `json:"detail"`
}

// String returns the regression on one line: target, case, kind, detail.
func (g Regression) String() string {
	s := g.Target
	if g.Case != "" {
		s += " " + g.Case
	}
	return s + ": " + g.Kind + ": " + g.Detail
}

// compareEpsilon is the slack of Compare's float comparisons, so that a
// change of exactly the threshold is no regression.
const compareEpsilon = 1e-9

// Compare returns the ways cur is worse than base, per target that both
// ran (zero Thresholds fields take the defaults): its pass rate, its p95
// latency and its mean cost per attempt, and each case that passed every
// repetition in base and fails some in cur. Regressions come per target
// in cur's order: pass_rate, latency, cost, then new failures in case
// order. A target or a case of base that cur did not run is no
// regression; Notes reports it.
func Compare(base, cur *Report, th Thresholds) []Regression {
	th = th.withDefaults()
	baseTargets := make(map[string]TargetSummary, len(base.Targets))
	for _, s := range base.Targets {
		baseTargets[s.Target] = s
	}
	baseCases := make(map[[2]string]CaseResult, len(base.Cases))
	for _, c := range base.Cases {
		baseCases[[2]string{c.Target, c.Case}] = c
	}
	var out []Regression
	for _, s := range cur.Targets {
		b, ok := baseTargets[s.Target]
		if !ok || s.Attempts == 0 || b.Attempts == 0 {
			continue
		}
		if drop := b.PassRate - s.PassRate; drop > th.PassRateDrop+compareEpsilon {
			out = append(out, Regression{Target: s.Target, Kind: "pass_rate", Detail: fmt.Sprintf(
				"pass rate %s -> %s: down %s points, allowed %s",
				pct(b.PassRate), pct(s.PassRate), points(drop), points(th.PassRateDrop))})
		}
		if rise, ok := relativeRise(b.Latency.P95, s.Latency.P95); ok && rise > th.LatencyIncrease+compareEpsilon &&
			s.Latency.P95-b.Latency.P95 > th.LatencyMinMS+compareEpsilon {
			out = append(out, Regression{Target: s.Target, Kind: "latency", Detail: fmt.Sprintf(
				"p95 latency %s ms -> %s ms: up %s, allowed %s",
				ms(b.Latency.P95), ms(s.Latency.P95), pct(rise), pct(th.LatencyIncrease))})
		}
		bc, sc := b.CostUSD/float64(b.Attempts), s.CostUSD/float64(s.Attempts)
		if rise, ok := relativeRise(bc, sc); ok && rise > th.CostIncrease+compareEpsilon {
			out = append(out, Regression{Target: s.Target, Kind: "cost", Detail: fmt.Sprintf(
				"cost per attempt %s -> %s: up %s, allowed %s",
				usdFine(bc), usdFine(sc), pct(rise), pct(th.CostIncrease))})
		}
		for _, c := range cur.Cases {
			if c.Target != s.Target || c.Passed == c.Runs {
				continue
			}
			bc, ok := baseCases[[2]string{c.Target, c.Case}]
			if !ok || bc.Runs == 0 || bc.Passed < bc.Runs {
				continue
			}
			detail := fmt.Sprintf("passed %d/%d in the baseline, %d/%d now", bc.Passed, bc.Runs, c.Passed, c.Runs)
			if len(c.Failures) > 0 {
				detail += ": " + strings.Join(c.Failures, "; ")
			}
			out = append(out, Regression{Target: s.Target, Case: c.Case, Kind: "new_failure", Detail: detail})
		}
	}
	return out
}

// Notes returns the differences between cur and base that are no
// regression, of kind "missing": each target of base that cur did not run
// (Case empty), and each case a target of both ran in base and not in cur
// (a dataset that lost the case, or a run stopped early).
func Notes(base, cur *Report) []Regression {
	curTargets := make(map[string]bool, len(cur.Targets))
	for _, s := range cur.Targets {
		curTargets[s.Target] = true
	}
	curCases := make(map[[2]string]bool, len(cur.Cases))
	for _, c := range cur.Cases {
		curCases[[2]string{c.Target, c.Case}] = true
	}
	var out []Regression
	for _, s := range base.Targets {
		if !curTargets[s.Target] {
			out = append(out, Regression{Target: s.Target, Kind: "missing", Detail: "target in the baseline, not run now"})
		}
	}
	for _, c := range base.Cases {
		if curTargets[c.Target] && !curCases[[2]string{c.Target, c.Case}] {
			out = append(out, Regression{Target: c.Target, Case: c.Case, Kind: "missing", Detail: "case in the baseline, not run now"})
		}
	}
	return out
}

// relativeRise returns (cur-base)/base, and false when base is not
// positive (no ratio to compare).
func relativeRise(base, cur float64) (float64, bool) {
	if base <= 0 {
		return 0, false
	}
	return (cur - base) / base, true
}

func points(f float64) string { return fmt.Sprintf("%.1f", f*100) }

func usdFine(f float64) string { return fmt.Sprintf("$%.6f", f) }
