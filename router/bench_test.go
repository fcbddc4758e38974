package router

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice"
)

// static answers at once, from values built in advance: what is measured
// is the router.
type static struct {
	resp   *sluice.Response
	events []sluice.Event
}

func (s *static) Complete(context.Context, *sluice.Request) (*sluice.Response, error) {
	return s.resp, nil
}

func (s *static) Stream(context.Context, *sluice.Request) (sluice.Stream, error) {
	return sluice.EventsStream(s.events), nil
}

// BenchmarkRouter measures the router's overhead per call: a provider that
// answers at once called directly, then through a route without policies,
// with retries, breakers, a bulkhead and a balanced rank, and hedged (the
// hedge never fires, but the call runs the race); "+attempts" adds an
// attempt func, as the pipeline always sets. Upstream model names are the
// public ones, so that no request is copied.
func BenchmarkRouter(b *testing.B) {
	p := &static{
		resp: &sluice.Response{Model: "m"},
		events: []sluice.Event{{Type: sluice.EventStart, Model: "m"}, {Type: sluice.EventText, Text: "hi"},
			{Type: sluice.EventUsage}, {Type: sluice.EventFinish, FinishReason: sluice.FinishStop}},
	}
	// Each route has its own providers: breakers and bulkheads are shared
	// by target and provider.
	plain := Route{Name: "plain", Targets: []Target{{ProviderName: "plain", Provider: p, Model: "plain"}}}
	policies := Route{Name: "policies", Retry: Retry{Attempts: 3}, Breaker: Breaker{FailureRate: 0.5, Consecutive: 5},
		Targets: []Target{{ProviderName: "p", Provider: p, Model: "policies", Weight: 2}, {ProviderName: "q", Provider: p, Model: "policies", Weight: 1}}}
	hedged := Route{Name: "hedged", Hedge: Hedge{After: time.Hour},
		Targets: []Target{{ProviderName: "h1", Provider: p, Model: "hedged"}, {ProviderName: "h2", Provider: p, Model: "hedged"}}}
	r := mustNew(b, Options{Bulkheads: map[string]Bulkhead{"p": {MaxConcurrent: 1 << 20}}}, plain, policies, hedged)
	ctx := context.Background()
	req := &sluice.Request{Model: "m"}

	b.Run("complete/direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.Complete(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stream/direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s, _ := p.Stream(ctx, req)
			for _, err := range s.All() {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	attempts := 0
	for _, name := range []string{"plain", "plain+attempts", "policies", "policies+attempts", "hedged"} {
		model, _, withAttempts := strings.Cut(name, "+")
		req := &sluice.Request{Model: model}
		ctx := ctx
		if withAttempts {
			ctx = WithAttemptFunc(ctx, func(Attempt) { attempts++ })
		}
		b.Run("complete/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Complete(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("stream/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s, err := r.Stream(ctx, req)
				if err != nil {
					b.Fatal(err)
				}
				for _, err := range s.All() {
					if err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
	b.Run("complete/policies/parallel", func(b *testing.B) {
		b.ReportAllocs()
		req := &sluice.Request{Model: "policies"}
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := r.Complete(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
