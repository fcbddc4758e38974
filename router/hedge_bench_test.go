package router

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/sim"
)

// countedProvider counts the calls that reach a provider.
type countedProvider struct {
	sluice.Provider
	calls *atomic.Int64
}

func (p countedProvider) Complete(ctx context.Context, req *sluice.Request) (*sluice.Response, error) {
	p.calls.Add(1)
	return p.Provider.Complete(ctx, req)
}

func (p countedProvider) Stream(ctx context.Context, req *sluice.Request) (sluice.Stream, error) {
	p.calls.Add(1)
	return p.Provider.Stream(ctx, req)
}

// seededRand returns a Rand for sim.Options that draws the same sequence
// on every run, safe for concurrent use.
func seededRand(seed uint64) func() float64 {
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(seed, seed))
	return func() float64 {
		mu.Lock()
		defer mu.Unlock()
		return r.Float64()
	}
}

// BenchmarkHedgeTail measures what hedging does to the latency of
// non-streaming calls over two simulated targets with a long tail: each
// answers in about 5 ms, but one call in 20 waits 500 ms more for its first
// token (fault latency=5ms,tail=0.05:500ms). The route is called without a
// hedge, with a fixed one after 50 ms, and with one after the observed p95.
// Eight callers share the calls; the sleeps dominate, so the CPU does not.
//
// It reports the latency percentiles of the calls (ms) and the upstream
// calls per call (1 without hedging; the share above 1 is what hedging
// costs). The simulators' random draws are seeded, so with a fixed
// -benchtime=Nx every variant sees the same tail calls on its primary.
//
//	go test -run '^$' -bench HedgeTail -benchtime=2000x ./router/
func BenchmarkHedgeTail(b *testing.B) {
	fault := sim.Fault{Latency: 5 * time.Millisecond, TailP: 0.05, Tail: 500 * time.Millisecond}
	req := &sluice.Request{Model: "m", Messages: []sluice.Message{{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart("Hello.")}}}}
	for _, bc := range []struct {
		name  string
		hedge Hedge
	}{
		{"off", Hedge{}},
		{"after=50ms", Hedge{After: 50 * time.Millisecond}},
		{"after=p95", Hedge{P95: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var calls atomic.Int64
			ts := make([]Target, 2)
			for i := range ts {
				name := []string{"s1", "s2"}[i]
				p := sim.New(sim.Options{Name: name, Fault: fault, Rand: seededRand(uint64(i + 1))})
				ts[i] = Target{ProviderName: name, Provider: countedProvider{p, &calls}, Model: "m"}
			}
			r := mustNew(b, Options{}, Route{Name: "m", Targets: ts, Hedge: bc.hedge})
			var mu sync.Mutex
			lat := make([]time.Duration, 0, b.N)
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					start := time.Now()
					if _, err := r.Complete(context.Background(), req); err != nil {
						b.Error(err)
						return
					}
					mine = append(mine, time.Since(start))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
			if len(lat) == 0 {
				return
			}
			slices.Sort(lat)
			at := func(q float64) float64 { // nearest rank
				i := int(math.Ceil(q*float64(len(lat)))) - 1
				return float64(lat[max(i, 0)]) / float64(time.Millisecond)
			}
			b.ReportMetric(at(0.50), "p50-ms")
			b.ReportMetric(at(0.95), "p95-ms")
			b.ReportMetric(at(0.99), "p99-ms")
			b.ReportMetric(at(0.999), "p99.9-ms")
			b.ReportMetric(float64(calls.Load())/float64(len(lat)), "upstream-calls/op")
		})
	}
}
