package router

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/sluice-gw/sluice"
)

// retryable reports whether a failure before the first content may be
// retried on the same target: a transient failure of the upstream (see
// Retry), while ctx lives.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	code := sluice.ErrorCode(err)
	if code != sluice.CodeUpstreamTimeout && errors.Is(err, context.Canceled) {
		return false
	}
	var ue *sluice.UpstreamError
	if errors.As(err, &ue) && ue.StatusCode != 0 {
		switch ue.StatusCode {
		case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooManyRequests,
			http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable,
			http.StatusGatewayTimeout, 529:
			return true
		}
		return false
	}
	// No status: a transport failure (a refused or reset connection is
	// upstream_unavailable, a timeout upstream_timeout), or an error event
	// before the first content, as Anthropic's overloaded_error after a 200.
	switch code {
	case sluice.CodeUpstreamTimeout, sluice.CodeUpstreamUnavailable, sluice.CodeOverloaded, sluice.CodeRateLimited:
		return true
	}
	return false
}

// backoff returns the wait before retry n (1 for the first retry) after
// err: full jitter up to BaseBackoff×2^(n-1), capped at MaxBackoff, or the
// upstream's Retry-After when that is longer.
func backoff(p *Retry, n int, err error, rnd func() float64) time.Duration {
	ceil := p.BaseBackoff
	for i := 1; i < n && ceil < p.MaxBackoff; i++ {
		ceil *= 2
	}
	ceil = min(ceil, p.MaxBackoff)
	d := time.Duration(rnd() * float64(ceil))
	if ra := sluice.AsError(err).RetryAfter; ra > d {
		d = ra
	}
	return d
}

// sleep waits for d, and reports whether it did: false when ctx ended
// first.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// A retryBudget counts a provider's recent requests (first attempts) and
// retries, so that retries stay a share of the requests (like Finagle's
// and Envoy's retry budgets). It is safe for concurrent use.
type retryBudget struct {
	min int64

	mu sync.Mutex
	w  window // requests (n) and retries (m)
}

func newRetryBudget(span time.Duration, min int) *retryBudget {
	return &retryBudget{min: int64(max(min, 0)), w: window{span: span / windowBuckets}}
}

// request counts a first attempt.
func (b *retryBudget) request(now time.Time) {
	b.mu.Lock()
	b.w.add(now, 1, 0)
	b.mu.Unlock()
}

// retry reports whether one more retry fits the budget of share, and
// counts it when it does.
func (b *retryBudget) retry(now time.Time, share float64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	reqs, retries := b.w.sum(now)
	if retries >= b.min && float64(retries+1) > share*float64(reqs) {
		return false
	}
	b.w.add(now, 0, 1)
	return true
}
