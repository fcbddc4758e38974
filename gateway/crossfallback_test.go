package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/sim"
)

// TestFallbackAcrossDialects checks that a route whose primary speaks the
// OpenAI API and fails falls back to a target speaking the Anthropic API,
// for a chat call and for a structured-output contract, whose answer still
// validates.
func TestFallbackAcrossDialects(t *testing.T) {
	up := httptest.NewServer(sim.NewServer(sim.Options{}))
	defer up.Close()
	gw := gatewayFromYAML(t, `providers:
  - {name: oa, type: openai, base_url: `+up.URL+`/v1, api_key: k, headers: {X-Sim-Fault: "status=503"}}
  - {name: an, type: anthropic, base_url: `+up.URL+`, api_key: k}
models:
  - {name: m, targets: [{provider: oa, model: gpt-4o-mini}, {provider: an, model: claude-haiku-4-5}]}
contracts:
  - name: city
    model: m
    schema: {type: object, properties: {city: {type: string}, population: {type: integer}}, required: [city, population], additionalProperties: false}
`, gateway.Options{})
	post := func(path, body string) (int, string, string) {
		resp, err := http.Post(gw.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Sluice-Attempts"), string(b)
	}
	if st, att, b := post("/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"Hello"}]}`); st != 200 || att != "2" {
		t.Errorf("chat: %d attempts %q %s", st, att, b)
	}
	st, att, b := post("/v1/contracts/city", `{"input":"Name a big city."}`)
	var v struct {
		City       string `json:"city"`
		Population *int   `json:"population"`
	}
	if st != 200 || att != "2" || json.Unmarshal([]byte(b), &v) != nil || v.City == "" || v.Population == nil {
		t.Errorf("contract: %d attempts %q %s", st, att, b)
	}
}
