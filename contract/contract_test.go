package contract_test

import (
	"fmt"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/contract"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const personSchema = `{
  "$defs": {
    "tag": {"type": "string", "pattern": "^[a-z]+$"},
    "point": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}}, "required": ["x", "y"], "additionalProperties": false}
  },
  "type": "object",
  "properties": {
    "name": {"type": "string", "minLength": 1, "maxLength": 20},
    "age": {"type": "integer", "minimum": 0, "maximum": 150},
    "kind": {"enum": ["person", "robot"]},
    "version": {"const": 2},
    "email": {"type": "string", "format": "email"},
    "born": {"type": "string", "format": "date-time"},
    "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}, "minItems": 1, "maxItems": 3},
    "path": {"type": "array", "items": {"type": "array", "items": {"$ref": "#/$defs/point"}}},
    "score": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}
  },
  "required": ["name", "age", "kind"],
  "additionalProperties": false
}`

// TestKeywords runs every keyword contracts rely on through the compiled
// and cached validator: each case is one answer and the violations it must
// get (path and a word of the reason), none for a valid one.
func TestKeywords(t *testing.T) {
	c := contract.NewCompiler()
	valid := `{"name":"Ada","age":36,"kind":"person","version":2,"email":"ada@example.com","born":"1815-12-10T00:00:00Z","tags":["math"],"path":[[{"x":1,"y":2}]],"score":0.5}`
	tests := []struct {
		name   string
		answer string
		path   string // of the one expected violation; "-" for none
		reason string
	}{
		{"valid", valid, "-", ""},
		{"valid in a fence", "```json\n" + valid + "\n```", "-", ""},
		{"required", `{"name":"Ada","kind":"person"}`, "", "missing property 'age'"},
		{"type", `{"name":"Ada","age":"old","kind":"person"}`, "/age", "want integer"},
		{"enum", `{"name":"Ada","age":1,"kind":"ghost"}`, "/kind", "one of"},
		{"const", `{"name":"Ada","age":1,"kind":"robot","version":3}`, "/version", "must be 2"},
		{"minimum", `{"name":"Ada","age":-1,"kind":"robot"}`, "/age", ">= 0"},
		{"maximum", `{"name":"Ada","age":151,"kind":"robot"}`, "/age", "<= 150"},
		{"exclusive bounds", `{"name":"Ada","age":1,"kind":"robot","score":1}`, "/score", "< 1"},
		{"minLength", `{"name":"","age":1,"kind":"robot"}`, "/name", "minLength"},
		{"maxLength", `{"name":"abcdefghijklmnopqrstuvwxyz","age":1,"kind":"robot"}`, "/name", "maxLength"},
		{"additionalProperties", `{"name":"Ada","age":1,"kind":"robot","secret":"x"}`, "", "does not allow"},
		{"pattern through $ref", `{"name":"Ada","age":1,"kind":"robot","tags":["Not-Lower"]}`, "/tags/0", "pattern ^[a-z]+$"},
		{"minItems", `{"name":"Ada","age":1,"kind":"robot","tags":[]}`, "/tags", "minItems"},
		{"maxItems", `{"name":"Ada","age":1,"kind":"robot","tags":["a","b","c","d"]}`, "/tags", "maxItems"},
		{"nested arrays and $defs", `{"name":"Ada","age":1,"kind":"robot","path":[[{"x":1,"y":2}],[{"x":1}]]}`, "/path/1/0", "missing property 'y'"},
		{"format email", `{"name":"Ada","age":1,"kind":"robot","email":"not-an-address"}`, "/email", "valid email"},
		{"format date-time", `{"name":"Ada","age":1,"kind":"robot","born":"yesterday"}`, "/born", "valid date-time"},
		{"not JSON", `Sure! Here is the person you asked for.`, "", "not a JSON value"},
		{"truncated", `{"name":"Ada","age":`, "", "not a JSON value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := c.Compile([]byte(personSchema))
			if err != nil {
				t.Fatal(err)
			}
			value, vs := s.Check(tt.answer)
			if tt.path == "-" {
				if len(vs) != 0 || string(value) != valid {
					t.Fatalf("violations %+v, value %s; want none and the compact answer", vs, value)
				}
				return
			}
			if len(vs) != 1 || vs[0].Path != tt.path || !strings.Contains(vs[0].Reason, tt.reason) {
				t.Fatalf("violations %+v, want one at %q saying %q", vs, tt.path, tt.reason)
			}
			// Reasons quote the schema, never the answer's strings.
			for _, leak := range []string{"Not-Lower", "not-an-address", "yesterday", "ghost", "secret\"", "Sure!"} {
				if strings.Contains(vs[0].Reason, leak) {
					t.Errorf("reason %q quotes the answer", vs[0].Reason)
				}
			}
		})
	}
}

// TestCompileCache checks that a schema is compiled once per content.
func TestCompileCache(t *testing.T) {
	c := contract.NewCompiler()
	a, err := c.Compile([]byte(personSchema))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.Compile([]byte(personSchema))
	if a != b {
		t.Error("the same schema was compiled twice")
	}
	d, _ := c.Compile([]byte(`{"type":"object"}`))
	if d == a {
		t.Error("two schemas share a compilation")
	}
}

// TestCompileErrors checks that a bad schema is invalid_request naming the
// problem, and that a schema cannot make the gateway load anything.
func TestCompileErrors(t *testing.T) {
	c := contract.NewCompiler()
	for _, tt := range []struct{ name, schema, want string }{
		{"not JSON", `{"type":`, "not valid JSON"},
		{"bad keyword value", `{"type": 5}`, "/type"},
		{"bad pattern", `{"type":"string","pattern":"(["}`, "pattern"},
		{"remote ref", `{"$ref":"https://example.com/schema.json"}`, "not allowed"},
		{"file ref", `{"$ref":"file:///etc/passwd"}`, "not allowed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Compile([]byte(tt.schema))
			e, ok := err.(*sluice.Error)
			if !ok || e.Code != sluice.CodeInvalidRequest || e.Param != "response_format" || !strings.Contains(e.Message, tt.want) {
				t.Fatalf("err = %#v, want invalid_request naming %q", err, tt.want)
			}
			if strings.Contains(e.Message, "urn:sluice") {
				t.Errorf("message %q shows the internal schema URL", e.Message)
			}
		})
	}
}

// TestViolationError checks the client-facing schema_violation.
func TestViolationError(t *testing.T) {
	e := contract.ViolationError([]contract.Violation{{Path: "", Reason: "missing property 'age'"}, {Path: "/tags/0", Reason: "does not match the pattern ^[a-z]+$"}}, 2)
	if e.Code != sluice.CodeSchemaViolation || e.Code.HTTPStatus() != 502 || len(e.Details) != 2 {
		t.Fatalf("%+v", e)
	}
	if want := "The model's answer did not match the schema after 2 attempts: (root): missing property 'age'; /tags/0: does not match the pattern ^[a-z]+$."; e.Message != want {
		t.Errorf("message %q\nwant    %q", e.Message, want)
	}
}

// TestSchemaComplexity checks that a schema whose references fan out
// (each link of a chain referring twice to the next: the validator's work
// doubles per link) is refused before it can cost exponential time, while
// a schema that references one definition many times is accepted.
func TestSchemaComplexity(t *testing.T) {
	var defs []string
	for i := range 40 {
		defs = append(defs, fmt.Sprintf(`"a%d":{"allOf":[{"$ref":"#/$defs/a%d"},{"$ref":"#/$defs/a%d"}]}`, i, i+1, i+1))
	}
	defs = append(defs, `"a40":{"type":"object"}`)
	bomb := `{"$defs":{` + strings.Join(defs, ",") + `},"$ref":"#/$defs/a0"}`
	_, err := contract.NewCompiler().Compile([]byte(bomb))
	if e, ok := err.(*sluice.Error); !ok || e.Code != sluice.CodeInvalidRequest || !strings.Contains(e.Message, "too complex") {
		t.Fatalf("fan-out schema: err = %v, want invalid_request: too complex", err)
	}
	var props []string
	for i := range 200 {
		props = append(props, fmt.Sprintf(`"p%d":{"$ref":"#/$defs/item"}`, i))
	}
	wide := `{"$defs":{"item":{"type":"object","properties":{"n":{"type":"integer"}}},"node":{"type":"object","properties":{"next":{"$ref":"#/$defs/node"}}}},"type":"object","properties":{` + strings.Join(props, ",") + `,"list":{"$ref":"#/$defs/node"}}}`
	if _, err := contract.NewCompiler().Compile([]byte(wide)); err != nil {
		t.Fatalf("a wide schema with many references and a recursive one: %v", err)
	}
}

// TestViolationsQuoteNothing checks that neither reasons nor paths carry
// the answer: numbers it chose, or property names it made up.
func TestViolationsQuoteNothing(t *testing.T) {
	s, err := contract.NewCompiler().Compile([]byte(`{"type":"object","properties":{"n":{"type":"number","multipleOf":7}},"additionalProperties":{"type":"integer"}}`))
	if err != nil {
		t.Fatal(err)
	}
	_, vs := s.Check(`{"n":123456789,"secret-key-sk-abc":"x"}`)
	if len(vs) != 2 {
		t.Fatalf("violations %+v", vs)
	}
	for _, v := range vs {
		if strings.Contains(v.Path+v.Reason, "123456789") || strings.Contains(v.Path+v.Reason, "1.23456789") || strings.Contains(v.Path+v.Reason, "secret") {
			t.Errorf("violation %+v quotes the answer", v)
		}
	}
	got := map[string]string{vs[0].Path: vs[0].Reason, vs[1].Path: vs[1].Reason}
	if got["/n"] != "must be a multiple of 7" || got["/*"] == "" {
		t.Errorf("violations %+v, want /n's multipleOf and the made-up key as /*", vs)
	}
}
