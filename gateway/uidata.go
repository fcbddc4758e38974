package gateway

import (
	"context"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sluice-gw/sluice/pipeline"
	"github.com/sluice-gw/sluice/store"
)

// A callRow is one finished call in the dashboard's live view.
type callRow struct {
	ID           string          `json:"id"`
	Time         time.Time       `json:"time"`
	KeyID        string          `json:"key_id,omitempty"`
	KeyName      string          `json:"key_name,omitempty"`
	Tenant       string          `json:"tenant,omitempty"`
	Route        string          `json:"route"`
	Model        string          `json:"model,omitempty"`
	Provider     string          `json:"provider,omitempty"`
	Stream       bool            `json:"stream"`
	Status       int             `json:"status"`
	Code         string          `json:"code,omitempty"`
	LatencyMS    float64         `json:"latency_ms"`
	TTFTMS       float64         `json:"ttft_ms,omitempty"`
	InputTokens  int             `json:"input_tokens"`
	OutputTokens int             `json:"output_tokens"`
	CostUSD      float64         `json:"cost_usd"`
	Attempts     int             `json:"attempts"`
	Retries      int             `json:"retries,omitempty"`
	Fallbacks    int             `json:"fallbacks,omitempty"`
	Hedges       int             `json:"hedges,omitempty"`
	Outcome      string          `json:"outcome,omitempty"`
	Detail       []attemptDetail `json:"attempts_detail,omitempty"`
	Prompt       string          `json:"prompt,omitempty"`
	Completion   string          `json:"completion,omitempty"`
}

type attemptDetail struct {
	Provider   string  `json:"provider"`
	Model      string  `json:"model"`
	Outcome    string  `json:"outcome"`
	Kind       string  `json:"kind"`
	DurationMS float64 `json:"duration_ms"`
	WaitMS     float64 `json:"wait_ms,omitempty"`
}

func msOf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// rowOf returns the live view's row of a call's record.
func rowOf(rec pipeline.Record) callRow {
	route := rec.Model
	if rec.Contract != "" {
		route = rec.Contract
	}
	row := callRow{ID: rec.ID, Time: rec.Start, KeyID: rec.Caller.Key, Tenant: rec.Caller.Tenant, Route: route,
		Model: rec.UpstreamModel, Provider: rec.Provider, Stream: rec.Stream, Status: rec.Status, Code: rec.Code(),
		LatencyMS: msOf(rec.Duration), TTFTMS: msOf(rec.TTFT), InputTokens: rec.Usage.InputTokens, OutputTokens: rec.Usage.OutputTokens,
		CostUSD: rec.Cost, Attempts: rec.Attempts, Retries: rec.Retries, Fallbacks: rec.Fallbacks, Hedges: rec.Hedges,
		Prompt: rec.Prompt, Completion: rec.Completion}
	switch code := rec.Code(); {
	case !rec.Structured():
	case code == "schema_violation":
		row.Outcome = "violation"
	case code != "":
		// failed otherwise: no answer to judge
	case rec.Repaired:
		row.Outcome = "repaired"
	default:
		row.Outcome = "valid"
	}
	if n := rec.NumAttemptDetails(); n > 0 {
		row.Detail = make([]attemptDetail, n)
		for i := range n {
			a := rec.AttemptDetail(i)
			row.Detail[i] = attemptDetail{Provider: a.Provider, Model: a.Model, Outcome: a.Outcome, Kind: a.Kind,
				DurationMS: msOf(a.Duration), WaitMS: msOf(a.Wait)}
		}
	}
	return row
}

// recentCalls keeps the last calls, newest last, and hands each new one
// to the live views subscribed.
type recentCalls struct {
	mu   sync.Mutex
	rows []callRow // a ring of cap n
	next int
	full bool
	subs map[chan callRow]struct{}
}

func newRecentCalls(n int) *recentCalls {
	return &recentCalls{rows: make([]callRow, n), subs: map[chan callRow]struct{}{}}
}

func (rc *recentCalls) add(row callRow) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.rows[rc.next] = row
	rc.next = (rc.next + 1) % len(rc.rows)
	rc.full = rc.full || rc.next == 0
	for ch := range rc.subs {
		select {
		case ch <- row:
		default: // a slow viewer misses a row rather than slowing calls
		}
	}
}

// each calls f with the rows, newest first, until f returns false.
// rc.mu is held.
func (rc *recentCalls) each(f func(*callRow) bool) {
	n := rc.next
	if rc.full {
		n = len(rc.rows)
	}
	for i := range n {
		j := (rc.next - 1 - i + len(rc.rows)) % len(rc.rows)
		if !f(&rc.rows[j]) {
			return
		}
	}
}

// keyNames caches the names of the keys, for the live view's rows.
type keyNames struct {
	mu    sync.Mutex
	names map[string]string
	at    time.Time
}

// get returns the keys' names, read again from the key store when the
// cache is older than 10 s.
func (kn *keyNames) get(ctx context.Context, p *pipeline.Pipeline, now time.Time) map[string]string {
	kn.mu.Lock()
	defer kn.mu.Unlock()
	if kn.names != nil && now.Sub(kn.at) < 10*time.Second {
		return kn.names
	}
	names := map[string]string{}
	if p.Keys() != nil {
		if keys, err := p.Auth().List(ctx); err == nil {
			for _, k := range keys {
				names[k.ID] = k.Name
			}
		}
	}
	kn.names, kn.at = names, now
	return names
}

// rowFilter selects rows: by route, status ("ok" or "error") and key id.
type rowFilter struct{ route, status, key string }

func (f rowFilter) match(r *callRow) bool {
	switch {
	case f.route != "" && r.Route != f.route:
		return false
	case f.key != "" && r.KeyID != f.key:
		return false
	case f.status == "ok" && r.Code != "":
		return false
	case f.status == "error" && r.Code == "":
		return false
	}
	return true
}

// list returns up to limit rows matching f, newest first, without their
// prompts and attempt details (the detail view has them).
func (rc *recentCalls) list(f rowFilter, limit int) []callRow {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := []callRow{}
	rc.each(func(r *callRow) bool {
		if f.match(r) {
			row := *r
			row.Prompt, row.Completion, row.Detail = "", "", nil
			out = append(out, row)
		}
		return len(out) < limit
	})
	return out
}

func (rc *recentCalls) get(id string) (callRow, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var found *callRow
	rc.each(func(r *callRow) bool {
		if r.ID == id {
			found = r
		}
		return found == nil
	})
	if found == nil {
		return callRow{}, false
	}
	return *found, true
}

// errorsByTarget counts the failed attempts of the recent calls by target
// and outcome.
func (rc *recentCalls) errorsByTarget() map[[2]string]map[string]int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := map[[2]string]map[string]int{}
	rc.each(func(r *callRow) bool {
		for _, a := range r.Detail {
			if a.Outcome == "ok" {
				continue
			}
			k := [2]string{a.Provider, a.Model}
			if out[k] == nil {
				out[k] = map[string]int{}
			}
			out[k][a.Outcome]++
		}
		return true
	})
	return out
}

// subscribe returns a channel of the calls that end from now on, until
// stop.
func (rc *recentCalls) subscribe() (<-chan callRow, func()) {
	ch := make(chan callRow, 64)
	rc.mu.Lock()
	rc.subs[ch] = struct{}{}
	rc.mu.Unlock()
	return ch, func() {
		rc.mu.Lock()
		delete(rc.subs, ch)
		rc.mu.Unlock()
	}
}

// uiStats keeps samples of the metrics, every sampleEvery at most, for an
// hour: the overview's figures are the differences between the newest and
// the oldest, read from the very counters /metrics serves.
type uiStats struct {
	reg   prometheus.Gatherer // nil: no metrics, an empty overview
	now   func() time.Time
	start time.Time

	mu       sync.Mutex
	samples  []uiSample // oldest first: the last hour's, and the last before it
	sampling atomic.Bool
}

const (
	sampleEvery  = 10 * time.Second
	sampleWindow = time.Hour
)

// uiSample is what the overview reads of the metrics at one moment.
type uiSample struct {
	t                          time.Time
	requests                   float64
	codes                      map[string]float64
	duration, ttft             histo
	tokensIn, tokensOut, cost  float64
	contractCalls, violations  float64
	retries, fallbacks, hedges float64
	openStreams                float64
}

// histo is a histogram summed over its series: cumulative bucket counts.
type histo struct {
	bounds, counts []float64
	count          float64
}

func newUIStats(reg prometheus.Gatherer, now func() time.Time) *uiStats {
	s := &uiStats{reg: reg, now: now, start: now()}
	if reg != nil {
		// The first sample is the base until an hour has passed: the
		// registry may have counted before the dashboard existed.
		if sm, ok := s.sample(s.start); ok {
			s.samples = append(s.samples, sm)
		}
	}
	return s
}

// maybeSample takes a sample if the last is older than sampleEvery.
func (s *uiStats) maybeSample() {
	if s.reg == nil {
		return
	}
	now := s.now()
	s.mu.Lock()
	due := len(s.samples) == 0 || now.Sub(s.samples[len(s.samples)-1].t) >= sampleEvery
	s.mu.Unlock()
	if !due || !s.sampling.CompareAndSwap(false, true) {
		return // not due, or another call is taking it
	}
	defer s.sampling.Store(false)
	sm, ok := s.sample(now)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.samples); n > 0 && now.Sub(s.samples[n-1].t) < sampleEvery {
		return // another call sampled meanwhile
	}
	s.samples = append(s.samples, sm)
	cut := 0
	for cut < len(s.samples)-1 && now.Sub(s.samples[cut+1].t) >= sampleWindow {
		cut++
	}
	s.samples = s.samples[cut:]
}

// sample reads the metrics now.
func (s *uiStats) sample(now time.Time) (uiSample, bool) {
	mfs, err := s.reg.Gather()
	if err != nil {
		return uiSample{}, false
	}
	sm := uiSample{t: now, codes: map[string]float64{}}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			label := func(name string) string {
				for _, l := range m.GetLabel() {
					if l.GetName() == name {
						return l.GetValue()
					}
				}
				return ""
			}
			v := m.GetCounter().GetValue()
			switch mf.GetName() {
			case "sluice_requests_total":
				sm.requests += v
				sm.codes[label("code")] += v
			case "sluice_request_duration_seconds":
				sm.duration.add(m.GetHistogram())
			case "sluice_time_to_first_token_seconds":
				sm.ttft.add(m.GetHistogram())
			case "sluice_tokens_total":
				switch label("direction") {
				case "input":
					sm.tokensIn += v
				case "output":
					sm.tokensOut += v
				}
			case "sluice_cost_usd_total":
				sm.cost += v
			case "sluice_contract_calls_total":
				sm.contractCalls += v
				if label("outcome") == "violation" {
					sm.violations += v
				}
			case "sluice_upstream_attempt_kinds_total":
				switch label("kind") {
				case "retry":
					sm.retries += v
				case "fallback":
					sm.fallbacks += v
				case "hedge":
					sm.hedges += v
				}
			case "sluice_open_streams":
				sm.openStreams += m.GetGauge().GetValue()
			}
		}
	}
	return sm, true
}

func (h *histo) add(p *dto.Histogram) {
	bs := p.GetBucket()
	if h.bounds == nil {
		h.bounds = make([]float64, len(bs))
		h.counts = make([]float64, len(bs))
		for i, b := range bs {
			h.bounds[i] = b.GetUpperBound()
		}
	}
	for i, b := range bs {
		if i < len(h.counts) {
			h.counts[i] += float64(b.GetCumulativeCount())
		}
	}
	h.count += float64(p.GetSampleCount())
}

// minus returns h's counts less base's (a zero base: h itself).
func (h histo) minus(base histo) histo {
	out := histo{bounds: h.bounds, counts: append([]float64(nil), h.counts...), count: h.count - base.count}
	for i := range out.counts {
		if i < len(base.counts) {
			out.counts[i] -= base.counts[i]
		}
	}
	return out
}

// quantile returns the q-quantile in milliseconds, interpolated within
// its bucket as Prometheus's histogram_quantile does; nil with no data.
func (h histo) quantile(q float64) *float64 {
	if h.count <= 0 || len(h.bounds) == 0 {
		return nil
	}
	rank := q * h.count
	i := sort.Search(len(h.counts), func(i int) bool { return h.counts[i] >= rank })
	var v float64
	switch {
	case i >= len(h.bounds):
		v = h.bounds[len(h.bounds)-1] // in the +Inf bucket: its lower bound
	default:
		lo, below := 0.0, 0.0
		if i > 0 {
			lo, below = h.bounds[i-1], h.counts[i-1]
		}
		in := h.counts[i] - below
		v = h.bounds[i]
		if in > 0 {
			v = lo + (h.bounds[i]-lo)*(rank-below)/in
		}
	}
	ms := math.Round(v*1e6) / 1e3
	return &ms
}

// uiOverview is GET /ui/api/overview.
type uiOverview struct {
	WindowSeconds float64             `json:"window_seconds"`
	Since         time.Time           `json:"since"`
	Requests      float64             `json:"requests"`
	RPS           float64             `json:"rps"`
	Errors        map[string]float64  `json:"errors"`
	ErrorRate     float64             `json:"error_rate"`
	LatencyMS     map[string]*float64 `json:"latency_ms"`
	TTFTMS        map[string]*float64 `json:"ttft_ms"`
	Tokens        map[string]float64  `json:"tokens"`
	CostUSD       float64             `json:"cost_usd"`
	SchemaPer1000 *float64            `json:"schema_failures_per_1000"`
	OpenStreams   float64             `json:"open_streams"`
	Retries       float64             `json:"retries"`
	Fallbacks     float64             `json:"fallbacks"`
	Hedges        float64             `json:"hedges"`
	ByModel       []usageView         `json:"by_model"`
	ByKey         []usageView         `json:"by_key"`
	Series        uiSeries            `json:"series"`
}

type uiSeries struct {
	StepSeconds float64    `json:"step_seconds"`
	T           []int64    `json:"t"`
	RPS         []float64  `json:"rps"`
	ErrorRate   []float64  `json:"error_rate"`
	P95MS       []*float64 `json:"p95_ms"`
}

// usageView is a ledger total in the overview: by model (Model set) or by
// key (KeyID and Name set).
type usageView struct {
	Model        string  `json:"model,omitempty"`
	KeyID        string  `json:"key_id,omitempty"`
	Name         string  `json:"name,omitempty"`
	Requests     int64   `json:"requests"`
	Errors       int64   `json:"errors"`
	InputTokens  int64   `json:"input_tokens"`
	OutputTokens int64   `json:"output_tokens"`
	CostUSD      float64 `json:"cost_usd"`
}

func usageViewOf(t store.UsageTotal) usageView {
	return usageView{Requests: t.Requests, Errors: t.Errors, InputTokens: t.InputTokens, OutputTokens: t.OutputTokens, CostUSD: t.CostUSD}
}

// failures returns the calls of codes that count as errors: every code
// but ok and client_closed.
func failures(codes, base map[string]float64) (map[string]float64, float64) {
	out := map[string]float64{}
	total := 0.0
	for c, v := range codes {
		if c == "ok" || c == pipeline.CodeClientClosed {
			continue
		}
		if d := v - base[c]; d > 0 {
			out[c] = d
			total += d
		}
	}
	return out, total
}

// overview returns the figures of the last hour (or since the gateway
// started, when that is less), from a fresh sample and the oldest kept.
func (s *uiStats) overview() uiOverview {
	ov := uiOverview{Errors: map[string]float64{}, LatencyMS: map[string]*float64{}, TTFTMS: map[string]*float64{},
		Tokens: map[string]float64{}, ByModel: []usageView{}, ByKey: []usageView{},
		Series: uiSeries{StepSeconds: sampleEvery.Seconds(), T: []int64{}, RPS: []float64{}, ErrorRate: []float64{}, P95MS: []*float64{}}}
	if s.reg == nil {
		ov.Since = s.start
		return ov
	}
	s.maybeSample()
	now := s.now()
	cur, ok := s.sample(now)
	if !ok {
		return ov
	}
	s.mu.Lock()
	samples := append([]uiSample(nil), s.samples...)
	s.mu.Unlock()
	base := uiSample{t: s.start, codes: map[string]float64{}}
	if len(samples) > 0 {
		// The oldest kept: the last sample before the hour (calls made
		// since are in the window; none were made between it and the
		// next sample, which a call would have taken), or the first.
		base = samples[0]
	}
	window := min(now.Sub(base.t), sampleWindow).Seconds()
	var since time.Time
	if now.Sub(base.t) > sampleWindow {
		since = now.Add(-sampleWindow)
	} else {
		since = base.t
	}
	ov.Since, ov.WindowSeconds = since, math.Round(window)
	ov.Requests = cur.requests - base.requests
	if window > 0 {
		ov.RPS = math.Round(ov.Requests/window*1000) / 1000
	}
	var failed float64
	ov.Errors, failed = failures(cur.codes, base.codes)
	if ov.Requests > 0 {
		ov.ErrorRate = failed / ov.Requests
	}
	d, t := cur.duration.minus(base.duration), cur.ttft.minus(base.ttft)
	for _, q := range []struct {
		name string
		q    float64
	}{{"p50", 0.5}, {"p95", 0.95}, {"p99", 0.99}} {
		ov.LatencyMS[q.name], ov.TTFTMS[q.name] = d.quantile(q.q), t.quantile(q.q)
	}
	ov.Tokens["input"], ov.Tokens["output"] = cur.tokensIn-base.tokensIn, cur.tokensOut-base.tokensOut
	ov.CostUSD = cur.cost - base.cost
	if calls := cur.contractCalls - base.contractCalls; calls > 0 {
		v := math.Round((cur.violations-base.violations)/calls*1000*10) / 10
		ov.SchemaPer1000 = &v
	}
	ov.OpenStreams = cur.openStreams
	ov.Retries, ov.Fallbacks, ov.Hedges = cur.retries-base.retries, cur.fallbacks-base.fallbacks, cur.hedges-base.hedges
	points := samples
	if n := len(samples); n == 0 || cur.t.Sub(samples[n-1].t) >= sampleEvery/2 {
		// The step since the last sample is long enough to say
		// something; a shorter one would be noise (or divide by
		// microseconds).
		points = append(points, cur)
	}
	for i := 1; i < len(points); i++ {
		a, b := points[i-1], points[i]
		dt := b.t.Sub(a.t).Seconds()
		if dt <= 0 {
			continue
		}
		n := b.requests - a.requests
		_, f := failures(b.codes, a.codes)
		rate := 0.0
		if n > 0 {
			rate = f / n
		}
		ov.Series.T = append(ov.Series.T, b.t.Unix())
		ov.Series.RPS = append(ov.Series.RPS, math.Round(n/dt*1000)/1000)
		ov.Series.ErrorRate = append(ov.Series.ErrorRate, rate)
		ov.Series.P95MS = append(ov.Series.P95MS, b.duration.minus(a.duration).quantile(0.95))
	}
	return ov
}

// usageLastHour returns the ledger's spend of the last hour by model and
// by key (with the keys' names).
func (u *ui) usageLastHour(ctx context.Context) ([]usageView, []usageView) {
	p := u.g.p
	byModel, byKey := []usageView{}, []usageView{}
	if p.Ledger() == nil {
		return byModel, byKey
	}
	if err := p.FlushLedger(ctx); err != nil {
		return byModel, byKey
	}
	from := u.g.opts.Now().Add(-sampleWindow)
	if rows, err := p.Ledger().Usage(ctx, store.UsageQuery{By: store.ByModel, From: from}); err == nil {
		for _, r := range rows {
			v := usageViewOf(r)
			v.Model = r.Group
			byModel = append(byModel, v)
		}
	}
	names := map[string]string{}
	if p.Keys() != nil {
		if keys, err := p.Auth().List(ctx); err == nil {
			for _, k := range keys {
				names[k.ID] = k.Name
			}
		}
	}
	if rows, err := p.Ledger().Usage(ctx, store.UsageQuery{By: store.ByKey, From: from}); err == nil {
		for _, r := range rows {
			v := usageViewOf(r)
			v.KeyID, v.Name = r.Group, names[r.Group]
			byKey = append(byKey, v)
		}
	}
	return byModel, byKey
}
