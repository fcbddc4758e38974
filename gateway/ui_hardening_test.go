package gateway_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/pipeline"
	"github.com/sluice-gw/sluice/telemetry"
)

// hardeningGateway is uiGateway's config, with the *Gateway returned too.
func hardeningGateway(t *testing.T) (*gateway.Gateway, *httptest.Server) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := telemetry.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	p := pipelineFromYAML(t, `
auth: {admin_key: `+uiAdminKey+`, allow_open: true}
providers: [{name: s, type: sim}]
models:
  - {name: chat, targets: [{provider: s, model: sim-fast}]}
`, pipeline.Options{Metrics: m})
	g := gateway.New(nil, p, gateway.Options{AdminKey: uiAdminKey, Registry: reg})
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return g, srv
}

// TestUIHardeningLoginPageHeaders checks the login page cannot be framed
// or sniffed, like every dashboard page.
func TestUIHardeningLoginPageHeaders(t *testing.T) {
	_, gw := hardeningGateway(t)
	resp, err := gw.Client().Get(gw.URL + "/ui/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("GET /ui/login: CSP %q, want frame-ancestors 'none' (the login page can be framed)", resp.Header.Get("Content-Security-Policy"))
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("GET /ui/login: no X-Content-Type-Options: nosniff")
	}
}

// TestUIHardeningStaticListing checks that /ui/static/ serves the two
// assets only: no listing, no templates.
func TestUIHardeningStaticListing(t *testing.T) {
	_, gw := hardeningGateway(t)
	for _, path := range []string{"/ui/static/", "/ui/static/layout.html", "/ui/static/keys.html"} {
		resp, err := gw.Client().Get(gw.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Errorf("GET %s without a session: 200 %s (CSP %q); want 404: only app.js and style.css are assets",
				path, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Security-Policy"))
			if path == "/ui/static/" {
				t.Logf("listing: %.200s", b)
			}
		}
	}
}

func openLive(t *testing.T, ctx context.Context, gw *httptest.Server, c *http.Client) (*http.Response, *bufio.Reader) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", gw.URL+"/ui/api/requests/stream", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	br := bufio.NewReader(resp.Body)
	if l, _ := br.ReadString('\n'); !strings.HasPrefix(l, ": live") {
		t.Fatalf("first line %q", l)
	}
	return resp, br
}

// TestUIHardeningLiveViewHoldsDrain checks that an open live view ends on
// Drain, so that shutdown does not wait the drain time for it.
func TestUIHardeningLiveViewHoldsDrain(t *testing.T) {
	g, gw := hardeningGateway(t)
	c := uiClient(t)
	login(t, gw, c, uiAdminKey)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, _ := openLive(t, ctx, gw, c)
	defer resp.Body.Close()

	g.Drain()
	sctx, scancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	err := gw.Config.Shutdown(sctx)
	scancel()
	if errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown after Drain with only a dashboard live view open: %v (no call in flight, yet the drain time runs out)", err)
	}
	g.Abort()
	cancel()
}

// TestUIHardeningLiveViewOutlivesLogout checks that a live view stops
// with its session.
func TestUIHardeningLiveViewOutlivesLogout(t *testing.T) {
	_, gw := hardeningGateway(t)
	c := uiClient(t)
	login(t, gw, c, uiAdminKey)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, br := openLive(t, ctx, gw, c)
	defer resp.Body.Close()

	out, _ := http.NewRequest("POST", gw.URL+"/ui/logout", nil)
	r, err := c.Do(out)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	api, err := c.Get(gw.URL + "/ui/api/overview")
	if err != nil {
		t.Fatal(err)
	}
	api.Body.Close()
	if api.StatusCode != 401 {
		t.Fatalf("after logout: %d", api.StatusCode)
	}
	call, err := gw.Client().Post(gw.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"chat","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, call.Body)
	call.Body.Close()
	got := make(chan string, 1)
	go func() {
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				got <- ""
				return
			}
			if strings.HasPrefix(l, "event: request") {
				got <- l
				return
			}
		}
	}()
	select {
	case l := <-got:
		if l != "" {
			t.Errorf("after logout the live view still delivered %q", strings.TrimSpace(l))
		}
	case <-time.After(5 * time.Second):
	}
	cancel()
}

// TestUIHardeningKeyAdminEncodedPath checks that a key id with an encoded
// slash cannot lead the admin API's handler elsewhere: a JSON 404.
func TestUIHardeningKeyAdminEncodedPath(t *testing.T) {
	_, gw := hardeningGateway(t)
	c := uiClient(t)
	_, csrf := login(t, gw, c, uiAdminKey)
	for _, path := range []string{"/ui/api/keys/..%2F..%2Fhealthz/disable", "/ui/api/keys/a%2Fb/rotate"} {
		resp, b := uiPost(t, c, gw.URL+path, csrf, ``)
		if resp.StatusCode != 404 || !strings.Contains(resp.Header.Get("Content-Type"), "json") {
			t.Errorf("POST %s: %d %q Location=%q %.80s; want the admin API's JSON 404", path, resp.StatusCode,
				resp.Header.Get("Content-Type"), resp.Header.Get("Location"), b)
		}
	}
}

// TestUIHardeningContractOutcome checks that a contract call valid at once
// shows the outcome "valid".
func TestUIHardeningContractOutcome(t *testing.T) {
	gw := uiGateway(t)
	c := uiClient(t)
	_, csrf := login(t, gw, c, uiAdminKey)
	resp, b := uiPost(t, c, gw.URL+"/ui/api/playground", csrf, `{"target":"contract:city","message":"Name a city."}`)
	if resp.StatusCode != 200 || !strings.Contains(string(b), "event: result") {
		t.Fatalf("playground: %d %s", resp.StatusCode, b)
	}
	var list struct {
		Requests []map[string]any `json:"requests"`
	}
	uiGet(t, c, gw.URL+"/ui/api/requests", &list)
	if len(list.Requests) == 0 {
		t.Fatal("no rows")
	}
	if o := list.Requests[0]["outcome"]; o != "valid" {
		t.Errorf("a valid contract call's row: outcome %v, want \"valid\" (row %v)", o, list.Requests[0])
	}
}
