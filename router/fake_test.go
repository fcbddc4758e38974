package router

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gw/sluice"
)

// fake is a provider safe for concurrent use: call n (from 1) fails with
// fail(n) before any event when that is not nil, else streams a start (with
// 7 input tokens), waits ttft (or until ctx ends), then sends its name as
// text, usage and a finish; after the first content a cancelled ctx ends
// the stream. Its answers' Model is its name.
type fake struct {
	name string
	ttft time.Duration
	fail func(n int) error
	brk  error // when set, the stream breaks with it after its text

	mu        sync.Mutex
	calls     int
	cancelled int          // calls whose ctx ended before their first content
	open      atomic.Int64 // streams not released yet
}

func (f *fake) Stream(ctx context.Context, req *sluice.Request) (sluice.Stream, error) {
	f.mu.Lock()
	f.calls++
	n := f.calls
	f.mu.Unlock()
	if f.fail != nil {
		if err := f.fail(n); err != nil {
			return nil, err
		}
	}
	f.open.Add(1)
	i := 0
	return sluice.NewStream(func() (sluice.Event, error) {
		i++
		if err := ctx.Err(); err != nil && i > 2 {
			return sluice.Event{}, fmt.Errorf("fake %s: %w", f.name, err)
		}
		switch i {
		case 1:
			return sluice.Event{Type: sluice.EventStart, Model: f.name, Usage: sluice.Usage{InputTokens: 7}}, nil
		case 2:
			var wait <-chan time.Time
			if f.ttft > 0 {
				wait = time.After(f.ttft)
			} else {
				c := make(chan time.Time, 1)
				c <- time.Time{}
				wait = c
			}
			select {
			case <-wait:
			case <-ctx.Done():
				f.mu.Lock()
				f.cancelled++
				f.mu.Unlock()
				return sluice.Event{}, fmt.Errorf("fake %s: %w", f.name, ctx.Err())
			}
			return sluice.Event{Type: sluice.EventText, Text: f.name}, nil
		case 3:
			if f.brk != nil {
				return sluice.Event{}, f.brk
			}
			return sluice.Event{Type: sluice.EventUsage, Usage: sluice.Usage{InputTokens: 7, OutputTokens: 1}}, nil
		case 4:
			return sluice.Event{Type: sluice.EventFinish, FinishReason: sluice.FinishStop}, nil
		}
		return sluice.Event{}, io.EOF
	}, func() error { f.open.Add(-1); return nil }), nil
}

func (f *fake) Complete(ctx context.Context, req *sluice.Request) (*sluice.Response, error) {
	s, err := f.Stream(ctx, req)
	if err != nil {
		return nil, err
	}
	return sluice.Collect(s)
}

func (f *fake) stats() (calls, cancelled int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, f.cancelled
}

// upstream returns the error an upstream's HTTP status becomes.
func upstream(status int, retryAfter time.Duration) error {
	return sluice.FromUpstream(&sluice.UpstreamError{Provider: "x", StatusCode: status, Message: "test", RetryAfter: retryAfter})
}

// failFirst fails the first n calls with err.
func failFirst(n int, err error) func(int) error {
	return func(i int) error {
		if i <= n {
			return err
		}
		return nil
	}
}

// always fails every call with err.
func always(err error) func(int) error { return func(int) error { return err } }

// half returns 0.5: backoff waits exactly half their ceiling.
func half() float64 { return 0.5 }

// callResult is what a test call gave.
type callResult struct {
	model    string
	err      error
	attempts []string
}

// do runs a call of model on r, Complete or Stream (read to the end), and
// describes its attempts.
func do(ctx context.Context, r *Router, model string, stream bool) callResult {
	var res callResult
	var mu sync.Mutex
	ctx = WithAttemptFunc(ctx, func(a Attempt) {
		mu.Lock()
		res.attempts = append(res.attempts, describe(a))
		mu.Unlock()
	})
	req := &sluice.Request{Model: model, Messages: []sluice.Message{{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart("hi")}}}}
	var resp *sluice.Response
	if stream {
		var s sluice.Stream
		s, res.err = r.Stream(ctx, req)
		if res.err == nil {
			resp, res.err = sluice.Collect(s)
		}
	} else {
		resp, res.err = r.Complete(ctx, req)
	}
	if resp != nil {
		res.model = resp.Model
	}
	return res
}

// describe renders an attempt for comparison: provider, flags, the error's
// code and the wait.
func describe(a Attempt) string {
	var b strings.Builder
	b.WriteString(a.Provider)
	for _, f := range []struct {
		on   bool
		name string
	}{{a.Retry, "retry"}, {a.Hedge, "hedge"}, {a.Lost, "lost"}, {a.Skipped, "skipped"}} {
		if f.on {
			b.WriteString(" " + f.name)
		}
	}
	switch {
	case a.Err == ErrHedgeLost:
	case a.Err != nil:
		b.WriteString(" " + string(sluice.ErrorCode(a.Err)))
	default:
		b.WriteString(" ok")
	}
	if a.Wait > 0 {
		b.WriteString(" wait=" + a.Wait.String())
	}
	return b.String()
}

func mustNew(tb testing.TB, opts Options, routes ...Route) *Router {
	tb.Helper()
	r, err := NewWithOptions(routes, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// targets returns a route's targets over providers named p1, p2, ...
func targets(ps ...sluice.Provider) []Target {
	ts := make([]Target, len(ps))
	for i, p := range ps {
		name := fmt.Sprintf("p%d", i+1)
		ts[i] = Target{ProviderName: name, Provider: p, Model: "m-" + name}
	}
	return ts
}
