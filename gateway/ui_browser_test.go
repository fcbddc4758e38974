package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/internal/testutil/browser"
	"github.com/sluice-gw/sluice/pipeline"
	"github.com/sluice-gw/sluice/telemetry"
)

const browserAdminKey = "admin-key-for-the-browser-test"

// browserClock is the dashboard's clock in the browser test: the real time
// plus an offset the test moves forward, so that an hour's overview can
// hold many ten-second samples without the test waiting for them.
type browserClock struct{ offset atomic.Int64 }

func (c *browserClock) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

func (c *browserClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// browserGateway serves a gateway with the dashboard over the simulator:
// keys required, two tiers, a slow streaming route (chat), a route whose
// primary fails its first calls and falls back (quick), a route that always
// fails behind a breaker (broken) and a contract.
func browserGateway(t *testing.T, clock *browserClock) *httptest.Server {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := telemetry.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	p := pipelineFromYAML(t, `
auth: {admin_key: `+browserAdminKey+`}
tiers: [{name: free, rpm: 600, daily_budget_usd: 5}, {name: pro, tpm: 1000000}]
pricing: {sim-fast: {input: 1, output: 2}, sim-json: {input: 1, output: 2}}
providers:
  - {name: s, type: sim, fault: "chunk_delay=20ms", tokens: 60}
  - {name: f, type: sim}
  - {name: flaky, type: sim, fault: "status=503,status_first=3"}
  - {name: down, type: sim, fault: "status=503"}
models:
  - {name: chat, targets: [{provider: s, model: sim-fast}]}
  - {name: quick, targets: [{provider: flaky, model: sim-fast}, {provider: f, model: sim-fast}]}
  - {name: broken, targets: [{provider: down, model: sim-fast}], breaker: {consecutive: 3, open_for: 1h}}
  - {name: json, targets: [{provider: f, model: sim-json}]}
contracts:
  - {name: city, description: A city and its country., model: json, schema: {type: object, properties: {name: {type: string}, country: {type: string}}, required: [name]}}
`, pipeline.Options{Metrics: m})
	gw := httptest.NewServer(gateway.NewServer(nil, p, gateway.Options{AdminKey: browserAdminKey, Registry: reg, Now: clock.now}))
	t.Cleanup(gw.Close)
	return gw
}

// browserCreateKey creates an API key through the admin API and returns its
// id and secret.
func browserCreateKey(t *testing.T, gw *httptest.Server, name, tier string) (id, secret string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "POST", gw.URL+"/admin/keys", strings.NewReader(`{"name":"`+name+`","tier":"`+tier+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+browserAdminKey)
	resp, err := gw.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var k struct{ ID, Key string }
	if err := json.NewDecoder(resp.Body).Decode(&k); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create key: %d %v", resp.StatusCode, err)
	}
	return k.ID, k.Key
}

// browserChat makes one chat call through the API with key and returns its
// status and request id.
func browserChat(t *testing.T, gw *httptest.Server, key, model string, stream bool) (int, string) {
	t.Helper()
	body := `{"model":"` + model + `","stream":` + strconv.FormatBool(stream) + `,"messages":[{"role":"user","content":"Hello there."}]}`
	req, err := http.NewRequestWithContext(t.Context(), "POST", gw.URL+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := gw.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Sluice-Request-Id")
}

// browserTraffic makes half an hour of the dashboard's time of calls, 30
// ten-second steps of one to four calls each, some streamed, some failing,
// so that the overview has figures and charts to show.
func browserTraffic(t *testing.T, gw *httptest.Server, clock *browserClock, key string) {
	t.Helper()
	for i := range 30 {
		clock.advance(10 * time.Second)
		for j := range 1 + i*7%4 {
			if status, _ := browserChat(t, gw, key, "quick", j%2 == 1); status != http.StatusOK {
				t.Fatalf("traffic: a call of quick got %d", status)
			}
		}
		if i%3 == 0 {
			if status, _ := browserChat(t, gw, key, "broken", false); status < 500 {
				t.Fatalf("traffic: a call of broken got %d, want an upstream failure", status)
			}
		}
	}
	// The charts' last point runs from the last sample to now: half a
	// step, as on a gateway in use, rather than the test's few seconds.
	clock.advance(5 * time.Second)
}

// browserStart starts a headless Chromium, closed and waited for when the
// test ends. Without Chromium the test is skipped, unless
// SLUICE_TEST_REQUIRE_SERVICES=1.
func browserStart(t *testing.T) context.Context {
	t.Helper()
	browser.Require(t)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), browser.Options(t.TempDir(), 1280, 900)...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	// Registered after the gateway's and the profile directory's clean-ups,
	// so it runs before them: the browser's connections end first, and the
	// process has exited before its profile is removed.
	t.Cleanup(func() {
		if err := chromedp.Cancel(ctx); err != nil {
			t.Logf("closing the browser: %v", err)
		}
		cancelCtx()
		cancelAlloc() // waits for the browser process to exit
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", browser.Path, err)
	}
	return ctx
}

// browserShots writes full-page screenshots to a temporary directory and,
// when SLUICE_UI_SHOTS names a directory, there too.
type browserShots struct{ tmp, out string }

func (s browserShots) take(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	// The clip is the whole document, measured now: the page may have
	// grown since it loaded.
	size := browserEval[[2]float64](t, ctx, `[document.documentElement.scrollWidth, document.documentElement.scrollHeight]`)
	shot, err := chromedp.Call(ctx, page.CaptureScreenshot, page.CaptureScreenshotParams{
		Format: page.CaptureScreenshotFormatPng, CaptureBeyondViewport: new(true), FromSurface: new(true),
		Clip: &page.Viewport{Width: size[0], Height: size[1], Scale: 1},
	})
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	png := shot.Data
	for _, dir := range []string{s.tmp, s.out} {
		if dir == "" {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			t.Errorf("screenshot %s: %v", name, err)
		}
	}
}

// browserStep returns a context for one step of the test: the browser's,
// with a deadline.
func browserStep(t *testing.T, ctx context.Context) context.Context {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// browserDo runs actions, failing the test with what was being done.
func browserDo(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// browserEval evaluates a JavaScript expression in the page.
func browserEval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// browserWait polls a JavaScript expression until it is truthy.
func browserWait(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Fatalf("waiting for %s (%s): %v", what, expr, err)
	}
}

// browserReady returns, for a page, a JavaScript expression that holds once
// the page has drawn its data.
func browserReady(path string) string {
	switch path {
	case "/ui/login":
		return `document.querySelector('#admin-key') !== null`
	case "/ui":
		return `document.querySelector('.stat[data-stat="requests"] .value').textContent !== '–'`
	case "/ui/requests":
		return `document.querySelector('#requests-table tbody').rows.length > 0`
	case "/ui/keys":
		return `document.querySelectorAll('#keys-table tr.key-row').length > 0`
	case "/ui/providers":
		return `document.querySelectorAll('#targets-table tbody tr').length > 0 && document.querySelector('#contracts pre') !== null`
	case "/ui/playground":
		return `document.querySelector('#pg-target option[value="route:chat"]') !== null && !document.querySelector('#pg-send').disabled`
	}
	panic("no page " + path)
}

// TestUIBrowser drives the dashboard in headless Chromium as an operator
// would: signing in (and failing to), watching the overview and a call
// arrive live, creating and disabling a key, streaming in the playground,
// at 1280 and 800 pixels wide, and signing out. It takes screenshots of
// every page (see docs/ui.md; SLUICE_UI_SHOTS=dir keeps them).
func TestUIBrowser(t *testing.T) {
	clock := &browserClock{}
	gw := browserGateway(t, clock)
	browser := browserStart(t) // after the gateway: closed before it
	_, trafficKey := browserCreateKey(t, gw, "traffic", "pro")
	browserTraffic(t, gw, clock, trafficKey)

	shots := browserShots{tmp: t.TempDir(), out: os.Getenv("SLUICE_UI_SHOTS")}
	if shots.out != "" {
		if err := os.MkdirAll(shots.out, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	// Uncaught exceptions and refused content (CSP) in any page fail the
	// test.
	consoleCtx, stopConsole := context.WithCancel(browser)
	console := chromedp.Console(consoleCtx)
	var (
		consoleWG sync.WaitGroup
		consoleMu sync.Mutex
		problems  []string
	)
	consoleWG.Go(func() {
		for m, err := range console {
			if err != nil {
				return
			}
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
				consoleMu.Lock()
				problems = append(problems, fmt.Sprintf("%s:%d %s", m.URL, m.Line+1, m))
				consoleMu.Unlock()
			}
		}
	})
	defer func() {
		stopConsole()
		consoleWG.Wait()
		for _, p := range problems {
			t.Errorf("browser console: %s", p)
		}
	}()

	ok := t.Run("wrong key refused", func(t *testing.T) {
		ctx := browserStep(t, browser)
		browserDo(t, ctx, "open the login page", chromedp.Navigate(gw.URL+"/ui"), chromedp.WaitVisible(chromedp.ID("admin-key")))
		if loc := browserEval[string](t, ctx, `location.pathname`); loc != "/ui/login" {
			t.Errorf("/ui without a session went to %s, want /ui/login", loc)
		}
		shots.take(t, ctx, "login")
		browserDo(t, ctx, "sign in with a wrong key",
			chromedp.SendKeys(chromedp.ID("admin-key"), "not-the-admin-key"),
			chromedp.Click(chromedp.ID("login-submit")),
			chromedp.WaitVisible(chromedp.CSS("p#login-error")))
		if msg := browserEval[string](t, ctx, `document.querySelector('p#login-error').textContent`); msg != "Wrong admin key." {
			t.Errorf("login error %q", msg)
		}
		if loc := browserEval[string](t, ctx, `location.pathname`); loc != "/ui/login" {
			t.Errorf("after a wrong key the browser is on %s, want /ui/login", loc)
		}
	})
	ok = ok && t.Run("sign in", func(t *testing.T) {
		ctx := browserStep(t, browser)
		browserDo(t, ctx, "sign in with the admin key",
			chromedp.SendKeys(chromedp.ID("admin-key"), browserAdminKey),
			chromedp.Click(chromedp.ID("login-submit")),
			chromedp.WaitVisible(chromedp.CSS("section#overview-stats .stat")))
		if loc := browserEval[string](t, ctx, `location.pathname`); loc != "/ui" {
			t.Errorf("signed in on %s, want /ui", loc)
		}
		browserWait(t, ctx, "the overview's figures and charts", browserReady("/ui")+
			` && ['chart-rps', 'chart-errors', 'chart-latency'].every((id) => +document.getElementById(id).dataset.points >= 10)`+
			` && document.querySelectorAll('#by-key tbody tr:not(.empty)').length > 0`)
		type overviewSeen struct {
			Count    int    `json:"count"`
			Requests string `json:"requests"`
			Errors   string `json:"errors"`
			ByKey    string `json:"byKey"`
			Codes    string `json:"codes"`
		}
		stats := browserEval[overviewSeen](t, ctx, `({
			count: document.querySelectorAll('section#overview-stats .stat').length,
			requests: document.querySelector('.stat[data-stat="requests"] .value').textContent,
			errors: document.querySelector('.stat[data-stat="error_rate"] .value').textContent,
			byKey: document.querySelector('#by-key tbody').textContent,
			codes: document.querySelector('#errors-by-code tbody').textContent,
		})`)
		// 30 steps of 1 + i*7%4 calls of quick, and 10 of broken.
		want := 10
		for i := range 30 {
			want += 1 + i*7%4
		}
		if stats.Count != 14 || stats.Requests != strconv.Itoa(want) || stats.Errors == "0.0%" ||
			!strings.Contains(stats.ByKey, "traffic") || stats.Codes == "" || strings.Contains(stats.Codes, "No errors") {
			t.Errorf("overview: %+v, want 14 figures, %d requests, errors, the key traffic and its error codes", stats, want)
		}
		// The session lives in an HTTP-only cookie: the page, its storage
		// and its script-visible cookies never hold the admin key.
		if leaked := browserEval[bool](t, ctx, `[document.documentElement.outerHTML, document.cookie,
			JSON.stringify(localStorage), JSON.stringify(sessionStorage)].some((s) => s.includes(`+strconv.Quote(browserAdminKey)+`))`); leaked {
			t.Error("the admin key is readable in the page")
		}
		if cookie := browserEval[string](t, ctx, `document.cookie`); cookie != "" {
			t.Errorf("document.cookie = %q, want the session cookie hidden from scripts", cookie)
		}
		shots.take(t, ctx, "overview")
	})
	if !ok {
		return // the other steps need a session
	}

	t.Run("live request", func(t *testing.T) {
		ctx := browserStep(t, browser)
		browserDo(t, ctx, "open the requests page", chromedp.Navigate(gw.URL+"/ui/requests"))
		// The live stream is open ("Live: ...") and the first load is in.
		browserWait(t, ctx, "the live view", browserReady("/ui/requests")+
			` && document.querySelector('#requests-live').textContent.startsWith('Live:')`)
		browserEval[chromedp.Void](t, ctx, `window.sluiceNotReloaded = true`)
		status, id := browserChat(t, gw, trafficKey, "quick", true)
		if status != http.StatusOK || id == "" {
			t.Fatalf("chat call: %d, request id %q", status, id)
		}
		row := chromedp.CSS(`tr.request-row[data-id="` + id + `"]`)
		browserDo(t, ctx, "see the call appear", chromedp.WaitVisible(row))
		if !browserEval[bool](t, ctx, `window.sluiceNotReloaded === true`) {
			t.Error("the page reloaded to show the call")
		}
		if first := browserEval[string](t, ctx, `document.querySelector('#requests-table tbody tr').dataset.id`); first != id {
			t.Errorf("the first row is %s, want the new call %s", first, id)
		}
		browserDo(t, ctx, "open the call's detail", chromedp.Click(row),
			chromedp.WaitVisible(chromedp.ID("request-detail")), chromedp.WaitVisible(chromedp.ID("attempts-table")))
		browserWait(t, ctx, "the attempts", `document.querySelectorAll('#attempts-table tbody tr:not(.empty)').length > 0`)
		if text := browserEval[string](t, ctx, `document.querySelector('#attempts-table tbody').textContent`); !strings.Contains(text, "sim-fast") {
			t.Errorf("attempts table %q, want the upstream model", text)
		}
		// Keyboard: close, then Enter on the focused row opens it again.
		browserDo(t, ctx, "close the detail", chromedp.Click(chromedp.ID("request-detail-close")),
			chromedp.WaitNotVisible(chromedp.ID("request-detail")))
		browserDo(t, ctx, "open the detail with Enter", chromedp.Focus(row), chromedp.KeyEvent(kb.Enter),
			chromedp.WaitVisible(chromedp.ID("request-detail")))
		if title := browserEval[string](t, ctx, `document.querySelector('#request-detail-title').textContent`); !strings.Contains(title, id) {
			t.Errorf("detail title %q, want the request id %s", title, id)
		}
		shots.take(t, ctx, "requests")
	})

	t.Run("create and disable a key", func(t *testing.T) {
		ctx := browserStep(t, browser)
		browserDo(t, ctx, "open the keys page", chromedp.Navigate(gw.URL+"/ui/keys"))
		browserWait(t, ctx, "the keys and tiers", browserReady("/ui/keys")+` && document.querySelector('#key-tier option[value="pro"]') !== null`)
		browserDo(t, ctx, "create a key",
			chromedp.SendKeys(chromedp.ID("key-name"), "dashboard"),
			chromedp.SendKeys(chromedp.ID("key-tenant"), "acme"),
			chromedp.SetValue(chromedp.ID("key-tier"), "pro"),
			chromedp.Click(chromedp.ID("create-key-submit")),
			chromedp.WaitVisible(chromedp.CSS("code#new-key-secret")))
		row := `tr.key-row[data-name="dashboard"]`
		browserWait(t, ctx, "the new key's row", `document.querySelector('`+row+`') !== null`)
		secret := browserEval[string](t, ctx, `document.querySelector('code#new-key-secret').textContent`)
		if !strings.HasPrefix(secret, "sk-sluice-") {
			t.Fatalf("new key secret %q", secret)
		}
		cells := browserEval[string](t, ctx, `document.querySelector('`+row+`').textContent`)
		if !strings.Contains(cells, "pro") || !strings.Contains(cells, "acme") {
			t.Errorf("the new key's row %q, want tier pro and tenant acme", cells)
		}
		shots.take(t, ctx, "keys")
		if status, _ := browserChat(t, gw, secret, "quick", false); status != http.StatusOK {
			t.Fatalf("a call with the new key: %d", status)
		}

		// The page asks confirm() before disabling: accept the dialog.
		dialogCtx, stopDialogs := context.WithCancel(ctx)
		dialogs := chromedp.Events(dialogCtx, page.JavascriptDialogOpening)
		asked := make(chan string, 1)
		var wg sync.WaitGroup
		defer wg.Wait()
		defer stopDialogs()
		wg.Go(func() {
			for ev, err := range dialogs {
				if err != nil {
					return
				}
				asked <- ev.Message
				chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
				return
			}
		})
		browserDo(t, ctx, "disable the key", chromedp.Click(chromedp.CSS(row+` button.key-disable`)))
		browserWait(t, ctx, "the key to show as disabled", `document.querySelector('`+row+` .key-status').textContent === 'disabled'`)
		select {
		case msg := <-asked:
			if !strings.Contains(msg, "dashboard") {
				t.Errorf("confirm() said %q, want the key's name", msg)
			}
		default:
			t.Error("the key was disabled without a confirm() dialog")
		}
		if status, _ := browserChat(t, gw, secret, "quick", false); status != http.StatusUnauthorized {
			t.Errorf("a call with the disabled key: %d, want 401", status)
		}
	})

	t.Run("playground", func(t *testing.T) {
		ctx := browserStep(t, browser)
		browserDo(t, ctx, "open the playground", chromedp.Navigate(gw.URL+"/ui/playground"))
		browserWait(t, ctx, "the targets", browserReady("/ui/playground")+` && document.querySelector('#pg-target option[value="contract:city"]') !== null`)
		browserDo(t, ctx, "send a message to route chat",
			chromedp.SetValue(chromedp.ID("pg-target"), "route:chat"),
			chromedp.SendKeys(chromedp.ID("pg-message"), "Tell me a story."),
			chromedp.Click(chromedp.ID("pg-send")))
		// The simulator sends 60 words 20 ms apart: the output must grow in
		// steps while the stream runs, before the summary's request id.
		type seen struct {
			Len    int    `json:"len"`
			Pieces string `json:"pieces"`
			ID     string `json:"id"`
		}
		var lengths []int
		var last seen
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			last = browserEval[seen](t, ctx, `({len: document.querySelector('#pg-output').textContent.length,
				pieces: document.querySelector('#pg-output').dataset.pieces,
				id: document.querySelector('#pg-request-id').textContent})`)
			if last.ID != "" && last.ID != "–" {
				break
			}
			if n := len(lengths); last.Len > 0 && (n == 0 || lengths[n-1] != last.Len) {
				if n > 0 && last.Len < lengths[n-1] {
					t.Fatalf("the output shrank: %v then %d", lengths, last.Len)
				}
				lengths = append(lengths, last.Len)
			}
			if time.Now().After(deadline) {
				t.Fatalf("the stream did not end: lengths %v, last %+v", lengths, last)
			}
		}
		if len(lengths) < 3 {
			t.Errorf("the output grew through lengths %v before the end, want at least 3 steps", lengths)
		}
		if pieces, _ := strconv.Atoi(last.Pieces); pieces < 3 {
			t.Errorf("data-pieces = %q, want at least 3", last.Pieces)
		}
		if errText := browserEval[string](t, ctx, `document.querySelector('#pg-error').textContent`); errText != "" {
			t.Errorf("playground error %q", errText)
		}
		t.Logf("route chat: output lengths seen while streaming %v; request %s", lengths, last.ID)
		shots.take(t, ctx, "playground")

		browserWait(t, ctx, "the send button", `!document.querySelector('#pg-send').disabled`)
		browserDo(t, ctx, "run the contract city",
			chromedp.SetValue(chromedp.ID("pg-target"), "contract:city"),
			chromedp.SetValue(chromedp.ID("pg-message"), "A city in France."),
			chromedp.Click(chromedp.ID("pg-send")))
		browserWait(t, ctx, "the contract's validation", `document.querySelector('div#pg-validation').textContent === 'valid'`)
		browserWait(t, ctx, "the contract's summary", `!['', '–'].includes(document.querySelector('#pg-request-id').textContent)`)
		var obj map[string]any
		partial := browserEval[string](t, ctx, `document.querySelector('pre#pg-partial').textContent`)
		if err := json.Unmarshal([]byte(partial), &obj); err != nil || obj["name"] == nil {
			t.Errorf("pre#pg-partial %q, want the object with a name", partial)
		}
	})

	t.Run("providers", func(t *testing.T) {
		ctx := browserStep(t, browser)
		browserDo(t, ctx, "open the providers page", chromedp.Navigate(gw.URL+"/ui/providers"))
		browserWait(t, ctx, "the targets", browserReady("/ui/providers"))
		rows := browserEval[[]string](t, ctx, `[...document.querySelectorAll('#targets-table tbody tr')].map((tr) => tr.textContent)`)
		if len(rows) != 5 {
			t.Errorf("targets: %q, want 5", rows)
		}
		for _, r := range rows {
			// broken's breaker opened after three failures in a row; the
			// state is written out, not only coloured.
			if strings.HasPrefix(r, "broken") && !strings.Contains(r, "open") {
				t.Errorf("target row %q, want its breaker shown as open", r)
			}
		}
		if schema := browserEval[string](t, ctx, `document.querySelector('#contracts pre').textContent`); !strings.Contains(schema, `"required"`) {
			t.Errorf("contract schema %q", schema)
		}
		shots.take(t, ctx, "providers")
	})

	t.Run("800 px wide", func(t *testing.T) {
		ctx := browserStep(t, browser)
		browserDo(t, ctx, "narrow the viewport", chromedp.EmulateViewport(800, 900))
		for _, path := range []string{"/ui/login", "/ui", "/ui/requests", "/ui/keys", "/ui/providers", "/ui/playground"} {
			browserDo(t, ctx, "open "+path, chromedp.Navigate(gw.URL+path))
			browserWait(t, ctx, path, browserReady(path))
			w := browserEval[[3]int](t, ctx, `[document.body.scrollWidth, document.documentElement.scrollWidth, window.innerWidth]`)
			if w[2] != 800 || w[0] > w[2]+1 || w[1] > w[2]+1 {
				t.Errorf("%s at 800 px: body %d, document %d px wide in a %d px window: a horizontal scrollbar", path, w[0], w[1], w[2])
			}
			if path == "/ui" {
				shots.take(t, ctx, "overview-800")
			}
		}
		browserDo(t, ctx, "restore the viewport", chromedp.EmulateViewport(1280, 900))
	})

	t.Run("sign out", func(t *testing.T) {
		ctx := browserStep(t, browser)
		cookies, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{gw.URL + "/ui"}})
		if err != nil {
			t.Fatal(err)
		}
		var session *http.Cookie
		for _, c := range cookies.Cookies {
			if c.Name == "sluice_ui" {
				session = &http.Cookie{Name: c.Name, Value: c.Value}
				if !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict || c.Path != "/ui" {
					t.Errorf("session cookie: HttpOnly %v, SameSite %q, path %q", c.HTTPOnly, c.SameSite, c.Path)
				}
			}
		}
		if session == nil {
			t.Fatal("no session cookie in the browser")
		}
		browserDo(t, ctx, "sign out", chromedp.Navigate(gw.URL+"/ui/providers"),
			chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("admin-key")))
		browserDo(t, ctx, "open a page", chromedp.Navigate(gw.URL+"/ui/keys"), chromedp.WaitVisible(chromedp.ID("admin-key")))
		// The session ended on the server too: its cookie, replayed, opens
		// nothing.
		req, _ := http.NewRequestWithContext(t.Context(), "GET", gw.URL+"/ui/api/overview", nil)
		req.AddCookie(session)
		resp, err := gw.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("the signed-out session's cookie still opens the API: %d, want 401", resp.StatusCode)
		}
	})
}
