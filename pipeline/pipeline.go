// Package pipeline is the library's front door: it builds the whole path of a
// call (providers, router, and in later stages guards, contracts, stores and
// telemetry) from a config, and offers Complete and Stream to in-process Go
// callers. The HTTP gateway is a thin shell over the same Pipeline, so an
// embedded Sluice and a served one behave alike.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/anthropic"
	"github.com/sluice-gw/sluice/config"
	"github.com/sluice-gw/sluice/contract"
	"github.com/sluice-gw/sluice/guard"
	"github.com/sluice-gw/sluice/openai"
	"github.com/sluice-gw/sluice/router"
	"github.com/sluice-gw/sluice/sim"
	"github.com/sluice-gw/sluice/store"
	"github.com/sluice-gw/sluice/telemetry"
)

// Options are the dependencies of a Pipeline that do not come from the
// config. The zero value is usable.
type Options struct {
	// Logger receives operators' logs; nil discards them.
	Logger *slog.Logger
	// HTTPClient calls the upstream providers; nil means each provider's own
	// default client.
	HTTPClient *http.Client
	// StreamLog keeps the logs of resumable streams; nil means the config's
	// (Redis when state.redis is set, else memory).
	StreamLog store.StreamLog
	// Idempotency keeps Idempotency-Key records; nil: Redis when
	// state.redis is set, else memory.
	Idempotency store.Idempotency
	// Limiter keeps the rate limits; nil: Redis when state.redis is set,
	// else this process's memory.
	Limiter store.Limiter
	// Ledger and Keys keep the usage ledger and the API keys; nil:
	// PostgreSQL when state.postgres is set, else SQLite when state.sqlite
	// names a file, else memory.
	Ledger store.Ledger
	Keys   store.Keys
	// Jobs is the queue of jobs (POST /v1/jobs); nil: as Ledger.
	Jobs store.Jobs
	// OnRecord receives the Record of every call, once, when it ends, on
	// the goroutine that ends it; its context is the call's, without its
	// cancellation. nil: records are only logged.
	OnRecord func(context.Context, Record)
	// Metrics receive every call's record; nil: no metrics.
	Metrics *telemetry.Metrics
	// Tracing makes a span of every call and a child span of each of its
	// upstream attempts, and sends the trace context upstream; nil: no
	// traces.
	Tracing *telemetry.Tracing
}

// A Pipeline runs calls for in-process callers and for the gateway. It is safe
// for concurrent use.
type Pipeline struct {
	router    *router.Router
	providers map[string]sluice.Provider
	logger    *slog.Logger
	streams   store.StreamLog
	idem      store.Idempotency
	limiter   store.Limiter // nil: local limits only
	// ledgerStore keeps the usage ledger, written through ledger off the
	// request path; keys the API keys, read through auth.
	ledgerStore store.Ledger
	ledger      *store.LedgerWriter
	keys        store.Keys
	jobs        store.Jobs
	auth        *guard.Authenticator
	keysNeeded  bool
	guards      *guards
	closers     []func() error
	onRecord    func(context.Context, Record)
	watch       watchers
	metrics     *telemetry.Metrics
	tracing     *telemetry.Tracing
	schemas     *contract.Compiler
	repairs     map[string]int  // repair attempts of the routes that set them
	rawOutput   map[string]bool // routes whose schema_violation errors carry the raw answer
	logContent  map[string]bool // routes whose prompts and answers are logged
	caches      map[string]*cachePolicy
	cache       store.Cache
	contracts   map[string]*namedContract
	names       []string // of the contracts, in config order
}

// New builds a Pipeline from cfg, which must be valid (config.Parse, Load and
// Default return valid configs), and connects to the stores it names within
// ctx. Close releases them.
func New(ctx context.Context, cfg *config.Config, opts Options) (_ *Pipeline, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &Pipeline{providers: make(map[string]sluice.Provider, len(cfg.Providers)), logger: logger, onRecord: opts.OnRecord, metrics: opts.Metrics, tracing: opts.Tracing,
		schemas: contract.NewCompiler(), repairs: map[string]int{}, rawOutput: map[string]bool{}, logContent: map[string]bool{}, caches: map[string]*cachePolicy{}}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	if err := p.openState(ctx, cfg, opts); err != nil {
		return nil, err
	}
	p.auth = guard.NewAuthenticator(p.keys, guard.AuthOptions{})
	p.keysNeeded = cfg.KeysRequired()
	p.guards = p.newGuards(cfg)
	if p.guards.counts() {
		guard.Preload() // a third of a second, once, rather than on a call
	}
	type instance struct {
		name    string
		connect config.Duration
	}
	// A provider has one instance per connect timeout it is used with (the
	// timeout lives in its HTTP transport); most have exactly one.
	instances := map[instance]sluice.Provider{}
	configs := map[string]config.Provider{}
	get := func(pc config.Provider, connect config.Duration) (sluice.Provider, error) {
		if pc.Type == config.TypeSim {
			connect = 0 // no connection to make: one instance
		}
		key := instance{pc.Name, connect}
		if prov, ok := instances[key]; ok {
			return prov, nil
		}
		prov, err := newProvider(pc, traced(opts.Tracing, httpClient(opts.HTTPClient, connect.D())))
		if err != nil {
			return nil, fmt.Errorf("pipeline: provider %q: %w", pc.Name, err)
		}
		instances[key] = prov
		return prov, nil
	}
	for _, pc := range cfg.Providers {
		prov, err := get(pc, pc.Timeouts.Connect)
		if err != nil {
			return nil, err
		}
		p.providers[pc.Name] = prov
		configs[pc.Name] = pc
	}
	routes := make([]router.Route, 0, len(cfg.Models))
	for _, m := range cfg.Models {
		rt := routePolicies(m)
		if m.RepairAttempts != nil {
			p.repairs[m.Name] = *m.RepairAttempts
		}
		if m.ExposeRawOutput {
			p.rawOutput[m.Name] = true
		}
		if m.LogContent {
			p.logContent[m.Name] = true
		}
		if cp := newCachePolicy(m.Cache); cp != nil {
			p.caches[m.Name] = cp
		}
		for _, t := range m.Targets {
			pc, ok := configs[t.Provider]
			if !ok {
				return nil, fmt.Errorf("pipeline: model %q: unknown provider %q", m.Name, t.Provider)
			}
			to := m.Timeouts.Or(pc.Timeouts)
			prov, err := get(pc, to.Connect)
			if err != nil {
				return nil, err
			}
			prov = router.WithTimeouts(prov, router.Timeouts{
				Connect: to.Connect.D(), FirstToken: to.FirstToken.D(), Idle: to.Idle.D(), Total: to.Total.D(),
			})
			rt.Targets = append(rt.Targets, router.Target{
				ProviderName: t.Provider, Provider: prov, Model: t.Model, Weight: t.Weight,
				// Anthropic (and the simulator) continue a final assistant
				// message; OpenAI's API starts a new one.
				Prefill: pc.Type == config.TypeAnthropic || pc.Type == config.TypeSim,
			})
		}
		routes = append(routes, rt)
	}
	p.contracts = map[string]*namedContract{}
	for _, ct := range cfg.Contracts {
		s, err := p.schemas.Compile(ct.SchemaJSON)
		if err != nil {
			return nil, fmt.Errorf("pipeline: contract %q: %s", ct.Name, sluice.AsError(err).Message)
		}
		system, err := parseSystem(ct)
		if err != nil {
			return nil, fmt.Errorf("pipeline: contract %q: system prompt: %w", ct.Name, err)
		}
		p.contracts[ct.Name] = &namedContract{cfg: ct, schema: s, system: system}
		p.names = append(p.names, ct.Name)
	}
	r, err := router.NewWithOptions(routes, routerOptions(cfg, logger, p.metrics))
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	p.router = r
	return p, nil
}

// StreamLog returns the log that keeps resumable streams.
func (p *Pipeline) StreamLog() store.StreamLog { return p.streams }

// Idempotency returns the store of Idempotency-Key records.
func (p *Pipeline) Idempotency() store.Idempotency { return p.idem }

// Auth returns the API keys' authenticator, which also creates, lists,
// disables and rotates them.
func (p *Pipeline) Auth() *guard.Authenticator { return p.auth }

// Jobs returns the queue of jobs.
func (p *Pipeline) Jobs() store.Jobs { return p.jobs }

// Keys returns the store of API keys.
func (p *Pipeline) Keys() store.Keys { return p.keys }

// HasTier reports whether tier name is configured.
func (p *Pipeline) HasTier(name string) bool {
	_, ok := p.guards.tiers[name]
	return ok
}

// KeysRequired reports whether calls must carry an API key (the config's
// auth section).
func (p *Pipeline) KeysRequired() bool { return p.keysNeeded }

// Ledger returns the usage ledger. Rows reach it in batches, off the
// request path; FlushLedger writes the rows still waiting.
func (p *Pipeline) Ledger() store.Ledger { return p.ledgerStore }

// FlushLedger writes the ledger rows still waiting.
func (p *Pipeline) FlushLedger(ctx context.Context) error { return p.ledger.Flush(ctx) }

// Close releases the stores the pipeline connected to. Calls still running
// may fail.
func (p *Pipeline) Close() error {
	var errs []error
	if p.ledger != nil {
		// The ledger's last rows go out before its store closes.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		errs = append(errs, p.ledger.Close(ctx))
		cancel()
		p.ledger = nil
	}
	for _, c := range p.closers {
		errs = append(errs, c())
	}
	p.closers = nil
	return errors.Join(errs...)
}

// httpClient returns the client for upstream calls: the caller's own when
// given (its transport then owns the connect timeout), else nil (each
// provider's shared default) when there is no connect timeout, else a client
// whose dialer gives up after connect.
func httpClient(given *http.Client, connect time.Duration) *http.Client {
	if given != nil || connect <= 0 {
		return given
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = connect
	t.MaxIdleConns = 512
	t.MaxIdleConnsPerHost = 128
	t.IdleConnTimeout = 90 * time.Second
	return &http.Client{Transport: t}
}

// newProvider builds one provider from its config: a plain switch on the type,
// no registry.
func newProvider(pc config.Provider, client *http.Client) (sluice.Provider, error) {
	switch pc.Type {
	case "openai":
		return openai.NewProvider(openai.Config{
			Name: pc.Name, BaseURL: pc.BaseURL, APIKey: pc.APIKey.Value(), Headers: pc.Headers, Client: client,
			DefaultMaxTokens: pc.MaxTokensDefault, StructuredOutput: pc.StructuredOutput, Server: pc.Server,
		}), nil
	case "anthropic":
		return anthropic.NewProvider(anthropic.Config{
			Name: pc.Name, BaseURL: pc.BaseURL, APIKey: pc.APIKey.Value(), Headers: pc.Headers,
			DefaultMaxTokens: pc.MaxTokensDefault, Client: client, StructuredOutput: pc.StructuredOutput,
		}), nil
	case "sim":
		f, err := sim.ParseFault(pc.Fault)
		if err != nil {
			return nil, fmt.Errorf("fault: %w", err)
		}
		return sim.New(sim.Options{Name: pc.Name, Fault: f, Tokens: pc.Tokens}), nil
	}
	return nil, fmt.Errorf("unknown provider type %q", pc.Type)
}

// Models returns the public model names, in configuration order.
func (p *Pipeline) Models() []string { return p.router.Models() }

// Provider returns the configured provider of that name, for tests and admin
// tools.
func (p *Pipeline) Provider(name string) (sluice.Provider, bool) {
	prov, ok := p.providers[name]
	return prov, ok
}

// Complete runs a non-streaming call. The response's Model is the public
// model name the caller asked for. Errors are *sluice.Error values (see
// sluice.AsError for anything else).
func (p *Pipeline) Complete(ctx context.Context, req *sluice.Request) (*sluice.Response, error) {
	if err := check(req); err != nil {
		p.refused(ctx, req, err)
		return nil, err
	}
	ctx = p.track(ctx, req, false)
	rec := p.startRecord(ctx, req)
	rec.Stream = false
	schema, err := p.outputSchema(req)
	if err == nil {
		req, rec.adm, err = p.admit(ctx, req)
	}
	if err != nil {
		rec.Err = err
		p.record(ctx, rec)
		return nil, err
	}
	rec.structured = schema != nil
	if schema != nil {
		resp, err := p.completeChecked(ctx, req, schema, p.repairAttempts(req.Model), &rec)
		if err == nil {
			err = p.newToolGate(req, rec.adm.tier).message(&resp.Message)
			rec.answered(&resp.Message)
		}
		rec.Err = err
		p.record(ctx, rec)
		if err != nil {
			return nil, err
		}
		resp.Model = req.Model
		return resp, nil
	}
	call := func() (*sluice.Response, error) { return p.router.Complete(ctx, req) }
	var resp *sluice.Response
	if cp := p.caches[req.Model]; cp != nil {
		resp, err = p.completeCached(ctx, cp, req, call, &rec)
	} else {
		resp, err = call()
	}
	if err != nil {
		err = degraded(ctx, err)
		rec.Err = err
		p.record(ctx, rec)
		return nil, err
	}
	out := *resp // the provider's response may be shared (caches, replays)
	out.Model = req.Model
	rec.Usage, rec.finish = out.Usage, out.FinishReason
	rec.answered(&out.Message)
	if err := p.newToolGate(req, rec.adm.tier).message(&out.Message); err != nil {
		rec.Err = err
		p.record(ctx, rec)
		return nil, err
	}
	p.record(ctx, rec)
	return &out, nil
}

// Stream starts a streaming call. It returns once an upstream's stream has
// produced its first content (see router.Router.Stream): an error from
// Stream happened before any content, and the caller may answer it as a
// plain error. The caller must range over the stream or Close
// it.
func (p *Pipeline) Stream(ctx context.Context, req *sluice.Request) (sluice.Stream, error) {
	if err := check(req); err != nil {
		p.refused(ctx, req, err)
		return nil, err
	}
	ctx = p.track(ctx, req, true)
	rec := p.startRecord(ctx, req)
	rec.Stream = true
	schema, err := p.outputSchema(req)
	if err == nil {
		req, rec.adm, err = p.admit(ctx, req)
	}
	if err != nil {
		rec.Err = err
		p.record(ctx, rec)
		return nil, err
	}
	rec.structured = schema != nil
	s, err := p.router.Stream(ctx, req)
	if err != nil {
		err = degraded(ctx, err)
		rec.Err = err
		p.record(ctx, rec)
		return nil, err
	}
	noteAttempts(ctx)
	s = p.newToolGate(req, rec.adm.tier).stream(s)
	// The stream reports the public model name in EventStart, as Complete
	// does in its Response, and its Record when released.
	return p.meter(ctx, s, rec, schema), nil
}

// Refused records a call its caller refused before it reached the
// pipeline (a request the gateway could not decode): a request served all
// the same, for the ledger and the metrics. req carries what is known of
// it (its id and caller, its model if any).
func (p *Pipeline) Refused(ctx context.Context, req *sluice.Request, err error) {
	p.refused(ctx, req, err)
}

// Replayed records a request answered with the kept answer of its
// Idempotency-Key (status is the answer's): a request served without an
// upstream call, for the ledger and the metrics.
func (p *Pipeline) Replayed(ctx context.Context, req *sluice.Request, status int) {
	rec := newRecord(ctx, req, time.Now())
	rec.Status, rec.replayed = status, true
	p.record(ctx, rec)
}

// refused records a call refused before it started: it is a request
// served all the same, with its error.
func (p *Pipeline) refused(ctx context.Context, req *sluice.Request, err error) {
	if req == nil {
		return
	}
	rec := newRecord(ctx, req, time.Now())
	rec.Err = err
	p.record(ctx, rec)
}

// check validates what every call needs, whoever built the request.
func check(req *sluice.Request) error {
	switch {
	case req == nil:
		return sluice.NewError(sluice.CodeInvalidRequest, "The request is empty.")
	case req.Model == "":
		return &sluice.Error{Code: sluice.CodeInvalidRequest, Param: "model", Message: "A model is required."}
	case len(req.Messages) == 0:
		return &sluice.Error{Code: sluice.CodeInvalidRequest, Param: "messages", Message: "At least one message is required."}
	case req.MaxOutputTokens < 0:
		return &sluice.Error{Code: sluice.CodeInvalidRequest, Param: "max_tokens", Message: "The output token limit must not be negative."}
	}
	return nil
}
