package gateway_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/pipeline"
	"github.com/sluice-gw/sluice/telemetry"
)

const uiAdminKey = "admin-key-for-the-dashboard-test"

// uiGateway serves a gateway with the dashboard over the simulator: keys
// required, one tier, a chat route and a contract.
func uiGateway(t *testing.T) *httptest.Server {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := telemetry.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	p := pipelineFromYAML(t, `
auth: {admin_key: `+uiAdminKey+`}
tiers: [{name: free, rpm: 600, daily_budget_usd: 5}]
pricing: {sim-fast: {input: 1, output: 2}, sim-json: {input: 1, output: 2}}
providers: [{name: s, type: sim, fault: "chunk_delay=2ms"}]
models:
  - {name: chat, targets: [{provider: s, model: sim-fast}]}
  - {name: json, targets: [{provider: s, model: sim-json}], cache: {ttl: 1m}}
contracts:
  - {name: city, model: json, schema: {type: object, properties: {name: {type: string}}, required: [name]}}
`, pipeline.Options{Metrics: m})
	gw := httptest.NewServer(gateway.NewServer(nil, p, gateway.Options{AdminKey: uiAdminKey, Registry: reg}))
	t.Cleanup(gw.Close)
	return gw
}

// uiClient returns a client with a cookie jar that does not follow
// redirects, its connections closed when the test ends.
func uiClient(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Jar: jar, Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// login signs c in and returns the CSRF token of the overview page.
func login(t *testing.T, gw *httptest.Server, c *http.Client, key string) (*http.Response, string) {
	t.Helper()
	resp, err := c.PostForm(gw.URL+"/ui/login", url.Values{"key": {key}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	page, err := c.Get(gw.URL + "/ui")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(page.Body)
	page.Body.Close()
	m := regexp.MustCompile(`name="csrf-token" content="([0-9a-f]+)"`).FindSubmatch(b)
	if m == nil {
		return resp, ""
	}
	return resp, string(m[1])
}

// TestUIAuth checks the dashboard's door: a wrong admin key is refused
// without a session; the right one gets an HTTP-only, same-site cookie
// (never the key); pages and the API need the session, and a POST its
// CSRF token.
func TestUIAuth(t *testing.T) {
	gw := uiGateway(t)
	c := uiClient(t)
	resp, err := c.Get(gw.URL + "/ui")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" {
		t.Errorf("a page without a session: %d to %q, want 303 to /ui/login", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, csrf := login(t, gw, c, "wrong-key")
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "failed") || len(resp.Cookies()) != 0 || csrf != "" {
		t.Errorf("a wrong key: %d to %q with cookies %v", resp.StatusCode, resp.Header.Get("Location"), resp.Cookies())
	}
	api, _ := c.Get(gw.URL + "/ui/api/overview")
	api.Body.Close()
	if api.StatusCode != http.StatusUnauthorized {
		t.Errorf("the API without a session: %d, want 401", api.StatusCode)
	}

	resp, csrf = login(t, gw, c, uiAdminKey)
	if len(resp.Cookies()) != 1 || csrf == "" {
		t.Fatalf("the right key: cookies %v, csrf %q", resp.Cookies(), csrf)
	}
	ck := resp.Cookies()[0]
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || strings.Contains(ck.Value, uiAdminKey) {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, not the key", ck)
	}
	for _, page := range []string{"/ui", "/ui/requests", "/ui/keys", "/ui/providers", "/ui/playground"} {
		resp, err := c.Get(gw.URL + page)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || strings.Contains(string(b), uiAdminKey) || !strings.Contains(string(b), `id="page"`) {
			t.Errorf("%s: %d, or the page holds the key or lacks main#page", page, resp.StatusCode)
		}
	}
	req, _ := http.NewRequest("POST", gw.URL+"/ui/api/keys", strings.NewReader(`{"tier":"free","name":"x"}`))
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a POST without the CSRF token: %d, want 403", resp.StatusCode)
	}
	static, _ := c.Get(gw.URL + "/ui/static/app.js")
	static.Body.Close()
	if static.StatusCode != 200 {
		t.Errorf("app.js: %d", static.StatusCode)
	}
}

func uiPost(t *testing.T, c *http.Client, url, csrf, body string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", csrf)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b
}

func uiGet(t *testing.T, c *http.Client, url string, v any) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// TestUIAPI drives the dashboard's API as the page does: keys created,
// used, seen in the live view and the overview, disabled; the providers'
// plan; a playground stream that arrives in pieces.
func TestUIAPI(t *testing.T) {
	gw := uiGateway(t)
	c := uiClient(t)
	_, csrf := login(t, gw, c, uiAdminKey)

	resp, b := uiPost(t, c, gw.URL+"/ui/api/keys", csrf, `{"tier":"free","name":"dash","tenant":"acme"}`)
	var created struct{ ID, Key string }
	json.Unmarshal(b, &created)
	if resp.StatusCode != http.StatusCreated || !strings.HasPrefix(created.Key, "sk-sluice-") {
		t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	// A call with the new key, through the API.
	req, _ := http.NewRequest("POST", gw.URL+"/v1/chat/completions", strings.NewReader(`{"model":"chat","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+created.Key)
	call, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, call.Body)
	call.Body.Close()
	callID := call.Header.Get("Sluice-Request-Id")

	var list struct {
		Requests []map[string]any `json:"requests"`
	}
	uiGet(t, c, gw.URL+"/ui/api/requests", &list)
	if len(list.Requests) == 0 || list.Requests[0]["id"] != callID || list.Requests[0]["key_id"] != created.ID {
		t.Fatalf("live view: %v, want the call %s of key %s first", list.Requests, callID, created.ID)
	}
	var detail map[string]any
	uiGet(t, c, gw.URL+"/ui/api/requests/"+callID, &detail)
	if d, _ := detail["attempts_detail"].([]any); len(d) != 1 {
		t.Errorf("detail: %v, want one attempt", detail)
	}
	var ov map[string]any
	uiGet(t, c, gw.URL+"/ui/api/overview", &ov)
	if ov["requests"] != 1.0 || len(ov["by_key"].([]any)) != 1 {
		t.Errorf("overview: %v", ov)
	}
	var keys struct {
		Keys []map[string]any `json:"keys"`
	}
	uiGet(t, c, gw.URL+"/ui/api/keys", &keys)
	if len(keys.Keys) != 1 || keys.Keys[0]["daily_budget_usd"] != 5.0 || keys.Keys[0]["spend_today_usd"].(float64) <= 0 {
		t.Errorf("keys: %v", keys.Keys)
	}
	if h, _ := keys.Keys[0]["headroom"].(map[string]any); h["requests_limit"] != 600.0 || h["requests_remaining"].(float64) >= 600 {
		t.Errorf("headroom after one call: %v", keys.Keys[0]["headroom"])
	}
	if resp, b := uiPost(t, c, gw.URL+"/ui/api/keys/"+created.ID+"/disable", csrf, ``); resp.StatusCode != 200 {
		t.Errorf("disable: %d %s", resp.StatusCode, b)
	}
	again, _ := http.NewRequest("POST", gw.URL+"/v1/chat/completions", strings.NewReader(`{"model":"chat","messages":[{"role":"user","content":"hi"}]}`))
	again.Header.Set("Authorization", "Bearer "+created.Key)
	if r, err := http.DefaultClient.Do(again); err != nil || r.StatusCode != http.StatusUnauthorized {
		t.Errorf("a disabled key's call: %v %v", r.StatusCode, err)
	} else {
		r.Body.Close()
	}

	var prov map[string]any
	uiGet(t, c, gw.URL+"/ui/api/providers", &prov)
	if len(prov["routes"].([]any)) != 2 || len(prov["contracts"].([]any)) != 1 {
		t.Errorf("providers: %v", prov)
	}
	if cache, _ := prov["routes"].([]any)[1].(map[string]any)["cache"].(map[string]any); cache["ttl_ms"] != 60000.0 {
		t.Errorf("the json route's cache: %v", prov["routes"].([]any)[1])
	}

	for _, tc := range []struct{ target, msg, want string }{
		{"route:chat", "Tell me a story.", "delta"},
		{"contract:city", "Name a city.", "result"},
	} {
		req, _ := http.NewRequest("POST", gw.URL+"/ui/api/playground", strings.NewReader(`{"target":"`+tc.target+`","message":"`+tc.msg+`"}`))
		req.Header.Set("X-CSRF-Token", csrf)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		events := map[string]int{}
		var done map[string]any
		sc := bufio.NewScanner(resp.Body)
		ev := ""
		for sc.Scan() {
			line := sc.Text()
			if name, ok := strings.CutPrefix(line, "event: "); ok {
				ev = name
				events[ev]++
			}
			if data, ok := strings.CutPrefix(line, "data: "); ok && ev == "done" {
				json.Unmarshal([]byte(data), &done)
			}
		}
		resp.Body.Close()
		if events[tc.want] < 1 || events["done"] != 1 || events["error"] != 0 || (tc.want == "delta" && events["delta"] < 2) {
			t.Errorf("%s: events %v", tc.target, events)
		}
		if done["request_id"] == "" || done["attempts"] != 1.0 || done["usage"].(map[string]any)["output_tokens"].(float64) == 0 {
			t.Errorf("%s: done %v", tc.target, done)
		}
	}
}
