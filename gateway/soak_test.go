package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-gw/sluice/config"
	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/pipeline"
	"github.com/sluice-gw/sluice/sim"
	"github.com/sluice-gw/sluice/sse"
	"github.com/sluice-gw/sluice/store"
	"github.com/sluice-gw/sluice/store/memory"
)

// soakTokens and soakFault shape every upstream answer of the soak: 50
// events a millisecond or more apart, long enough that most cancellations
// land mid-stream. (Under the race detector the soak's cost is mostly per
// event: 200 events a stream made it several times slower for no more
// kinds of cancellation.) soakWorkers streams run at once.
const (
	soakTokens  = 50
	soakFault   = "ttft=2ms,chunk_delay=1ms"
	soakWorkers = 64
)

// TestCancelSoak opens many streams through the gateway over HTTP, from
// bounded workers, in both client dialects and to the three kinds of
// upstream (OpenAI and Anthropic providers over real connections to the
// simulator server, and the in-process simulator), and cancels each at a
// random point: before the response headers, after a random number of
// events, or not at all. Once all are done it checks that nothing is left:
// no upstream stream open, no upstream connection busy, no gateway handler
// running, no stream log kept past its retention, and no goroutine beyond
// those the test started with.
//
// SLUICE_SOAK_STREAMS sets the number of streams of each subtest (default
// 10000, 1000 with -short); SLUICE_SOAK_SEED repeats a run's plan. Under
// the race detector on two cores, 10000 streams take about 15 to 25
// seconds a subtest.
func TestCancelSoak(t *testing.T) {
	n := 10000
	if testing.Short() {
		n = 1000
	}
	if v := os.Getenv("SLUICE_SOAK_STREAMS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			t.Fatalf("SLUICE_SOAK_STREAMS=%q: want a positive number", v)
		}
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("SLUICE_SOAK_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("SLUICE_SOAK_SEED=%q: want a number", v)
		}
	}
	t.Logf("seed %d (SLUICE_SOAK_SEED=%d repeats the plan), %d streams per subtest", seed, seed, n)
	for _, tc := range []struct {
		name string
		opts gateway.Options
	}{
		{"resumable", gateway.Options{ResumeGrace: 50 * time.Millisecond, ResumeRetention: 50 * time.Millisecond}},
		{"not resumable", gateway.Options{ResumeGrace: -1, ResumeRetention: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runSoak(t, n, seed, tc.opts)
		})
	}
}

// soakOutcome is how one stream of the soak ended, seen from the client.
type soakOutcome int

const (
	cancelledBeforeHeaders soakOutcome = iota
	cancelledMidStream
	completed
	nOutcomes
)

var outcomeNames = [nOutcomes]string{"cancelled before headers", "cancelled mid-stream", "completed"}

// soakPlan is what one stream of the soak does.
type soakPlan struct {
	path, body string
	dialect    string
	// cancelAfter, when not negative, cancels the request that long after
	// it is sent: most often before the response headers arrive.
	cancelAfter time.Duration
	// stopAt, when not negative, cancels the stream after that many
	// events; a plan with neither reads the stream to its end.
	stopAt int
}

// newSoakPlan draws stream i's plan: the dialect and model, and when to
// cancel (one in five before the headers, three in five mid-stream, the
// rest read to the end).
func newSoakPlan(seed uint64, i int) soakPlan {
	rng := rand.New(rand.NewPCG(seed, uint64(i)))
	model := [...]string{"oa-model", "an-model", "sim"}[rng.IntN(3)]
	p := soakPlan{cancelAfter: -1, stopAt: -1}
	if rng.IntN(2) == 0 {
		p.dialect, p.path = "openai", "/v1/chat/completions"
		p.body = `{"model":"` + model + `","stream":true,"messages":[{"role":"user","content":"soak ` + strconv.Itoa(i) + `"}]}`
	} else {
		p.dialect, p.path = "anthropic", "/v1/messages"
		p.body = `{"model":"` + model + `","max_tokens":1000,"stream":true,"messages":[{"role":"user","content":"soak ` + strconv.Itoa(i) + `"}]}`
	}
	switch r := rng.IntN(5); {
	case r == 0:
		p.cancelAfter = time.Duration(rng.IntN(4000)) * time.Microsecond
	case r <= 3:
		p.stopAt = rng.IntN(soakTokens)
	}
	return p
}

// soakEnv is everything a soak run starts. close stops it all, once.
type soakEnv struct {
	up      *sim.Server
	upConns *connStates
	gwConns *connStates
	local   *sim.Provider
	log     *recordingLog
	gw      *httptest.Server
	client  *http.Client
	close   func()
}

func newSoakEnv(t *testing.T, opts gateway.Options) *soakEnv {
	t.Helper()
	f, err := sim.ParseFault(soakFault)
	if err != nil {
		t.Fatal(err)
	}
	e := &soakEnv{
		up:      sim.NewServer(sim.Options{Fault: f, Tokens: soakTokens}),
		upConns: newConnStates(),
		gwConns: newConnStates(),
		log:     &recordingLog{StreamLog: memory.NewStreamLog(memory.StreamLogOptions{})},
	}
	ups := httptest.NewUnstartedServer(e.up)
	ups.Config.ConnState = e.upConns.hook
	ups.Start()
	cfg, err := config.Parse([]byte(`
providers:
  - {name: oa, type: openai, base_url: `+ups.URL+`/v1, api_key: test}
  - {name: an, type: anthropic, base_url: `+ups.URL+`, api_key: test}
  - {name: local, type: sim, tokens: `+strconv.Itoa(soakTokens)+`, fault: "`+soakFault+`"}
models:
  - {name: oa-model, targets: [{provider: oa, model: upstream-model}]}
  - {name: an-model, targets: [{provider: an, model: upstream-model}]}
  - {name: sim, targets: [{provider: local, model: sim}]}
`), func(string) string { return "" })
	if err != nil {
		ups.Close()
		t.Fatal(err)
	}
	p, err := pipeline.New(context.Background(), cfg, pipeline.Options{StreamLog: e.log})
	if err != nil {
		ups.Close()
		t.Fatal(err)
	}
	prov, _ := p.Provider("local")
	e.local = prov.(*sim.Provider)
	e.gw = httptest.NewUnstartedServer(gateway.NewServer(nil, p, opts))
	e.gw.Config.ConnState = e.gwConns.hook
	e.gw.Start()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = soakWorkers
	e.client = &http.Client{Transport: tr}
	var once sync.Once
	e.close = func() {
		once.Do(func() {
			tr.CloseIdleConnections()
			e.gw.Close()
			ups.Close()
			p.Close()
		})
	}
	t.Cleanup(e.close) // when the test fails before closing it itself
	return e
}

// runSoak runs n streams planned from seed against a gateway with opts and
// checks that they leave nothing behind.
func runSoak(t *testing.T, n int, seed uint64, opts gateway.Options) {
	baseline := goleak.IgnoreCurrent()
	e := newSoakEnv(t, opts)
	resumable := opts.ResumeGrace > 0 || opts.ResumeRetention > 0

	var (
		next     atomic.Int64
		counts   [nOutcomes]atomic.Int64
		failures atomic.Int64
		mu       sync.Mutex
		errs     []string
		seenIDs  []string
		wg       sync.WaitGroup
	)
	fail := func(i int, err error) {
		failures.Add(1)
		mu.Lock()
		defer mu.Unlock()
		if len(errs) < 10 {
			errs = append(errs, fmt.Sprintf("stream %d: %v", i, err))
		}
	}
	start := time.Now()
	for range soakWorkers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				out, id, err := soakStream(e, newSoakPlan(seed, i))
				if err != nil {
					fail(i, err)
					continue
				}
				counts[out].Add(1)
				if id != "" {
					mu.Lock()
					seenIDs = append(seenIDs, id)
					mu.Unlock()
				}
				if (id != "") != resumable && out != cancelledBeforeHeaders {
					fail(i, fmt.Errorf("%s = %q, with resumable streams %v", gateway.StreamIDHeader, id, resumable))
				}
			}
		})
	}
	wg.Wait()
	ran := time.Since(start)
	t.Logf("%d streams in %v: %d %s, %d %s, %d %s, %d failed; %d upstream connections opened",
		n, ran.Round(time.Millisecond),
		counts[cancelledBeforeHeaders].Load(), outcomeNames[cancelledBeforeHeaders],
		counts[cancelledMidStream].Load(), outcomeNames[cancelledMidStream],
		counts[completed].Load(), outcomeNames[completed],
		failures.Load(), e.upConns.opened())
	for _, s := range errs {
		t.Error(s)
	}

	// The upstream calls of streams whose clients left may go on for the
	// grace period; then every one must be released.
	waitFor(t, "the simulator server's streams to close", func() bool { return e.up.OpenStreams() == 0 })
	waitFor(t, "the in-process simulator's streams to close", func() bool { return e.local.OpenStreams() == 0 })
	waitFor(t, "the upstream connections to go idle", func() bool { return e.upConns.count(http.StateActive) == 0 })
	waitFor(t, "the gateway's handlers to return", func() bool { return e.gwConns.count(http.StateActive) == 0 })

	created := e.log.created()
	if resumable {
		logged := make(map[string]bool, len(created))
		for _, id := range created {
			logged[id] = true
		}
		for _, id := range seenIDs {
			if !logged[id] {
				t.Errorf("a client was sent stream id %s, which the log never created", id)
				break
			}
		}
		ctx := context.Background()
		waitFor(t, "every stream log to expire", func() bool {
			for _, id := range created {
				if _, err := e.log.Info(ctx, id); !errors.Is(err, store.ErrNotFound) {
					return false
				}
			}
			return true
		})
	} else if len(created) > 0 {
		t.Errorf("the stream log created %d streams with resuming off", len(created))
	}
	t.Logf("drained in %v; %d stream logs created (%d ids seen by clients), none left; %d idle upstream connections",
		(time.Since(start) - ran).Round(time.Millisecond), len(created), len(seenIDs), e.upConns.count(http.StateIdle))

	e.close()
	goleak.VerifyNone(t, baseline)
}

// soakStream runs one planned stream and reports how it ended and the
// stream id it was given, or what went wrong.
func soakStream(e *soakEnv, p soakPlan) (soakOutcome, string, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", e.gw.URL+p.path, strings.NewReader(p.body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Anthropic-Version", "2023-06-01")
	if p.cancelAfter >= 0 {
		tm := time.AfterFunc(p.cancelAfter, cancel)
		defer tm.Stop()
	}
	resp, err := e.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return cancelledBeforeHeaders, "", nil
		}
		return 0, "", err
	}
	defer resp.Body.Close()
	id := resp.Header.Get(gateway.StreamIDHeader)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return 0, id, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	rd := sse.NewReader(resp.Body)
	var lastType, lastData string
	for n := 0; ; n++ {
		if n == p.stopAt {
			cancel()
			return cancelledMidStream, id, nil
		}
		ev, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				return cancelledMidStream, id, nil // cancelled by the timer
			}
			return 0, id, fmt.Errorf("after %d events: %w", n, err)
		}
		lastType, lastData = ev.Type, string(ev.Data)
	}
	if p.dialect == "openai" && lastData != "[DONE]" || p.dialect == "anthropic" && lastType != "message_stop" {
		return 0, id, fmt.Errorf("%s stream read to the end ends with %s %q", p.dialect, lastType, lastData)
	}
	return completed, id, nil
}

// connStates follows the connections of an HTTP server through its
// ConnState hook.
type connStates struct {
	mu     sync.Mutex
	state  map[net.Conn]http.ConnState
	nOpens int
}

func newConnStates() *connStates { return &connStates{state: map[net.Conn]http.ConnState{}} }

func (c *connStates) hook(conn net.Conn, s http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch s {
	case http.StateNew:
		c.nOpens++
		c.state[conn] = s
	case http.StateClosed, http.StateHijacked:
		delete(c.state, conn)
	default:
		c.state[conn] = s
	}
}

// count returns the number of open connections in state s: StateActive
// for those serving a request, StateIdle for those waiting for one.
func (c *connStates) count(s http.ConnState) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, cs := range c.state {
		if cs == s {
			n++
		}
	}
	return n
}

// opened returns the number of connections ever accepted.
func (c *connStates) opened() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nOpens
}

// recordingLog is the memory stream log, remembering the id of every stream
// it creates so that a test can check that each expires.
type recordingLog struct {
	*memory.StreamLog
	mu  sync.Mutex
	ids []string
}

var _ store.StreamLog = (*recordingLog)(nil)

func (l *recordingLog) Create(ctx context.Context, id string, info store.StreamInfo, ttl time.Duration) error {
	err := l.StreamLog.Create(ctx, id, info, ttl)
	if err == nil {
		l.mu.Lock()
		l.ids = append(l.ids, id)
		l.mu.Unlock()
	}
	return err
}

func (l *recordingLog) created() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.ids...)
}
