package gateway

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/contract"
	"github.com/sluice-gw/sluice/guard"
	"github.com/sluice-gw/sluice/pipeline"
	"github.com/sluice-gw/sluice/sse"
)

// The admin dashboard (/ui): server-rendered pages from ui/, filled by
// ui/app.js from the JSON API under /ui/api, behind the admin key. See
// docs/ui.md.

//go:embed ui
var uiFS embed.FS

// uiPages are the dashboard's pages, each a template over layout.html.
var uiPages = []struct{ name, title string }{
	{"overview", "Overview"}, {"requests", "Requests"}, {"keys", "Keys"},
	{"providers", "Providers"}, {"playground", "Playground"},
}

const (
	uiCookie     = "sluice_ui"
	uiSessionTTL = 12 * time.Hour
	uiRecent     = 1000 // calls kept for the live view
)

// ui is the dashboard's state.
type ui struct {
	g      *Gateway
	pages  map[string]*template.Template
	login  *template.Template
	static http.Handler

	mu       sync.Mutex
	sessions map[string]uiSession

	recent *recentCalls
	stats  *uiStats
	keys   keyNames

	limitsMu sync.Mutex
	limits   map[string]keyLimits // by key id: the rate limits of its last call
}

// keyLimits are a key's rate limits as its last call found them.
type keyLimits struct {
	h  guard.Headers
	at time.Time
}

type uiSession struct {
	csrf    string
	expires time.Time
}

// newUI returns the dashboard of g; it watches g's pipeline for the live
// view from now on.
func newUI(g *Gateway) *ui {
	u := &ui{g: g, pages: map[string]*template.Template{}, sessions: map[string]uiSession{}, limits: map[string]keyLimits{},
		recent: newRecentCalls(uiRecent), stats: newUIStats(g.opts.Registry, g.opts.Now)}
	for _, p := range uiPages {
		u.pages[p.name] = template.Must(template.ParseFS(uiFS, "ui/layout.html", "ui/"+p.name+".html"))
	}
	u.login = template.Must(template.ParseFS(uiFS, "ui/login.html"))
	files, err := fs.Sub(uiFS, "ui")
	if err != nil {
		panic(err) // the embedded tree always has ui/
	}
	fileServer := http.StripPrefix("/ui/static/", http.FileServerFS(files))
	u.static = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ui/static/app.js", "/ui/static/style.css": // the templates and listings are not served
			w.Header().Set("X-Content-Type-Options", "nosniff")
			fileServer.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
	g.p.Watch(func(rec pipeline.Record) {
		u.recent.add(rowOf(rec))
		if rec.Caller.Key != "" && rec.RateLimits != (guard.Headers{}) {
			u.limitsMu.Lock()
			u.limits[rec.Caller.Key] = keyLimits{rec.RateLimits, rec.Start}
			u.limitsMu.Unlock()
		}
		u.stats.maybeSample()
	})
	return u
}

// routes adds the dashboard's routes to mux.
func (u *ui) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /ui/login", u.handleLoginPage)
	mux.HandleFunc("POST /ui/login", u.handleLogin)
	mux.HandleFunc("POST /ui/logout", u.handleLogout)
	mux.Handle("GET /ui/static/", u.static)
	mux.Handle("GET /ui", u.page("overview"))
	mux.Handle("GET /ui/{$}", u.page("overview"))
	for _, p := range uiPages[1:] {
		mux.Handle("GET /ui/"+p.name, u.page(p.name))
	}
	mux.Handle("GET /ui/api/overview", u.api(u.handleOverview))
	mux.Handle("GET /ui/api/requests", u.api(u.handleRequests))
	mux.Handle("GET /ui/api/requests/stream", u.api(u.handleRequestStream))
	mux.Handle("GET /ui/api/requests/{id}", u.api(u.handleRequest))
	mux.Handle("GET /ui/api/keys", u.api(u.handleKeys))
	mux.Handle("POST /ui/api/keys", u.api(u.handleKeyAdmin))
	mux.Handle("POST /ui/api/keys/{id}/{op}", u.api(u.handleKeyAdmin))
	mux.Handle("GET /ui/api/providers", u.api(u.handleProviders))
	mux.Handle("POST /ui/api/playground", u.api(u.handlePlayground))
	mux.Handle("/ui/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }))
}

// session returns r's valid session and its id.
func (u *ui) session(r *http.Request) (string, uiSession, bool) {
	c, err := r.Cookie(uiCookie)
	if err != nil {
		return "", uiSession{}, false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	s, ok := u.sessions[c.Value]
	if !ok || u.g.opts.Now().After(s.expires) {
		delete(u.sessions, c.Value)
		return "", uiSession{}, false
	}
	return c.Value, s, true
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// setPageHeaders sets the headers of every dashboard page: HTML, never
// cached, nothing loaded from elsewhere, never framed.
func setPageHeaders(h http.Header) {
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
}

func (u *ui) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	setPageHeaders(w.Header())
	u.login.ExecuteTemplate(w, "login", map[string]any{"Failed": r.URL.Query().Get("failed") != ""})
}

// handleLogin checks the admin key of the form (in constant time) and
// starts a session: the key itself is never stored in the page or the
// cookie.
func (u *ui) handleLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	key := r.PostFormValue("key")
	// Hashes compared, as the admin API does: the same length whatever
	// was sent.
	if subtle.ConstantTimeCompare([]byte(guard.HashKey(key)), []byte(guard.HashKey(u.g.opts.AdminKey))) != 1 {
		u.g.logger.Warn("dashboard login refused", "request_id", requestID(r.Context()), "client_ip", clientIP(r, u.g.opts.TrustedProxies))
		http.Redirect(w, r, "/ui/login?failed=1", http.StatusSeeOther)
		return
	}
	id := randomHex(32)
	now := u.g.opts.Now()
	u.mu.Lock()
	for k, s := range u.sessions { // drop expired sessions
		if now.After(s.expires) {
			delete(u.sessions, k)
		}
	}
	u.sessions[id] = uiSession{csrf: randomHex(16), expires: now.Add(uiSessionTTL)}
	u.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: uiCookie, Value: id, Path: "/ui", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https", MaxAge: int(uiSessionTTL / time.Second)})
	http.Redirect(w, r, "/ui", http.StatusSeeOther)
}

// handleLogout ends the session (a forged logout harms nobody: it needs
// no token).
func (u *ui) handleLogout(w http.ResponseWriter, r *http.Request) {
	if id, _, ok := u.session(r); ok {
		u.mu.Lock()
		delete(u.sessions, id)
		u.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: uiCookie, Value: "", Path: "/ui", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// page serves one page to a signed-in browser, and sends others to the
// login form.
func (u *ui) page(name string) http.Handler {
	title := name
	for _, p := range uiPages {
		if p.name == name {
			title = p.title
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, s, ok := u.session(r)
		if !ok {
			http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
			return
		}
		var buf bytes.Buffer
		if err := u.pages[name].ExecuteTemplate(&buf, "layout", map[string]any{"Page": name, "Title": title, "CSRF": s.csrf}); err != nil {
			u.g.logError(r, "dashboard page", sluice.WrapError(sluice.CodeInternal, err))
			http.Error(w, "The page could not be rendered.", http.StatusInternalServerError)
			return
		}
		setPageHeaders(w.Header())
		w.Write(buf.Bytes())
	})
}

// api serves a JSON API handler to a signed-in browser; a POST must also
// carry the session's CSRF token.
func (u *ui) api(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, s, ok := u.session(r)
		if !ok {
			writeErrorFor(w, r, &sluice.Error{Code: sluice.CodeUnauthenticated, Message: "Sign in to the dashboard first."})
			return
		}
		if r.Method == http.MethodPost && subtle.ConstantTimeCompare([]byte(r.Header.Get("X-CSRF-Token")), []byte(s.csrf)) != 1 {
			writeErrorFor(w, r, &sluice.Error{Code: sluice.CodePermissionDenied, Message: "The dashboard's form token is missing or stale; reload the page."})
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		h(w, r)
	})
}

func (u *ui) handleOverview(w http.ResponseWriter, r *http.Request) {
	ov := u.stats.overview()
	ov.ByModel, ov.ByKey = u.usageLastHour(r.Context())
	writeJSON(w, ov)
}

func (u *ui) handleRequests(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := rowFilter{route: q.Get("route"), status: q.Get("status"), key: q.Get("key")}
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit <= 0 {
		limit = 100
	}
	rows := u.recent.list(f, min(limit, uiRecent))
	names := u.keys.get(r.Context(), u.g.p, u.g.opts.Now())
	for i := range rows {
		rows[i].KeyName = names[rows[i].KeyID]
	}
	writeJSON(w, map[string]any{"requests": rows})
}

func (u *ui) handleRequest(w http.ResponseWriter, r *http.Request) {
	row, ok := u.recent.get(r.PathValue("id"))
	if !ok {
		writeErrorFor(w, r, &sluice.Error{Code: sluice.CodeNotFound, Message: "That request is not among the recent ones."})
		return
	}
	row.KeyName = u.keys.get(r.Context(), u.g.p, u.g.opts.Now())[row.KeyID]
	writeJSON(w, row)
}

// handleRequestStream sends each call as it ends, as server-sent events.
func (u *ui) handleRequestStream(w http.ResponseWriter, r *http.Request) {
	ch, stop := u.recent.subscribe()
	defer stop()
	sse.SetHeaders(w.Header())
	sw := sse.NewWriter(w)
	deadline := func() { sw.SetWriteDeadline(time.Now().Add(u.g.opts.StreamWriteTimeout)) }
	deadline()
	sw.WriteComment("live")
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-u.g.drainCtx.Done():
			return // the page's EventSource reconnects, to another instance
		case <-ping.C:
			if _, _, ok := u.session(r); !ok {
				return // signed out, or the session expired
			}
			deadline()
			if sw.WriteComment("ping") != nil {
				return
			}
		case row := <-ch:
			if _, _, ok := u.session(r); !ok {
				return
			}
			row.KeyName = u.keys.get(r.Context(), u.g.p, u.g.opts.Now())[row.KeyID]
			row.Prompt, row.Completion, row.Detail = "", "", nil // the detail view has them
			b, _ := json.Marshal(row)
			deadline()
			if sw.WriteEvent("request", b) != nil {
				return
			}
		}
	}
}

// keyRow is a key in the dashboard: its view, spend and limits.
type keyRow struct {
	KeyView
	Active          bool    `json:"active"`
	SpendTodayUSD   float64 `json:"spend_today_usd"`
	SpendMonthUSD   float64 `json:"spend_month_usd"`
	DailyBudgetUSD  float64 `json:"daily_budget_usd,omitempty"`
	MonthlyBudget   float64 `json:"monthly_budget_usd,omitempty"`
	RPM             int64   `json:"rpm,omitempty"`
	TPM             int64   `json:"tpm,omitempty"`
	DisabledAsState bool    `json:"disabled"`
	// Headroom is what the key's rate limits had left at its last call on
	// this instance (none before one).
	Headroom *headroom `json:"headroom,omitempty"`
}

type headroom struct {
	RequestsRemaining int64     `json:"requests_remaining"`
	RequestsLimit     int64     `json:"requests_limit"`
	TokensRemaining   int64     `json:"tokens_remaining"`
	TokensLimit       int64     `json:"tokens_limit"`
	AsOf              time.Time `json:"as_of"`
}

func (u *ui) handleKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := u.g.p.Auth().List(r.Context())
	if err != nil {
		u.g.adminError(w, r, err)
		return
	}
	rows := make([]keyRow, 0, len(keys))
	for _, k := range keys {
		row := keyRow{KeyView: KeyViewOf(k), Active: k.Disabled.IsZero(), DisabledAsState: !k.Disabled.IsZero()}
		row.SpendTodayUSD, row.SpendMonthUSD, _ = u.g.p.Spent(r.Context(), k.ID)
		if t, ok := u.g.p.Tier(k.Tier); ok {
			row.DailyBudgetUSD, row.MonthlyBudget, row.RPM, row.TPM = t.DailyBudgetUSD, t.MonthlyBudgetUSD, t.RPM, t.TPM
		}
		u.limitsMu.Lock()
		if l, ok := u.limits[k.ID]; ok {
			row.Headroom = &headroom{RequestsRemaining: l.h.RemainingRequests, RequestsLimit: l.h.LimitRequests,
				TokensRemaining: l.h.RemainingTokens, TokensLimit: l.h.LimitTokens, AsOf: l.at}
		}
		u.limitsMu.Unlock()
		rows = append(rows, row)
	}
	writeJSON(w, map[string]any{"keys": rows, "tiers": u.g.p.TierNames()})
}

// handleKeyAdmin creates, disables and rotates keys through the admin
// API's own handler: the same code as /admin/keys and `sluice keys`.
func (u *ui) handleKeyAdmin(w http.ResponseWriter, r *http.Request) {
	if id := r.PathValue("id"); id != "" && !plainID(id) {
		writeErrorFor(w, r, &sluice.Error{Code: sluice.CodeNotFound, Message: "There is no such key."})
		return
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path = "/admin" + strings.TrimPrefix(r.URL.Path, "/ui/api")
	r2.URL.RawPath = ""
	u.g.handleAdminKeys().ServeHTTP(w, r2)
}

// providersView is what the providers page shows.
type providersView struct {
	Targets   []targetView       `json:"targets"`
	Routes    []routeView        `json:"routes"`
	Contracts []pipelineContract `json:"contracts"`
}

type pipelineContract = pipeline.ContractInfo

type targetView struct {
	Route         string         `json:"route"`
	Provider      string         `json:"provider"`
	Model         string         `json:"model"`
	Breaker       string         `json:"breaker"`
	OpenForMS     float64        `json:"open_for_ms,omitempty"`
	InFlight      *int           `json:"in_flight"` // null: no bulkhead counts them
	MaxConcurrent int            `json:"max_concurrent"`
	RecentErrors  map[string]int `json:"recent_errors"`
}

type routeView struct {
	Name    string            `json:"name"`
	Targets []routeTargetView `json:"targets"`
	Retry   map[string]any    `json:"retry,omitempty"`
	Hedge   map[string]any    `json:"hedge,omitempty"`
	Breaker map[string]any    `json:"breaker,omitempty"`
	Cache   map[string]any    `json:"cache,omitempty"`
}

type routeTargetView struct {
	Provider string `json:"provider"`
	Model    string `json:"model"`
	Weight   int    `json:"weight,omitempty"`
}

func (u *ui) handleProviders(w http.ResponseWriter, r *http.Request) {
	p := u.g.p
	breakers := map[[2]string]string{}
	openFor := map[[2]string]time.Duration{}
	for _, b := range p.Breakers() {
		breakers[[2]string{b.Provider, b.Model}] = b.State.String()
		openFor[[2]string{b.Provider, b.Model}] = b.Remaining
	}
	bulkheads := map[string][2]int{}
	for _, b := range p.Bulkheads() {
		bulkheads[b.Provider] = [2]int{b.InFlight, b.MaxConcurrent}
	}
	errs := u.recent.errorsByTarget()
	var v providersView
	for _, rt := range p.Routes() {
		rv := routeView{Name: rt.Name}
		if rt.Retry.Attempts > 1 {
			rv.Retry = map[string]any{"attempts": rt.Retry.Attempts, "budget": rt.Retry.Budget}
		}
		if rt.Hedge.After > 0 || rt.Hedge.P95 {
			rv.Hedge = map[string]any{"after_ms": float64(rt.Hedge.After.Microseconds()) / 1000, "p95": rt.Hedge.P95}
		}
		if c, ok := p.RouteCache(rt.Name); ok {
			serve := "down"
			if c.Always {
				serve = "always"
			}
			rv.Cache = map[string]any{"ttl_ms": msOf(c.TTL), "max_temperature": c.MaxTemperature, "serve": serve}
		}
		if b := rt.Breaker; b.FailureRate > 0 || b.Consecutive > 0 {
			rv.Breaker = map[string]any{"failure_rate": b.FailureRate, "consecutive": b.Consecutive,
				"window_ms": msOf(b.Window), "min_requests": b.MinRequests, "open_for_ms": msOf(b.OpenFor)}
		}
		for _, t := range rt.Targets {
			rv.Targets = append(rv.Targets, routeTargetView{Provider: t.ProviderName, Model: t.Model, Weight: t.Weight})
			key := [2]string{t.ProviderName, t.Model}
			state := breakers[key]
			if state == "" {
				state = "none"
			}
			tv := targetView{Route: rt.Name, Provider: t.ProviderName, Model: t.Model, Breaker: state,
				OpenForMS: float64(openFor[key].Microseconds()) / 1000, RecentErrors: errs[key]}
			if bh, ok := bulkheads[t.ProviderName]; ok {
				tv.InFlight, tv.MaxConcurrent = &bh[0], bh[1]
			}
			if tv.RecentErrors == nil {
				tv.RecentErrors = map[string]int{}
			}
			v.Targets = append(v.Targets, tv)
		}
		v.Routes = append(v.Routes, rv)
	}
	v.Contracts = p.Contracts()
	writeJSON(w, v)
}

// playgroundCall is the body of POST /ui/api/playground.
type playgroundCall struct {
	Target  string `json:"target"` // route:NAME or contract:NAME
	System  string `json:"system"`
	Message string `json:"message"`
}

// handlePlayground runs one call from the dashboard and streams it back as
// server-sent events: delta (route text), partial and result (contract
// objects), error, then done with its usage, cost, attempts and request
// id. The call is the dashboard's own: no API key, the default tier.
func (u *ui) handlePlayground(w http.ResponseWriter, r *http.Request) {
	var call playgroundCall
	body, err := u.g.readBody(w, r)
	if err == nil {
		err = json.Unmarshal(body, &call)
	}
	kind, name, _ := strings.Cut(call.Target, ":")
	if err != nil || name == "" || (kind != "route" && kind != "contract") || strings.TrimSpace(call.Message) == "" {
		writeErrorFor(w, r, &sluice.Error{Code: sluice.CodeInvalidRequest, Message: `Send {"target": "route:NAME" or "contract:NAME", "system": ..., "message": ...} with a message.`})
		return
	}
	ctx, stop := u.g.callContext(r)
	defer stop()
	id := requestID(r.Context())
	info := &pipeline.CallInfo{BodyBytes: len(body), Dialect: "ui", Received: time.Now()}
	ctx = pipeline.WithCallInfo(ctx, info)
	var s sluice.Stream
	if kind == "contract" {
		input := json.RawMessage(call.Message)
		if !json.Valid(input) {
			input, _ = json.Marshal(call.Message)
		}
		ctx = pipeline.WithCaller(ctx, id, sluice.Caller{IP: clientIP(r, u.g.opts.TrustedProxies)})
		s, err = u.g.p.StreamContract(ctx, name, input)
	} else {
		req := &sluice.Request{ID: id, Model: name, Stream: true, Caller: sluice.Caller{IP: clientIP(r, u.g.opts.TrustedProxies)},
			Messages: []sluice.Message{{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart(call.Message)}}}}
		if call.System != "" {
			req.System = []sluice.Part{sluice.TextPart(call.System)}
		}
		s, err = u.g.p.Stream(ctx, req)
	}
	sse.SetHeaders(w.Header())
	sw := sse.NewWriter(w)
	event := func(name string, v any) {
		b, _ := json.Marshal(v)
		// A browser that stops reading ends the call rather than hold it.
		sw.SetWriteDeadline(time.Now().Add(u.g.opts.StreamWriteTimeout))
		if sw.WriteEvent(name, b) != nil {
			stop()
		}
	}
	failed := func(err error) {
		e := u.g.clientError(r, err)
		event("error", map[string]string{"code": string(e.Code), "message": e.Message})
	}
	if err == nil {
		var (
			partials contract.Partials
			buf      []byte
			grew     bool
		)
		for ev, err2 := range s.All() {
			if err2 != nil {
				err = err2
				break
			}
			if ev.Type != sluice.EventText {
				continue
			}
			if kind == "route" {
				event("delta", map[string]string{"text": ev.Text})
				continue
			}
			if buf, grew = partials.Add(buf[:0], ev.Text); grew {
				event("partial", map[string]json.RawMessage{"object": json.RawMessage(buf)})
			}
		}
		s.Close() // the call's record is made: its usage and cost are known
		if err == nil && kind == "contract" {
			// The pipeline validated the whole answer.
			event("result", map[string]any{"object": json.RawMessage(contract.Unfence(partials.Text())), "valid": true})
		}
	}
	if err != nil {
		failed(err)
	}
	done := map[string]any{"request_id": id, "attempts": info.Attempts,
		"usage":      map[string]int{"input_tokens": info.Usage.InputTokens, "output_tokens": info.Usage.OutputTokens},
		"cost_usd":   info.CostUSD,
		"latency_ms": float64(time.Since(info.Received).Microseconds()) / 1000}
	if row, ok := u.recent.get(id); ok {
		done["ttft_ms"], done["attempts"] = row.TTFTMS, row.Attempts
	}
	event("done", done)
}
