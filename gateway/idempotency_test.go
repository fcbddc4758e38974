package gateway_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
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

// countingUpstream is a simulator that counts the calls it gets.
type countingUpstream struct {
	*httptest.Server
	calls atomic.Int64
}

func newCountingUpstream(t *testing.T) *countingUpstream {
	u := &countingUpstream{}
	s := sim.NewServer(sim.Options{})
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.calls.Add(1)
		s.ServeHTTP(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func idemConfig(up *countingUpstream, state string) string {
	return state + `providers:
  - {name: o, type: openai, base_url: ` + up.URL + `/v1, api_key: k, headers: {X-Sim-Fault: "latency=200ms"}}
  - {name: down, type: openai, base_url: ` + up.URL + `/v1, api_key: k, headers: {X-Sim-Fault: "status=503"}}
models:
  - {name: m, targets: [{provider: o, model: m}]}
  - {name: down, targets: [{provider: down, model: m}]}
`
}

type idemAnswer struct {
	status   int
	replayed bool
	body     []byte
}

func idemPost(t *testing.T, url, key, auth, body string) idemAnswer {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	req.Header.Set("Authorization", "Bearer "+auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return idemAnswer{}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Error(err)
	}
	return idemAnswer{resp.StatusCode, resp.Header.Get("Idempotent-Replayed") == "true", b}
}

const (
	idemBody       = `{"model":"m","messages":[{"role":"user","content":"Hello"}]}`
	idemStreamBody = `{"model":"m","stream":true,"messages":[{"role":"user","content":"Hello"}]}`
)

// TestIdempotency checks the Idempotency-Key protocol on one instance: a
// repeat gets the first answer without an upstream call, for a plain
// answer and for a stream; concurrent repeats cause one upstream call; a
// different body under the same key is a conflict; keys are scoped to the
// credential; an answer that failed is not kept, so a repeat runs again.
func TestIdempotency(t *testing.T) {
	up := newCountingUpstream(t)
	gw := gatewayFromYAML(t, idemConfig(up, ""), gateway.Options{})

	t.Run("repeat", func(t *testing.T) {
		n := up.calls.Load()
		a := idemPost(t, gw.URL, "key-1", "alice", idemBody)
		b := idemPost(t, gw.URL, "key-1", "alice", idemBody)
		if a.status != 200 || a.replayed || b.status != 200 || !b.replayed || !bytes.Equal(a.body, b.body) {
			t.Fatalf("first %d %v %s\nrepeat %d %v %s", a.status, a.replayed, a.body, b.status, b.replayed, b.body)
		}
		if got := up.calls.Load() - n; got != 1 {
			t.Errorf("%d upstream calls, want 1", got)
		}
	})
	t.Run("conflict", func(t *testing.T) {
		c := idemPost(t, gw.URL, "key-1", "alice", strings.Replace(idemBody, "Hello", "Bye", 1))
		if c.status != 422 || !strings.Contains(string(c.body), `"code":"idempotency_conflict"`) {
			t.Fatalf("different body: %d %s, want 422 idempotency_conflict", c.status, c.body)
		}
	})
	t.Run("scoped to the credential", func(t *testing.T) {
		n := up.calls.Load()
		b := idemPost(t, gw.URL, "key-1", "bob", idemBody)
		if b.status != 200 || b.replayed || up.calls.Load()-n != 1 {
			t.Fatalf("another credential's key: %d replayed %v, %d calls", b.status, b.replayed, up.calls.Load()-n)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		n := up.calls.Load()
		for k, body := range []string{idemBody, idemStreamBody} {
			key := "key-c-" + strconv.Itoa(k)
			answers := make([]idemAnswer, 4)
			var wg sync.WaitGroup
			for i := range answers {
				wg.Go(func() { answers[i] = idemPost(t, gw.URL, key, "alice", body) })
			}
			wg.Wait()
			replays := 0
			for _, a := range answers {
				if a.status != 200 || !bytes.Contains(a.body, []byte(`"content"`)) {
					t.Fatalf("answer %d %s", a.status, a.body)
				}
				if a.replayed {
					replays++
				}
			}
			if replays != 3 {
				t.Errorf("%s: %d replays of 4, want 3", key, replays)
			}
		}
		if got := up.calls.Load() - n; got != 2 {
			t.Errorf("%d upstream calls for two keys, want 2", got)
		}
	})
	t.Run("stream replay", func(t *testing.T) {
		n := up.calls.Load()
		a := idemPost(t, gw.URL, "key-s", "alice", idemStreamBody)
		b := idemPost(t, gw.URL, "key-s", "alice", idemStreamBody)
		if !b.replayed || !bytes.Equal(a.body, b.body) || !bytes.HasSuffix(a.body, []byte("data: [DONE]\n\n")) {
			t.Fatalf("stream replay differs:\n%s\n---\n%s", a.body, b.body)
		}
		if got := up.calls.Load() - n; got != 1 {
			t.Errorf("%d upstream calls, want 1", got)
		}
	})
	t.Run("failure not kept", func(t *testing.T) {
		n := up.calls.Load()
		body := strings.Replace(idemBody, `"m"`, `"down"`, 1)
		a := idemPost(t, gw.URL, "key-f", "alice", body)
		b := idemPost(t, gw.URL, "key-f", "alice", body)
		if a.status != 503 || b.status != 503 || b.replayed || up.calls.Load()-n != 2 {
			t.Fatalf("failed answers: %d, %d (replayed %v), %d calls; want two 503s, two calls", a.status, b.status, b.replayed, up.calls.Load()-n)
		}
	})
	t.Run("bad key", func(t *testing.T) {
		c := idemPost(t, gw.URL, strings.Repeat("k", 256), "alice", idemBody)
		if c.status != 400 {
			t.Fatalf("a 256-character key: %d %s", c.status, c.body)
		}
	})
}

// TestIdempotencyTwoInstances checks that two gateway instances sharing
// Redis honour one key: concurrent requests with it, spread over both,
// cause exactly one upstream call, for a plain answer and for a stream.
func TestIdempotencyTwoInstances(t *testing.T) {
	state := "state: {redis: \"" + testutil.RedisURL(t) + "\"}\n"
	up := newCountingUpstream(t)
	var gws []*httptest.Server
	for range 2 {
		p := pipelineFromYAML(t, idemConfig(up, state), pipeline.Options{})
		gw := httptest.NewServer(gateway.NewServer(nil, p, gateway.Options{}))
		t.Cleanup(gw.Close)
		gws = append(gws, gw)
	}
	for _, body := range []string{idemBody, idemStreamBody} {
		n := up.calls.Load()
		key := "two-" + time.Now().Format(time.RFC3339Nano)
		answers := make([]idemAnswer, 6)
		var wg sync.WaitGroup
		for i := range answers {
			wg.Go(func() { answers[i] = idemPost(t, gws[i%2].URL, key, "alice", body) })
		}
		wg.Wait()
		var first []byte
		for _, a := range answers {
			if a.status != 200 {
				t.Fatalf("answer %d %s", a.status, a.body)
			}
			if !a.replayed {
				first = a.body
			}
		}
		if got := up.calls.Load() - n; got != 1 {
			t.Errorf("%d upstream calls across two instances, want 1", got)
		}
		for _, a := range answers {
			if a.replayed && !bytes.Equal(a.body, first) {
				t.Errorf("a repeat differs from the first answer:\n%s\n---\n%s", a.body, first)
			}
		}
	}
}
