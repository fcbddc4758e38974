package gateway

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// countingGatherer counts the Gathers in progress at once.
type countingGatherer struct {
	in, max atomic.Int32
	hold    chan struct{} // closed to let Gathers finish
}

func (g *countingGatherer) Gather() ([]*dto.MetricFamily, error) {
	n := g.in.Add(1)
	defer g.in.Add(-1)
	for m := g.max.Load(); n > m && !g.max.CompareAndSwap(m, n); m = g.max.Load() {
	}
	<-g.hold
	return nil, nil
}

// TestUIStatsSampleOnce checks that calls ending together when a sample is
// due take it once: one Gather, not one each.
func TestUIStatsSampleOnce(t *testing.T) {
	g := &countingGatherer{hold: make(chan struct{})}
	now := time.Unix(1e9, 0)
	var s *uiStats
	func() {
		close(g.hold) // the first sample, at creation, goes through
		s = newUIStats(g, func() time.Time { return now })
	}()
	g.max.Store(0)
	g.hold = make(chan struct{})
	now = now.Add(sampleEvery)
	var (
		wg       sync.WaitGroup
		returned atomic.Int32
	)
	for range 8 {
		wg.Go(func() {
			s.maybeSample()
			returned.Add(1)
		})
	}
	// The seven that find the sample being taken return at once; the
	// eighth holds it until released.
	deadline := time.Now().Add(10 * time.Second)
	for returned.Load() < 7 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(g.hold)
	wg.Wait()
	if n := g.max.Load(); n != 1 {
		t.Errorf("%d Gathers at once for one sample, want 1", n)
	}
}

// TestUIStatsWindowAfterIdle checks that after a quiet night the overview
// still covers an hour, with the calls made in it.
func TestUIStatsWindowAfterIdle(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_requests_total"}, []string{"code"})
	reg.MustRegister(c)
	now := time.Unix(1e9, 0)
	s := newUIStats(reg, func() time.Time { return now })
	for range 400 { // 66 minutes of traffic, a sample each 10 s
		c.WithLabelValues("ok").Inc()
		s.maybeSample()
		now = now.Add(sampleEvery)
	}
	now = now.Add(5 * time.Hour) // no call, no dashboard
	c.WithLabelValues("ok").Inc()
	s.maybeSample()
	ov := s.overview()
	if ov.WindowSeconds != 3600 || ov.Requests != 1 {
		t.Errorf("window %v s with %v requests, want 3600 s with the 1 call of the last hour", ov.WindowSeconds, ov.Requests)
	}
}

// TestUIStatsCountsBefore checks that counts made before the dashboard
// existed are not in its overview.
func TestUIStatsCountsBefore(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_requests_total"}, []string{"code"})
	reg.MustRegister(c)
	c.WithLabelValues("ok").Add(50)
	now := time.Unix(1e9, 0)
	s := newUIStats(reg, func() time.Time { return now })
	c.WithLabelValues("upstream_timeout").Inc()
	now = now.Add(time.Minute)
	ov := s.overview()
	if ov.Requests != 1 || ov.Errors["upstream_timeout"] != 1 || ov.ErrorRate != 1 {
		t.Errorf("overview %+v: want the one call since the dashboard started", ov)
	}
}
