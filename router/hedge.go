package router

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/sluice-gw/sluice"
)

// hedgeDelay returns how long a call of the route waits for its target's
// first content (for Complete: its answer) before hedging; 0: no hedge.
func (rt *route) hedgeDelay(stream bool) time.Duration {
	if !rt.Hedge.P95 {
		return rt.Hedge.After
	}
	if q, ok := rt.ttft[b2i(stream)].p95(); ok {
		return max(q, rt.Hedge.After)
	}
	return rt.Hedge.After
}

// A hedgeRun is the end of one target's tries within a hedged call.
type hedgeRun struct {
	i        int // the target's place in the plan
	o        outcome
	attempts []Attempt
}

// hedged runs a call along plan with at most one hedge: each target runs
// on its own goroutine under its own context; while exactly one runs and no
// hedge was made, the next target is started beside it after delay. The
// first answer wins and every other run is cancelled (with cause
// ErrHedgeLost) and waited for; a run that fails moves on as Complete and
// Stream do. hedged returns the winner's outcome (its stream releases the
// winner's context) or the failure, and the index of the first target it
// did not start. Attempts are reported at the end, in start order.
func (c *call) hedged(ctx context.Context, plan []*target, delay time.Duration) (outcome, int) {
	results := make(chan hedgeRun, len(plan)) // never blocks a run
	cancels := make([]context.CancelCauseFunc, len(plan))
	runs := make([]hedgeRun, len(plan))
	finished := make([]bool, len(plan))
	stopped := make([]bool, len(plan)) // cancelled while running, having lost
	var wg sync.WaitGroup
	started, running, hedges := 0, 0, 0
	start := func(hedge bool) {
		i := started
		started++
		running++
		rctx, cancel := context.WithCancelCause(ctx)
		cancels[i] = cancel
		t := plan[i]
		wg.Go(func() {
			run := hedgeRun{i: i}
			var rep func(Attempt)
			if c.report != nil {
				rep = func(a Attempt) { run.attempts = append(run.attempts, a) }
			}
			run.o = c.try(rctx, t, targetRequest(c.req, t.Target), hedge, rep)
			results <- run
		})
	}
	timer := time.NewTimer(delay)
	defer timer.Stop()
	arm := func() <-chan time.Time {
		if hedges > 0 || running != 1 || started >= len(plan) {
			return nil
		}
		timer.Reset(delay)
		return timer.C
	}
	start(false)
	tick := arm()
	win, done := -1, false
	var f failures
	for running > 0 {
		select {
		case run := <-results:
			running--
			runs[run.i], finished[run.i] = run, true
			if done {
				continue
			}
			if run.o.err == nil {
				win = run.i
			} else {
				f.add(run.o)
			}
			if run.o.err == nil || !fallback(ctx, run.o.err) {
				done, tick = true, nil
				if ctx.Err() == nil { // else the caller has cancelled every run
					for j := range started {
						if !finished[j] {
							stopped[j] = true
							cancels[j](ErrHedgeLost)
						}
					}
				}
				continue
			}
			if running == 0 && started < len(plan) {
				start(false)
			}
			tick = arm()
		case <-tick:
			hedges++
			start(true)
			tick = arm()
		}
	}
	wg.Wait()
	for i := range started {
		run := &runs[i]
		if i != win {
			cancels[i](nil)
			if run.o.s != nil {
				run.o.s.Close() // answered after the winner
			}
			if (stopped[i] || run.o.err == nil) && !run.o.cut && len(run.attempts) > 0 {
				a := &run.attempts[len(run.attempts)-1]
				a.Lost, a.Err = true, ErrHedgeLost
				if run.o.resp != nil {
					a.Usage = run.o.resp.Usage
				} else if run.o.err == nil {
					a.Usage = run.o.usage
				}
			}
		}
		if c.report != nil {
			for _, a := range run.attempts {
				c.report(a)
			}
		}
	}
	if win < 0 {
		return outcome{err: f.err()}, started
	}
	o := runs[win].o
	cancel := cancels[win]
	if o.s == nil {
		cancel(nil)
		return o, started
	}
	next, stop := sluice.Pull(o.s)
	o.s = sluice.NewStream(next, func() error { stop(); cancel(nil); return nil })
	return o, started
}

// sampleSize is the number of recent times to first content a sampler
// keeps, and minSamples how many it needs to judge a percentile.
const (
	sampleSize = 128
	minSamples = 20
)

// A sampler keeps recent times to first content and their 95th
// percentile. It is safe for concurrent use.
type sampler struct {
	mu    sync.Mutex
	buf   [sampleSize]time.Duration
	n     int // samples added, ever
	q     time.Duration
	stale int // samples added since q was computed; -1: never computed
}

func (s *sampler) add(d time.Duration) {
	s.mu.Lock()
	s.buf[s.n%sampleSize] = d
	s.n++
	s.stale++
	s.mu.Unlock()
}

// p95 returns the 95th percentile of the recent samples, recomputed every
// few samples; ok is false until there are minSamples.
func (s *sampler) p95() (q time.Duration, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n < minSamples {
		return 0, false
	}
	if s.q == 0 || s.stale >= 8 {
		k := min(s.n, sampleSize)
		tmp := s.buf
		slices.Sort(tmp[:k])
		s.q = tmp[(k*95+99)/100-1]
		s.stale = 0
	}
	return s.q, true
}
