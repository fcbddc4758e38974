package pipeline

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice/guard"
	"github.com/sluice-gw/sluice/router"
)

// watchers are the functions Watch added, called with every Record.
type watchers struct {
	mu   sync.Mutex
	next int
	fns  map[int]func(Record)
	list atomic.Pointer[[]func(Record)] // fns' values, replaced on change
}

// Watch calls f with the Record of every call from now on, once each, on
// the goroutine that ends the call, until stop is called. f must not block:
// the admin dashboard's live view keeps the recent ones.
func (p *Pipeline) Watch(f func(Record)) (stop func()) {
	w := &p.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fns == nil {
		w.fns = map[int]func(Record){}
	}
	id := w.next
	w.next++
	w.fns[id] = f
	w.refresh()
	var once sync.Once
	return func() {
		once.Do(func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			delete(w.fns, id)
			w.refresh()
		})
	}
}

// refresh rebuilds list from fns; w.mu is held.
func (w *watchers) refresh() {
	list := make([]func(Record), 0, len(w.fns))
	for _, f := range w.fns {
		list = append(list, f)
	}
	w.list.Store(&list)
}

// notify calls the watchers with rec.
func (w *watchers) notify(rec Record) {
	list := w.list.Load()
	if list == nil {
		return
	}
	for _, f := range *list {
		f(rec)
	}
}

// Routes returns the model routes as the router runs them: targets and
// policies, in config order.
func (p *Pipeline) Routes() []router.Route {
	var out []router.Route
	for _, name := range p.router.Models() {
		if rt, ok := p.router.Route(name); ok {
			out = append(out, *rt)
		}
	}
	return out
}

// Breakers returns the state of every target's circuit breaker.
func (p *Pipeline) Breakers() []router.BreakerStatus { return p.router.Breakers() }

// Bulkheads returns the calls in flight of every provider with a bulkhead.
func (p *Pipeline) Bulkheads() []router.BulkheadStatus { return p.router.Bulkheads() }

// Tier returns the configured tier name's limits.
func (p *Pipeline) Tier(name string) (guard.Tier, bool) {
	t, ok := p.guards.tiers[name]
	return t, ok
}

// Spent returns what key keyID has spent this UTC day and month, as this
// instance's budgets know it (the ledger's spend before it started, plus
// its own since).
func (p *Pipeline) Spent(ctx context.Context, keyID string) (day, month float64, err error) {
	return p.guards.budgets.Spent(ctx, keyID, "")
}

// TierNames returns the configured tiers' names, sorted.
func (p *Pipeline) TierNames() []string {
	names := make([]string, 0, len(p.guards.tiers))
	for name := range p.guards.tiers {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// A CacheInfo is a route's response cache policy.
type CacheInfo struct {
	TTL            time.Duration
	MaxTemperature float64
	// Always reports that hits are served as a normal cache, not only when
	// every target failed.
	Always bool
}

// RouteCache returns the response cache policy of model route name, if it
// has one.
func (p *Pipeline) RouteCache(name string) (CacheInfo, bool) {
	cp := p.caches[name]
	if cp == nil {
		return CacheInfo{}, false
	}
	return CacheInfo{TTL: cp.ttl, MaxTemperature: cp.maxTemp, Always: cp.always}, true
}
