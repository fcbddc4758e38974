package eval

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// WriteHTML writes r as one self-contained HTML page: inline CSS, a small
// inline script, and charts drawn here as inline SVG; it loads nothing
// (its Content-Security-Policy forbids it). The page shows the run, a
// card per target, a latency histogram per target, the pass rate of each
// case per target, the cost per target and model, a side-by-side table
// when there are several targets, the cases with their failures, and the
// regressions and notes when there are any. The report's JSON, as
// WriteJSON writes it, is embedded in
// <script type="application/json" id="report-data">.
//
// Each chart is an <svg> with role="img", an aria-label, a <title>, the id
// "chart-latency", "chart-pass-rate" or "chart-cost", and a data-points
// attribute that counts the bars it draws (histogram bins, case results,
// target and model pairs). Every bar carries its value as text, so the
// page reads without colour.
func WriteHTML(w io.Writer, r *Report) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	// json.Marshal escapes '<' already; this keeps "</script>" out of the
	// page even if that ever changes.
	embedded := strings.ReplaceAll(string(data), "</", `<\/`)
	p := htmlPage{
		R:        r,
		Data:     template.JS(embedded),
		Latency:  latencyChart(r),
		PassRate: passRateChart(r),
		Cost:     costChart(r),
		Failing:  len(r.failing()),
	}
	if !r.Run.Started.IsZero() && !r.Run.Finished.IsZero() {
		p.Duration = r.Run.Finished.Sub(r.Run.Started).Round(time.Millisecond).String()
	}
	for _, s := range r.Targets {
		p.Cards = append(p.Cards, htmlCard{S: s, Metrics: summaryMetrics(s), Kinds: kindRows(s)})
	}
	if len(r.Targets) > 1 {
		p.Side = &htmlSide{}
		for _, s := range r.Targets {
			p.Side.Targets = append(p.Side.Targets, s.Target)
		}
		for i, row := range summaryMetrics(r.Targets[0]) {
			mr := htmlMetricRow{Label: row[0]}
			for _, s := range r.Targets {
				mr.Values = append(mr.Values, summaryMetrics(s)[i][1])
			}
			p.Side.Metrics = append(p.Side.Metrics, mr)
		}
		for _, row := range r.caseRows() {
			cr := htmlSideCase{Case: row.id, Differ: row.differ}
			for _, c := range row.results {
				if c == nil {
					cr.Values = append(cr.Values, "-")
					continue
				}
				cr.Values = append(cr.Values, fmt.Sprintf("%d/%d %s", c.Passed, c.Runs, pct(c.PassRate)))
			}
			if row.differ {
				p.Side.Differ++
			}
			p.Side.Cases = append(p.Side.Cases, cr)
		}
	}
	if err := reportTemplate.Execute(w, p); err != nil {
		return fmt.Errorf("write html report: %w", err)
	}
	return nil
}

type htmlPage struct {
	R                       *Report
	Data                    template.JS
	Duration                string
	Cards                   []htmlCard
	Latency, PassRate, Cost svgChart
	Side                    *htmlSide
	Failing                 int
}

type htmlCard struct {
	S       TargetSummary
	Metrics [][2]string
	Kinds   []string
}

type htmlSide struct {
	Targets []string
	Metrics []htmlMetricRow
	Cases   []htmlSideCase
	Differ  int
}

type htmlMetricRow struct {
	Label  string
	Values []string
}

type htmlSideCase struct {
	Case   string
	Values []string
	Differ bool
}

func kindRows(s TargetSummary) []string {
	var out []string
	for _, k := range CheckKinds {
		if r, ok := s.Kinds[k]; ok {
			out = append(out, fmt.Sprintf("%s %d/%d %s", k, r.Passed, r.Total, pct(r.Rate)))
		}
	}
	var other []string // kinds this version does not know, if any
	for k := range s.Kinds {
		if !slices.Contains(CheckKinds, k) {
			other = append(other, k)
		}
	}
	slices.Sort(other)
	for _, k := range other {
		r := s.Kinds[k]
		out = append(out, fmt.Sprintf("%s %d/%d %s", k, r.Passed, r.Total, pct(r.Rate)))
	}
	return out
}

// An svgChart is a chart ready to draw: bars (each counted in Points),
// texts and lines, in a Width × Height view box.
type svgChart struct {
	ID, Label     string
	Width, Height float64
	Bars          []svgRect
	Tracks        []svgRect
	Texts         []svgText
	Lines         []svgLine
	Empty         string
}

// Points returns how many bars the chart draws.
func (c svgChart) Points() int { return len(c.Bars) }

type svgRect struct {
	X, Y, W, H float64
	Class      string
	Title      string
}

type svgText struct {
	X, Y   float64
	Anchor string
	Class  string
	Text   string
}

type svgLine struct{ X1, Y1, X2, Y2 float64 }

const (
	chartWidth = 760.0
	labelChars = 34
)

// latencyChart draws a histogram of the attempts' latency per target, on
// shared bins: about ten, of a 1, 2 or 5 × 10^k ms width, from 0 to the
// slowest attempt of the run (the last bin includes its upper edge).
func latencyChart(r *Report) svgChart {
	c := svgChart{ID: "chart-latency", Width: chartWidth}
	maxMS := 0.0
	lat := make(map[string][]float64)
	for _, a := range r.Attempts {
		v := durationMS(a.Latency)
		lat[a.Target] = append(lat[a.Target], v)
		maxMS = math.Max(maxMS, v)
	}
	step, bins := histogramBins(maxMS)
	counts := make([][]int, len(r.Targets))
	peak := 1
	for i, s := range r.Targets {
		counts[i] = make([]int, bins)
		for _, v := range lat[s.Target] {
			b := min(int(v/step), bins-1)
			counts[i][b]++
			peak = max(peak, counts[i][b])
		}
	}
	const (
		left, right  = 50.0, 20.0
		titleH       = 36.0 // the panel's title, then room for count labels
		plotH        = 100.0
		axisH        = 34.0
		panelH       = titleH + plotH + axisH
		gap          = 2.0
		plotW        = chartWidth - left - right
		maxBinLabels = 11
	)
	binW := plotW / float64(bins)
	y := 0.0
	drawn := 0
	for i, s := range r.Targets {
		if len(lat[s.Target]) == 0 {
			continue
		}
		drawn++
		c.Texts = append(c.Texts, svgText{X: 0, Y: y + 15, Class: "head", Text: fmt.Sprintf("%s: %s, p50 %s ms, p95 %s ms", s.Target, plural(s.Attempts, "attempt"), ms(s.Latency.P50), ms(s.Latency.P95))})
		base := y + titleH + plotH
		c.Lines = append(c.Lines, svgLine{X1: left, Y1: base, X2: left + plotW, Y2: base})
		for b, n := range counts[i] {
			h := plotH * float64(n) / float64(peak)
			x := left + float64(b)*binW
			lo, hi := float64(b)*step, float64(b+1)*step
			c.Bars = append(c.Bars, svgRect{
				X: x + 1, Y: base - h, W: binW - 2, H: h,
				Class: fmt.Sprintf("bar t%d", i%6),
				Title: fmt.Sprintf("%s: %s from %s to %s ms", s.Target, plural(n, "attempt"), axisNum(lo), axisNum(hi)),
			})
			if n > 0 {
				c.Texts = append(c.Texts, svgText{X: x + binW/2, Y: base - h - 3, Anchor: "middle", Class: "val", Text: strconv.Itoa(n)})
			}
		}
		every := (bins + maxBinLabels - 1) / maxBinLabels
		for b := 0; b <= bins; b += every {
			c.Texts = append(c.Texts, svgText{X: left + float64(b)*binW, Y: base + 14, Anchor: "middle", Class: "axis", Text: axisNum(float64(b) * step)})
		}
		c.Texts = append(c.Texts, svgText{X: left + plotW/2, Y: base + 30, Anchor: "middle", Class: "axis", Text: "latency (ms); bar labels count attempts"})
		y += panelH + gap
	}
	c.Height = math.Max(y, 30)
	c.Label = fmt.Sprintf("Latency histogram: %d bins of %s ms per target, for %s", bins, axisNum(step), plural(drawn, "target"))
	if drawn == 0 {
		c.Empty = "No attempts."
		c.Label = "Latency histogram: no attempts"
	}
	return c
}

// histogramBins returns the width and number of bins for values in
// [0, maxV]: about ten bins of a 1, 2 or 5 × 10^k width.
func histogramBins(maxV float64) (step float64, bins int) {
	step = niceStep(maxV / 10)
	bins = int(math.Ceil(maxV/step - 1e-9))
	return step, max(bins, 1)
}

// niceStep returns the smallest 1, 2 or 5 × 10^k at least x (1 for x ≤ 0).
func niceStep(x float64) float64 {
	if x <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= x*(1-1e-12) {
			return m * p
		}
	}
	return 10 * p
}

// passRateChart draws a horizontal bar per case and target: its pass
// rate, labelled with passes/runs and pass, fail or flaky.
func passRateChart(r *Report) svgChart {
	c := svgChart{ID: "chart-pass-rate", Width: chartWidth}
	const (
		labelW = 290.0
		barW   = 300.0
		rowH   = 20.0
		gap    = 8.0
		top    = 4.0
	)
	y := top
	several := len(r.Targets) > 1
	for gi, row := range r.caseRows() {
		if gi > 0 {
			y += gap
		}
		for ti, cr := range row.results {
			if cr == nil {
				continue
			}
			label := truncateLabel(cr.Case, labelChars)
			if several {
				label = truncateLabel(cr.Case, labelChars-12) + " / " + truncateLabel(cr.Target, 12)
			}
			status, class := "pass", "pass"
			switch {
			case cr.Runs == 0 || cr.Passed == 0:
				status, class = "fail", "fail"
			case cr.Passed < cr.Runs:
				status, class = "flaky", "flaky"
			}
			c.Texts = append(c.Texts, svgText{X: 0, Y: y + 14, Class: "lab", Text: label})
			c.Tracks = append(c.Tracks, svgRect{X: labelW, Y: y + 2, W: barW, H: rowH - 4, Class: "track"})
			c.Bars = append(c.Bars, svgRect{
				X: labelW, Y: y + 2, W: barW * cr.PassRate, H: rowH - 4,
				Class: fmt.Sprintf("bar %s t%d", class, ti%6),
				Title: fmt.Sprintf("%s on %s: %d of %d passed (%s), %s", cr.Case, cr.Target, cr.Passed, cr.Runs, pct(cr.PassRate), status),
			})
			c.Texts = append(c.Texts, svgText{X: labelW + barW + 8, Y: y + 14, Class: "val", Text: fmt.Sprintf("%d/%d %s %s", cr.Passed, cr.Runs, pct(cr.PassRate), status)})
			y += rowH
		}
	}
	c.Height = math.Max(y+top, 30)
	c.Label = fmt.Sprintf("Pass rate per case: %d bars, one per case and target", len(c.Bars))
	if len(c.Bars) == 0 {
		c.Empty = "No cases ran."
	}
	return c
}

// costChart draws a horizontal bar per target and upstream model: its
// cost, labelled with the amount, attempts and tokens.
func costChart(r *Report) svgChart {
	c := svgChart{ID: "chart-cost", Width: chartWidth}
	const (
		labelW = 230.0
		barW   = 220.0
		rowH   = 22.0
		top    = 4.0
	)
	peak := 0.0
	for _, s := range r.Targets {
		for _, m := range s.Models {
			peak = math.Max(peak, m.CostUSD)
		}
	}
	y := top
	for ti, s := range r.Targets {
		for _, m := range s.Models {
			w := 0.0
			if peak > 0 {
				w = barW * m.CostUSD / peak
			}
			c.Texts = append(c.Texts, svgText{X: 0, Y: y + 15, Class: "lab", Text: truncateLabel(s.Target, 14) + " / " + truncateLabel(m.Model, 18)})
			c.Tracks = append(c.Tracks, svgRect{X: labelW, Y: y + 3, W: barW, H: rowH - 6, Class: "track"})
			c.Bars = append(c.Bars, svgRect{
				X: labelW, Y: y + 3, W: w, H: rowH - 6,
				Class: fmt.Sprintf("bar t%d", ti%6),
				Title: fmt.Sprintf("%s via %s: %s over %s", s.Target, m.Model, usd(m.CostUSD), plural(m.Attempts, "attempt")),
			})
			c.Texts = append(c.Texts, svgText{X: labelW + barW + 8, Y: y + 15, Class: "val", Text: fmt.Sprintf("%s, %s, %d/%d tokens", usd(m.CostUSD), plural(m.Attempts, "attempt"), m.InputTokens, m.OutputTokens)})
			y += rowH
		}
	}
	c.Height = math.Max(y+top, 30)
	c.Label = fmt.Sprintf("Cost per model: %d bars, one per target and upstream model", len(c.Bars))
	if len(c.Bars) == 0 {
		c.Empty = "No upstream model answered."
	}
	return c
}

// truncateLabel shortens s to n runes, marking the cut with "...".
func truncateLabel(s string, n int) string {
	rs := []rune(s)
	if len(rs) <= n {
		return s
	}
	return string(rs[:n-3]) + "..."
}

func svgNum(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

// axisNum formats a bin edge: 1, 2 or 5 × 10^k, as short as it goes.
func axisNum(f float64) string { return strconv.FormatFloat(f, 'g', 6, 64) }

func caseStatus(c CaseResult) string {
	switch {
	case c.Runs > 0 && c.Passed == c.Runs:
		return "pass"
	case c.Passed > 0:
		return "flaky"
	}
	return "fail"
}

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"num":    svgNum,
	"pct":    pct,
	"ms":     ms,
	"usd":    usd,
	"status": caseStatus,
	"time": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
}).Parse(reportHTML))

const reportHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>Sluice eval: {{.R.Run.Dataset}}</title>
<style>
:root { --fg:#1d2430; --muted:#5b6574; --bg:#fff; --panel:#f5f7fa; --line:#d5dbe3; --pass:#1f7a3a; --fail:#b42318; --flaky:#a15c00;
  --t0:#2f6db5; --t1:#b5522f; --t2:#6a4fb3; --t3:#2f9a8f; --t4:#8a8f2f; --t5:#b52f79; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
main { max-width: 1100px; margin: 0 auto; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 10px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.muted { color: var(--muted); }
dl.run { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 12px 0; }
dl.run dt { color: var(--muted); }
dl.run dd { margin: 0; }
.banner { padding: 8px 12px; border: 2px solid var(--fail); border-radius: 6px; margin: 12px 0; font-weight: 600; }
.banner.ok { border-color: var(--pass); }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 12px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.card h3 { margin: 0 0 6px; font-size: 15px; word-break: break-all; }
.card .big { font-size: 26px; font-weight: 700; }
.card table td { padding: 1px 8px 1px 0; vertical-align: top; }
.card ul { margin: 6px 0 0; padding-left: 18px; }
figure { margin: 0 0 18px; }
figcaption { color: var(--muted); margin-bottom: 4px; }
svg.chart { display: block; max-width: 100%; height: auto; background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 6px; }
svg .bar.t0 { fill: var(--t0); } svg .bar.t1 { fill: var(--t1); } svg .bar.t2 { fill: var(--t2); }
svg .bar.t3 { fill: var(--t3); } svg .bar.t4 { fill: var(--t4); } svg .bar.t5 { fill: var(--t5); }
svg .bar.pass { fill: var(--pass); } svg .bar.fail { fill: var(--fail); } svg .bar.flaky { fill: var(--flaky); }
svg .track { fill: #fff; stroke: var(--line); }
svg line { stroke: var(--muted); }
svg text { font: 12px system-ui, sans-serif; fill: var(--fg); }
svg text.head { font-weight: 600; }
svg text.axis { fill: var(--muted); font-size: 11px; }
table.data { border-collapse: collapse; width: 100%; }
table.data th, table.data td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
table.data th { background: var(--panel); }
table.data td.n { text-align: right; font-variant-numeric: tabular-nums; }
.st { font-weight: 700; }
.st.pass { color: var(--pass); } .st.fail { color: var(--fail); } .st.flaky { color: var(--flaky); }
tr.differ td:first-child::before { content: "* "; font-weight: 700; }
ul.fails { margin: 0; padding-left: 16px; }
ul.fails li { font-family: ui-monospace, monospace; font-size: 12px; word-break: break-word; }
.controls { margin: 6px 0 10px; display: flex; gap: 16px; align-items: center; }
</style>
</head>
<body>
<main>
<h1>Sluice eval report</h1>
<p class="muted">Dataset {{.R.Run.Dataset}}, {{len .R.Attempts}} attempts on {{len .R.Targets}} {{if eq .R.Run.Kind "contract"}}contract{{else}}route{{end}}{{if ne (len .R.Targets) 1}}s{{end}}.</p>

<section id="run">
<h2>Run</h2>
{{- if .R.Run.Stopped}}
<p class="banner">Stopped early ({{.R.Run.Stopped}}): this report covers {{len .R.Attempts}} of {{.R.Run.Planned}} planned attempts.</p>
{{- end}}
{{- if .R.Regressions}}
<p class="banner">REGRESSED: {{len .R.Regressions}} regressions against {{if .R.Baseline}}{{.R.Baseline}}{{else}}the baseline{{end}}.</p>
{{- else if .R.Baseline}}
<p class="banner ok">No regression against {{.R.Baseline}}.</p>
{{- end}}
<dl class="run">
<dt>Dataset</dt><dd>{{.R.Run.Dataset}}</dd>
<dt>Kind</dt><dd>{{.R.Run.Kind}}</dd>
<dt>Targets</dt><dd>{{range $i, $t := .R.Run.Targets}}{{if $i}}, {{end}}{{$t}}{{end}}</dd>
<dt>Called</dt><dd>{{if .R.Run.Gateway}}gateway {{.R.Run.Gateway}}{{else}}in-process{{end}}</dd>
<dt>Cases</dt><dd>{{.R.Run.Cases}}</dd>
<dt>Repeat</dt><dd>{{.R.Run.Repeat}}</dd>
<dt>Concurrency</dt><dd>{{.R.Run.Concurrency}}</dd>
<dt>Attempts</dt><dd>{{len .R.Attempts}} made of {{.R.Run.Planned}} planned</dd>
<dt>Started</dt><dd>{{time .R.Run.Started}}</dd>
<dt>Finished</dt><dd>{{time .R.Run.Finished}}{{if .Duration}} ({{.Duration}}){{end}}</dd>
{{- if .R.Run.MaxCostUSD}}
<dt>Max cost</dt><dd>{{usd .R.Run.MaxCostUSD}}</dd>
{{- end}}
{{- if .R.Baseline}}
<dt>Baseline</dt><dd>{{.R.Baseline}}</dd>
{{- end}}
</dl>
</section>

<section id="targets">
<h2>Targets</h2>
<div class="cards">
{{- range .Cards}}
<div class="card" data-target="{{.S.Target}}">
<h3>{{.S.Target}}</h3>
<div class="big">{{pct .S.PassRate}} <span class="muted" style="font-size:14px;font-weight:400">passed ({{.S.Passed}}/{{.S.Attempts}})</span></div>
<table>
{{- range .Metrics}}
<tr><td class="muted">{{index . 0}}</td><td>{{index . 1}}</td></tr>
{{- end}}
</table>
{{- if .Kinds}}
<ul>{{range .Kinds}}<li>{{.}}</li>{{end}}</ul>
{{- end}}
</div>
{{- end}}
</div>
</section>

<section id="charts">
<h2>Charts</h2>
{{template "chart" .Latency}}
{{template "chart" .PassRate}}
{{template "chart" .Cost}}
</section>

{{- with .Side}}
<section id="side-by-side">
<h2>Side by side</h2>
<table class="data">
<thead><tr><th>metric</th>{{range .Targets}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>
{{- range .Metrics}}
<tr><td>{{.Label}}</td>{{range .Values}}<td>{{.}}</td>{{end}}</tr>
{{- end}}
</tbody>
</table>
<p class="muted">Pass rate per case; * marks the {{.Differ}} cases whose pass rate differs between targets.</p>
<table class="data" id="side-cases">
<thead><tr><th>case</th>{{range .Targets}}<th>{{.}}</th>{{end}}<th>differs</th></tr></thead>
<tbody>
{{- range .Cases}}
<tr{{if .Differ}} class="differ"{{end}}><td>{{.Case}}</td>{{range .Values}}<td class="n">{{.}}</td>{{end}}<td>{{if .Differ}}yes{{else}}no{{end}}</td></tr>
{{- end}}
</tbody>
</table>
</section>
{{- end}}

<section id="cases">
<h2>Cases</h2>
<div class="controls">
<label><input type="checkbox" id="only-failing"> only failing cases ({{.Failing}})</label>
<label>filter <input type="search" id="case-filter" placeholder="case id"></label>
<span id="case-count" class="muted"></span>
</div>
<table class="data" id="case-table">
<thead><tr><th>case</th><th>line</th><th>target</th><th>passed</th><th>pass rate</th><th>status</th><th>p50 ms</th><th>failures</th></tr></thead>
<tbody>
{{- range .R.Cases}}
<tr data-case="{{.Case}}" data-status="{{status .}}"><td>{{.Case}}</td><td class="n">{{.Line}}</td><td>{{.Target}}</td><td class="n">{{.Passed}}/{{.Runs}}</td><td class="n">{{pct .PassRate}}</td><td><span class="st {{status .}}">{{status .}}</span></td><td class="n">{{ms .LatencyP50}}</td><td>{{if .Failures}}<ul class="fails">{{range .Failures}}<li>{{.}}</li>{{end}}</ul>{{end}}</td></tr>
{{- end}}
</tbody>
</table>
</section>

{{- if .R.Regressions}}
<section id="regressions">
<h2>Regressions</h2>
{{template "findings" .R.Regressions}}
</section>
{{- end}}

{{- if .R.Notes}}
<section id="notes">
<h2>Notes</h2>
{{template "findings" .R.Notes}}
</section>
{{- end}}

<p class="muted" id="footer">Report format version {{.R.Version}}. The report's JSON is embedded in this page (script#report-data).</p>
</main>
<script type="application/json" id="report-data">{{.Data}}</script>
<script>
(function () {
  "use strict";
  var report = JSON.parse(document.getElementById("report-data").textContent);
  var rows = Array.prototype.slice.call(document.querySelectorAll("#case-table tbody tr"));
  var only = document.getElementById("only-failing");
  var filter = document.getElementById("case-filter");
  var count = document.getElementById("case-count");
  function apply() {
    var q = filter.value.trim().toLowerCase();
    var shown = 0;
    rows.forEach(function (tr) {
      var ok = (!only.checked || tr.dataset.status !== "pass") &&
        (q === "" || tr.dataset.case.toLowerCase().indexOf(q) >= 0);
      tr.hidden = !ok;
      if (ok) { shown++; }
    });
    count.textContent = shown + " of " + rows.length + " shown";
  }
  only.addEventListener("change", apply);
  filter.addEventListener("input", apply);
  apply();
  document.getElementById("footer").textContent += " It holds " + report.attempts.length + " attempts.";
  document.documentElement.dataset.ready = "true";
})();
</script>
</body>
</html>
{{- define "findings"}}
<table class="data">
<thead><tr><th>target</th><th>case</th><th>kind</th><th>detail</th></tr></thead>
<tbody>
{{- range .}}
<tr><td>{{.Target}}</td><td>{{.Case}}</td><td>{{.Kind}}</td><td>{{.Detail}}</td></tr>
{{- end}}
</tbody>
</table>
{{- end}}
{{define "chart"}}<figure>
<figcaption>{{.Label}}</figcaption>
<svg class="chart" id="{{.ID}}" role="img" aria-label="{{.Label}}" data-points="{{.Points}}" viewBox="0 0 {{num .Width}} {{num .Height}}" width="{{num .Width}}" height="{{num .Height}}">
<title>{{.Label}}</title>
{{- if .Empty}}
<text x="8" y="20">{{.Empty}}</text>
{{- end}}
{{- range .Lines}}
<line x1="{{num .X1}}" y1="{{num .Y1}}" x2="{{num .X2}}" y2="{{num .Y2}}"></line>
{{- end}}
{{- range .Tracks}}
<rect class="{{.Class}}" x="{{num .X}}" y="{{num .Y}}" width="{{num .W}}" height="{{num .H}}"></rect>
{{- end}}
{{- range .Bars}}
<rect class="{{.Class}}" x="{{num .X}}" y="{{num .Y}}" width="{{num .W}}" height="{{num .H}}"><title>{{.Title}}</title></rect>
{{- end}}
{{- range .Texts}}
<text x="{{num .X}}" y="{{num .Y}}"{{if .Anchor}} text-anchor="{{.Anchor}}"{{end}}{{if .Class}} class="{{.Class}}"{{end}}>{{.Text}}</text>
{{- end}}
</svg>
</figure>{{end}}
`
