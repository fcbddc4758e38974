package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/pipeline"
	"github.com/sluice-gw/sluice/sim"
	"github.com/sluice-gw/sluice/telemetry"
)

// TestBreakerOutage runs the primary through an outage: it answers 503 for
// a while (30 s with SLUICE_OUTAGE=30s, a second by default), then
// recovers. Every request succeeds on the fallback meanwhile, with no
// client-visible error; the primary's breaker opens, skips it, lets
// probes through when half-open and closes once it answers again; the
// metrics show each transition and the state.
func TestBreakerOutage(t *testing.T) {
	outage := time.Second
	if v, err := time.ParseDuration(os.Getenv("SLUICE_OUTAGE")); err == nil {
		outage = v
	}
	var down atomic.Bool
	var primaryCalls atomic.Int64
	s := sim.NewServer(sim.Options{})
	primary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		primaryCalls.Add(1)
		if down.Load() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(503)
			io.WriteString(w, `{"error":{"message":"overloaded","type":"server_error"}}`)
			return
		}
		s.ServeHTTP(w, r)
	}))
	defer primary.Close()
	backup := httptest.NewServer(sim.NewServer(sim.Options{}))
	defer backup.Close()
	reg := prometheus.NewRegistry()
	m, err := telemetry.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	p := pipelineFromYAML(t, `providers:
  - {name: primary, type: openai, base_url: `+primary.URL+`/v1, api_key: k}
  - {name: backup, type: openai, base_url: `+backup.URL+`/v1, api_key: k}
models:
  - name: m
    targets: [{provider: primary, model: m}, {provider: backup, model: m}]
    breaker: {failure_rate: 0.5, window: 10s, min_requests: 5, consecutive: 3, open_for: 200ms}
`, pipeline.Options{Metrics: m})
	gw := httptest.NewServer(gateway.NewServer(nil, p, gateway.Options{Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}))
	defer gw.Close()

	call := func() {
		t.Helper()
		resp, err := http.Post(gw.URL+"/v1/chat/completions", "application/json",
			strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"Hello"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("client saw %d %s during the outage", resp.StatusCode, b)
		}
	}
	call()
	down.Store(true)
	end := time.Now().Add(outage)
	requests, before := 0, primaryCalls.Load()
	for time.Now().Before(end) {
		call()
		requests++
		time.Sleep(10 * time.Millisecond)
	}
	// While open, the breaker skipped the primary: it saw far fewer calls
	// than there were requests (the failures that opened it, then a probe
	// per open period).
	seen := primaryCalls.Load() - before
	t.Logf("a %v outage: %d requests, all answered; the primary saw %d of them", outage, requests, seen)
	if seen >= int64(requests) {
		t.Errorf("the primary saw %d of %d requests: the breaker did not skip it", seen, requests)
	}
	down.Store(false)
	time.Sleep(250 * time.Millisecond) // past open_for: the next call probes
	for range 5 {
		call()
	}
	exp := scrape(t, gw.URL)
	for _, want := range []string{
		`sluice_breaker_transitions_total{provider="primary",to="open",upstream_model="m"}`,
		`sluice_breaker_transitions_total{provider="primary",to="half-open",upstream_model="m"}`,
		`sluice_breaker_transitions_total{provider="primary",to="closed",upstream_model="m"}`,
		`sluice_breaker_state{provider="primary",upstream_model="m"} 0`,
		`sluice_upstream_attempt_kinds_total{kind="fallback",route="m"}`,
	} {
		if !strings.Contains(exp, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(exp, `code="upstream_unavailable"`) || strings.Contains(exp, `code="upstream_error"`) {
		t.Errorf("metrics show client-visible errors:\n%s", exp)
	}
}

func scrape(t *testing.T, url string) string {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
