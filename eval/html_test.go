package eval_test

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/sluice-gw/sluice/eval"
	"github.com/sluice-gw/sluice/internal/testutil/browser"
)

// The fixture's charts: latency up to 400 ms makes bins of 50 ms, eight
// per target; six case results; three target and model pairs.
var fixtureChartPoints = map[string]int{"chart-latency": 16, "chart-pass-rate": 6, "chart-cost": 3}

func renderHTML(t testing.TB, r *eval.Report) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := eval.WriteHTML(&buf, r); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// walkHTML calls f on n and every node under it, in document order.
func walkHTML(n *html.Node, f func(*html.Node)) {
	f(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walkHTML(c, f)
	}
}

func htmlAttr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func htmlHasClass(n *html.Node, class string) bool {
	v, _ := htmlAttr(n, "class")
	return strings.Contains(" "+v+" ", " "+class+" ")
}

func htmlText(n *html.Node) string {
	var b strings.Builder
	walkHTML(n, func(c *html.Node) {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	})
	return b.String()
}

func parseHTML(t testing.TB, page []byte) *html.Node {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// checkSelfContained fails t when the page refers to anything outside
// itself.
func checkSelfContained(t *testing.T, doc *html.Node) {
	t.Helper()
	walkHTML(doc, func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		for _, a := range n.Attr {
			key := strings.ToLower(a.Key)
			val := strings.ToLower(strings.TrimSpace(a.Val))
			switch key {
			case "src", "href", "xlink:href", "action", "formaction", "poster", "srcset", "data", "background":
				t.Errorf("<%s %s=%q>: the page must refer to nothing", n.Data, a.Key, a.Val)
			}
			if strings.Contains(val, "http:") || strings.Contains(val, "https:") || strings.Contains(val, "url(") {
				if n.DataAtom != atom.Meta { // the CSP names no URL either, but says 'none'
					t.Errorf("<%s %s=%q> names a URL", n.Data, a.Key, a.Val)
				}
			}
		}
		switch n.DataAtom {
		case atom.Link, atom.Img, atom.Iframe, atom.Object, atom.Embed, atom.Base, atom.Audio, atom.Video, atom.Source:
			t.Errorf("the page has a <%s> element", n.Data)
		case atom.Style:
			css := htmlText(n)
			if strings.Contains(css, "@import") || strings.Contains(css, "url(") || strings.Contains(css, "@font-face") {
				t.Errorf("the style sheet loads something")
			}
		}
	})
}

func htmlByID(doc *html.Node, id string) *html.Node {
	var found *html.Node
	walkHTML(doc, func(n *html.Node) {
		if v, ok := htmlAttr(n, "id"); ok && v == id && found == nil {
			found = n
		}
	})
	return found
}

func TestHTMLSelfContained(t *testing.T) {
	r := comparedReport()
	doc := parseHTML(t, renderHTML(t, r))
	checkSelfContained(t, doc)

	var scripts []*html.Node
	walkHTML(doc, func(n *html.Node) {
		if n.DataAtom == atom.Script {
			scripts = append(scripts, n)
		}
	})
	if len(scripts) != 2 {
		t.Fatalf("%d scripts, want the data and one inline script", len(scripts))
	}
	data := htmlByID(doc, "report-data")
	if data == nil || data.DataAtom != atom.Script {
		t.Fatal("no script#report-data")
	}
	if typ, _ := htmlAttr(data, "type"); typ != "application/json" {
		t.Errorf("report-data has type %q", typ)
	}
	got, err := eval.ReadReport(strings.NewReader(htmlText(data)))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("embedded report (-want +got):\n%s", diff)
	}
	for _, s := range []string{"side-by-side", "regressions", "notes", "cases", "targets", "run"} {
		if htmlByID(doc, s) == nil {
			t.Errorf("no section #%s", s)
		}
	}
}

func TestHTMLCharts(t *testing.T) {
	doc := parseHTML(t, renderHTML(t, fixtureReport()))
	for id, want := range fixtureChartPoints {
		svg := htmlByID(doc, id)
		if svg == nil || svg.DataAtom != atom.Svg {
			t.Errorf("no <svg id=%q>", id)
			continue
		}
		if role, _ := htmlAttr(svg, "role"); role != "img" {
			t.Errorf("%s: role %q", id, role)
		}
		label, _ := htmlAttr(svg, "aria-label")
		if label == "" {
			t.Errorf("%s: no aria-label", id)
		}
		var title *html.Node
		for c := svg.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.ElementNode {
				title = c
				break
			}
		}
		if title == nil || title.Data != "title" || htmlText(title) != label {
			t.Errorf("%s: the first element is not a <title> with the label", id)
		}
		points, _ := htmlAttr(svg, "data-points")
		bars := 0
		walkHTML(svg, func(n *html.Node) {
			if n.Data == "rect" && htmlHasClass(n, "bar") {
				bars++
			}
		})
		if points != strconv.Itoa(want) || bars != want {
			t.Errorf("%s: data-points %s and %d bars, want %d", id, points, bars, want)
		}
	}
	// Values are text on the chart, not only colour.
	for _, s := range []string{"1/3 33.3% flaky", "0/3 0.0% fail", "3/3 100.0% pass", "$2.7500, 8 attempts, 120/138 tokens"} {
		if !strings.Contains(htmlText(htmlByID(doc, "chart-pass-rate"))+htmlText(htmlByID(doc, "chart-cost")), s) {
			t.Errorf("charts lack the text %q", s)
		}
	}
}

func TestHTMLOneTarget(t *testing.T) {
	doc := parseHTML(t, renderHTML(t, fixtureTarget("smart")))
	if htmlByID(doc, "side-by-side") != nil {
		t.Error("one target has a side-by-side table")
	}
	if htmlByID(doc, "regressions") != nil {
		t.Error("a report with no baseline has a regressions section")
	}
	if v, _ := htmlAttr(htmlByID(doc, "chart-latency"), "data-points"); v != "8" {
		t.Errorf("latency bins %s, want 8 (50 ms bins up to 370 ms)", v)
	}
}

func TestHTMLEmptyReport(t *testing.T) {
	doc := parseHTML(t, renderHTML(t, eval.NewReport(eval.RunInfo{Targets: []string{"a"}}, nil, nil)))
	for id := range fixtureChartPoints {
		if v, _ := htmlAttr(htmlByID(doc, id), "data-points"); v != "0" {
			t.Errorf("%s: data-points %s, want 0", id, v)
		}
	}
}

// Text from the dataset and the model cannot end the data script or
// inject markup.
func TestHTMLEscapes(t *testing.T) {
	const evil = `</script><script>alert(1)</script><!--`
	r := eval.NewReport(eval.RunInfo{Dataset: evil, Targets: []string{"t<b>"}}, []eval.Case{{ID: evil, Line: 1}}, []eval.Attempt{{
		Case: evil, Target: "t<b>", Output: evil + "\u2028", Model: "<img src=x>",
		Checks: []eval.Check{{Kind: "contains", Name: evil, Detail: "not found"}},
	}})
	page := renderHTML(t, r)
	doc := parseHTML(t, page)
	checkSelfContained(t, doc)
	n := 0
	walkHTML(doc, func(h *html.Node) {
		if h.DataAtom == atom.Script {
			n++
		}
		if h.DataAtom == atom.B {
			t.Error("a target name became a <b> element")
		}
	})
	if n != 2 {
		t.Errorf("%d scripts, want 2", n)
	}
	got, err := eval.ReadReport(strings.NewReader(htmlText(htmlByID(doc, "report-data"))))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("embedded report (-want +got):\n%s", diff)
	}
}

// TestHTMLInChromium opens the report in headless Chromium, with HTTP
// blocked and every request other than file: and data: counted as a
// failure, and reads back
// the embedded data, the charts and a screenshot.
func TestHTMLInChromium(t *testing.T) {
	browser.Require(t)
	r := comparedReport()
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	if err := os.WriteFile(page, renderHTML(t, r), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, browser.Options(filepath.Join(dir, "profile"), 1200, 900)...)
	defer cancelAlloc() // kills the browser and waits for it
	tabCtx, cancelTab := chromedp.NewContext(allocCtx)
	defer cancelTab()

	var (
		mu         sync.Mutex
		requests   []string
		exceptions []string
	)
	if err := chromedp.Listen(tabCtx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			requests = append(requests, ev.Request.URL)
		case *runtime.EventExceptionThrown:
			msg := ev.ExceptionDetails.Text
			if ex := ev.ExceptionDetails.Exception; ex != nil {
				msg += " " + ex.Description
			}
			exceptions = append(exceptions, msg)
		}
	}); err != nil {
		t.Fatal(err)
	}
	// Block the network too, so that a failure here reaches no server.
	if _, err := chromedp.Call(tabCtx, network.SetBlockedURLs, network.SetBlockedURLsParams{
		URLPatterns: []*network.BlockPattern{
			{URLPattern: "http://*:*/*", Block: true},
			{URLPattern: "https://*:*/*", Block: true},
		},
	}); err != nil {
		t.Fatal(err)
	}
	url := "file://" + page
	if err := chromedp.Do(tabCtx,
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS("#chart-cost")),
	); err != nil {
		t.Fatal(err)
	}
	// Navigate waits for the load event, after the inline script ran.
	ready, err := chromedp.Run(tabCtx, chromedp.Evaluate[string](`document.documentElement.dataset.ready || "no"`))
	if err != nil || ready != "true" {
		t.Errorf("the inline script did not finish: ready %q, %v", ready, err)
	}

	embedded, err := chromedp.Run(tabCtx, chromedp.Evaluate[string](
		`JSON.stringify(JSON.parse(document.getElementById("report-data").textContent))`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := eval.ReadReport(strings.NewReader(embedded))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("report as the browser parsed it (-want +got):\n%s", diff)
	}

	type chartBox struct {
		ID     string  `json:"id"`
		Points string  `json:"points"`
		Bars   int     `json:"bars"`
		Width  float64 `json:"width"`
		Height float64 `json:"height"`
		Role   string  `json:"role"`
	}
	charts, err := chromedp.Run(tabCtx, chromedp.Evaluate[[]chartBox](`Array.from(document.querySelectorAll("svg[id^=chart-]")).map(s => {
		const b = s.getBoundingClientRect();
		return {id: s.id, points: s.dataset.points, bars: s.querySelectorAll("rect.bar").length,
			width: b.width, height: b.height, role: s.getAttribute("role")};
	})`))
	if err != nil {
		t.Fatal(err)
	}
	if len(charts) != len(fixtureChartPoints) {
		t.Errorf("%d charts, want %d", len(charts), len(fixtureChartPoints))
	}
	for _, c := range charts {
		want := fixtureChartPoints[c.ID]
		if c.Points != strconv.Itoa(want) || c.Bars != want {
			t.Errorf("%s: data-points %s, %d bars; want %d", c.ID, c.Points, c.Bars, want)
		}
		if c.Width < 100 || c.Height < 20 || c.Role != "img" {
			t.Errorf("%s: %.0fx%.0f, role %q", c.ID, c.Width, c.Height, c.Role)
		}
	}

	// The inline script works: filtering to failing cases hides the rest.
	shown, err := chromedp.Run(tabCtx, chromedp.Evaluate[int](`(() => {
		const box = document.getElementById("only-failing");
		box.click();
		return document.querySelectorAll("#case-table tbody tr:not([hidden])").length;
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	if shown != 2 {
		t.Errorf("%d rows shown with only failing cases, want 2", shown)
	}

	shot, err := chromedp.Run(tabCtx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	b := img.Bounds()
	if b.Dx() < 800 || b.Dy() < 1500 || len(shot) < 50_000 {
		t.Errorf("screenshot %dx%d, %d bytes: the page looks empty", b.Dx(), b.Dy(), len(shot))
	}
	colours := map[uint32]bool{}
	for y := b.Min.Y; y < b.Max.Y; y += 7 {
		for x := b.Min.X; x < b.Max.X; x += 7 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[r>>8<<16|g>>8<<8|bl>>8] = true
		}
	}
	if len(colours) < 20 {
		t.Errorf("screenshot has %d colours: the page looks blank", len(colours))
	}
	shotPath := filepath.Join(dir, "eval-report.png")
	if err := os.WriteFile(shotPath, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	if out := os.Getenv("SLUICE_UI_SHOTS"); out != "" {
		if err := os.MkdirAll(out, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, "eval-report.png"), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	if err := chromedp.Cancel(tabCtx); err != nil {
		t.Errorf("close the tab: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	sawPage := false
	for _, u := range requests {
		switch {
		case u == url:
			sawPage = true
		case strings.HasPrefix(u, "file:"), strings.HasPrefix(u, "data:"):
		default:
			t.Errorf("the page requested %s", u)
		}
	}
	if !sawPage {
		t.Errorf("requests %q do not include the page: the listener saw nothing", requests)
	}
	for _, e := range exceptions {
		t.Errorf("JavaScript exception: %s", e)
	}
	t.Logf("screenshot %dx%d, %d bytes: %s", b.Dx(), b.Dy(), len(shot), shotPath)
}
