package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/contract"
	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/sse"
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

// TestContractStream streams a contract whose answer is a 50-field object:
// partial events carry valid objects that only grow, and the result event
// the whole object, validated. A fenced answer streams the same way; one
// that breaks the schema ends with a schema_violation error event.
func TestContractStream(t *testing.T) {
	var props, required []string
	for i := range 50 {
		typ := `{"type":"string"}`
		if i%3 == 0 {
			typ = `{"type":"integer","minimum":0}`
		}
		props = append(props, fmt.Sprintf(`"f%02d":%s`, i, typ))
		required = append(required, fmt.Sprintf(`"f%02d"`, i))
	}
	schema := `{"type":"object","properties":{` + strings.Join(props, ",") + `},"required":[` + strings.Join(required, ",") + `],"additionalProperties":false}`
	gw := gatewayFromYAML(t, `
providers:
  - {name: s, type: sim}
  - {name: fenced, type: sim, fault: fences}
  - {name: broken, type: sim, fault: schema_break}
models:
  - {name: m, targets: [{provider: s, model: m}]}
  - {name: fenced, targets: [{provider: fenced, model: m}]}
  - {name: broken, targets: [{provider: broken, model: m}]}
contracts:
  - {name: wide, model: m, schema: '`+schema+`'}
  - {name: wide-fenced, model: fenced, schema: '`+schema+`'}
  - {name: wide-broken, model: broken, schema: '`+schema+`'}
`, gateway.Options{})
	compiled, err := contract.NewCompiler().Compile([]byte(schema))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"wide", "wide-fenced", "wide-broken"} {
		t.Run(name, func(t *testing.T) {
			c := openStream(t, "POST", gw.URL+"/v1/contracts/"+name, `{"input":"Fill the form.","stream":true}`)
			if c.resp.StatusCode != 200 || c.resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("status %d", c.resp.StatusCode)
			}
			rd := sse.NewReader(c.resp.Body)
			var prev map[string]any
			partials := 0
			var last sse.Event
			for {
				ev, err := rd.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				last = ev
				if ev.Type != "partial" {
					continue
				}
				partials++
				if name == "wide-broken" {
					// The answer is an array around the object: partials
					// are still valid JSON, and the end says what is wrong.
					if !json.Valid(ev.Data) {
						t.Fatalf("partial %d is not JSON: %s", partials, ev.Data)
					}
					continue
				}
				var cur map[string]any
				if err := json.Unmarshal(ev.Data, &cur); err != nil {
					t.Fatalf("partial %d is not a JSON object: %s", partials, ev.Data)
				}
				for k, v := range prev {
					if fmt.Sprint(cur[k]) != fmt.Sprint(v) {
						t.Fatalf("partial %d changed %s from %v to %v", partials, k, v, cur[k])
					}
				}
				if len(cur) < len(prev) {
					t.Fatalf("partial %d shrank", partials)
				}
				prev = cur
			}
			if name == "wide-broken" {
				if last.Type != "error" || !strings.Contains(string(last.Data), `"code":"schema_violation"`) {
					t.Fatalf("last event %s %s, want a schema_violation error", last.Type, last.Data)
				}
				return
			}
			if last.Type != "result" {
				t.Fatalf("last event %s %s, want the result", last.Type, last.Data)
			}
			if _, vs := compiled.Check(string(last.Data)); len(vs) != 0 {
				t.Fatalf("result breaks the schema: %+v", vs)
			}
			if partials < 10 || len(prev) != 50 {
				t.Errorf("%d partials, the last with %d fields; want many, growing to 50", partials, len(prev))
			}
		})
	}
}

// TestContractStreamHeartbeat checks that silences in a contract stream
// carry heartbeat comments, which SSE readers skip.
func TestContractStreamHeartbeat(t *testing.T) {
	gw := gatewayFromYAML(t, `
providers:
  - {name: slow, type: sim, fault: "chunk_delay=80ms"}
models:
  - {name: slow, targets: [{provider: slow, model: m}]}
contracts:
  - {name: c, model: slow, schema: '{"type":"object","properties":{"a":{"type":"string"}},"required":["a"],"additionalProperties":false}'}
`, gateway.Options{Heartbeat: 20 * time.Millisecond})
	c := openStream(t, "POST", gw.URL+"/v1/contracts/c", `{"input":"x","stream":true}`)
	b, _ := io.ReadAll(c.resp.Body)
	if !strings.Contains(string(b), "\n:\n\n") || !strings.Contains(string(b), "event: result\n") {
		t.Errorf("no heartbeat or no result in a slow contract stream:\n%s", b)
	}
}
