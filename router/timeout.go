package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice"
)

// Timeouts are the deadlines of one upstream call. A zero field means no
// deadline of that kind. Connect is applied by the provider's HTTP transport;
// the others are enforced by WithTimeouts.
type Timeouts struct {
	// Connect bounds establishing the connection to the upstream.
	Connect time.Duration
	// FirstToken bounds the wait from the start of the call to the first
	// content event of a stream (text, tool call or thinking).
	FirstToken time.Duration
	// Idle bounds the gap between two events of a stream.
	Idle time.Duration
	// Total bounds the whole call, stream included.
	Total time.Duration
}

// errDeadline is the cause of a call ended by one of its Timeouts.
type errDeadline struct{ which string }

func (e *errDeadline) Error() string { return "upstream " + e.which + " deadline exceeded" }

// timeoutError is the client-safe error of a call ended by a deadline.
func timeoutError(cause error) *sluice.Error {
	return &sluice.Error{Code: sluice.CodeUpstreamTimeout, Message: sluice.CodeUpstreamTimeout.DefaultMessage(), Err: cause}
}

// WithTimeouts wraps p so that each call obeys t (but Connect, which belongs
// to the transport). Whichever deadline fires first cancels the upstream
// call, which releases its connection, and the call fails with
// upstream_timeout: from Complete or Stream before the first event, as the
// stream's error after it.
func WithTimeouts(p sluice.Provider, t Timeouts) sluice.Provider {
	if t.FirstToken <= 0 && t.Idle <= 0 && t.Total <= 0 {
		return p
	}
	return &timeoutProvider{p: p, t: t}
}

type timeoutProvider struct {
	p sluice.Provider
	t Timeouts
}

// deadlineCause returns the deadline that ended ctx, or nil.
func deadlineCause(ctx context.Context) error {
	var d *errDeadline
	if cause := context.Cause(ctx); errors.As(cause, &d) {
		return d
	}
	return nil
}

func (tp *timeoutProvider) Complete(ctx context.Context, req *sluice.Request) (*sluice.Response, error) {
	if tp.t.Total <= 0 {
		return tp.p.Complete(ctx, req)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, tp.t.Total, &errDeadline{"total"})
	defer cancel()
	resp, err := tp.p.Complete(ctx, req)
	if err != nil {
		if d := deadlineCause(ctx); d != nil {
			return nil, timeoutError(fmt.Errorf("%w: %w", d, err))
		}
	}
	return resp, err
}

func (tp *timeoutProvider) Stream(ctx context.Context, req *sluice.Request) (sluice.Stream, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	ts := &timedStream{cancel: cancel, t: tp.t, ctx: ctx}
	if tp.t.Total > 0 {
		ts.total = time.AfterFunc(tp.t.Total, func() { cancel(&errDeadline{"total"}) })
	}
	// The first-token deadline runs from the start of the call.
	ts.arm(tp.t.FirstToken, errFirstToken)
	s, err := tp.p.Stream(ctx, req)
	if err != nil {
		d := deadlineCause(ctx)
		ts.stop()
		if d != nil {
			return nil, timeoutError(fmt.Errorf("%w: %w", d, err))
		}
		return nil, err
	}
	ts.next, ts.stopInner = sluice.Pull(s)
	return sluice.NewStream(ts.pull, ts.release), nil
}

// A timedStream ends its upstream stream when a deadline fires.
type timedStream struct {
	next      func() (sluice.Event, error)
	stopInner func()
	content   bool // the first content event has been read
	ctx       context.Context
	cancel    context.CancelCauseFunc
	t         Timeouts

	mu    sync.Mutex
	timer *time.Timer // the first-token or idle deadline, reset per event
	cause atomic.Pointer[errDeadline]
	total *time.Timer
	once  sync.Once
}

// The causes of the event deadlines, shared: they carry no state.
var (
	errFirstToken = &errDeadline{"first token"}
	errIdle       = &errDeadline{"idle"}
)

// arm (re)starts the event deadline: d from now, with cause; d <= 0 pauses
// it. One timer serves the whole stream, so an event costs no allocation.
func (ts *timedStream) arm(d time.Duration, cause *errDeadline) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if d <= 0 {
		if ts.timer != nil {
			ts.timer.Stop()
		}
		return
	}
	ts.cause.Store(cause)
	if ts.timer == nil {
		ts.timer = time.AfterFunc(d, func() { ts.cancel(ts.cause.Load()) })
		return
	}
	ts.timer.Reset(d)
}

// stop stops every timer and releases the call's context.
func (ts *timedStream) stop() {
	ts.once.Do(func() {
		ts.mu.Lock()
		if ts.timer != nil {
			ts.timer.Stop()
		}
		ts.mu.Unlock()
		if ts.total != nil {
			ts.total.Stop()
		}
		ts.cancel(context.Canceled)
	})
}

// pull reads the next event. Until the first content the first-token
// deadline runs on; after it, the idle deadline runs from the moment the
// caller asks for the next event: the time the caller takes with an event
// (writing it to a slow client) is not the upstream's idleness.
func (ts *timedStream) pull() (sluice.Event, error) {
	if ts.content {
		ts.arm(ts.t.Idle, errIdle)
	}
	ev, err := ts.next()
	if err != nil {
		if d := deadlineCause(ts.ctx); d != nil && err != io.EOF {
			err = timeoutError(fmt.Errorf("%w: %w", d, err))
		}
		return ev, err
	}
	switch ev.Type {
	case sluice.EventText, sluice.EventToolCall, sluice.EventThinking:
		ts.content = true
	}
	if ts.content {
		ts.arm(0, nil)
	}
	return ev, nil
}

// release releases the upstream stream and the deadlines.
func (ts *timedStream) release() error {
	ts.stopInner()
	ts.stop()
	return nil
}
