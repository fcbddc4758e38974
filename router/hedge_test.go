package router

import (
	"context"
	"errors"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-gw/sluice"
)

// TestHedge checks hedged calls: after the delay without a first content
// the next target is called too; the first to answer wins, the other is
// cancelled at once, released and reported as lost; a call makes one hedge
// at most; a failure before the delay falls back as usual.
func TestHedge(t *testing.T) {
	bad := upstream(503, 0)
	tests := []struct {
		name      string
		fakes     []*fake
		wantModel string
		wantCode  sluice.Code
		want      []string
		wantAt    time.Duration
		cancelled []int // per fake: calls cancelled before their first content
	}{
		{
			name:      "the hedge wins",
			fakes:     []*fake{{name: "f1", ttft: 5 * time.Second}, {name: "f2", ttft: 100 * time.Millisecond}},
			wantModel: "f2", want: []string{"p1 lost", "p2 hedge ok"}, wantAt: 1100 * time.Millisecond, cancelled: []int{1, 0},
		},
		{
			name:      "the first wins",
			fakes:     []*fake{{name: "f1", ttft: 1500 * time.Millisecond}, {name: "f2", ttft: 5 * time.Second}},
			wantModel: "f1", want: []string{"p1 ok", "p2 hedge lost"}, wantAt: 1500 * time.Millisecond, cancelled: []int{0, 1},
		},
		{
			name:      "fast: no hedge",
			fakes:     []*fake{{name: "f1", ttft: 100 * time.Millisecond}, {name: "f2"}},
			wantModel: "f1", want: []string{"p1 ok"}, wantAt: 100 * time.Millisecond, cancelled: []int{0, 0},
		},
		{
			name:      "a failure before the delay falls back",
			fakes:     []*fake{{name: "f1", fail: always(bad)}, {name: "f2", ttft: 100 * time.Millisecond}},
			wantModel: "f2", want: []string{"p1 upstream_unavailable", "p2 ok"}, wantAt: 100 * time.Millisecond, cancelled: []int{0, 0},
		},
		{
			name: "the fallback is hedged in turn",
			fakes: []*fake{{name: "f1", fail: always(bad)}, {name: "f2", ttft: 5 * time.Second},
				{name: "f3", ttft: 100 * time.Millisecond}},
			wantModel: "f3", want: []string{"p1 upstream_unavailable", "p2 lost", "p3 hedge ok"}, wantAt: 1100 * time.Millisecond,
			cancelled: []int{0, 1, 0},
		},
		{
			name: "one hedge at most",
			fakes: []*fake{{name: "f1", ttft: 5 * time.Second}, {name: "f2", ttft: 5 * time.Second},
				{name: "f3"}},
			wantModel: "f1", want: []string{"p1 ok", "p2 hedge lost"}, wantAt: 5 * time.Second, cancelled: []int{0, 1, 0},
		},
		{
			name:      "a failed hedge leaves the first running",
			fakes:     []*fake{{name: "f1", ttft: 2 * time.Second}, {name: "f2", fail: always(bad)}},
			wantModel: "f1", want: []string{"p1 ok", "p2 hedge upstream_unavailable"}, wantAt: 2 * time.Second, cancelled: []int{0, 0},
		},
		{
			name:     "both fail",
			fakes:    []*fake{{name: "f1", ttft: 2 * time.Second}, {name: "f2", fail: always(bad)}},
			wantCode: sluice.CodeUpstreamTimeout, want: []string{"p1 upstream_timeout", "p2 hedge upstream_unavailable"},
			wantAt: 1500 * time.Millisecond, cancelled: []int{1, 0},
		},
		{
			name:     "the client's error ends the race",
			fakes:    []*fake{{name: "f1", ttft: 5 * time.Second}, {name: "f2", fail: always(upstream(400, 0))}},
			wantCode: sluice.CodeInvalidRequest, want: []string{"p1 lost", "p2 hedge invalid_request"}, wantAt: time.Second,
			cancelled: []int{1, 0},
		},
	}
	for _, tt := range tests {
		for _, stream := range []bool{false, true} {
			name := tt.name
			if stream {
				name += "/stream"
			}
			t.Run(name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					ps := make([]sluice.Provider, len(tt.fakes))
					for i, f := range tt.fakes {
						cp := &fake{name: f.name, ttft: f.ttft, fail: f.fail} // fresh counts per run
						tt.fakes[i] = cp
						ps[i] = cp
					}
					ts := targets(ps...)
					if tt.name == "both fail" {
						ts[0].Provider = WithTimeouts(ps[0], Timeouts{FirstToken: 1500 * time.Millisecond, Total: 1500 * time.Millisecond})
					}
					r := mustNew(t, Options{}, Route{Name: "m", Hedge: Hedge{After: time.Second}, Targets: ts})
					start := time.Now()
					res := do(t.Context(), r, "m", stream)
					if tt.wantCode != "" {
						if got := sluice.ErrorCode(res.err); got != tt.wantCode {
							t.Fatalf("code %q (%v), want %q", got, res.err, tt.wantCode)
						}
					} else if res.err != nil || res.model != tt.wantModel {
						t.Fatalf("model %q, err %v; want %q", res.model, res.err, tt.wantModel)
					}
					if got := time.Since(start); got != tt.wantAt {
						t.Errorf("took %v, want %v", got, tt.wantAt)
					}
					if diff := cmp.Diff(tt.want, res.attempts); diff != "" {
						t.Errorf("attempts (-want +got):\n%s", diff)
					}
					for i, f := range tt.fakes {
						if _, c := f.stats(); c != tt.cancelled[i] {
							t.Errorf("%s: %d calls cancelled, want %d", f.name, c, tt.cancelled[i])
						}
						if n := f.open.Load(); n != 0 {
							t.Errorf("%s: %d streams not released", f.name, n)
						}
					}
				})
			})
		}
	}
}

// TestHedgeLostUsage checks that a lost attempt reports what its upstream
// reported before it was cancelled, to be metered, and that the winner's
// stream keeps its context until it is read.
func TestHedgeLostUsage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow, fast := &fake{name: "f1", ttft: time.Minute}, &fake{name: "f2"}
		r := mustNew(t, Options{}, Route{Name: "m", Hedge: Hedge{After: time.Second}, Targets: targets(slow, fast)})
		var got []Attempt
		ctx := WithAttemptFunc(t.Context(), func(a Attempt) { got = append(got, a) })
		s, err := r.Stream(ctx, &sluice.Request{Model: "m"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || !got[0].Lost || got[0].Usage.InputTokens != 7 || got[0].Err != ErrHedgeLost || got[1].Usage != (sluice.Usage{}) {
			t.Errorf("attempts %+v", got)
		}
		time.Sleep(time.Hour) // the winner's context lives on
		resp, err := sluice.Collect(s)
		if err != nil || resp.Model != "f2" || resp.Usage.OutputTokens != 1 {
			t.Errorf("winner's stream: %+v, %v", resp, err)
		}
		if fast.open.Load() != 0 || slow.open.Load() != 0 {
			t.Error("streams not released")
		}
	})
}

// TestHedgeP95 checks that a P95 hedge waits for the route's observed 95th
// percentile time to first content, and does not hedge before it has seen
// enough calls when After is zero.
func TestHedgeP95(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		first, second := &fake{name: "f1"}, &fake{name: "f2", ttft: 100 * time.Millisecond}
		r := mustNew(t, Options{}, Route{Name: "m", Hedge: Hedge{P95: true}, Targets: targets(first, second)})
		for i := range minSamples {
			first.ttft = time.Duration(i+1) * 10 * time.Millisecond // 10ms to 200ms
			if res := do(t.Context(), r, "m", true); res.model != "f1" || len(res.attempts) != 1 {
				t.Fatalf("call %d: %+v", i, res)
			}
		}
		first.ttft = 5 * time.Second
		start := time.Now()
		res := do(t.Context(), r, "m", true)
		if diff := cmp.Diff([]string{"p1 lost", "p2 hedge ok"}, res.attempts); diff != "" {
			t.Errorf("attempts (-want +got):\n%s", diff)
		}
		if got := time.Since(start); got != 290*time.Millisecond {
			t.Errorf("took %v, want the p95 (190ms) and the hedge's 100ms", got)
		}
		// Complete calls keep their own samples: none yet, no hedge.
		first.ttft = 500 * time.Millisecond
		if res := do(t.Context(), r, "m", false); len(res.attempts) != 1 {
			t.Errorf("Complete hedged without samples: %v", res.attempts)
		}
	})
}

// TestHedgeMidStreamFailover checks that a hedged stream that breaks fails
// over to the targets the race did not start.
func TestHedgeMidStreamFailover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		first := &fake{name: "f1", ttft: 1500 * time.Millisecond, brk: broken}
		second := &fake{name: "f2", ttft: time.Minute}
		third := &scripted{events: []sluice.Event{evStart(1), evText(" again"), evFinish}, err: io.EOF}
		r := mustNew(t, Options{}, Route{Name: "m", MidStreamFailover: true, Hedge: Hedge{After: time.Second}, Targets: targets(first, second, third)})
		res := do(t.Context(), r, "m", true)
		if res.err != nil {
			t.Fatal(res.err)
		}
		if diff := cmp.Diff([]string{"p1 ok", "p2 hedge lost", "p3 ok"}, res.attempts); diff != "" {
			t.Errorf("attempts (-want +got):\n%s", diff)
		}
		if calls, cancelled := second.stats(); calls != 1 || cancelled != 1 {
			t.Errorf("the hedge: %d calls, %d cancelled", calls, cancelled)
		}
		if len(third.reqs) != 1 || third.closed != 1 || first.open.Load() != 0 {
			t.Errorf("failover: %d calls, %d closed; first open %d", len(third.reqs), third.closed, first.open.Load())
		}
	})
}

// TestHedgeCancelled checks that the caller's cancellation ends both runs
// of a race, which are waited for and not reported as lost.
func TestHedgeCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p1, p2 := &fake{name: "f1", ttft: time.Minute}, &fake{name: "f2", ttft: time.Minute}
		r := mustNew(t, Options{}, Route{Name: "m", Hedge: Hedge{After: time.Second}, Targets: targets(p1, p2)})
		ctx, cancel := context.WithCancel(t.Context())
		go func() {
			time.Sleep(1500 * time.Millisecond)
			cancel()
		}()
		res := do(ctx, r, "m", true)
		if !errors.Is(res.err, context.Canceled) {
			t.Errorf("err %v, want the cancellation", res.err)
		}
		if diff := cmp.Diff([]string{"p1 internal", "p2 hedge internal"}, res.attempts); diff != "" {
			t.Errorf("attempts (-want +got):\n%s", diff)
		}
		_, c1 := p1.stats()
		_, c2 := p2.stats()
		if c1 != 1 || c2 != 1 || p1.open.Load() != 0 || p2.open.Load() != 0 {
			t.Errorf("cancelled %d and %d, open %d and %d", c1, c2, p1.open.Load(), p2.open.Load())
		}
	})
}

func TestSampler(t *testing.T) {
	var s sampler
	for i := range minSamples - 1 {
		s.add(time.Duration(i))
	}
	if _, ok := s.p95(); ok {
		t.Error("p95 before enough samples")
	}
	for i := range 1000 {
		s.add(time.Duration(i % 100))
	}
	// The last 128 samples are 0..71 once and 72..99 twice: the 122nd of
	// them is 96.
	if q, ok := s.p95(); !ok || q != 96 {
		t.Errorf("p95 = %v, %v", q, ok)
	}
}
