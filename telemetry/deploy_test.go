package telemetry_test

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"text/template"

	"github.com/goccy/go-yaml"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-gw/sluice/telemetry"
)

// The files in deploy/ that TestDeployMetrics keeps true to the metrics.
var (
	deployDashboard = filepath.Join("..", "deploy", "grafana", "sluice-dashboard.json")
	deployRules     = filepath.Join("..", "deploy", "prometheus", "alerts.yml")
)

// deployFamily is what the deploy files may use of a metric family.
type deployFamily struct {
	labels    []string
	histogram bool // has _bucket (with le), _sum and _count series
}

// deployFamilies mirrors the metric families New registers and their labels.
// TestDeployMetrics checks it against MetricNames and against the labels of
// what New registers, so it cannot drift from the code.
var deployFamilies = map[string]deployFamily{
	"sluice_requests_total":               {labels: []string{"route", "model", "provider", "dialect", "stream", "code"}},
	"sluice_request_duration_seconds":     {labels: []string{"route", "dialect", "stream"}, histogram: true},
	"sluice_time_to_first_token_seconds":  {labels: []string{"route", "provider"}, histogram: true},
	"sluice_time_between_tokens_seconds":  {labels: []string{"route", "provider"}, histogram: true},
	"sluice_overhead_seconds":             {labels: []string{"route", "stream"}, histogram: true},
	"sluice_tokens_total":                 {labels: []string{"route", "model", "provider", "direction"}},
	"sluice_cost_usd_total":               {labels: []string{"route", "model", "provider"}},
	"sluice_upstream_attempts_total":      {labels: []string{"provider", "outcome"}},
	"sluice_upstream_attempt_kinds_total": {labels: []string{"route", "kind"}},
	"sluice_contract_calls_total":         {labels: []string{"route", "outcome"}},
	"sluice_contract_failures_total":      {labels: []string{"route", "kind"}},
	"sluice_contract_repairs_total":       {labels: []string{"route"}},
	"sluice_breaker_state":                {labels: []string{"provider", "upstream_model"}},
	"sluice_breaker_transitions_total":    {labels: []string{"provider", "upstream_model", "to"}},
	"sluice_limit_refusals_total":         {labels: []string{"limit"}},
	"sluice_budget_used_ratio":            {labels: []string{"scope", "name", "period"}},
	"sluice_open_streams":                 {labels: []string{"route"}},
	"sluice_guard_store_failures_total":   {labels: []string{"store"}},
}

// TestDeployMetrics checks the Grafana dashboard and the Prometheus rules in
// deploy/: every metric and label their queries use is one telemetry
// registers, every recorded series they use is recorded, the queries are well
// formed, every panel and alert is complete, the alert templates render, and
// the panels alerts name are on the dashboard.
func TestDeployMetrics(t *testing.T) {
	t.Run("families", testDeployFamilies)

	dash := loadDeployDashboard(t)
	rules := loadDeployRules(t)
	recorded := map[string][]string{} // recorded series and their labels
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				recorded[r.Record] = promOutputLabels(r.Expr, nil)
			}
		}
	}
	titles := map[string]bool{}
	for _, p := range dash.allPanels() {
		titles[p.Title] = true
	}
	t.Run("rules", func(t *testing.T) { testDeployRules(t, rules, promChecker{recorded: recorded}, titles) })
	t.Run("dashboard", func(t *testing.T) { testDeployDashboard(t, dash, promChecker{}) })

	t.Run("promtool", func(t *testing.T) {
		promtool, err := exec.LookPath("promtool")
		if err != nil {
			t.Log("promtool is not on PATH; promtool check rules skipped")
			return
		}
		out, err := exec.CommandContext(t.Context(), promtool, "check", "rules", deployRules).CombinedOutput()
		if err != nil {
			t.Errorf("promtool check rules %s: %v\n%s", deployRules, err, out)
		}
	})
}

// testDeployFamilies checks deployFamilies against MetricNames and the label
// names of the metrics New registers.
func testDeployFamilies(t *testing.T) {
	names := telemetry.MetricNames()
	for _, name := range names {
		if _, ok := deployFamilies[name]; !ok && strings.HasPrefix(name, "sluice_") {
			t.Errorf("MetricNames has %s, deployFamilies does not", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(deployFamilies)) {
		if !slices.Contains(names, name) {
			t.Errorf("deployFamilies has %s, MetricNames does not", name)
		}
	}

	reg := &describingRegisterer{Registerer: prometheus.NewRegistry(), labels: map[string][]string{},
		histogram: map[string]bool{}}
	if _, err := telemetry.New(reg); err != nil {
		t.Fatal(err)
	}
	for _, name := range slices.Sorted(maps.Keys(deployFamilies)) {
		f := deployFamilies[name]
		got, ok := reg.labels[name]
		if !ok {
			t.Errorf("New registers no %s", name)
			continue
		}
		if want := slices.Sorted(slices.Values(f.labels)); !slices.Equal(got, want) {
			t.Errorf("%s has labels %v, deployFamilies says %v", name, got, want)
		}
		if h, ok := reg.histogram[name]; ok && h != f.histogram {
			t.Errorf("%s: histogram is %v, deployFamilies says %v", name, h, f.histogram)
		}
	}
}

// describingRegisterer notes the variable labels of every metric registered,
// and for the plain vectors whether they are histograms.
type describingRegisterer struct {
	prometheus.Registerer
	labels    map[string][]string // by metric name, sorted
	histogram map[string]bool     // by metric name, for *CounterVec, *GaugeVec and *HistogramVec
}

// descString matches what (*prometheus.Desc).String returns.
var descString = regexp.MustCompile(`^Desc\{fqName: "([^"]*)", .*variableLabels: \{([^}]*)\}\}$`)

func (r *describingRegisterer) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	var bad []string
	for d := range ch {
		m := descString.FindStringSubmatch(d.String())
		if m == nil {
			bad = append(bad, d.String())
			continue
		}
		var labels []string
		for l := range strings.SplitSeq(m[2], ",") {
			if l = strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")"); l != "" {
				labels = append(labels, l)
			}
		}
		slices.Sort(labels)
		r.labels[m[1]] = labels
		switch c.(type) {
		case *prometheus.CounterVec, *prometheus.GaugeVec:
			r.histogram[m[1]] = false
		case *prometheus.HistogramVec:
			r.histogram[m[1]] = true
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("cannot read the labels of %q", bad)
	}
	return r.Registerer.Register(c)
}

func (r *describingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// deployRuleFile is a Prometheus rule file, with the fields these rules use.
type deployRuleFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []struct {
			Record      string            `yaml:"record"`
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func loadDeployRules(t *testing.T) deployRuleFile {
	t.Helper()
	data, err := os.ReadFile(deployRules)
	if err != nil {
		t.Fatal(err)
	}
	var rf deployRuleFile
	if err := yaml.UnmarshalWithOptions(data, &rf, yaml.Strict()); err != nil {
		t.Fatalf("%s: %v", deployRules, err)
	}
	if len(rf.Groups) == 0 {
		t.Fatalf("%s has no groups", deployRules)
	}
	return rf
}

var (
	promDuration   = regexp.MustCompile(`^([0-9]+(ms|s|m|h|d|w|y))+$`)
	promRecordName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*:[a-zA-Z0-9_:]*$`)
	promAlertName  = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)
)

// templateAction matches a template action; quotedTitle a phrase in double
// quotes, which in an annotation is the title of a dashboard panel.
var (
	templateAction = regexp.MustCompile(`\{\{.*?\}\}`)
	quotedTitle    = regexp.MustCompile(`"([^"]+)"`)
)

func testDeployRules(t *testing.T, rf deployRuleFile, pc promChecker, titles map[string]bool) {
	groups := map[string]bool{}
	names := map[string]bool{}
	alerts := 0
	for _, g := range rf.Groups {
		if g.Name == "" || groups[g.Name] {
			t.Errorf("group name %q is empty or repeated", g.Name)
		}
		groups[g.Name] = true
		if g.Interval != "" && !promDuration.MatchString(g.Interval) {
			t.Errorf("group %s: interval %q is not a duration", g.Name, g.Interval)
		}
		if len(g.Rules) == 0 {
			t.Errorf("group %s has no rules", g.Name)
		}
		for i, r := range g.Rules {
			name := r.Alert + r.Record
			where := fmt.Sprintf("group %s rule %d (%s)", g.Name, i, name)
			if (r.Alert == "") == (r.Record == "") {
				t.Errorf("%s: a rule needs exactly one of alert and record", where)
				continue
			}
			if names[name] {
				t.Errorf("%s: name used twice", where)
			}
			names[name] = true
			if strings.TrimSpace(r.Expr) == "" {
				t.Errorf("%s: no expr", where)
			}
			for _, p := range pc.check(r.Expr) {
				t.Errorf("%s: %s", where, p)
			}
			if r.Record != "" {
				if !promRecordName.MatchString(r.Record) {
					t.Errorf("%s: name a recorded series level:metric:operations", where)
				}
				if r.For != "" || len(r.Annotations) > 0 {
					t.Errorf("%s: a recording rule takes no for or annotations", where)
				}
				continue
			}
			alerts++
			if !promAlertName.MatchString(r.Alert) {
				t.Errorf("%s: name alerts in CamelCase", where)
			}
			if !promDuration.MatchString(r.For) {
				t.Errorf("%s: for %q is not a duration", where, r.For)
			}
			if s := r.Labels["severity"]; s != "page" && s != "ticket" {
				t.Errorf("%s: labels.severity is %q, want page or ticket", where, s)
			}
			for _, key := range []string{"summary", "description"} {
				if strings.TrimSpace(r.Annotations[key]) == "" {
					t.Errorf("%s: no annotations.%s", where, key)
				}
			}
			labels := promOutputLabels(r.Expr, pc.recorded)
			for _, key := range slices.Sorted(maps.Keys(r.Annotations)) {
				text := r.Annotations[key]
				if err := renderAlertTemplate(text, labels); err != nil {
					t.Errorf("%s: annotations.%s: %v", where, key, err)
				}
				for _, m := range quotedTitle.FindAllStringSubmatch(templateAction.ReplaceAllString(text, ""), -1) {
					if !titles[m[1]] {
						t.Errorf("%s: annotations.%s names %q, which is no panel of the dashboard", where, key, m[1])
					}
				}
			}
		}
	}
	if alerts == 0 {
		t.Error("no alerts")
	}
}

// renderAlertTemplate renders an annotation as Prometheus would, with stand-ins
// for its template functions, failing on a $labels key the alert's series do
// not have.
func renderAlertTemplate(text string, labels []string) error {
	str := func(v any) (string, error) { return fmt.Sprint(v), nil }
	funcs := template.FuncMap{}
	for _, name := range []string{"humanize", "humanize1024", "humanizeDuration", "humanizePercentage",
		"humanizeTimestamp", "title", "toUpper", "toLower", "stripPort", "stripDomain", "safeHtml"} {
		funcs[name] = str
	}
	// Prometheus defines these variables before every alert template.
	const defs = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}" +
		"{{$externalURL := .ExternalURL}}{{$value := .Value}}"
	tmpl, err := template.New("annotation").Funcs(funcs).Option("missingkey=error").Parse(defs + text)
	if err != nil {
		return err
	}
	data := struct {
		Labels, ExternalLabels map[string]string
		ExternalURL            string
		Value                  float64
	}{Labels: map[string]string{}, ExternalLabels: map[string]string{}, Value: 0.5}
	for _, l := range labels {
		data.Labels[l] = "x"
	}
	return tmpl.Execute(io.Discard, data)
}

// grafanaPanel is a dashboard panel, with the fields the test checks.
type grafanaPanel struct {
	ID          int                `json:"id"`
	Type        string             `json:"type"`
	Title       string             `json:"title"`
	Description string             `json:"description"`
	Datasource  *grafanaDatasource `json:"datasource"`
	GridPos     struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Datasource *grafanaDatasource `json:"datasource"`
		Expr       string             `json:"expr"`
		RefID      string             `json:"refId"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"` // of a collapsed row
}

type grafanaDatasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type grafanaDashboard struct {
	Inputs []struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		PluginID string `json:"pluginId"`
	} `json:"__inputs"`
	UID           string         `json:"uid"`
	Title         string         `json:"title"`
	SchemaVersion int            `json:"schemaVersion"`
	Panels        []grafanaPanel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string             `json:"name"`
			Type       string             `json:"type"`
			Datasource *grafanaDatasource `json:"datasource"`
			Query      json.RawMessage    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

var (
	grafanaVarRef     = regexp.MustCompile(`\$\{?([a-zA-Z_][a-zA-Z0-9_]*)`)
	grafanaLabelValue = regexp.MustCompile(`^label_values\((sluice_[a-z_]+)(\{[^}]*\})?\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)
)

func loadDeployDashboard(t *testing.T) grafanaDashboard {
	t.Helper()
	data, err := os.ReadFile(deployDashboard)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(data) {
		t.Fatalf("%s is not valid JSON", deployDashboard)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", deployDashboard, err)
	}
	return d
}

// allPanels returns the dashboard's panels, those of collapsed rows included.
func (d grafanaDashboard) allPanels() []grafanaPanel {
	var all []grafanaPanel
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			all = append(all, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return all
}

func testDeployDashboard(t *testing.T, d grafanaDashboard, pc promChecker) {
	if d.Title == "" || d.UID == "" {
		t.Error("the dashboard needs a title and a uid")
	}
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d, want 36 or later", d.SchemaVersion)
	}

	// Variables: the data source ones panels may name, and all.
	sources := map[string]bool{}
	vars := map[string]bool{}
	for _, in := range d.Inputs {
		if in.Type == "datasource" && in.PluginID == "prometheus" {
			sources[in.Name] = true
		}
	}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		switch v.Type {
		case "datasource":
			sources[v.Name] = true
		case "query":
			var q string
			if err := json.Unmarshal(v.Query, &q); err != nil {
				var obj struct{ Query string }
				if err := json.Unmarshal(v.Query, &obj); err != nil {
					t.Errorf("variable %s: query is neither a string nor an object with a query: %v", v.Name, err)
				}
				q = obj.Query
			}
			m := grafanaLabelValue.FindStringSubmatch(q)
			if m == nil {
				t.Errorf("variable %s: query %q is not label_values(sluice_..., label)", v.Name, q)
				continue
			}
			for _, p := range pc.check(q) {
				t.Errorf("variable %s: %s", v.Name, p)
			}
			if f, ok := deployFamilies[m[1]]; ok && !slices.Contains(f.labels, m[3]) {
				t.Errorf("variable %s: %s has no label %s", v.Name, m[1], m[3])
			}
		}
	}
	if len(sources) == 0 {
		t.Fatal("no datasource variable and no __inputs datasource")
	}
	checkSource := func(where string, ds *grafanaDatasource) {
		if ds == nil || ds.UID == "" {
			t.Errorf("%s: no datasource", where)
			return
		}
		if ds.Type != "prometheus" {
			t.Errorf("%s: datasource type %q, want prometheus", where, ds.Type)
		}
		if m := grafanaVarRef.FindStringSubmatch(ds.UID); m == nil || !sources[m[1]] {
			t.Errorf("%s: datasource uid %q is not one of the dashboard's datasource variables %v",
				where, ds.UID, slices.Sorted(maps.Keys(sources)))
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			checkSource("variable "+v.Name, v.Datasource)
		}
	}

	all := d.allPanels()
	ids := map[int]bool{}
	queries := 0
	for i, p := range all {
		where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if p.ID == 0 || ids[p.ID] {
			t.Errorf("%s: id missing or repeated", where)
		}
		ids[p.ID] = true
		if strings.TrimSpace(p.Title) == "" {
			t.Errorf("%s: no title", where)
		}
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("%s: gridPos %+v is off the 24-column grid", where, g)
		}
		for _, q := range all[:i] {
			h := q.GridPos
			if g.X < h.X+h.W && h.X < g.X+g.W && g.Y < h.Y+h.H && h.Y < g.Y+g.H {
				t.Errorf("%s overlaps panel %d %q", where, q.ID, q.Title)
			}
		}
		if p.Type == "row" {
			continue
		}
		if strings.TrimSpace(p.Description) == "" {
			t.Errorf("%s: no description", where)
		}
		checkSource(where, p.Datasource)
		if len(p.Targets) == 0 {
			t.Errorf("%s: no targets", where)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			queries++
			tw := fmt.Sprintf("%s target %s", where, tg.RefID)
			if tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("%s: refId missing or repeated", tw)
			}
			refs[tg.RefID] = true
			if tg.Datasource != nil {
				checkSource(tw, tg.Datasource)
			}
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("%s: no expr", tw)
			}
			for _, p := range pc.check(tg.Expr) {
				t.Errorf("%s: %s", tw, p)
			}
			for _, m := range grafanaVarRef.FindAllStringSubmatch(tg.Expr, -1) {
				if !strings.HasPrefix(m[1], "__") && !vars[m[1]] {
					t.Errorf("%s: $%s is not a dashboard variable", tw, m[1])
				}
			}
		}
	}
	if queries == 0 {
		t.Error("the dashboard has no queries")
	}
}

// TestDeployMetricsChecks checks that the query checks catch what they are for.
func TestDeployMetricsChecks(t *testing.T) {
	pc := promChecker{recorded: map[string][]string{"route:sluice_x:rate5m": {"route"}}}
	for _, tc := range []struct {
		name, expr, want string // want "" means no problem
	}{
		{"good", `histogram_quantile(0.9, sum by (le, route) (rate(sluice_overhead_seconds_bucket{route=~"$route", stream="true"}[$__rate_interval])))`, ""},
		{"good trailing by", `sum(rate(sluice_requests_total{code!="ok"}[5m])) by (code)`, ""},
		{"good recorded", `route:sluice_x:rate5m{route="a"} > 2 and sum by (route) (rate(sluice_contract_calls_total[5m])) > 0`, ""},
		{"good strings", `sum(rate(sluice_requests_total{code=~"a}|(b"}[5m]))`, ""},
		{"unknown metric", `sum(rate(sluice_nope_total[5m]))`, "unknown metric sluice_nope_total"},
		{"bucket of a counter", `sum(rate(sluice_requests_total_bucket[5m]))`, "unknown metric sluice_requests_total_bucket"},
		{"bare histogram", `sum(rate(sluice_overhead_seconds[5m]))`, "histogram"},
		{"label in by", `sum by (tenant) (rate(sluice_requests_total[5m]))`, "sluice_requests_total has no label tenant"},
		{"label in trailing by", `sum(rate(sluice_requests_total[5m])) by (tenant)`, "no label tenant"},
		{"le without bucket", `sum by (le) (rate(sluice_overhead_seconds_count[5m]))`, "no label le"},
		{"label in selector", `rate(sluice_requests_total{user="x"}[5m])`, "sluice_requests_total has no label user"},
		{"label in on", `sluice_open_streams / on (tenant) sluice_open_streams`, "has label tenant"},
		{"recorded label", `route:sluice_x:rate5m{provider="a"}`, "route:sluice_x:rate5m has no label provider"},
		{"not recorded", `sluice:nope:rate5m > 1`, "sluice:nope:rate5m is not recorded"},
		{"empty selector", `sum(rate(sluice_requests_total{}[5m]))`, "empty selector"},
		{"selector without a name", `sum(rate({route="a"}[5m]))`, "selector without a metric name"},
		{"bad matcher", `sluice_open_streams{route}`, "matcher"},
		{"unbalanced", `sum(rate(sluice_requests_total[5m])`, "unbalanced"},
		{"crossed", `sum(rate(sluice_requests_total[5m)])`, "unbalanced"},
		{"open string", `sluice_open_streams{route="a}`, "unbalanced"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			problems := pc.check(tc.expr)
			if tc.want == "" {
				if len(problems) > 0 {
					t.Errorf("%s: %q", tc.expr, problems)
				}
				return
			}
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("%s: problems %q, want one saying %q", tc.expr, problems, tc.want)
			}
		})
	}

	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`max by (scope, name) (sluice_budget_used_ratio) > 0.9`, []string{"name", "scope"}},
		{`sum(rate(sluice_requests_total[5m])) / sum(rate(sluice_requests_total[5m]))`, []string{}},
		{`sluice_open_streams > 10`, []string{"route"}},
		{`route:sluice_x:rate5m > 2`, []string{"route"}},
	} {
		if got := promOutputLabels(tc.expr, pc.recorded); !slices.Equal(got, tc.want) {
			t.Errorf("output labels of %s: %v, want %v", tc.expr, got, tc.want)
		}
	}
	if err := renderAlertTemplate("{{ $labels.tenant }}", []string{"route"}); err == nil {
		t.Error("a template using a label the alert does not have renders")
	}
	if err := renderAlertTemplate("{{ $value | humanizePercentage }} on {{ $labels.route }}", []string{"route"}); err != nil {
		t.Error(err)
	}
}

// promChecker checks PromQL expressions against deployFamilies and the
// recorded series. It is a lexical check, not a parser: it knows selectors,
// string literals and the label lists of by, without, on, ignoring,
// group_left and group_right, which is all the deploy files need.
type promChecker struct {
	recorded map[string][]string // recorded series and their labels
}

// promRef is one metric or recorded series named in an expression.
type promRef struct {
	name       string
	start, end int
	labels     []string // the labels its series have
	known      bool     // a registered metric or a recorded series
}

var (
	promIdent       = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promGrouping    = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\(`)
	promAggregation = regexp.MustCompile(
		`\b(sum|min|max|avg|group|stddev|stdvar|count|count_values|bottomk|topk|quantile|limitk|limit_ratio)\s*(\(|by\b|without\b)`)
	promMatcher = regexp.MustCompile(`^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*["'` + "`]")
)

// check returns the problems of expr, none if it is fine.
func (pc promChecker) check(expr string) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	masked, err := promMask(expr)
	if err != nil {
		return []string{err.Error()}
	}
	if err := promBalanced(masked); err != nil {
		return []string{fmt.Sprintf("%v in %q", err, expr)}
	}
	refs, unknown := pc.refs(masked)
	problems = append(problems, unknown...)

	// Selectors: each follows a metric name and names only its labels.
	used := map[int]bool{} // positions of the { of the selectors checked
	for _, r := range refs {
		i := promSkipSpace(masked, r.end)
		if i >= len(masked) || masked[i] != '{' {
			continue
		}
		used[i] = true
		end := promClosing(masked, i)
		body := masked[i+1 : end]
		if strings.TrimSpace(body) == "" {
			add("empty selector after %s", r.name)
			continue
		}
		if !r.known {
			continue
		}
		for m := range strings.SplitSeq(body, ",") {
			if strings.TrimSpace(m) == "" {
				continue // a trailing comma
			}
			mm := promMatcher.FindStringSubmatch(m)
			if mm == nil {
				add("%s{%s}: %q is not a label matcher", r.name, body, m)
				continue
			}
			if !slices.Contains(r.labels, mm[1]) {
				add("%s has no label %s", r.name, mm[1])
			}
		}
	}
	for i, c := range masked {
		if c == '{' && !used[i] {
			add("selector without a metric name at %q", expr[i:min(len(expr), i+40)])
		}
	}

	// Label lists of aggregations and vector matching.
	for _, m := range promGrouping.FindAllStringSubmatchIndex(masked, -1) {
		kw := masked[m[2]:m[3]]
		open := m[1] - 1
		end := promClosing(masked, open)
		var labels []string
		for l := range strings.SplitSeq(masked[open+1:end], ",") {
			if l = strings.TrimSpace(l); l != "" {
				labels = append(labels, l)
			}
		}
		var scope []promRef // the series the labels must be on
		switch kw {
		case "by", "without":
			arg, ok := promAggregated(masked, m[0], end)
			if !ok {
				add("%s (%s): cannot find what it aggregates", kw, strings.Join(labels, ", "))
				continue
			}
			for _, r := range refs {
				if r.known && r.start >= arg[0] && r.end <= arg[1] {
					scope = append(scope, r)
				}
			}
			for _, l := range labels {
				for _, r := range scope {
					if !slices.Contains(r.labels, l) {
						add("%s (%s): %s has no label %s", kw, strings.Join(labels, ", "), r.name, l)
					}
				}
			}
		default: // on, ignoring, group_left, group_right
			for _, l := range labels {
				if !slices.ContainsFunc(refs, func(r promRef) bool { return slices.Contains(r.labels, l) }) {
					add("%s (%s): no series in the expression has label %s", kw, strings.Join(labels, ", "), l)
				}
			}
		}
	}
	return problems
}

// refs finds the metrics and recorded series named in the masked expression,
// and reports the names that are neither a registered metric nor recorded
// (these come back too, not known, so that their selectors are skipped).
func (pc promChecker) refs(masked string) (refs []promRef, problems []string) {
	for _, loc := range promIdent.FindAllStringIndex(masked, -1) {
		name := masked[loc[0]:loc[1]]
		if loc[0] > 0 && strings.ContainsRune("0123456789$.", rune(masked[loc[0]-1])) {
			continue // the unit of a duration (5m), a Grafana variable, a number
		}
		r := promRef{name: name, start: loc[0], end: loc[1]}
		switch {
		case strings.Contains(name, ":"):
			labels, ok := pc.recorded[name]
			if !ok {
				problems = append(problems, fmt.Sprintf("%s is not recorded by the rules", name))
			}
			r.labels, r.known = labels, ok
		case strings.HasPrefix(name, "sluice_"):
			labels, err := promSeriesLabels(name)
			if err != nil {
				problems = append(problems, err.Error())
			}
			r.labels, r.known = labels, err == nil
		default:
			continue
		}
		refs = append(refs, r)
	}
	return refs, problems
}

// promSeriesLabels returns the labels of the series named name: a family of
// deployFamilies, or a histogram's _bucket (with le), _sum or _count.
func promSeriesLabels(name string) ([]string, error) {
	if f, ok := deployFamilies[name]; ok {
		if f.histogram {
			return nil, fmt.Errorf("%s is a histogram: it has only %[1]s_bucket, %[1]s_sum and %[1]s_count series", name)
		}
		return f.labels, nil
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, cut := strings.CutSuffix(name, suffix)
		if f, ok := deployFamilies[base]; cut && ok && f.histogram {
			if suffix == "_bucket" {
				return append(slices.Clip(f.labels), "le"), nil
			}
			return f.labels, nil
		}
	}
	return nil, fmt.Errorf("unknown metric %s (not in telemetry.MetricNames)", name)
}

// promAggregated returns the span of what the by or without clause at
// [kw, listEnd] aggregates: the parenthesised argument after it
// (sum by (x) (...)) or before it (sum(...) by (x)).
func promAggregated(masked string, kw, listEnd int) ([2]int, bool) {
	if i := promSkipSpace(masked, listEnd+1); i < len(masked) && masked[i] == '(' {
		return [2]int{i, promClosing(masked, i)}, true
	}
	j := kw - 1
	for j >= 0 && strings.ContainsRune(" \t\n", rune(masked[j])) {
		j--
	}
	if j < 0 || masked[j] != ')' {
		return [2]int{}, false
	}
	depth := 0
	for k := j; k >= 0; k-- {
		switch masked[k] {
		case ')':
			depth++
		case '(':
			depth--
			if depth == 0 {
				return [2]int{k, j}, true
			}
		}
	}
	return [2]int{}, false
}

// promOutputLabels returns the labels an expression's series may have: those
// of its by clauses (le aside) and of the recorded series it uses, or if it
// aggregates nothing, those of every series in it. It is an approximation
// that holds for the shapes the deploy files use.
func promOutputLabels(expr string, recorded map[string][]string) []string {
	masked, err := promMask(expr)
	if err != nil {
		return nil
	}
	set := map[string]bool{}
	grouped := promAggregation.MatchString(masked)
	for _, m := range promGrouping.FindAllStringSubmatchIndex(masked, -1) {
		if masked[m[2]:m[3]] != "by" {
			continue
		}
		open := m[1] - 1
		for l := range strings.SplitSeq(masked[open+1:promClosing(masked, open)], ",") {
			if l = strings.TrimSpace(l); l != "" && l != "le" {
				set[l] = true
			}
		}
	}
	refs, _ := promChecker{recorded: recorded}.refs(masked)
	for _, r := range refs {
		if _, rec := recorded[r.name]; rec || !grouped {
			for _, l := range r.labels {
				if l != "le" {
					set[l] = true
				}
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// promMask returns expr with the insides of its string literals blanked, so
// that braces, commas and names in label values are not read as syntax.
func promMask(expr string) (string, error) {
	b := []byte(expr)
	for i := 0; i < len(b); i++ {
		q := b[i]
		if q != '"' && q != '\'' && q != '`' {
			continue
		}
		j := i + 1
		for ; j < len(b) && b[j] != q; j++ {
			if b[j] == '\\' && q != '`' {
				b[j] = ' '
				j++
				if j == len(b) {
					break
				}
			}
			b[j] = ' '
		}
		if j >= len(b) {
			return "", fmt.Errorf("unbalanced quote %c in %q", q, expr)
		}
		i = j
	}
	return string(b), nil
}

// promBalanced reports an error if the brackets of the masked expression do
// not pair up.
func promBalanced(masked string) error {
	pairs := map[byte]byte{')': '(', ']': '[', '}': '{'}
	var stack []byte
	for i := 0; i < len(masked); i++ {
		switch c := masked[i]; c {
		case '(', '[', '{':
			stack = append(stack, c)
		case ')', ']', '}':
			if len(stack) == 0 || stack[len(stack)-1] != pairs[c] {
				return fmt.Errorf("unbalanced %c at offset %d", c, i)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) > 0 {
		return fmt.Errorf("unbalanced %c", stack[len(stack)-1])
	}
	return nil
}

// promClosing returns the index of the bracket closing the one at open, in
// an expression promBalanced accepts.
func promClosing(masked string, open int) int {
	depth := 0
	for i := open; i < len(masked); i++ {
		switch masked[i] {
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return len(masked) - 1
}

func promSkipSpace(s string, i int) int {
	for i < len(s) && strings.ContainsRune(" \t\n", rune(s[i])) {
		i++
	}
	return i
}
