package contract_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/config"
	"github.com/sluice-gw/sluice/contract"
	"github.com/sluice-gw/sluice/pipeline"
)

// A pipeline is what Generate and Stream are meant to call.
var _ contract.StreamClient = (*pipeline.Pipeline)(nil)

type Ingredient struct {
	Name   string  `json:"name" jsonschema:"description=What goes in"`
	Amount float64 `json:"amount" jsonschema:"minimum=0"`
	Unit   string  `json:"unit" jsonschema:"enum=g,enum=ml,enum=piece"`
}

type Nutrition struct {
	Calories int `json:"calories"`
}

type Recipe struct {
	Title       string       `json:"title" jsonschema:"description=A short title"`
	Minutes     int          `json:"minutes" jsonschema:"minimum=1"`
	Ingredients []Ingredient `json:"ingredients" jsonschema:"minItems=1"`
	Nutrition   Nutrition    `json:"nutrition"`
	Tags        []string     `json:"tags"`
	Notes       string       `json:"notes,omitempty"`
}

// A Node is recursive.
type Node struct {
	Label    string `json:"label"`
	Children []Node `json:"children"`
}

// resolve follows a local $ref of s within root.
func resolve(t testing.TB, root, s map[string]any) map[string]any {
	t.Helper()
	ref, ok := s["$ref"].(string)
	if !ok {
		return s
	}
	if ref == "#" {
		return root
	}
	name, ok := strings.CutPrefix(ref, "#/$defs/")
	if !ok {
		t.Fatalf("$ref %q is not local", ref)
	}
	def, ok := root["$defs"].(map[string]any)[name].(map[string]any)
	if !ok {
		t.Fatalf("$ref %q: no such definition", ref)
	}
	return def
}

func schemaMap(t testing.TB, raw json.RawMessage) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("schema is not a JSON object: %v\n%s", err, raw)
	}
	return m
}

func prop(t testing.TB, root, obj map[string]any, name string) map[string]any {
	t.Helper()
	p, ok := obj["properties"].(map[string]any)[name].(map[string]any)
	if !ok {
		t.Fatalf("no property %q in %v", name, obj)
	}
	return resolve(t, root, p)
}

// TestSchemaFor checks what a struct's schema says: required from the json
// tags, no other properties anywhere, enums and descriptions from the
// jsonschema tags, nested types in $defs, and none of the $schema/$id
// noise strict modes refuse.
func TestSchemaFor(t *testing.T) {
	raw, err := contract.SchemaFor[Recipe]()
	if err != nil {
		t.Fatal(err)
	}
	root := schemaMap(t, raw)
	if root["type"] != "object" || root["additionalProperties"] != false {
		t.Errorf("root type %v, additionalProperties %v; want an object allowing no other properties", root["type"], root["additionalProperties"])
	}
	for _, k := range []string{"$schema", "$id", "$ref"} {
		if _, ok := root[k]; ok {
			t.Errorf("root has %s", k)
		}
	}
	if diff := cmp.Diff([]any{"title", "minutes", "ingredients", "nutrition", "tags"}, root["required"]); diff != "" {
		t.Errorf("required (-want +got):\n%s", diff)
	}
	if d := prop(t, root, root, "title")["description"]; d != "A short title" {
		t.Errorf("title description %v", d)
	}
	if m := prop(t, root, root, "minutes"); m["type"] != "integer" || m["minimum"] != 1.0 {
		t.Errorf("minutes %v", m)
	}
	ings := prop(t, root, root, "ingredients")
	if ings["type"] != "array" || ings["minItems"] != 1.0 {
		t.Errorf("ingredients %v", ings)
	}
	ing := resolve(t, root, ings["items"].(map[string]any))
	if ing["additionalProperties"] != false {
		t.Errorf("nested object allows other properties: %v", ing)
	}
	if diff := cmp.Diff([]any{"name", "amount", "unit"}, ing["required"]); diff != "" {
		t.Errorf("ingredient required (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]any{"g", "ml", "piece"}, prop(t, root, ing, "unit")["enum"]); diff != "" {
		t.Errorf("unit enum (-want +got):\n%s", diff)
	}
	if d := prop(t, root, ing, "name")["description"]; d != "What goes in" {
		t.Errorf("ingredient name description %v", d)
	}
	if n := prop(t, root, root, "nutrition"); n["type"] != "object" || n["additionalProperties"] != false {
		t.Errorf("nutrition %v", n)
	}
	if tags := prop(t, root, root, "tags"); tags["type"] != "array" || tags["items"].(map[string]any)["type"] != "string" {
		t.Errorf("tags %v", tags)
	}
	if notes := prop(t, root, root, "notes"); notes["type"] != "string" {
		t.Errorf("notes %v", notes)
	}

	// The schema is cached, and what a caller does with it stays its own.
	raw[0] = 'X'
	again, _ := contract.SchemaFor[Recipe]()
	if again[0] != '{' {
		t.Error("changing a returned schema changed the cache")
	}
	// And it compiles.
	if _, err := contract.NewCompiler().Compile(again); err != nil {
		t.Errorf("the schema does not compile: %v", err)
	}
}

// TestSchemaForRecursive checks that a recursive type refers to the root
// with "#", and that its schema validates nested answers.
func TestSchemaForRecursive(t *testing.T) {
	raw, err := contract.SchemaFor[Node]()
	if err != nil {
		t.Fatal(err)
	}
	root := schemaMap(t, raw)
	if ref := prop(t, root, root, "children")["items"].(map[string]any)["$ref"]; ref != "#" {
		t.Errorf("children items $ref %v, want #", ref)
	}
	s, err := contract.NewCompiler().Compile(raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, vs := s.Check(`{"label":"a","children":[{"label":"b","children":[]}]}`); len(vs) != 0 {
		t.Errorf("a valid tree has violations %v", vs)
	}
	if _, vs := s.Check(`{"label":"a","children":[{"label":"b"}]}`); len(vs) != 1 || vs[0].Path != "/children/0" {
		t.Errorf("a node without children: violations %v, want one at /children/0", vs)
	}
}

// TestSchemaForSameName checks that two types of one name (here the
// package's Ingredient, inside Recipe, and a local one) get a definition
// each, not one shared.
func TestSchemaForSameName(t *testing.T) {
	type Ingredient struct {
		Grams int `json:"grams"`
	}
	type Both struct {
		Local  Ingredient `json:"local"`
		Recipe Recipe     `json:"recipe"`
	}
	raw, err := contract.SchemaFor[Both]()
	if err != nil {
		t.Fatal(err)
	}
	root := schemaMap(t, raw)
	local := prop(t, root, root, "local")
	if _, ok := local["properties"].(map[string]any)["grams"]; !ok {
		t.Errorf("local is %v, want the local Ingredient", local)
	}
	ings := prop(t, root, prop(t, root, root, "recipe"), "ingredients")
	pkg := resolve(t, root, ings["items"].(map[string]any))
	if _, ok := pkg["properties"].(map[string]any)["unit"]; !ok {
		t.Errorf("recipe's ingredient is %v, want the package's Ingredient", pkg)
	}
}

// TestSchemaForUnsupported checks that a type with no JSON Schema is an
// error, not a panic.
func TestSchemaForUnsupported(t *testing.T) {
	if _, err := contract.SchemaFor[struct {
		C chan int `json:"c"`
	}](); err == nil {
		t.Error("SchemaFor of a channel field succeeded")
	}
}

func newPipeline(t testing.TB) *pipeline.Pipeline {
	t.Helper()
	cfg, err := config.Parse([]byte(`
providers:
  - {name: sim, type: sim}
models:
  - {name: fast, targets: [{provider: sim, model: sim-fast}]}
`), func(string) string { return "" })
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	p, err := pipeline.New(context.Background(), cfg, pipeline.Options{})
	if err != nil {
		t.Fatalf("pipeline.New: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// recipeRequest returns a new request; two calls return equal ones.
func recipeRequest() *sluice.Request {
	return &sluice.Request{
		Model:    "fast",
		System:   []sluice.Part{sluice.TextPart("You write recipes.")},
		Messages: []sluice.Message{{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart("A soup for two.")}}},
		Output:   sluice.Output{Description: "One recipe."},
		Metadata: map[string]string{"k": "v"},
	}
}

// TestGeneratePipeline asks a real pipeline over the simulator for a
// Recipe and a recursive Node.
func TestGeneratePipeline(t *testing.T) {
	p := newPipeline(t)
	req := recipeRequest()
	r, resp, err := contract.Generate[Recipe](context.Background(), p, req)
	if err != nil {
		t.Fatal(err)
	}
	if r.Title == "" || r.Minutes < 1 || len(r.Ingredients) == 0 || len(r.Tags) == 0 {
		t.Errorf("recipe not filled in: %+v", r)
	}
	for _, ing := range r.Ingredients {
		if ing.Name == "" || (ing.Unit != "g" && ing.Unit != "ml" && ing.Unit != "piece") {
			t.Errorf("ingredient %+v", ing)
		}
	}
	if resp == nil || resp.Model != "fast" || resp.Usage.OutputTokens == 0 {
		t.Errorf("response %+v", resp)
	}
	if diff := cmp.Diff(recipeRequest(), req); diff != "" {
		t.Errorf("Generate modified the request (-before +after):\n%s", diff)
	}

	n, _, err := contract.Generate[Node](context.Background(), p, recipeRequest())
	if err != nil {
		t.Fatal(err)
	}
	if n.Label == "" {
		t.Errorf("node %+v", n)
	}
}

// A fakeClient is a Client whose answers are funcs; it keeps the requests
// it gets.
type fakeClient struct {
	complete func(*sluice.Request) (*sluice.Response, error)
	stream   func(*sluice.Request) (sluice.Stream, error)
	reqs     []*sluice.Request
}

func (f *fakeClient) Complete(_ context.Context, req *sluice.Request) (*sluice.Response, error) {
	f.reqs = append(f.reqs, req)
	return f.complete(req)
}

func (f *fakeClient) Stream(_ context.Context, req *sluice.Request) (sluice.Stream, error) {
	f.reqs = append(f.reqs, req)
	return f.stream(req)
}

func answering(text string) *fakeClient {
	return &fakeClient{complete: func(*sluice.Request) (*sluice.Response, error) {
		return &sluice.Response{Message: sluice.Message{Role: sluice.RoleAssistant, Parts: []sluice.Part{sluice.TextPart(text)}}}, nil
	}}
}

const validRecipe = `{"title":"Soup","minutes":30,"ingredients":[{"name":"leek","amount":2,"unit":"piece"}],"nutrition":{"calories":300},"tags":["warm"]}`

// TestGenerateRequest checks what Generate sends: a copy of the request
// asking for T's schema, strictly, named after T unless the caller named
// it, and that the answer is decoded.
func TestGenerateRequest(t *testing.T) {
	schema, _ := contract.SchemaFor[Recipe]()
	for _, tt := range []struct{ name, given, want string }{
		{"type name", "", "Recipe"},
		{"caller's name", "soup", "soup"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := answering("```json\n" + validRecipe + "\n```")
			req := recipeRequest()
			req.Output.Name = tt.given
			r, _, err := contract.Generate[Recipe](context.Background(), c, req)
			if err != nil {
				t.Fatal(err)
			}
			want := sluice.Output{Type: sluice.OutputJSONSchema, Name: tt.want, Description: "One recipe.", Schema: schema, Strict: true}
			if diff := cmp.Diff(want, c.reqs[0].Output); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
			if c.reqs[0] == req || c.reqs[0].Stream {
				t.Error("the request sent is the caller's, or streams")
			}
			if r.Title != "Soup" || r.Ingredients[0].Unit != "piece" || r.Nutrition.Calories != 300 {
				t.Errorf("recipe %+v", r)
			}
			before := recipeRequest()
			before.Output.Name = tt.given
			if diff := cmp.Diff(before, req); diff != "" {
				t.Errorf("Generate modified the request (-before +after):\n%s", diff)
			}
		})
	}
}

// TestGenerateErrors checks Generate's errors against clients that do not
// validate: each broken answer is schema_violation, a client's error comes
// back as it was, and a valid answer that does not fit T is a decoding
// error.
func TestGenerateErrors(t *testing.T) {
	down := sluice.NewError(sluice.CodeUpstreamUnavailable, "The model provider is unavailable.")
	tests := []struct {
		name   string
		client *fakeClient
		code   sluice.Code
		path   string // of the first violation
		reason string
	}{
		{"prose", answering("Sure! Here is a soup recipe: leeks, water, salt."), sluice.CodeSchemaViolation, "", "not a JSON value"},
		{"extra field", answering(strings.Replace(validRecipe, `"tags"`, `"chef":"me","tags"`, 1)), sluice.CodeSchemaViolation, "", "does not allow"},
		{"bad enum", answering(strings.Replace(validRecipe, `"piece"`, `"cup"`, 1)), sluice.CodeSchemaViolation, "/ingredients/0/unit", "one of"},
		{"missing field", answering(`{"title":"Soup"}`), sluice.CodeSchemaViolation, "", "missing properties"},
		{"client error", &fakeClient{complete: func(*sluice.Request) (*sluice.Response, error) { return nil, down }}, sluice.CodeUpstreamUnavailable, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _, err := contract.Generate[Recipe](context.Background(), tt.client, recipeRequest())
			var e *sluice.Error
			if !errors.As(err, &e) || e.Code != tt.code {
				t.Fatalf("err = %v, want %s", err, tt.code)
			}
			if !cmp.Equal(r, Recipe{}) {
				t.Errorf("with an error, the value is %+v", r)
			}
			if tt.code != sluice.CodeSchemaViolation {
				if err != error(down) {
					t.Errorf("err = %v, want the client's own", err)
				}
				return
			}
			if len(e.Details) == 0 || e.Details[0].Path != tt.path || !strings.Contains(e.Details[0].Reason, tt.reason) {
				t.Errorf("details %+v, want %q at %q", e.Details, tt.reason, tt.path)
			}
		})
	}

	t.Run("does not fit T", func(t *testing.T) {
		type Small struct {
			N int8 `json:"n"`
		}
		_, resp, err := contract.Generate[Small](context.Background(), answering(`{"n":300}`), recipeRequest())
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) || resp == nil {
			t.Errorf("err = %v, resp %v; want a decoding error and the response", err, resp)
		}
	})
	t.Run("nil request", func(t *testing.T) {
		_, _, err := contract.Generate[Recipe](context.Background(), answering(validRecipe), nil)
		if sluice.ErrorCode(err) != sluice.CodeInvalidRequest {
			t.Errorf("err = %v, want invalid_request", err)
		}
	})
}

// TestStreamPipeline streams a Recipe from a real pipeline: the values
// grow towards the last one, which is what the streamed text decodes to.
func TestStreamPipeline(t *testing.T) {
	p := newPipeline(t)
	ctx := context.Background()
	req := recipeRequest()
	var got []Recipe
	for r, err := range contract.Stream[Recipe](ctx, p, req) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if diff := cmp.Diff(recipeRequest(), req); diff != "" {
		t.Errorf("Stream modified the request (-before +after):\n%s", diff)
	}
	if len(got) < 3 {
		t.Fatalf("%d values, want partial ones before the last", len(got))
	}

	// The same request streamed directly: the simulator answers a request
	// the same way every time.
	schema, _ := contract.SchemaFor[Recipe]()
	direct := recipeRequest()
	direct.Stream = true
	direct.Output = sluice.Output{Type: sluice.OutputJSONSchema, Name: "Recipe", Description: "One recipe.", Schema: schema, Strict: true}
	s, err := p.Stream(ctx, direct)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := sluice.Collect(s)
	if err != nil {
		t.Fatal(err)
	}
	var want Recipe
	if err := json.Unmarshal([]byte(resp.Message.Text()), &want); err != nil {
		t.Fatal(err)
	}
	final := got[len(got)-1]
	if diff := cmp.Diff(want, final); diff != "" {
		t.Errorf("last value (-text +got):\n%s", diff)
	}
	for i, r := range got {
		if !grows(r, final) {
			t.Errorf("value %d %+v does not lead to the last %+v", i, r, final)
		}
	}
}

// grows reports whether partial could become final as more text arrives:
// strings are prefixes, lists no longer, numbers either absent or final.
func grows(partial, final Recipe) bool {
	if !strings.HasPrefix(final.Title, partial.Title) || (partial.Minutes != 0 && partial.Minutes != final.Minutes) ||
		len(partial.Ingredients) > len(final.Ingredients) || len(partial.Tags) > len(final.Tags) ||
		(partial.Nutrition.Calories != 0 && partial.Nutrition != final.Nutrition) || !strings.HasPrefix(final.Notes, partial.Notes) {
		return false
	}
	for i, p := range partial.Ingredients {
		f := final.Ingredients[i]
		if !strings.HasPrefix(f.Name, p.Name) || !strings.HasPrefix(f.Unit, p.Unit) || (p.Amount != 0 && p.Amount != f.Amount) {
			return false
		}
	}
	for i, tag := range partial.Tags {
		if !strings.HasPrefix(final.Tags[i], tag) {
			return false
		}
	}
	return true
}

// textStream returns a stream client whose answer is text, in pieces of
// size bytes; released records that the stream was released.
func textStream(text string, size int, fail error, released *bool) *fakeClient {
	return &fakeClient{stream: func(*sluice.Request) (sluice.Stream, error) {
		i, started := 0, false
		return sluice.NewStream(func() (sluice.Event, error) {
			switch {
			case !started:
				started = true
				return sluice.Event{Type: sluice.EventStart, ID: "s"}, nil
			case i < len(text):
				j := min(i+size, len(text))
				ev := sluice.Event{Type: sluice.EventText, Text: text[i:j]}
				i = j
				return ev, nil
			case fail != nil:
				return sluice.Event{}, fail
			case i == len(text):
				i++
				return sluice.Event{Type: sluice.EventFinish, FinishReason: sluice.FinishStop}, nil
			}
			return sluice.Event{}, io.EOF
		}, func() error {
			if released != nil {
				*released = true
			}
			return nil
		}), nil
	}}
}

// TestStreamPartials streams answers a byte at a time (cutting escapes and
// runes in two) and in larger pieces: every value leads to the last, and
// the last is the answer.
func TestStreamPartials(t *testing.T) {
	answers := []string{
		validRecipe,
		"```json\n" + validRecipe + "\n```",
		`{"title":"Cr\u00e8me \"br\u00fbl\u00e9e\"\\ \ud83c\udf6e","minutes":45,"ingredients":[{"name":"cr` + "è" + `me 🍮","amount":0.5,"unit":"ml"},{"name":"sugar","amount":100,"unit":"g"}],` +
			"\n  " + `"nutrition" : { "calories" : -150 } , "tags":["a\nb", "c"],"notes":"\/\\"}`,
	}
	for _, text := range answers {
		var want Recipe
		value := strings.TrimSuffix(strings.TrimPrefix(text, "```json\n"), "\n```")
		d := json.NewDecoder(strings.NewReader(value))
		if err := d.Decode(&want); err != nil {
			t.Fatal(err)
		}
		for _, size := range []int{1, 3, 7, len(text)} {
			var got []Recipe
			for r, err := range contract.Stream[Recipe](context.Background(), textStream(text, size, nil, nil), recipeRequest()) {
				if err != nil {
					t.Fatalf("size %d: %v", size, err)
				}
				got = append(got, r)
			}
			if diff := cmp.Diff(want, got[len(got)-1]); diff != "" {
				t.Errorf("size %d: last value (-want +got):\n%s", size, diff)
			}
			for i, r := range got {
				if !grows(r, want) {
					t.Errorf("size %d: value %d %+v does not lead to the last", size, i, r)
				}
			}
			// A value grows by whole members and closed strings (see
			// contract/partial): about one value per member.
			if size == 1 && len(got) < 10 {
				t.Errorf("a byte at a time: only %d values", len(got))
			}
		}
	}
}

// TestStreamErrors checks that a broken answer, a failing stream and a
// failing start end the sequence with their error, and that breaking out
// releases the stream.
func TestStreamErrors(t *testing.T) {
	cut := sluice.NewError(sluice.CodeStreamInterrupted, "The stream was interrupted.")
	for _, tt := range []struct {
		name   string
		client *fakeClient
		code   sluice.Code
	}{
		{"prose", textStream("Here is your recipe: soup.", 4, nil, nil), sluice.CodeSchemaViolation},
		{"extra field", textStream(strings.Replace(validRecipe, `"tags"`, `"chef":"me","tags"`, 1), 5, nil, nil), sluice.CodeSchemaViolation},
		{"mid-stream", textStream(validRecipe, 5, cut, nil), sluice.CodeStreamInterrupted},
		{"start", &fakeClient{stream: func(*sluice.Request) (sluice.Stream, error) { return nil, cut }}, sluice.CodeStreamInterrupted},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var last error
			n := 0
			for _, err := range contract.Stream[Recipe](context.Background(), tt.client, recipeRequest()) {
				n++
				if last != nil {
					t.Fatal("a value after the error")
				}
				last = err
			}
			if sluice.ErrorCode(last) != tt.code {
				t.Errorf("last error %v, want %s", last, tt.code)
			}
			if !tt.client.reqs[0].Stream || tt.client.reqs[0].Output.Type != sluice.OutputJSONSchema {
				t.Errorf("request sent %+v", tt.client.reqs[0])
			}
		})
	}

	t.Run("break", func(t *testing.T) {
		var released bool
		for range contract.Stream[Recipe](context.Background(), textStream(validRecipe, 2, nil, &released), recipeRequest()) {
			break
		}
		if !released {
			t.Error("breaking out did not release the stream")
		}
	})
}

// FuzzStream streams any text in pieces as an answer of any JSON: it must
// not panic, and an answer that is JSON ends with its value.
func FuzzStream(f *testing.F) {
	for _, s := range []string{
		validRecipe, `[1, 2.5e3, true, null, "x\"y", {"a": []}]`, `"\ud83c\udf6e"`, "```json\n{}\n```",
		`{"a":"b\`, `{"a":[{"b":`, `]`, `{"a" 1}`, `"é`, "{\"a\":\"\xe2\x82", `12`, `{"a":tru`,
	} {
		f.Add(s, uint8(1))
		f.Add(s, uint8(3))
	}
	compiled, err := contract.NewCompiler().Compile([]byte(`{}`))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string, size uint8) {
		var last any
		var lastErr error
		var values []any
		for v, err := range contract.Stream[any](context.Background(), textStream(text, int(size%8)+1, nil, nil), recipeRequest()) {
			last, lastErr = v, err
			if err == nil {
				values = append(values, v)
			}
		}
		value, vs := compiled.Check(text)
		if len(vs) > 0 {
			if sluice.ErrorCode(lastErr) != sluice.CodeSchemaViolation {
				t.Fatalf("not JSON, but the last error is %v", lastErr)
			}
			return
		}
		var want any
		if err := json.Unmarshal(value, &want); err != nil {
			t.Fatal(err)
		}
		if lastErr != nil || !cmp.Equal(want, last) {
			t.Fatalf("last value %v, error %v; want %v", last, lastErr, want)
		}
		if duplicateKeys(value) {
			return // a later member replaces an earlier one
		}
		for i, v := range values {
			if !leadsTo(v, want) {
				t.Fatalf("value %d %#v does not lead to %#v", i, v, want)
			}
		}
	})
}

// leadsTo reports whether partial, a value decoded from a prefix of some
// JSON, could become final as more text arrives: strings are prefixes,
// arrays no longer and objects no wider, element by element, and anything
// else is whole.
func leadsTo(partial, final any) bool {
	switch p := partial.(type) {
	case string:
		f, ok := final.(string)
		return ok && strings.HasPrefix(f, p)
	case []any:
		f, ok := final.([]any)
		if !ok || len(p) > len(f) {
			return false
		}
		for i := range p {
			if !leadsTo(p[i], f[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		f, ok := final.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range p {
			if fv, ok := f[k]; !ok || !leadsTo(v, fv) {
				return false
			}
		}
		return true
	}
	return cmp.Equal(partial, final)
}

// duplicateKeys reports whether an object in the JSON value has a key
// twice.
func duplicateKeys(value []byte) bool {
	d := json.NewDecoder(strings.NewReader(string(value)))
	type frame struct {
		keys   map[string]bool
		object bool
		key    bool // the next string is a key
	}
	var stack []frame
	for {
		tok, err := d.Token()
		if err != nil {
			return false
		}
		top := len(stack) - 1
		switch tok := tok.(type) {
		case json.Delim:
			if tok == '{' || tok == '[' {
				if top >= 0 && stack[top].object {
					stack[top].key = true
				}
				stack = append(stack, frame{keys: map[string]bool{}, object: tok == '{', key: tok == '{'})
				continue
			}
			stack = stack[:top]
			continue
		case string:
			if top >= 0 && stack[top].object && stack[top].key {
				if stack[top].keys[tok] {
					return true
				}
				stack[top].keys[tok] = true
				stack[top].key = false
				continue
			}
		}
		if top >= 0 && stack[top].object {
			stack[top].key = true
		}
	}
}
