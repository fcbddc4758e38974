package router

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/sluice-gw/sluice"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeProvider is a func-field fake.
type fakeProvider struct {
	complete func(context.Context, *sluice.Request) (*sluice.Response, error)
	models   []string
}

func (f *fakeProvider) Complete(ctx context.Context, req *sluice.Request) (*sluice.Response, error) {
	f.models = append(f.models, req.Model)
	return f.complete(ctx, req)
}

func (f *fakeProvider) Stream(ctx context.Context, req *sluice.Request) (sluice.Stream, error) {
	resp, err := f.Complete(ctx, req)
	if err != nil {
		return nil, err
	}
	return sluice.EventsStream([]sluice.Event{{Type: sluice.EventStart, Model: resp.Model}, {Type: sluice.EventFinish, FinishReason: sluice.FinishStop}}), nil
}

func answer(model string) func(context.Context, *sluice.Request) (*sluice.Response, error) {
	return func(context.Context, *sluice.Request) (*sluice.Response, error) {
		return &sluice.Response{Model: model}, nil
	}
}

func fail(c sluice.Code) func(context.Context, *sluice.Request) (*sluice.Response, error) {
	return func(context.Context, *sluice.Request) (*sluice.Response, error) {
		return nil, sluice.NewError(c, "x")
	}
}

func TestRouterFallback(t *testing.T) {
	tests := []struct {
		name      string
		first     func(context.Context, *sluice.Request) (*sluice.Response, error)
		wantModel string
		wantCode  sluice.Code
		secondHit bool
	}{
		{"first answers", answer("a"), "a", "", false},
		{"unavailable falls back", fail(sluice.CodeUpstreamUnavailable), "b", "", true},
		{"rate limited falls back", fail(sluice.CodeRateLimited), "b", "", true},
		{"client error does not", fail(sluice.CodeInvalidRequest), "", sluice.CodeInvalidRequest, false},
	}
	for _, tt := range tests {
		for _, stream := range []bool{false, true} {
			name := tt.name
			if stream {
				name += "/stream"
			}
			t.Run(name, func(t *testing.T) {
				p1 := &fakeProvider{complete: tt.first}
				p2 := &fakeProvider{complete: answer("b")}
				r, err := New([]Route{{Name: "m", Targets: []Target{{ProviderName: "p1", Provider: p1, Model: "up-a"}, {ProviderName: "p2", Provider: p2, Model: "up-b"}}}})
				if err != nil {
					t.Fatal(err)
				}
				req := &sluice.Request{Model: "m"}
				var model string
				if stream {
					var s sluice.Stream
					s, err = r.Stream(t.Context(), req)
					if err == nil {
						resp, _ := sluice.Collect(s)
						model = resp.Model
					}
				} else {
					var resp *sluice.Response
					resp, err = r.Complete(t.Context(), req)
					if err == nil {
						model = resp.Model
					}
				}
				if tt.wantCode != "" {
					if got := sluice.ErrorCode(err); got != tt.wantCode {
						t.Fatalf("code = %v, want %v", got, tt.wantCode)
					}
				} else if err != nil || model != tt.wantModel {
					t.Fatalf("model = %q, err = %v; want %q", model, err, tt.wantModel)
				}
				if got := len(p2.models) > 0; got != tt.secondHit {
					t.Errorf("second target called = %v, want %v", got, tt.secondHit)
				}
				if p1.models[0] != "up-a" {
					t.Errorf("first target got model %q, want upstream name", p1.models[0])
				}
				if req.Model != "m" {
					t.Errorf("caller's request modified: model %q", req.Model)
				}
			})
		}
	}
}

func TestRouterUnknownModel(t *testing.T) {
	r, err := New([]Route{{Name: "m", Targets: []Target{{ProviderName: "p", Provider: &fakeProvider{complete: answer("a")}, Model: "a"}}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Complete(t.Context(), &sluice.Request{Model: "nope"})
	var e *sluice.Error
	if !errors.As(err, &e) || e.Code != sluice.CodeNotFound || e.Param != "model" {
		t.Fatalf("err = %v, want not_found on model", err)
	}
}

func TestRouterCancelledDoesNotFallBack(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	p2 := &fakeProvider{complete: answer("b")}
	r, _ := New([]Route{{Name: "m", Targets: []Target{{ProviderName: "p1", Provider: &fakeProvider{complete: fail(sluice.CodeUpstreamUnavailable)}, Model: "a"}, {ProviderName: "p2", Provider: p2, Model: "b"}}}})
	if _, err := r.Complete(ctx, &sluice.Request{Model: "m"}); err == nil {
		t.Fatal("want error")
	}
	if len(p2.models) != 0 {
		t.Fatal("fell back after cancellation")
	}
}

func TestNewRejects(t *testing.T) {
	p := &fakeProvider{complete: answer("a")}
	for name, routes := range map[string][]Route{
		"empty name":   {{Targets: []Target{{ProviderName: "p", Provider: p, Model: "a"}}}},
		"duplicate":    {{Name: "m", Targets: []Target{{ProviderName: "p", Provider: p, Model: "a"}}}, {Name: "m", Targets: []Target{{ProviderName: "p", Provider: p, Model: "a"}}}},
		"no targets":   {{Name: "m"}},
		"nil provider": {{Name: "m", Targets: []Target{{ProviderName: "p", Provider: nil, Model: "a"}}}},
	} {
		if _, err := New(routes); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

// streamFake is a provider whose stream yields events, then fails with err
// (if not nil); block makes it wait for ctx's end instead of failing.
type streamFake struct {
	events   []sluice.Event
	err      error
	block    bool
	calls    int
	released int
}

func (f *streamFake) Complete(context.Context, *sluice.Request) (*sluice.Response, error) {
	return nil, errors.New("not used")
}

func (f *streamFake) Stream(ctx context.Context, _ *sluice.Request) (sluice.Stream, error) {
	f.calls++
	i := 0
	return sluice.NewStream(func() (sluice.Event, error) {
		if i < len(f.events) {
			i++
			return f.events[i-1], nil
		}
		if f.block {
			<-ctx.Done()
			return sluice.Event{}, ctx.Err()
		}
		if f.err != nil {
			return sluice.Event{}, f.err
		}
		return sluice.Event{}, io.EOF
	}, func() error { f.released++; return nil }), nil
}

// TestRouterFirstEventFallback checks that a stream failing before its
// first content (an error event after a 200, a first-token timeout) falls
// back to the next target, and one failing after it does not.
func TestRouterFirstEventFallback(t *testing.T) {
	start := sluice.Event{Type: sluice.EventStart}
	text := sluice.Event{Type: sluice.EventText, Text: "partial"}
	overloaded := sluice.NewError(sluice.CodeOverloaded, "x")
	tests := []struct {
		name     string
		first    *streamFake
		timeouts Timeouts
		wantText string
		wantCode sluice.Code
		second   bool
	}{
		{"error event before content", &streamFake{events: []sluice.Event{start}, err: overloaded}, Timeouts{}, "ok", "", true},
		{"first token timeout", &streamFake{events: []sluice.Event{start}, block: true}, Timeouts{FirstToken: 20 * time.Millisecond}, "ok", "", true},
		{"client error before content", &streamFake{events: []sluice.Event{start}, err: sluice.NewError(sluice.CodeInvalidRequest, "x")}, Timeouts{}, "", sluice.CodeInvalidRequest, false},
		{"error after content", &streamFake{events: []sluice.Event{start, text}, err: overloaded}, Timeouts{}, "partial", sluice.CodeOverloaded, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			second := &streamFake{events: []sluice.Event{start, {Type: sluice.EventText, Text: "ok"}, {Type: sluice.EventFinish, FinishReason: sluice.FinishStop}}}
			r, err := New([]Route{{Name: "m", Targets: []Target{
				{ProviderName: "p1", Provider: WithTimeouts(tt.first, tt.timeouts), Model: "a"}, {ProviderName: "p2", Provider: second, Model: "b"},
			}}})
			if err != nil {
				t.Fatal(err)
			}
			var got string
			s, err := r.Stream(t.Context(), &sluice.Request{Model: "m"})
			if err == nil {
				for ev, e := range s.All() {
					if e != nil {
						err = e
						break
					}
					got += ev.Text
				}
			}
			if got != tt.wantText || sluice.ErrorCode(err) != tt.wantCode && !(tt.wantCode == "" && err == nil) {
				t.Errorf("text %q err %v; want %q code %q", got, err, tt.wantText, tt.wantCode)
			}
			if (second.calls > 0) != tt.second {
				t.Errorf("second target called = %v, want %v", second.calls > 0, tt.second)
			}
			if tt.first.released != 1 || second.released != second.calls {
				t.Errorf("released: first %d, second %d of %d", tt.first.released, second.released, second.calls)
			}
		})
	}
}
