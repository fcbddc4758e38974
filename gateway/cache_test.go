package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/sim"
)

// TestResponseCache checks the two ways a route serves its cache: always
// (a repeat is a hit, without an upstream call) and only when every target
// is down (a fresh answer while the upstream is up; the kept one, marked,
// once it is down; a request never answered before gets the error).
func TestResponseCache(t *testing.T) {
	var down atomic.Bool
	var calls atomic.Int64
	s := sim.NewServer(sim.Options{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if down.Load() {
			w.WriteHeader(503)
			io.WriteString(w, `{"error":{"message":"down","type":"server_error"}}`)
			return
		}
		s.ServeHTTP(w, r)
	}))
	defer up.Close()
	gw := gatewayFromYAML(t, `providers:
  - {name: o, type: openai, base_url: `+up.URL+`/v1, api_key: k}
models:
  - {name: always, targets: [{provider: o, model: m}], cache: {ttl: 1m, serve: always, max_temperature: 0.5}}
  - {name: down, targets: [{provider: o, model: m}], cache: {ttl: 1m}}
`, gateway.Options{})
	post := func(model, text, temp string) (int, string, string) {
		body := `{"model":"` + model + `","temperature":` + temp + `,"messages":[{"role":"user","content":"` + text + `"}]}`
		resp, err := http.Post(gw.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Sluice-Cache"), string(b)
	}
	n := calls.Load()
	_, h1, b1 := post("always", "Hello", "0")
	st, h2, b2 := post("always", "Hello", "0")
	if st != 200 || h1 != "" || h2 != "hit" || content(t, b1) != content(t, b2) || calls.Load()-n != 1 {
		t.Fatalf("always: first %q, repeat %d %q, %d upstream calls; answers %q, %q", h1, st, h2, calls.Load()-n, content(t, b1), content(t, b2))
	}
	if _, h, _ := post("always", "Hello", "0.9"); h != "" {
		t.Errorf("a request above the temperature threshold was served from the cache")
	}
	if _, h, _ := post("down", "Hello", "0"); h != "" {
		t.Errorf("serve down: a hit while the upstream is up")
	}
	down.Store(true)
	if st, h, _ := post("down", "Hello", "0"); st != 200 || h != "hit" {
		t.Errorf("serve down, upstream down: %d %q, want the kept answer", st, h)
	}
	if st, _, b := post("down", "Something new", "0"); st != 503 || !strings.Contains(b, "upstream") {
		t.Errorf("a request never answered, upstream down: %d %s", st, b)
	}
}

func content(t *testing.T, body string) string {
	var v struct {
		Choices []struct{ Message struct{ Content string } }
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil || len(v.Choices) == 0 {
		t.Fatalf("answer %s: %v", body, err)
	}
	return v.Choices[0].Message.Content
}
