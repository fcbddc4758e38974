package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/config"
	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/pipeline"
	"github.com/sluice-gw/sluice/sim"
	"github.com/sluice-gw/sluice/sse"
)

// benchGateway is a gateway whose models oa-model and an-model reach the
// simulator server at upstreamURL through the OpenAI and Anthropic
// providers. close stops it.
type benchGateway struct {
	srv   *httptest.Server
	close func()
}

func newBenchGateway(tb testing.TB, upstreamURL string, opts gateway.Options) *benchGateway {
	tb.Helper()
	cfg, err := config.Parse([]byte(`
providers:
  - {name: oa, type: openai, base_url: `+upstreamURL+`/v1, api_key: test}
  - {name: an, type: anthropic, base_url: `+upstreamURL+`, api_key: test}
models:
  - {name: oa-model, targets: [{provider: oa, model: upstream-model}]}
  - {name: an-model, targets: [{provider: an, model: upstream-model}]}
`), func(string) string { return "" })
	if err != nil {
		tb.Fatal(err)
	}
	p, err := pipeline.New(context.Background(), cfg, pipeline.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(gateway.NewServer(nil, p, opts))
	return &benchGateway{srv: srv, close: func() { srv.Close(); p.Close() }}
}

// memStreams is the number of streams BenchmarkOpenStreamMemory holds open
// in each iteration.
const memStreams = 1000

// memStallAfter is the number of content events after which the simulator
// holds each stream open.
const memStallAfter = 5

// memSample is what a number of open streams cost, per stream.
type memSample struct {
	heap, stack, goroutines float64
}

// BenchmarkOpenStreamMemory measures what an open stream costs: memStreams
// streams are held open mid-stream (the simulator stalls after a few
// events) while the live heap (HeapAlloc after a GC), the goroutine stacks
// (StackInuse) and the goroutines are counted. Client and simulator run in
// the process too, so each iteration measures the same streams twice, from
// the simulator server directly and through the gateway (OpenAI client,
// OpenAI provider), and reports both and the difference, which is what the
// gateway adds per stream: its connection from the client, its handler, and
// its connection to the upstream. Run it with a count, -benchtime=3x:
// each iteration opens 2*memStreams streams.
func BenchmarkOpenStreamMemory(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts gateway.Options
	}{
		// A short grace and retention let each iteration's streams end
		// promptly; they do not change what an open stream holds.
		{"resumable", gateway.Options{ResumeGrace: 10 * time.Millisecond, ResumeRetention: 10 * time.Millisecond}},
		{"not_resumable", gateway.Options{ResumeGrace: -1, ResumeRetention: -1}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var direct, through memSample
			n := 0.0
			for b.Loop() {
				d := measureOpenStreams(b, nil)
				g := measureOpenStreams(b, &bc.opts)
				direct.heap += d.heap
				direct.stack += d.stack
				direct.goroutines += d.goroutines
				through.heap += g.heap
				through.stack += g.stack
				through.goroutines += g.goroutines
				n++
			}
			b.ReportMetric(through.heap/n, "B/stream")
			b.ReportMetric((through.heap-direct.heap)/n, "gw-B/stream")
			b.ReportMetric(direct.heap/n, "direct-B/stream")
			b.ReportMetric((through.stack-direct.stack)/n, "gw-stack-B/stream")
			b.ReportMetric(through.goroutines/n, "goroutines/stream")
			b.ReportMetric((through.goroutines-direct.goroutines)/n, "gw-goroutines/stream")
		})
	}
}

// measureOpenStreams opens memStreams streams to a fresh simulator server,
// directly (gwOpts nil) or through a fresh gateway with gwOpts, and returns
// what they cost per stream while all are open.
func measureOpenStreams(b *testing.B, gwOpts *gateway.Options) memSample {
	b.Helper()
	up := sim.NewServer(sim.Options{Fault: sim.Fault{StallAfter: memStallAfter}, Tokens: 100})
	ups := httptest.NewServer(up)
	defer ups.Close()
	url := ups.URL + "/v1/chat/completions"
	model := "upstream-model"
	if gwOpts != nil {
		gw := newBenchGateway(b, ups.URL, *gwOpts)
		defer gw.close()
		url, model = gw.srv.URL+"/v1/chat/completions", "oa-model"
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	body := `{"model":"` + model + `","stream":true,"messages":[{"role":"user","content":"hold"}]}`

	before := memNow()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resps := make([]*http.Response, memStreams)
	defer func() {
		for _, r := range resps {
			if r != nil {
				r.Body.Close()
			}
		}
	}()
	// Open the streams from a few goroutines, each reading its stream's
	// first events, so that no goroutine of the benchmark is left waiting
	// while the costs are counted.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	work := make(chan int)
	for range 32 {
		wg.Go(func() {
			for i := range work {
				resp, err := openHeldStream(ctx, client, url, body)
				mu.Lock()
				resps[i] = resp
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		})
	}
	for i := range memStreams {
		work <- i
	}
	close(work)
	wg.Wait()
	if len(errs) > 0 {
		b.Fatalf("%d streams failed, the first: %v", len(errs), errs[0])
	}
	waitFor(b, "every upstream stream to stall", func() bool { return up.OpenStreams() == memStreams })
	after := memNow()

	cancel()
	for _, r := range resps {
		r.Body.Close()
	}
	waitFor(b, "every upstream stream to close", func() bool { return up.OpenStreams() == 0 })
	return memSample{
		heap:       float64(int64(after.heap)-int64(before.heap)) / memStreams,
		stack:      float64(int64(after.stack)-int64(before.stack)) / memStreams,
		goroutines: float64(after.goroutines-before.goroutines) / memStreams,
	}
}

// openHeldStream starts a stream and reads its first two events (the
// start, and content).
func openHeldStream(ctx context.Context, client *http.Client, url, body string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp, fmt.Errorf("status %d", resp.StatusCode)
	}
	rd := sse.NewReader(resp.Body)
	for range 2 {
		if _, err := rd.Next(); err != nil {
			return resp, err
		}
	}
	return resp, nil
}

// memCounts is a reading of the process's live heap, goroutine stacks
// and goroutines.
type memCounts struct {
	heap, stack uint64
	goroutines  int
}

// memNow collects garbage and reads memCounts.
func memNow() memCounts {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memCounts{heap: ms.HeapAlloc, stack: ms.StackInuse, goroutines: runtime.NumGoroutine()}
}

// eventDelayTokens is the length of the streams BenchmarkEventDelay reads.
const eventDelayTokens = 1000

// BenchmarkEventDelay measures the time an event takes through the gateway:
// each iteration reads one stream of about eventDelayTokens events from the
// simulator server directly and the same stream through the gateway (same
// client dialect, the provider of the same dialect), and reports the time
// per event of each and the difference, the gateway's share. The
// simulator sends at once, so the time per event is the cost of the
// slowest stage of the path (client, gateway, simulator, which share the
// machine's cores) rather than a latency on an idle path. The allocations
// reported are those of both streams, client and simulator included.
func BenchmarkEventDelay(b *testing.B) {
	for _, d := range []struct{ name, path, direct, via string }{
		{"openai", "/v1/chat/completions",
			`{"model":"upstream-model","stream":true,"messages":[{"role":"user","content":"hi"}]}`,
			`{"model":"oa-model","stream":true,"messages":[{"role":"user","content":"hi"}]}`},
		{"anthropic", "/v1/messages",
			`{"model":"upstream-model","max_tokens":100000,"stream":true,"messages":[{"role":"user","content":"hi"}]}`,
			`{"model":"an-model","max_tokens":100000,"stream":true,"messages":[{"role":"user","content":"hi"}]}`},
	} {
		for _, r := range []struct {
			name string
			opts gateway.Options
		}{
			{"resumable", gateway.Options{}},
			{"not_resumable", gateway.Options{ResumeGrace: -1, ResumeRetention: -1}},
		} {
			b.Run(d.name+"/"+r.name, func(b *testing.B) {
				up := sim.NewServer(sim.Options{Tokens: eventDelayTokens})
				ups := httptest.NewServer(up)
				defer ups.Close()
				gw := newBenchGateway(b, ups.URL, r.opts)
				defer gw.close()
				client := gw.srv.Client()
				var (
					directTime, viaTime     time.Duration
					directEvents, viaEvents int
				)
				b.ReportAllocs()
				for b.Loop() {
					t, n := timeStream(b, client, ups.URL+d.path, d.direct)
					directTime += t
					directEvents += n
					t, n = timeStream(b, client, gw.srv.URL+d.path, d.via)
					viaTime += t
					viaEvents += n
				}
				directPer := float64(directTime.Nanoseconds()) / float64(directEvents)
				viaPer := float64(viaTime.Nanoseconds()) / float64(viaEvents)
				b.ReportMetric(directPer, "direct-ns/event")
				b.ReportMetric(viaPer, "gateway-ns/event")
				b.ReportMetric(viaPer-directPer, "added-ns/event")
			})
		}
	}
}

// timeStream reads one stream to its end and returns how long that took,
// from sending the request, and its number of events.
func timeStream(b *testing.B, client *http.Client, url, body string) (time.Duration, int) {
	start := time.Now()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Anthropic-Version", "2023-06-01")
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("status %d", resp.StatusCode)
	}
	rd := sse.NewReader(resp.Body)
	n := 0
	for {
		_, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		n++
	}
	return time.Since(start), n
}
