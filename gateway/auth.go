package gateway

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/guard"
	"github.com/sluice-gw/sluice/openai"
	"github.com/sluice-gw/sluice/pipeline"
	"github.com/sluice-gw/sluice/store"
)

type callerKey struct{}

// withAuth requires an API key when the pipeline's config does: the key's
// identity (id, tenant, tier, user) becomes the caller of the request's
// calls. Unknown, disabled and malformed keys are all unauthenticated.
// Without required keys, the request goes on with no identity.
func (g *Gateway) withAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.p.KeysRequired() {
			next.ServeHTTP(w, r)
			return
		}
		k, err := g.p.Auth().Authenticate(r.Context(), guard.KeyFromHeader(r.Header))
		if err != nil {
			e := sluice.AsError(err)
			if e.Code != sluice.CodeUnauthenticated {
				g.logError(r, "key store unavailable", e)
				e = &sluice.Error{Code: sluice.CodeOverloaded, RetryAfter: time.Second,
					Message: "Keys cannot be checked right now; try again.", Err: err}
			}
			writeErrorFor(w, r, e)
			return
		}
		c := sluice.Caller{Key: k.ID, Tenant: k.Tenant, Tier: k.Tier, User: k.User}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	})
}

// authCaller returns the identity withAuth found for r, with the end user
// the request names where the key names none.
func authCaller(r *http.Request, c sluice.Caller) sluice.Caller {
	k, ok := r.Context().Value(callerKey{}).(sluice.Caller)
	if !ok {
		return c
	}
	if k.User == "" {
		k.User = c.User
	}
	k.IP = c.IP
	return k
}

// setCallHeaders sets the headers that tell a client about its call: the
// rate limits it was held to and the upstream attempts it took.
func setCallHeaders(h http.Header, info *pipeline.CallInfo) {
	info.RateLimits.Set(h)
	if info.Attempts > 0 {
		h[AttemptsHeader] = []string{strconv.Itoa(info.Attempts)} // canonical already
	}
	if info.CacheHit {
		h.Set(CacheHeader, "hit")
	}
}

// setUsageHeaders sets a whole contract answer's usage, cost and repairs:
// Sluice-Input-Tokens, Sluice-Output-Tokens, Sluice-Cost-Usd and
// Sluice-Repairs (a chat answer carries its usage in its body; a stream's
// headers go out before they are known).
func setUsageHeaders(h http.Header, info *pipeline.CallInfo) {
	if !info.Ended {
		return
	}
	h["Sluice-Input-Tokens"] = []string{strconv.Itoa(info.Usage.InputTokens)}
	h["Sluice-Output-Tokens"] = []string{strconv.Itoa(info.Usage.OutputTokens)}
	h["Sluice-Cost-Usd"] = []string{strconv.FormatFloat(info.CostUSD, 'g', -1, 64)}
	h["Sluice-Repairs"] = []string{strconv.Itoa(info.Repairs)}
}

// CacheHeader marks an answer served from the route's response cache.
const CacheHeader = "Sluice-Cache"

// AttemptsHeader carries the number of upstream attempts a call took.
const AttemptsHeader = "Sluice-Attempts"

// withAdmin requires the admin key (auth.admin_key) as a bearer token;
// with none configured, the admin API does not exist.
func (g *Gateway) withAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		admin := g.opts.AdminKey
		if admin == "" {
			openai.WriteError(w, &sluice.Error{Code: sluice.CodeNotFound, Message: "There is no admin API on this gateway (set auth.admin_key)."})
			return
		}
		got := guard.KeyFromHeader(r.Header)
		if subtle.ConstantTimeCompare([]byte(guard.HashKey(got)), []byte(guard.HashKey(admin))) != 1 {
			openai.WriteError(w, &sluice.Error{Code: sluice.CodeUnauthenticated, Message: "The admin key is missing or wrong."})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// A KeyView is a key as the admin API and `sluice keys list --json` show
// it: never its hash.
type KeyView struct {
	ID       string     `json:"id"`
	Name     string     `json:"name,omitempty"`
	Tenant   string     `json:"tenant,omitempty"`
	Tier     string     `json:"tier,omitempty"`
	User     string     `json:"user,omitempty"`
	Created  time.Time  `json:"created"`
	Disabled *time.Time `json:"disabled,omitempty"`
	Rotated  *time.Time `json:"rotated,omitempty"`
	Key      string     `json:"key,omitempty"` // the secret, once, when created or rotated
}

// KeyViewOf returns the view of k.
func KeyViewOf(k store.Key) KeyView {
	v := KeyView{ID: k.ID, Name: k.Name, Tenant: k.Tenant, Tier: k.Tier, User: k.User, Created: k.Created}
	if !k.Disabled.IsZero() {
		v.Disabled = &k.Disabled
	}
	if !k.Rotated.IsZero() {
		v.Rotated = &k.Rotated
	}
	return v
}

// handleAdminKeys serves the admin API of keys: GET /admin/keys lists
// them; POST /admin/keys creates one ({"tier", "tenant", "user", "name"})
// and shows its secret once; POST /admin/keys/{id}/disable and
// /admin/keys/{id}/rotate (which shows the new secret once).
func (g *Gateway) handleAdminKeys() http.Handler {
	mux := http.NewServeMux()
	auth := g.p.Auth()
	mux.HandleFunc("GET /admin/keys", func(w http.ResponseWriter, r *http.Request) {
		keys, err := auth.List(r.Context())
		if err != nil {
			g.adminError(w, r, err)
			return
		}
		out := make([]KeyView, 0, len(keys))
		for _, k := range keys {
			out = append(out, KeyViewOf(k))
		}
		writeAdminJSON(w, http.StatusOK, map[string]any{"keys": out})
	})
	mux.HandleFunc("POST /admin/keys", func(w http.ResponseWriter, r *http.Request) {
		var spec struct{ Name, Tenant, Tier, User string }
		body, err := g.readBody(w, r)
		if err == nil {
			err = json.Unmarshal(body, &spec)
		}
		if err != nil || spec.Tier == "" || !g.p.HasTier(spec.Tier) {
			openai.WriteError(w, &sluice.Error{Code: sluice.CodeInvalidRequest, Param: "tier", Message: "Send a JSON object naming a configured tier: {\"tier\": ..., \"tenant\": ..., \"user\": ..., \"name\": ...}."})
			return
		}
		secret, k, err := auth.Create(r.Context(), guard.KeySpec{Name: spec.Name, Tenant: spec.Tenant, Tier: spec.Tier, User: spec.User})
		if err != nil {
			g.adminError(w, r, err)
			return
		}
		v := KeyViewOf(k)
		v.Key = secret
		writeAdminJSON(w, http.StatusCreated, v)
	})
	mux.HandleFunc("POST /admin/keys/{id}/{op}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		var err error
		var secret string
		switch r.PathValue("op") {
		case "disable":
			err = auth.Disable(r.Context(), id)
		case "rotate":
			secret, err = auth.Rotate(r.Context(), id)
		default:
			openai.WriteError(w, &sluice.Error{Code: sluice.CodeNotFound, Message: "Unknown operation: use disable or rotate."})
			return
		}
		if err != nil {
			g.adminError(w, r, err)
			return
		}
		k, err := g.p.Keys().KeyByID(r.Context(), id)
		if err != nil {
			g.adminError(w, r, err)
			return
		}
		v := KeyViewOf(k)
		v.Key = secret
		writeAdminJSON(w, http.StatusOK, v)
	})
	return mux
}

// handleAdminUsage serves GET /admin/usage?by=key|tenant|model|day&from=&to=
// (RFC 3339 times or dates): the ledger's sums, as `sluice usage --json`
// prints them.
func (g *Gateway) handleAdminUsage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, err := UsageQuery(r.URL.Query().Get("by"), r.URL.Query().Get("from"), r.URL.Query().Get("to"))
		if err != nil {
			openai.WriteError(w, &sluice.Error{Code: sluice.CodeInvalidRequest, Message: err.Error()})
			return
		}
		q.KeyID, q.Tenant = r.URL.Query().Get("key"), r.URL.Query().Get("tenant")
		if err := g.p.FlushLedger(r.Context()); err != nil {
			g.adminError(w, r, err)
			return
		}
		totals, err := g.p.Ledger().Usage(r.Context(), q)
		if err != nil {
			g.adminError(w, r, err)
			return
		}
		writeAdminJSON(w, http.StatusOK, UsageReport(q.By, totals))
	})
}

// UsageQuery reads the ledger query of `sluice usage` and /admin/usage:
// by (key, tenant, model, day or empty) and from/to bounds (RFC 3339 times
// or 2006-01-02 dates, UTC).
func UsageQuery(by, from, to string) (store.UsageQuery, error) {
	q := store.UsageQuery{By: by}
	switch by {
	case "", store.ByKey, store.ByTenant, store.ByModel, store.ByDay:
	default:
		return q, errors.New("by must be key, tenant, model or day")
	}
	parse := func(s string) (time.Time, error) {
		if s == "" {
			return time.Time{}, nil
		}
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t, nil
		}
		t, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return t, errors.New("from and to must be RFC 3339 times or dates (2006-01-02)")
		}
		return t, nil
	}
	var err error
	if q.From, err = parse(from); err != nil {
		return q, err
	}
	q.To, err = parse(to)
	return q, err
}

// A UsageRow is one group of a usage report.
type UsageRow struct {
	Group           string  `json:"group"`
	Requests        int64   `json:"requests"`
	Errors          int64   `json:"errors"`
	InputTokens     int64   `json:"input_tokens"`
	OutputTokens    int64   `json:"output_tokens"`
	CachedTokens    int64   `json:"cached_tokens"`
	ReasoningTokens int64   `json:"reasoning_tokens"`
	CostUSD         float64 `json:"cost_usd"`
}

// UsageReport returns the ledger's totals as a report: its groups and their
// sum.
func UsageReport(by string, totals []store.UsageTotal) map[string]any {
	rows := make([]UsageRow, 0, len(totals))
	var sum UsageRow
	sum.Group = "total"
	for _, t := range totals {
		row := UsageRow{t.Group, t.Requests, t.Errors, t.InputTokens, t.OutputTokens, t.CachedTokens, t.ReasoningTokens, t.CostUSD}
		rows = append(rows, row)
		sum.Requests += t.Requests
		sum.Errors += t.Errors
		sum.InputTokens += t.InputTokens
		sum.OutputTokens += t.OutputTokens
		sum.CachedTokens += t.CachedTokens
		sum.ReasoningTokens += t.ReasoningTokens
		sum.CostUSD += t.CostUSD
	}
	return map[string]any{"by": by, "groups": rows, "total": sum}
}

func (g *Gateway) adminError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, store.ErrNotFound) {
		openai.WriteError(w, &sluice.Error{Code: sluice.CodeNotFound, Message: "There is no such key."})
		return
	}
	e := sluice.AsError(err)
	if e.Code == sluice.CodeInternal {
		g.logError(r, "admin API", e)
	}
	openai.WriteError(w, e)
}

func writeAdminJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		openai.WriteError(w, sluice.WrapError(sluice.CodeInternal, err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
