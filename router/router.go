// Package router turns a public model name into a plan of upstream targets and
// runs a call along it.
//
// A route's targets are tried in order. A failure before the first content
// (the error of Provider.Complete or Provider.Stream, a first-token timeout,
// or an error event before any content, as Anthropic's overloaded_error after
// a 200) moves on to the next target when it is the upstream's fault; a
// failure after the first content never does, because the client may already
// hold part of the answer. The client's own errors (invalid_request) and a
// cancelled context end the call at once.
package router

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/sluice-gw/sluice"
)

// A Target is one upstream: a provider and the model name it knows.
type Target struct {
	ProviderName string
	Provider     sluice.Provider
	Model        string
	// Prefill reports whether the target continues a final assistant
	// message (Anthropic does; OpenAI's API does not), for mid-stream
	// failover.
	Prefill bool
}

// A Route maps a public model name to its targets.
type Route struct {
	Name    string
	Targets []Target
	// MidStreamFailover continues a stream that breaks after its first
	// content on the next targets (see failoverStream); without it such a
	// stream ends with its error.
	MidStreamFailover bool
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
		report(ctx, t, err)
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
// a target's stream has produced its first content (or finished without
// any), so that a failure before it can still fall back to the next target;
// the events read so far are replayed. Errors inside the returned stream are
// the caller's to report.
func (r *Router) Stream(ctx context.Context, req *sluice.Request) (sluice.Stream, error) {
	rt, err := r.lookup(req.Model)
	if err != nil {
		return nil, err
	}
	var last error
	for i, t := range rt.Targets {
		s, err := t.Provider.Stream(ctx, targetRequest(req, t))
		if err == nil && s == nil {
			err = sluice.WrapError(sluice.CodeInternal, fmt.Errorf("provider %s returned no stream and no error", t.ProviderName))
		}
		if err == nil {
			s, err = prime(s)
		}
		report(ctx, t, err)
		if err == nil {
			if rt.MidStreamFailover && i+1 < len(rt.Targets) {
				s = withFailover(ctx, req, rt.Targets[i+1:], s)
			}
			return s, nil
		}
		last = err
		if !fallback(ctx, err) {
			break
		}
	}
	return nil, last
}

// prime reads s up to its first content event (or its end) and returns a
// stream that replays what it read, then goes on with s. An error before the
// first content releases s and is returned instead.
func prime(s sluice.Stream) (sluice.Stream, error) {
	next, stop := sluice.Pull(s)
	var held []sluice.Event
	for {
		ev, err := next()
		if err == io.EOF {
			break
		}
		if err != nil {
			stop()
			return nil, err
		}
		held = append(held, ev)
		if ev.Type != sluice.EventStart && ev.Type != sluice.EventUsage {
			break
		}
	}
	return sluice.NewStream(func() (sluice.Event, error) {
		if len(held) > 0 {
			ev := held[0]
			held = held[1:]
			return ev, nil
		}
		return next()
	}, func() error { stop(); return nil }), nil
}

// An Attempt is one call of a target, as the router reports it.
type Attempt struct {
	Provider string // the provider's configured name
	Model    string // the upstream model name
	// Err is nil when the target answered (for a stream: produced its
	// first content, or took over a broken stream), else why not.
	Err error
}

type attemptKey struct{}

// WithAttemptFunc returns a context whose calls report each target they
// try to f, in order, on the calling goroutine: how the pipeline learns
// which provider served a call and how many attempts it took.
func WithAttemptFunc(ctx context.Context, f func(Attempt)) context.Context {
	return context.WithValue(ctx, attemptKey{}, f)
}

func report(ctx context.Context, t Target, err error) {
	if f, ok := ctx.Value(attemptKey{}).(func(Attempt)); ok {
		f(Attempt{Provider: t.ProviderName, Model: t.Model, Err: err})
	}
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
	if ctx.Err() != nil {
		return false
	}
	code := sluice.ErrorCode(err)
	// A target's own deadline cancels its call: that is its timeout, not the
	// caller's cancellation.
	if code != sluice.CodeUpstreamTimeout && errors.Is(err, context.Canceled) {
		return false
	}
	switch code {
	case sluice.CodeUpstreamError, sluice.CodeUpstreamUnavailable, sluice.CodeUpstreamTimeout,
		sluice.CodeOverloaded, sluice.CodeRateLimited:
		return true
	}
	return false
}
