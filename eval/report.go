package eval

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// ReportVersion is the version of the report's JSON format that this
// package writes and reads. docs/eval.md documents it field by field; a
// change that is not a new optional field bumps it.
const ReportVersion = 1

// A Report is a run's result: every attempt, and their aggregates per
// target and per case. Its JSON form (WriteJSON, ReadReport) is stable:
// docs/eval.md documents every field of version 1.
type Report struct {
	// Version is the format's version: ReportVersion.
	Version int `json:"version"`
	// Run describes the run.
	Run RunInfo `json:"run"`
	// Targets holds one summary per target, in Run.Targets order (a
	// target that only the attempts name comes after those).
	Targets []TargetSummary `json:"targets"`
	// Cases holds one result per case and target that made at least one
	// attempt, in dataset order then target order.
	Cases []CaseResult `json:"cases"`
	// Attempts holds every attempt, ordered by case (dataset order),
	// target, then repetition.
	Attempts []Attempt `json:"attempts"`
	// Regressions are the ways the run is worse than its baseline
	// (Compare); Notes the differences that are not regressions (Notes).
	// The caller of Compare sets both, and Baseline, the name of the
	// baseline file compared with.
	Regressions []Regression `json:"regressions,omitempty"`
	Notes       []Regression `json:"notes,omitempty"`
	Baseline    string       `json:"baseline,omitempty"`
}

// A TargetSummary aggregates the attempts of one target.
type TargetSummary struct {
	// Target is the route or contract name.
	Target string `json:"target"`
	// Attempts counts the calls made; Passed those that passed (the call
	// succeeded and every check passed); PassRate is Passed/Attempts.
	Attempts int     `json:"attempts"`
	Passed   int     `json:"passed"`
	PassRate float64 `json:"pass_rate"`
	// Kinds is the pass rate per check kind (CheckKinds), only for the
	// kinds that ran: "call" over every attempt (the call succeeded, that
	// is Attempt.Code is empty), the others over the checks of that kind
	// the attempts made.
	Kinds map[string]Rate `json:"kinds"`
	// SchemaAttempts counts the attempts whose target had a schema to
	// meet, failed calls included; SchemaValid those whose answer met it;
	// SchemaValidRate is SchemaValid/SchemaAttempts. Repairs is the total
	// of repair requests the gateway made.
	SchemaAttempts  int     `json:"schema_attempts"`
	SchemaValid     int     `json:"schema_valid"`
	SchemaValidRate float64 `json:"schema_valid_rate"`
	Repairs         int     `json:"repairs"`
	// Flaky counts the cases that passed some but not all of their
	// repetitions.
	Flaky int `json:"flaky"`
	// Latency is over every attempt, failed ones included; TTFT only over
	// the attempts that streamed (zero when none did). Both are in
	// milliseconds.
	Latency Percentiles `json:"latency_ms"`
	TTFT    Percentiles `json:"ttft_ms"`
	// InputTokens, OutputTokens and CostUSD are totals over the attempts.
	InputTokens  int     `json:"input_tokens"`
	OutputTokens int     `json:"output_tokens"`
	CostUSD      float64 `json:"cost_usd"`
	// Models breaks the usage down by the upstream model that answered,
	// sorted by model; attempts that no upstream answered are left out.
	Models []ModelUsage `json:"models"`
	// Errors counts the failed calls by error code.
	Errors map[string]int `json:"errors"`
}

// A Rate is a count of passes out of a total, and their ratio (0 when
// Total is 0).
type Rate struct {
	Passed int     `json:"passed"`
	Total  int     `json:"total"`
	Rate   float64 `json:"rate"`
}

// Percentiles summarise a set of durations, in milliseconds, by the
// nearest-rank method: the p-th percentile of n sorted values is the value
// of rank ceil(p/100 × n) (1-based). All are zero for an empty set.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// A CaseResult aggregates the attempts of one case on one target.
type CaseResult struct {
	// Case is the case's ID; Target the route or contract; Line the
	// case's line in its dataset (0 if the dataset does not hold it).
	Case   string `json:"case"`
	Target string `json:"target"`
	Line   int    `json:"line"`
	// Runs counts the attempts (repetitions) made; Passed those that
	// passed; PassRate is Passed/Runs. Flaky reports whether some but not
	// all of them passed.
	Runs     int     `json:"runs"`
	Passed   int     `json:"passed"`
	PassRate float64 `json:"pass_rate"`
	Flaky    bool    `json:"flaky"`
	// Failures are the distinct failed checks over the repetitions, in
	// the order first seen: "call: upstream_timeout" for a failed call,
	// else the kind, the check's name when it has one, and its detail
	// (`json $.city: got "x", want "y"`, `contains "Paris"`).
	Failures []string `json:"failures,omitempty"`
	// LatencyP50 is the median latency of the attempts in milliseconds
	// (nearest rank).
	LatencyP50 float64 `json:"latency_p50_ms"`
}

// A ModelUsage is the usage of one upstream model by one target.
type ModelUsage struct {
	Model        string  `json:"model"`
	Attempts     int     `json:"attempts"`
	InputTokens  int     `json:"input_tokens"`
	OutputTokens int     `json:"output_tokens"`
	CostUSD      float64 `json:"cost_usd"`
}

// NewReport aggregates attempts, already checked (Attempt.Pass and Checks
// set), made by the run that info describes, for the given cases (which
// give the dataset order and line numbers). Attempts of a case the
// dataset does not hold come after the others, in the order first seen;
// attempts of a target info does not name get a summary after those it
// names. NewReport keeps its own copy of the attempts, sorted.
func NewReport(info RunInfo, cases []Case, attempts []Attempt) *Report {
	info.Started = info.Started.Round(0) // drop the monotonic reading
	info.Finished = info.Finished.Round(0)
	info.Targets = slices.Clone(info.Targets)

	caseIndex := make(map[string]int, len(cases))
	caseIDs := make([]string, 0, len(cases))
	lines := make(map[string]int, len(cases))
	for _, c := range cases {
		if _, ok := caseIndex[c.ID]; ok {
			continue
		}
		caseIndex[c.ID] = len(caseIDs)
		caseIDs = append(caseIDs, c.ID)
		lines[c.ID] = c.Line
	}
	targetIndex := make(map[string]int, len(info.Targets))
	targets := make([]string, 0, len(info.Targets))
	for _, t := range info.Targets {
		if _, ok := targetIndex[t]; ok {
			continue
		}
		targetIndex[t] = len(targets)
		targets = append(targets, t)
	}
	for _, a := range attempts {
		if _, ok := caseIndex[a.Case]; !ok {
			caseIndex[a.Case] = len(caseIDs)
			caseIDs = append(caseIDs, a.Case)
		}
		if _, ok := targetIndex[a.Target]; !ok {
			targetIndex[a.Target] = len(targets)
			targets = append(targets, a.Target)
		}
	}

	sorted := make([]Attempt, len(attempts))
	for i, a := range attempts {
		if len(a.Checks) == 0 {
			a.Checks = nil
		} else {
			a.Checks = slices.Clone(a.Checks)
		}
		sorted[i] = a
	}
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if ca, cb := caseIndex[a.Case], caseIndex[b.Case]; ca != cb {
			return ca < cb
		}
		if ta, tb := targetIndex[a.Target], targetIndex[b.Target]; ta != tb {
			return ta < tb
		}
		return a.Rep < b.Rep
	})

	r := &Report{
		Version:  ReportVersion,
		Run:      info,
		Targets:  make([]TargetSummary, 0, len(targets)),
		Cases:    []CaseResult{},
		Attempts: sorted,
	}

	// Case results: sorted attempts come grouped by case then target.
	for i := 0; i < len(sorted); {
		j := i
		for j < len(sorted) && sorted[j].Case == sorted[i].Case && sorted[j].Target == sorted[i].Target {
			j++
		}
		r.Cases = append(r.Cases, caseResult(sorted[i:j], lines[sorted[i].Case]))
		i = j
	}

	byTarget := make(map[string][]Attempt, len(targets))
	for _, a := range sorted {
		byTarget[a.Target] = append(byTarget[a.Target], a)
	}
	for _, t := range targets {
		s := targetSummary(t, byTarget[t])
		for _, c := range r.Cases {
			if c.Target == t && c.Flaky {
				s.Flaky++
			}
		}
		r.Targets = append(r.Targets, s)
	}
	return r
}

func caseResult(as []Attempt, line int) CaseResult {
	c := CaseResult{Case: as[0].Case, Target: as[0].Target, Line: line, Runs: len(as)}
	seen := map[string]bool{}
	lat := make([]float64, 0, len(as))
	for _, a := range as {
		lat = append(lat, durationMS(a.Latency))
		if a.Pass {
			c.Passed++
			continue
		}
		for _, f := range attemptFailures(a) {
			if !seen[f] {
				seen[f] = true
				c.Failures = append(c.Failures, f)
			}
		}
	}
	c.PassRate = ratio(c.Passed, c.Runs)
	c.Flaky = c.Passed > 0 && c.Passed < c.Runs
	c.LatencyP50 = percentiles(lat).P50
	return c
}

// attemptFailures describes what failed in a: the call, or each failed
// check.
func attemptFailures(a Attempt) []string {
	var out []string
	if a.Code != "" {
		out = append(out, "call: "+a.Code)
	}
	for _, ch := range a.Checks {
		if ch.Pass || (ch.Kind == "call" && a.Code != "") {
			continue
		}
		out = append(out, checkFailure(ch))
	}
	return out
}

func checkFailure(ch Check) string {
	s := ch.Kind
	switch {
	case ch.Name == "":
	case ch.Kind == "contains" || ch.Kind == "not_contains":
		s += " " + strconv.Quote(ch.Name)
	default:
		s += " " + ch.Name
	}
	if ch.Detail != "" {
		s += ": " + ch.Detail
	}
	return s
}

func targetSummary(target string, as []Attempt) TargetSummary {
	s := TargetSummary{
		Target:   target,
		Attempts: len(as),
		Kinds:    map[string]Rate{},
		Models:   []ModelUsage{},
		Errors:   map[string]int{},
	}
	var lat, ttft []float64
	models := map[string]*ModelUsage{}
	kindCount := func(kind string, pass bool) {
		k := s.Kinds[kind]
		k.Total++
		if pass {
			k.Passed++
		}
		s.Kinds[kind] = k
	}
	for _, a := range as {
		if a.Pass {
			s.Passed++
		}
		kindCount("call", a.Code == "")
		for _, ch := range a.Checks {
			if ch.Kind != "call" {
				kindCount(ch.Kind, ch.Pass)
			}
		}
		if a.Code != "" {
			s.Errors[a.Code]++
		}
		if a.Schema {
			s.SchemaAttempts++
			if a.Valid {
				s.SchemaValid++
			}
		}
		s.Repairs += a.Repairs
		lat = append(lat, durationMS(a.Latency))
		if a.TTFT > 0 {
			ttft = append(ttft, durationMS(a.TTFT))
		}
		s.InputTokens += a.InputTokens
		s.OutputTokens += a.OutputTokens
		s.CostUSD += a.CostUSD
		if a.Model != "" {
			m := models[a.Model]
			if m == nil {
				m = &ModelUsage{Model: a.Model}
				models[a.Model] = m
			}
			m.Attempts++
			m.InputTokens += a.InputTokens
			m.OutputTokens += a.OutputTokens
			m.CostUSD += a.CostUSD
		}
	}
	for kind, k := range s.Kinds {
		k.Rate = ratio(k.Passed, k.Total)
		s.Kinds[kind] = k
	}
	s.PassRate = ratio(s.Passed, s.Attempts)
	s.SchemaValidRate = ratio(s.SchemaValid, s.SchemaAttempts)
	s.Latency = percentiles(lat)
	s.TTFT = percentiles(ttft)
	for _, m := range models {
		s.Models = append(s.Models, *m)
	}
	slices.SortFunc(s.Models, func(a, b ModelUsage) int { return strings.Compare(a.Model, b.Model) })
	return s
}

func ratio(n, total int) float64 {
	if total == 0 {
		return 0
	}
	return float64(n) / float64(total)
}

func durationMS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// percentiles returns the nearest-rank percentiles of vs, which it sorts.
func percentiles(vs []float64) Percentiles {
	if len(vs) == 0 {
		return Percentiles{}
	}
	slices.Sort(vs)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p / 100 * float64(len(vs))))
		return vs[min(max(i, 1), len(vs))-1]
	}
	return Percentiles{P50: rank(50), P95: rank(95), P99: rank(99), Max: vs[len(vs)-1]}
}

// WriteJSON writes r as indented JSON, fields in a stable order (struct
// order; map keys sorted), ending with a newline.
func (r *Report) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	b = append(b, '\n')
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// ReadReport reads a report that WriteJSON wrote. It refuses a report of
// a version other than ReportVersion, and anything that is not a report.
func ReadReport(rd io.Reader) (*Report, error) {
	b, err := io.ReadAll(rd)
	if err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	var head struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	if head.Version == nil {
		return nil, errors.New("read report: no version: not a sluice eval report")
	}
	if *head.Version != ReportVersion {
		return nil, fmt.Errorf("read report: version %d is not supported: this sluice reads version %d", *head.Version, ReportVersion)
	}
	var r Report
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	return &r, nil
}

// maxSummaryFailures is how many failing cases Summary lists.
const maxSummaryFailures = 10

// Summary writes a short plain-text summary of r for a terminal, in ASCII
// columns without colour: the run, then per target the pass rate, schema
// validity, flaky cases, latency percentiles, tokens, cost and errors
// (with two or more targets, as one table with a column per target,
// followed by the pass rate of each case per target, cases that differ
// between targets marked with "*"), then the failing cases (at most ten),
// the regressions and the notes.
func (r *Report) Summary(w io.Writer) {
	var b strings.Builder
	r.summaryHeader(&b)
	if len(r.Targets) == 1 {
		r.summaryOne(&b, r.Targets[0])
	} else if len(r.Targets) > 1 {
		r.summaryTable(&b)
	}
	r.summaryFailures(&b)
	if len(r.Regressions) > 0 {
		fmt.Fprintf(&b, "\nregressions against %s (%d):\n", orNone(r.Baseline, "the baseline"), len(r.Regressions))
		for _, g := range r.Regressions {
			fmt.Fprintf(&b, "  %s\n", g)
		}
	} else if r.Baseline != "" {
		fmt.Fprintf(&b, "\nno regression against %s\n", r.Baseline)
	}
	if len(r.Notes) > 0 {
		fmt.Fprintf(&b, "\nnotes (%d):\n", len(r.Notes))
		for _, g := range r.Notes {
			fmt.Fprintf(&b, "  %s\n", g)
		}
	}
	// Empty last columns leave trailing blanks; a terminal needs none.
	lines := strings.Split(b.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	io.WriteString(w, strings.Join(lines, "\n"))
}

// plural returns n and word, with an "s" unless n is 1.
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

func orNone(s, none string) string {
	if s == "" {
		return none
	}
	return s
}

func (r *Report) summaryHeader(b *strings.Builder) {
	run := r.Run
	kind := orNone(run.Kind, "target")
	fmt.Fprintf(b, "sluice eval: dataset %s, %s %s\n", orNone(run.Dataset, "-"), kind, strings.Join(run.Targets, ", "))
	fmt.Fprintf(b, "%s x %s x %s: %d of %d attempts made", plural(run.Cases, "case"), plural(len(run.Targets), "target"), plural(run.Repeat, "repeat"), len(r.Attempts), run.Planned)
	if !run.Started.IsZero() && !run.Finished.IsZero() {
		fmt.Fprintf(b, " in %s", run.Finished.Sub(run.Started).Round(time.Millisecond))
	}
	b.WriteString("\n")
	if run.Gateway != "" {
		fmt.Fprintf(b, "gateway %s\n", run.Gateway)
	}
	switch run.Stopped {
	case "":
	case "max_cost":
		fmt.Fprintf(b, "STOPPED: the cost reached --max-cost $%.4f\n", run.MaxCostUSD)
	default:
		fmt.Fprintf(b, "STOPPED: %s\n", run.Stopped)
	}
}

// summaryMetrics are the rows of a target's summary, as label and value.
func summaryMetrics(s TargetSummary) [][2]string {
	rows := [][2]string{
		{"pass rate", fmt.Sprintf("%d/%d %s", s.Passed, s.Attempts, pct(s.PassRate))},
	}
	if s.SchemaAttempts > 0 {
		rows = append(rows, [2]string{"schema valid", fmt.Sprintf("%d/%d %s, %s", s.SchemaValid, s.SchemaAttempts, pct(s.SchemaValidRate), plural(s.Repairs, "repair"))})
	} else {
		rows = append(rows, [2]string{"schema valid", "-"})
	}
	rows = append(rows,
		[2]string{"flaky cases", strconv.Itoa(s.Flaky)},
		[2]string{"latency p50/p95/p99", fmt.Sprintf("%s / %s / %s ms", ms(s.Latency.P50), ms(s.Latency.P95), ms(s.Latency.P99))},
	)
	if s.TTFT != (Percentiles{}) {
		rows = append(rows, [2]string{"ttft p50/p95/p99", fmt.Sprintf("%s / %s / %s ms", ms(s.TTFT.P50), ms(s.TTFT.P95), ms(s.TTFT.P99))})
	} else {
		rows = append(rows, [2]string{"ttft p50/p95/p99", "-"})
	}
	rows = append(rows,
		[2]string{"tokens in/out", fmt.Sprintf("%d / %d", s.InputTokens, s.OutputTokens)},
		[2]string{"cost", usd(s.CostUSD)},
		[2]string{"errors", errorsText(s.Errors)},
	)
	return rows
}

func (r *Report) summaryOne(b *strings.Builder, s TargetSummary) {
	fmt.Fprintf(b, "\n%s\n", s.Target)
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	for _, row := range summaryMetrics(s) {
		fmt.Fprintf(tw, "  %s\t%s\n", row[0], row[1])
	}
	tw.Flush()
}

func (r *Report) summaryTable(b *strings.Builder) {
	b.WriteString("\n")
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	tw.Write([]byte("metric"))
	for _, s := range r.Targets {
		fmt.Fprintf(tw, "\t%s", s.Target)
	}
	tw.Write([]byte("\n"))
	cols := make([][][2]string, len(r.Targets))
	for i, s := range r.Targets {
		cols[i] = summaryMetrics(s)
	}
	for row := range cols[0] {
		tw.Write([]byte(cols[0][row][0]))
		for i := range cols {
			fmt.Fprintf(tw, "\t%s", cols[i][row][1])
		}
		tw.Write([]byte("\n"))
	}
	tw.Flush()

	b.WriteString("\n")
	tw = tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	tw.Write([]byte("case"))
	for _, s := range r.Targets {
		fmt.Fprintf(tw, "\t%s", s.Target)
	}
	tw.Write([]byte("\t\n"))
	differ := 0
	for _, row := range r.caseRows() {
		tw.Write([]byte(row.id))
		for _, c := range row.results {
			if c == nil {
				tw.Write([]byte("\t-"))
				continue
			}
			fmt.Fprintf(tw, "\t%d/%d %s", c.Passed, c.Runs, pct(c.PassRate))
		}
		if row.differ {
			differ++
			tw.Write([]byte("\t*"))
		} else {
			tw.Write([]byte("\t"))
		}
		tw.Write([]byte("\n"))
	}
	tw.Flush()
	fmt.Fprintf(b, "* %s whose pass rate differs between targets\n", plural(differ, "case"))
}

// A caseRow is one case's results across the report's targets, nil where
// a target has none.
type caseRow struct {
	id      string
	line    int
	results []*CaseResult
	differ  bool
}

// caseRows returns a row per case, in report order; a case differs when
// its pass rate is not the same on every target (a target that did not
// run it counts as different).
func (r *Report) caseRows() []caseRow {
	tIndex := make(map[string]int, len(r.Targets))
	for i, s := range r.Targets {
		tIndex[s.Target] = i
	}
	var rows []caseRow
	rowIndex := map[string]int{}
	for i := range r.Cases {
		c := &r.Cases[i]
		ri, ok := rowIndex[c.Case]
		if !ok {
			ri = len(rows)
			rowIndex[c.Case] = ri
			rows = append(rows, caseRow{id: c.Case, line: c.Line, results: make([]*CaseResult, len(r.Targets))})
		}
		if ti, ok := tIndex[c.Target]; ok {
			rows[ri].results[ti] = c
		}
	}
	for i := range rows {
		if len(rows[i].results) == 0 {
			continue // a report read back with cases but no targets
		}
		first := rows[i].results[0]
		for _, c := range rows[i].results[1:] {
			if (c == nil) != (first == nil) || (c != nil && c.PassRate != first.PassRate) {
				rows[i].differ = true
			}
		}
	}
	return rows
}

// failing returns the case results that did not pass every repetition.
func (r *Report) failing() []CaseResult {
	var out []CaseResult
	for _, c := range r.Cases {
		if c.Passed < c.Runs {
			out = append(out, c)
		}
	}
	return out
}

func (r *Report) summaryFailures(b *strings.Builder) {
	failing := r.failing()
	if len(failing) == 0 {
		b.WriteString("\nno failing cases\n")
		return
	}
	fmt.Fprintf(b, "\nfailing cases (%d):\n", len(failing))
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	for _, c := range failing[:min(len(failing), maxSummaryFailures)] {
		first := ""
		if len(c.Failures) > 0 {
			first = c.Failures[0]
			if len(c.Failures) > 1 {
				first += fmt.Sprintf(" (+%d more)", len(c.Failures)-1)
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d/%d\tline %d\t%s\n", c.Case, c.Target, c.Passed, c.Runs, c.Line, first)
	}
	tw.Flush()
	if n := len(failing) - maxSummaryFailures; n > 0 {
		fmt.Fprintf(b, "  and %d more\n", n)
	}
}

func pct(f float64) string { return strconv.FormatFloat(f*100, 'f', 1, 64) + "%" }

func ms(f float64) string {
	if f >= 100 {
		return strconv.FormatFloat(f, 'f', 0, 64)
	}
	return strconv.FormatFloat(f, 'f', 1, 64)
}

func usd(f float64) string { return "$" + strconv.FormatFloat(f, 'f', 4, 64) }

func errorsText(m map[string]int) string {
	if len(m) == 0 {
		return "-"
	}
	codes := make([]string, 0, len(m))
	for c := range m {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = fmt.Sprintf("%s %d", c, m[c])
	}
	return strings.Join(parts, ", ")
}
