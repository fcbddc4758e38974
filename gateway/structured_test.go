package gateway_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	oaoption "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"

	"github.com/sluice-gw/sluice/contract"
	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/sim"
)

// TestStructuredFaults sends a json_schema request with the official
// OpenAI SDK through each upstream kind (OpenAI API, Anthropic API with its
// native structured output, Anthropic API with a forced tool call) while
// the simulator misbehaves the ways models do: prose instead of JSON, JSON
// cut short at the length limit, JSON of the wrong shape, JSON in a code
// fence. A fault on the first attempt only is repaired, and the client
// gets JSON that validates; a fault on every attempt ends in
// schema_violation with instance paths.
func TestStructuredFaults(t *testing.T) {
	up := sim.NewServer(sim.Options{})
	ups := httptest.NewServer(up)
	t.Cleanup(ups.Close)
	kinds := []struct{ name, provider string }{
		{"openai", "type: openai, base_url: " + ups.URL + "/v1"},
		{"anthropic", "type: anthropic, base_url: " + ups.URL},
		{"anthropic-tool", "type: anthropic, base_url: " + ups.URL + ", structured_output: tool"},
	}
	faults := []struct {
		name, fault string
		always      bool // the fault on every attempt: no repair helps
	}{
		{"none", "", false},
		{"fenced", "fences", false},
		{"prose once", "prose,attempts=1", false},
		{"cut once", "truncate,attempts=1", false},
		{"wrong shape once", "schema_break,attempts=1", false},
		{"prose always", "prose", true},
		{"cut always", "truncate", true},
		{"wrong shape always", "schema_break", true},
	}
	var cfg strings.Builder
	cfg.WriteString("providers:\n")
	for i, k := range kinds {
		for j, f := range faults {
			fmt.Fprintf(&cfg, "  - {name: p%d-%d, %s, api_key: k, headers: {X-Sim-Fault: %q}}\n", i, j, k.provider, f.fault)
		}
	}
	cfg.WriteString("models:\n")
	for i := range kinds {
		for j := range faults {
			fmt.Fprintf(&cfg, "  - {name: m%d-%d, targets: [{provider: p%d-%d, model: m}]}\n", i, j, i, j)
		}
	}
	gw := gatewayFromYAML(t, cfg.String(), gateway.Options{})
	schema, err := contract.NewCompiler().Compile([]byte(citySchemaJSON))
	if err != nil {
		t.Fatal(err)
	}
	client := openai.NewClient(oaoption.WithBaseURL(gw.URL+"/v1"), oaoption.WithAPIKey("k"), oaoption.WithMaxRetries(0))
	for i, k := range kinds {
		for j, f := range faults {
			t.Run(k.name+"/"+f.name, func(t *testing.T) {
				if k.name == "anthropic-tool" && strings.Contains(f.fault, "truncate") {
					// The simulator cannot cut a tool call's input and
					// still answer an Anthropic tool_use (its input must be
					// an object); a real API stops with max_tokens.
					t.Skip("the simulator does not truncate forced tool calls")
				}
				resp, err := client.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{
					Model:    fmt.Sprintf("m%d-%d", i, j),
					Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Name a city and its population.")},
					ResponseFormat: openai.ChatCompletionNewParamsResponseFormatUnion{
						OfJSONSchema: &shared.ResponseFormatJSONSchemaParam{JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{
							Name: "city", Strict: openai.Bool(true), Schema: citySchemaMap,
						}},
					},
				})
				// The forced tool call answers with the tool's input, which
				// the simulator builds from the schema whatever the text
				// faults: only text answers can break.
				if f.always && k.name != "anthropic-tool" {
					var apiErr *openai.Error
					if !errors.As(err, &apiErr) || apiErr.StatusCode != 502 || apiErr.Code != "schema_violation" || !strings.Contains(apiErr.RawJSON(), `"details":[{"path":`) ||
						strings.Contains(apiErr.RawJSON(), "raw_output") {
						t.Fatalf("err %v, want 502 schema_violation with details and no raw output", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				content := resp.Choices[0].Message.Content
				if _, vs := schema.Check(content); len(vs) != 0 || strings.HasPrefix(content, "```") {
					t.Fatalf("content %q: violations %+v", content, vs)
				}
			})
		}
	}
}

// TestRawOutputOptIn checks that a schema_violation carries the model's
// raw answer only on a route that opted in, in both dialects.
func TestRawOutputOptIn(t *testing.T) {
	gw := gatewayFromYAML(t, `providers:
  - {name: s, type: sim, fault: prose}
models:
  - {name: open, targets: [{provider: s, model: m}], expose_raw_output: true, repair_attempts: 0}
  - {name: closed, targets: [{provider: s, model: m}], repair_attempts: 0}
`, gateway.Options{})
	for _, tc := range []struct {
		model, path, body string
		want              bool
	}{
		{"open", "/v1/chat/completions", `{"model":"open","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_object"}}`, true},
		{"closed", "/v1/chat/completions", `{"model":"closed","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_object"}}`, false},
		{"open", "/v1/messages", `{"model":"open","max_tokens":100,"messages":[{"role":"user","content":"hi"}],"output_config":{"format":{"type":"json_schema","schema":{"type":"object"}}}}`, true},
	} {
		resp, err := http.Post(gw.URL+tc.path, "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 502 || !strings.Contains(string(b), "did not match the schema") {
			t.Fatalf("%s %s: %d %s", tc.model, tc.path, resp.StatusCode, b)
		}
		var body struct{ Error map[string]any }
		if err := json.Unmarshal(b, &body); err != nil {
			t.Fatal(err)
		}
		raw, ok := body.Error["raw_output"].(string)
		if ok != tc.want || (ok && raw == "") {
			t.Errorf("%s %s: raw_output %q present %v, want present %v: %s", tc.model, tc.path, raw, ok, tc.want, b)
		}
	}
}

const citySchemaJSON = `{"type":"object","properties":{"city":{"type":"string"},"population":{"type":"integer","minimum":0}},"required":["city","population"],"additionalProperties":false}`

var citySchemaMap = map[string]any{
	"type": "object",
	"properties": map[string]any{
		"city":       map[string]any{"type": "string"},
		"population": map[string]any{"type": "integer", "minimum": 0},
	},
	"required":             []any{"city", "population"},
	"additionalProperties": false,
}
