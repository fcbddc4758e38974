package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/internal/testutil"
	"github.com/sluice-gw/sluice/pipeline"
	"github.com/sluice-gw/sluice/sim"
)

type jobAnswer struct {
	ID       string          `json:"id"`
	Status   string          `json:"status"`
	Attempts int             `json:"attempts"`
	Result   json.RawMessage `json:"result"`
	Error    json.RawMessage `json:"error"`
}

// TestJobSurvivesRestart queues a job while every target is down; its
// attempts fail and it waits; the gateway restarts (a new pipeline on the
// same SQLite file); the upstream recovers; the job completes, and its
// owner reads the answer. Another caller cannot see the job.
func TestJobSurvivesRestart(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	s := sim.NewServer(sim.Options{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			w.WriteHeader(503)
			io.WriteString(w, `{"error":{"message":"down","type":"server_error"}}`)
			return
		}
		s.ServeHTTP(w, r)
	}))
	defer up.Close()
	src := `state: {sqlite: "` + filepath.Join(t.TempDir(), "jobs.db") + `"}
providers:
  - {name: o, type: openai, base_url: ` + up.URL + `/v1, api_key: k}
models:
  - {name: m, targets: [{provider: o, model: m}]}
`
	type instance struct {
		url  string
		stop func()
	}
	start := func() instance {
		cfg := pipelineFromYAML(t, src, pipeline.Options{}) // closed by stop too: Close is idempotent
		gw := gateway.New(nil, cfg, gateway.Options{JobRetryDelay: 20 * time.Millisecond})
		srv := httptest.NewServer(gw)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { gw.RunJobs(ctx, 2) })
		return instance{srv.URL, func() { srv.Close(); cancel(); wg.Wait(); cfg.Close() }}
	}
	get := func(url, id, auth string) (int, jobAnswer) {
		req, _ := http.NewRequest("GET", url+"/v1/jobs/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var a jobAnswer
		json.NewDecoder(resp.Body).Decode(&a)
		return resp.StatusCode, a
	}

	a := start()
	req, _ := http.NewRequest("POST", a.url+"/v1/jobs", strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"Hello"}]}`))
	req.Header.Set("Authorization", "Bearer alice")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created jobAnswer
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != 202 || created.Status != "queued" || !strings.HasPrefix(created.ID, "job_") {
		t.Fatalf("POST /v1/jobs: %d %+v", resp.StatusCode, created)
	}
	// Attempts fail while the upstream is down; the job waits, queued.
	waitFor(t, "failed attempts", func() bool { _, j := get(a.url, created.ID, "alice"); return j.Attempts >= 2 && j.Status == "queued" })
	a.stop() // the gateway goes down with the job still queued

	down.Store(false)
	b := start()
	defer b.stop()
	waitFor(t, "the job to succeed", func() bool { _, j := get(b.url, created.ID, "alice"); return j.Status == "succeeded" })
	st, j := get(b.url, created.ID, "alice")
	if st != 200 || !strings.Contains(string(j.Result), `"choices"`) || j.Error != nil {
		t.Errorf("finished job: %d %+v", st, j)
	}
	if st, _ := get(b.url, created.ID, "mallory"); st != 404 {
		t.Errorf("another caller read the job: %d", st)
	}
}

// TestJobsTwoInstances runs jobs queued on two gateway instances sharing
// one PostgreSQL queue, with runners on both: every job is run once and
// completes, and either instance shows it to its owner.
func TestJobsTwoInstances(t *testing.T) {
	var calls atomic.Int64
	s := sim.NewServer(sim.Options{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		s.ServeHTTP(w, r)
	}))
	defer up.Close()
	src := `state: {postgres: "` + testutil.PostgresSchemaURL(t) + `"}
providers:
  - {name: o, type: openai, base_url: ` + up.URL + `/v1, api_key: k}
models:
  - {name: m, targets: [{provider: o, model: m}]}
`
	var urls [2]string
	for i := range urls {
		gw := gateway.New(nil, pipelineFromYAML(t, src, pipeline.Options{}), gateway.Options{})
		srv := httptest.NewServer(gw)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { gw.RunJobs(ctx, 3) })
		t.Cleanup(func() { srv.Close(); cancel(); wg.Wait() })
		urls[i] = srv.URL
	}
	const n = 30
	ids := make([]string, n)
	for i := range n {
		req, _ := http.NewRequest("POST", urls[i%2]+"/v1/jobs", strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"Job `+strconv.Itoa(i)+`"}]}`))
		req.Header.Set("Authorization", "Bearer alice")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var a jobAnswer
		json.NewDecoder(resp.Body).Decode(&a)
		resp.Body.Close()
		ids[i] = a.ID
	}
	for i, id := range ids {
		waitFor(t, "job "+id, func() bool {
			req, _ := http.NewRequest("GET", urls[(i+1)%2]+"/v1/jobs/"+id, nil)
			req.Header.Set("Authorization", "Bearer alice")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			var a jobAnswer
			json.NewDecoder(resp.Body).Decode(&a)
			return a.Status == "succeeded" && a.Attempts == 1
		})
	}
	if got := calls.Load(); got != n {
		t.Errorf("%d upstream calls for %d jobs: a job ran twice or not at all", got, n)
	}
}
