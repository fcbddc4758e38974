package gateway_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/pipeline"
	"github.com/sluice-gw/sluice/sim"
)

// TestChaos serves 2,000 requests (SLUICE_CHAOS_REQUESTS) while the
// primary target fails 30% of its calls with a 503 and stalls on 5%:
// every request succeeds through retries and fallbacks or gets a clean,
// client-safe error; no idempotency key is answered by the upstream twice;
// the retries stay within the retry budget.
func TestChaos(t *testing.T) {
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("SLUICE_CHAOS_REQUESTS")); err == nil && v > 0 {
		n = v
	}
	s := sim.NewServer(sim.Options{})
	var mu sync.Mutex
	answered := map[string]int{} // request tag → upstream answers that succeeded
	var primaryCalls, backupCalls atomic.Int64
	tagOf := regexp.MustCompile(`req-[0-9]+`)
	chaos := func(counter *atomic.Int64, faulty bool) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			counter.Add(1)
			b, _ := io.ReadAll(r.Body)
			tag := tagOf.FindString(string(b))
			if faulty {
				switch x := rand.Float64(); {
				case x < 0.30:
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(503)
					io.WriteString(w, `{"error":{"message":"upstream secret detail org-123","type":"server_error"}}`)
					return
				case x < 0.35:
					select { // stall until the gateway gives up
					case <-r.Context().Done():
					case <-time.After(5 * time.Second):
					}
					return
				}
			}
			rec := httptest.NewRecorder()
			r.Body = io.NopCloser(strings.NewReader(string(b)))
			s.ServeHTTP(rec, r)
			if rec.Code == 200 && r.Context().Err() == nil {
				mu.Lock()
				answered[tag]++
				mu.Unlock()
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
		})
	}
	primary := httptest.NewServer(chaos(&primaryCalls, true))
	defer primary.Close()
	backup := httptest.NewServer(chaos(&backupCalls, false))
	defer backup.Close()
	var retries, requestsSeen atomic.Int64
	p := pipelineFromYAML(t, `providers:
  - {name: primary, type: openai, base_url: `+primary.URL+`/v1, api_key: k, timeouts: {first_token: 300ms, total: 2s}}
  - {name: backup, type: openai, base_url: `+backup.URL+`/v1, api_key: k}
models:
  - name: m
    targets: [{provider: primary, model: m}, {provider: backup, model: m}]
    retry: {attempts: 3, budget: 0.1}
`, pipeline.Options{OnRecord: func(_ context.Context, r pipeline.Record) {
		retries.Add(int64(r.Retries))
		requestsSeen.Add(1)
	}})
	gw := httptest.NewServer(gateway.NewServer(nil, p, gateway.Options{}))
	defer gw.Close()

	start := time.Now()
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			stream := i%3 == 0
			key := fmt.Sprintf("req-%d", i/2*2) // every other request repeats its neighbour's key and body
			body := fmt.Sprintf(`{"model":"m","stream":%v,"messages":[{"role":"user","content":"Tell me about %s."}]}`, stream, key)
			if i%2 == 1 {
				body = fmt.Sprintf(`{"model":"m","stream":%v,"messages":[{"role":"user","content":"Tell me about %s."}]}`, (i-1)%3 == 0, key)
			}
			req, _ := http.NewRequest("POST", gw.URL+"/v1/chat/completions", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			text := string(b)
			switch {
			case resp.StatusCode == 200 && !strings.Contains(text, `"error"`):
				ok.Add(1)
			default:
				failed.Add(1)
				if strings.Contains(text, "org-123") || strings.Contains(text, "secret") {
					t.Errorf("the upstream's message reached the client: %s", text)
				}
				if !regexp.MustCompile(`"code":"(upstream_unavailable|upstream_timeout|upstream_error|overloaded|stream_interrupted|rate_limited)"`).MatchString(text) {
					t.Errorf("not a client-safe error: %d %s", resp.StatusCode, text)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	t.Logf("%d requests in %v: %d ok, %d clean errors; primary %d calls, backup %d calls; %d retries over %d calls",
		n, elapsed, ok.Load(), failed.Load(), primaryCalls.Load(), backupCalls.Load(), retries.Load(), requestsSeen.Load())
	mu.Lock()
	for tag, c := range answered {
		if c > 1 {
			t.Errorf("the upstream answered %s %d times: a repeat of its idempotency key was not served from the first answer", tag, c)
		}
	}
	mu.Unlock()
	// The retry budget: a tenth of the recent requests, and at least 10
	// per 10 s window.
	windows := int64(elapsed/(10*time.Second)) + 1
	if max := requestsSeen.Load()/10 + 10*windows + 10; retries.Load() > max {
		t.Errorf("%d retries, over the budget of %d", retries.Load(), max)
	}
	if ok.Load() < int64(n)*9/10 {
		t.Errorf("only %d of %d requests succeeded with a healthy fallback", ok.Load(), n)
	}
}
