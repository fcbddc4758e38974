package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/config"
	"github.com/sluice-gw/sluice/router"
)

// A cachePolicy is a model route's response cache.
type cachePolicy struct {
	ttl     time.Duration
	maxTemp float64
	always  bool // serve hits as a normal cache, not only when every target failed
}

func newCachePolicy(c *config.Cache) *cachePolicy {
	if c == nil || c.TTL <= 0 {
		return nil
	}
	cp := &cachePolicy{ttl: c.TTL.D(), maxTemp: config.DefaultCacheMaxTemperature, always: c.Serve == "always"}
	if c.MaxTemperature != nil {
		cp.maxTemp = *c.MaxTemperature
	}
	return cp
}

// cacheKey returns the key of req's answer on its route, or "" when req
// may not be cached: a request whose temperature is above the route's
// threshold (unset counts as 1, the providers' default) asks for variety.
func (cp *cachePolicy) cacheKey(req *sluice.Request) string {
	temp := 1.0
	if req.Temperature != nil {
		temp = *req.Temperature
	}
	if temp > cp.maxTemp {
		return ""
	}
	// What decides the answer, and nothing of who asked.
	b, err := json.Marshal(struct {
		Model, System, Messages, Tools, ToolChoice, Parallel, Output any
		Max                                                          int
		Temp, TopP, TopK, Stop, Seed                                 any
	}{req.Model, req.System, req.Messages, req.Tools, req.ToolChoice, req.ParallelToolCalls, req.Output,
		req.MaxOutputTokens, req.Temperature, req.TopP, req.TopK, req.Stop, req.Seed})
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(append([]byte("sluice response cache v1\x00"), b...))
	return hex.EncodeToString(sum[:])
}

// cached returns the answer kept for key, or nil.
func (p *Pipeline) cached(ctx context.Context, key string) *sluice.Response {
	if key == "" {
		return nil
	}
	b, ok, err := p.cache.Get(ctx, key)
	if err != nil {
		p.logger.Warn("response cache unavailable", "error", err)
		return nil
	}
	if !ok {
		return nil
	}
	var resp sluice.Response
	if err := json.Unmarshal(b, &resp); err != nil {
		return nil
	}
	return &resp
}

// keep stores resp as the answer of key.
func (p *Pipeline) keep(ctx context.Context, cp *cachePolicy, key string, resp *sluice.Response) {
	if key == "" || resp.FinishReason == sluice.FinishError {
		return
	}
	b, err := json.Marshal(resp)
	if err != nil {
		return
	}
	if err := p.cache.Set(context.WithoutCancel(ctx), key, b, cp.ttl); err != nil {
		p.logger.Warn("response cache unavailable", "error", err)
	}
}

// completeCached runs a non-streaming call on a route with a response
// cache: a hit is served at once when the route serves its cache always,
// else only when every target failed; a fresh answer is kept.
func (p *Pipeline) completeCached(ctx context.Context, cp *cachePolicy, req *sluice.Request, call func() (*sluice.Response, error), rec *Record) (*sluice.Response, error) {
	key := cp.cacheKey(req)
	if cp.always {
		if resp := p.cached(ctx, key); resp != nil {
			return p.hit(ctx, resp, rec), nil
		}
	}
	resp, err := call()
	if err == nil {
		p.keep(ctx, cp, key, resp)
		return resp, nil
	}
	if !router.UpstreamFailed(ctx, err) {
		return nil, err
	}
	if hit := p.cached(ctx, key); hit != nil {
		return p.hit(ctx, hit, rec), nil
	}
	return nil, err
}

// hit returns a cached answer as the call's: it used no tokens.
func (p *Pipeline) hit(ctx context.Context, resp *sluice.Response, rec *Record) *sluice.Response {
	rec.cacheHit = true
	if info, ok := ctx.Value(infoKey{}).(*CallInfo); ok {
		info.CacheHit = true
	}
	return resp
}

// DefaultRetryAfter is the Retry-After of a call that failed because its
// upstreams did, when none of them said how long to wait.
const DefaultRetryAfter = time.Second

// degraded returns err, the failure of every target of a call, with a
// Retry-After: the client gets a clear "try again" rather than an error
// that looks final.
func degraded(ctx context.Context, err error) error {
	if !router.UpstreamFailed(ctx, err) {
		return err
	}
	e := sluice.AsError(err)
	if e.RetryAfter > 0 {
		return err
	}
	cp := *e
	cp.RetryAfter = DefaultRetryAfter
	return &cp
}
