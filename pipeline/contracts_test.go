package pipeline_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/config"
	"github.com/sluice-gw/sluice/pipeline"
)

// TestContractPromptTemplate checks that a contract's system prompt is a
// template over the input, the contract's name, description and schema;
// that an input lacking a field the template uses is the client's error,
// before any upstream call; and that a prompt without actions is sent as
// written.
func TestContractPromptTemplate(t *testing.T) {
	var mu sync.Mutex
	var systems []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Messages []struct{ Role, Content string }
		}
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &body); err != nil {
			t.Errorf("upstream body: %v", err)
		}
		mu.Lock()
		for _, m := range body.Messages {
			if m.Role == "system" || m.Role == "developer" {
				systems = append(systems, m.Content)
			}
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"{\"ok\":true}"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}`)
	}))
	defer up.Close()
	cfg, err := config.Parse([]byte(`
providers:
  - {name: o, type: openai, base_url: `+up.URL+`/v1, api_key: k}
models:
  - {name: m, targets: [{provider: o, model: m}]}
contracts:
  - name: greet
    description: Greets a person.
    model: m
    schema: {type: object, properties: {ok: {type: boolean}}, required: [ok]}
    system: "{{.Name}}: {{.Description}} Write to {{.Input.person}} in {{.Input.lang}}. Schema {{.Schema}}"
  - name: plain
    model: m
    schema: {type: object}
    system: Answer in JSON.
  - name: echo
    model: m
    schema: {type: object}
    system: "The text is: {{.Input}}"
`), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	var recs []pipeline.Record
	p, err := pipeline.New(context.Background(), cfg, pipeline.Options{OnRecord: func(_ context.Context, r pipeline.Record) {
		mu.Lock()
		recs = append(recs, r)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	who := sluice.Caller{Key: "k", Tenant: "t"}
	ctx := pipeline.WithCaller(t.Context(), "req-9", who)
	if _, err := p.Contract(ctx, "greet", json.RawMessage(`{"person":"Ada","lang":"French"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Contract(ctx, "plain", json.RawMessage(`"hello {{.Input}}"`)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Contract(ctx, "echo", json.RawMessage(`"a string"`)); err != nil {
		t.Fatal(err)
	}
	_, err = p.Contract(ctx, "greet", json.RawMessage(`{"person":"Ada"}`))
	if e := sluice.AsError(err); e.Code != sluice.CodeInvalidRequest || strings.Contains(e.Message, "lang") {
		t.Errorf("missing field: %v, want a client-safe invalid_request", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(recs) != 4 || recs[0].Contract != "greet" || recs[0].ID != "req-9" || recs[0].Caller != who || recs[0].Model != "m" ||
		recs[3].Status != 400 || recs[3].Contract != "greet" {
		t.Errorf("records %+v, want four with the contract, id and caller", recs)
	}
	want := []string{
		`greet: Greets a person. Write to Ada in French. Schema {"properties":{"ok":{"type":"boolean"}},"required":["ok"],"type":"object"}`,
		"Answer in JSON.",
		"The text is: a string",
	}
	if len(systems) != len(want) {
		t.Fatalf("upstream saw system prompts %q, want %q", systems, want)
	}
	for i := range want {
		if !strings.HasPrefix(systems[i], want[i]) {
			t.Errorf("system prompt %d = %q, want %q", i, systems[i], want[i])
		}
	}
}
