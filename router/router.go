// Package router turns a public model name into a plan of upstream targets and
// runs a call along it.
//
// A route's targets are tried in order. A failure before the first byte (the
// error of Provider.Complete, or of Provider.Stream itself) moves on to the
// next target when it is the upstream's fault; a failure inside a stream never
// does, because the client may already hold part of the answer. The
// client's own errors (invalid_request) and a cancelled context end the call
// at once.
package router

import (
	"context"
	"errors"
	"fmt"

	"github.com/sluice-gw/sluice"
)

// A Target is one upstream: a provider and the model name it knows.
type Target struct {
	ProviderName string
	Provider     sluice.Provider
	Model        string
}

// A Route maps a public model name to its targets.
type Route struct {
	Name    string
	Targets []Target
}

// A Router holds the routes. It is safe for concurrent use; routes do not
// change after New.
type Router struct {
	routes map[string]*Route
	names  []string
}

// New returns a Router over routes. Names must be unique and every route needs
// a target.
func New(routes []Route) (*Router, error) {
	r := &Router{routes: make(map[string]*Route, len(routes))}
	for i := range routes {
		rt := routes[i]
		if rt.Name == "" {
			return nil, fmt.Errorf("route %d: empty name", i)
		}
		if _, dup := r.routes[rt.Name]; dup {
			return nil, fmt.Errorf("route %q: duplicate name", rt.Name)
		}
		if len(rt.Targets) == 0 {
			return nil, fmt.Errorf("route %q: no targets", rt.Name)
		}
		for j, t := range rt.Targets {
			if t.Provider == nil {
				return nil, fmt.Errorf("route %q: target %d: nil provider", rt.Name, j)
			}
		}
		r.routes[rt.Name] = &rt
		r.names = append(r.names, rt.Name)
	}
	return r, nil
}

// Models returns the public model names in configuration order.
func (r *Router) Models() []string { return r.names }

// Route returns the route of a public model name.
func (r *Router) Route(model string) (*Route, bool) {
	rt, ok := r.routes[model]
	return rt, ok
}

func (r *Router) lookup(model string) (*Route, error) {
	rt, ok := r.routes[model]
	if !ok {
		if len(model) > 100 {
			model = model[:100] + "..."
		}
		return nil, &sluice.Error{Code: sluice.CodeNotFound, Param: "model",
			Message: fmt.Sprintf("The model %q does not exist on this gateway.", model)}
	}
	return rt, nil
}

// Complete runs a non-streaming call along the route of req.Model. The
// response's Model is the upstream's; callers report the public name.
func (r *Router) Complete(ctx context.Context, req *sluice.Request) (*sluice.Response, error) {
	rt, err := r.lookup(req.Model)
	if err != nil {
		return nil, err
	}
	var last error
	for _, t := range rt.Targets {
		resp, err := t.Provider.Complete(ctx, targetRequest(req, t))
		if err == nil && resp == nil {
			err = sluice.WrapError(sluice.CodeInternal, fmt.Errorf("provider %s returned no response and no error", t.ProviderName))
		}
		if err == nil {
			return resp, nil
		}
		last = err
		if !fallback(ctx, err) {
			break
		}
	}
	return nil, last
}

// Stream starts a streaming call along the route of req.Model. It returns once
// a target has accepted the call; errors inside the stream are the caller's
// to report.
func (r *Router) Stream(ctx context.Context, req *sluice.Request) (sluice.Stream, error) {
	rt, err := r.lookup(req.Model)
	if err != nil {
		return nil, err
	}
	var last error
	for _, t := range rt.Targets {
		s, err := t.Provider.Stream(ctx, targetRequest(req, t))
		if err == nil && s == nil {
			err = sluice.WrapError(sluice.CodeInternal, fmt.Errorf("provider %s returned no stream and no error", t.ProviderName))
		}
		if err == nil {
			return s, nil
		}
		last = err
		if !fallback(ctx, err) {
			break
		}
	}
	return nil, last
}

// targetRequest returns a shallow copy of req addressed to t's model.
func targetRequest(req *sluice.Request, t Target) *sluice.Request {
	if req.Model == t.Model {
		return req
	}
	cp := *req
	cp.Model = t.Model
	return &cp
}

// fallback reports whether a failure before the first byte should move on to
// the next target: the upstream's failures do, the client's do not.
func fallback(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return false
	}
	switch sluice.ErrorCode(err) {
	case sluice.CodeUpstreamError, sluice.CodeUpstreamUnavailable, sluice.CodeUpstreamTimeout,
		sluice.CodeOverloaded, sluice.CodeRateLimited:
		return true
	}
	return false
}
