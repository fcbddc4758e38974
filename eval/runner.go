package eval

import (
	"context"
	"sync"
	"time"
)

// A Caller makes one call of a case on a target and describes it: the
// Attempt's Output, Code, Model, Provider, Latency, TTFT, tokens, cost,
// Schema, Valid and Repairs. kind is "route" or "contract". It must be
// safe for concurrent use.
type Caller interface {
	Call(ctx context.Context, kind, target string, c *Case) Attempt
}

// A Runner runs a dataset's cases on targets through a Caller.
type Runner struct {
	Caller Caller
	// Concurrency bounds the calls in flight; Repeat is how many times each
	// case runs on each target. Zero means 1.
	Concurrency, Repeat int
	// MaxCostUSD, when positive, stops the run once the attempts made have
	// cost that much: no new call starts; those in flight finish.
	MaxCostUSD float64
	// Progress, when set, is called after each attempt with the attempts
	// done and planned, from one goroutine at a time.
	Progress func(done, planned int)
}

// Run calls every case on every target of info (info.Kind says which
// kind), Repeat times, checks each attempt against its case, and returns
// the attempts in case, target, repetition order, with info completed
// (Repeat, Concurrency, Cases, Planned, Started, Finished, Stopped). When
// ctx ends, no new call starts, the calls in flight are cancelled, and
// their attempts (cut short by the interruption, not by the target) are
// left out; info.Stopped is then "interrupted".
func (r *Runner) Run(ctx context.Context, info RunInfo, cases []Case) ([]Attempt, RunInfo) {
	repeat, conc := max(r.Repeat, 1), max(r.Concurrency, 1)
	info.Repeat, info.Concurrency, info.Cases = repeat, conc, len(cases)
	info.Planned = len(cases) * len(info.Targets) * repeat
	info.MaxCostUSD = r.MaxCostUSD
	info.Started = time.Now()

	type job struct{ ci, ti, rep int }
	jobs := make(chan job)
	results := make([]*Attempt, info.Planned)
	index := func(j job) int { return (j.ci*len(info.Targets)+j.ti)*repeat + j.rep }

	var (
		mu      sync.Mutex
		done    int
		cost    float64
		stopped string
	)
	over := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return stopped != ""
	}
	callCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range min(conc, max(info.Planned, 1)) {
		wg.Go(func() {
			for j := range jobs {
				if over() || callCtx.Err() != nil {
					continue // stopped while this job was handed over
				}
				c := &cases[j.ci]
				a := r.Caller.Call(callCtx, info.Kind, info.Targets[j.ti], c)
				if callCtx.Err() != nil {
					continue // cut short by the interruption: not the target's doing
				}
				a.Case, a.Target, a.Rep = c.ID, info.Targets[j.ti], j.rep
				c.Check(&a)
				mu.Lock()
				results[index(j)] = &a
				done++
				cost += a.CostUSD
				if r.MaxCostUSD > 0 && cost >= r.MaxCostUSD && stopped == "" {
					stopped = "max_cost"
				}
				if r.Progress != nil {
					r.Progress(done, info.Planned)
				}
				mu.Unlock()
			}
		})
	}
feed:
	for ci := range cases {
		for ti := range info.Targets {
			for rep := range repeat {
				if over() || ctx.Err() != nil {
					break feed
				}
				select {
				case jobs <- job{ci, ti, rep}:
				case <-ctx.Done():
					break feed
				}
			}
		}
	}
	close(jobs)
	wg.Wait()
	if stopped == "" && ctx.Err() != nil {
		stopped = "interrupted"
	}
	info.Stopped = stopped
	info.Finished = time.Now()
	attempts := make([]Attempt, 0, done)
	for _, a := range results {
		if a != nil {
			attempts = append(attempts, *a)
		}
	}
	return attempts, info
}
