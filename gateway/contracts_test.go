package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/contract"
	"github.com/sluice-gw/sluice/gateway"
)

const contractsConfig = `
providers:
  - {name: s, type: sim}
  - {name: prose-once, type: sim, fault: "prose,attempts=1"}
  - {name: prose, type: sim, fault: prose}
models:
  - {name: m, targets: [{provider: s, model: m}]}
  - {name: flaky, targets: [{provider: prose-once, model: m}]}
  - {name: never, targets: [{provider: prose, model: m}]}
contracts:
  - name: person
    description: The person the text is about.
    model: m
    system: Extract the person the text is about.
    schema:
      type: object
      properties:
        name: {type: string, minLength: 1}
        age: {type: integer, minimum: 0, maximum: 150}
        tags: {type: array, items: {type: string}, maxItems: 5}
      required: [name, age]
      additionalProperties: false
  - {name: repaired, model: flaky, schema: '{"type":"object","properties":{"ok":{"type":"boolean"}},"required":["ok"]}'}
  - {name: hopeless, model: never, repair_attempts: 0, schema: '{"type":"object","required":["ok"]}'}
`

// TestContractsEndpoint checks POST and GET /v1/contracts/{name}: the answer
// is the validated object itself, a broken first answer is repaired, one
// that never complies is schema_violation with its instance paths, and the
// contract shows its schema.
func TestContractsEndpoint(t *testing.T) {
	gw := gatewayFromYAML(t, contractsConfig, gateway.Options{})
	call := func(name, body string, hdr ...string) (int, string) {
		req, _ := http.NewRequestWithContext(t.Context(), "POST", gw.URL+"/v1/contracts/"+name, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	// GET shows the schema the answers are checked against.
	resp, err := http.Get(gw.URL + "/v1/contracts/person")
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Name, Description, Model string
		Schema                   json.RawMessage
	}
	json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if info.Name != "person" || info.Model != "m" || info.Description == "" {
		t.Fatalf("GET: %+v", info)
	}
	schema, err := contract.NewCompiler().Compile(info.Schema)
	if err != nil {
		t.Fatalf("the shown schema does not compile: %v", err)
	}

	for _, input := range []string{`"Ada Lovelace, 36, mathematician."`, `{"text":"Ada Lovelace, 36"}`} {
		status, body := call("person", `{"input":`+input+`}`)
		if status != 200 {
			t.Fatalf("input %s: status %d %s", input, status, body)
		}
		if _, vs := schema.Check(body); len(vs) != 0 {
			t.Errorf("answer %s breaks the schema: %+v", body, vs)
		}
	}
	if status, body := call("repaired", `{"input":"hi"}`); status != 200 || !strings.Contains(body, `"ok"`) {
		t.Errorf("repaired: status %d %s", status, body)
	}
	status, body := call("hopeless", `{"input":"hi"}`)
	if status != 502 || !strings.Contains(body, `"code":"schema_violation"`) || !strings.Contains(body, `"details":[{"path":"","reason":"the answer is not a JSON value"}]`) {
		t.Errorf("hopeless: status %d %s", status, body)
	}
	status, body = call("hopeless", `{"input":"hi"}`, "Anthropic-Version", "2023-06-01")
	if status != 502 || !strings.HasPrefix(body, `{"type":"error","error":{"type":"api_error"`) {
		t.Errorf("hopeless, anthropic client: status %d %s", status, body)
	}
	for _, tc := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"nope", `{"input":"x"}`, 404, "not_found"},
		{"person", `{"input":null}`, 400, "invalid_request"},
		{"person", `{"text":"x"}`, 400, "invalid_request"},
		{"person", `not json`, 400, "invalid_request"},
		{"person", `{"input":"x","stream":true}`, 400, "invalid_request"},
	} {
		if status, body := call(tc.name, tc.body); status != tc.status || !strings.Contains(body, tc.code) {
			t.Errorf("%s %s: status %d %s, want %d %s", tc.name, tc.body, status, body, tc.status, tc.code)
		}
	}
	resp, err = http.Get(gw.URL + "/v1/contracts")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"name":"person"`) || !strings.Contains(string(b), `"name":"hopeless"`) {
		t.Errorf("GET /v1/contracts: %s", b)
	}
}
