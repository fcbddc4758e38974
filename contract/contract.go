// Package contract makes JSON Schema the boundary between a model's
// nondeterministic answer and the code that uses it: schemas compiled once
// and cached by content, answers parsed and validated, and violations
// described in a form safe to show a client (where, and which rule; never
// the answer's own text).
package contract

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/sluice-gw/sluice"
)

// ObjectSchema is the schema of json_object output: any JSON object.
var ObjectSchema = []byte(`{"type":"object"}`)

// A Schema is a compiled JSON Schema (draft 2020-12 unless the schema says
// otherwise, formats asserted). It is safe for concurrent use.
type Schema struct {
	s     *jsonschema.Schema
	raw   []byte
	names map[string]bool // the property names the schema declares
}

// Raw returns the schema's source.
func (s *Schema) Raw() []byte { return s.raw }

// A Compiler compiles schemas and keeps them by the hash of their source, so
// that a schema sent with every request is compiled once. It is safe for
// concurrent use; the zero value is not usable, use NewCompiler.
type Compiler struct {
	mu    sync.Mutex
	cache map[[32]byte]*Schema
	bytes int // of the cached schemas' sources
	max   int
}

// maxCacheBytes bounds the sources of the cached schemas together: a
// compiled schema takes a multiple of its source.
const maxCacheBytes = 16 << 20

// DefaultCacheSize is how many compiled schemas a Compiler keeps.
const DefaultCacheSize = 1024

// NewCompiler returns a Compiler that keeps up to DefaultCacheSize schemas
// of up to 16 MiB of source together; past that it starts over, so an
// abusive stream of distinct schemas costs compilations, not memory.
func NewCompiler() *Compiler {
	return &Compiler{cache: map[[32]byte]*Schema{}, max: DefaultCacheSize}
}

// schemaURL names every schema inside its own compiler: references within
// the schema resolve against it, and nothing else is ever loaded.
const schemaURL = "urn:sluice:schema"

// Compile returns the compiled form of schema. A schema that is not JSON or
// not a valid JSON Schema, or that references another document, is an
// invalid_request *sluice.Error naming the problem, with Param
// "response_format".
func (c *Compiler) Compile(schema []byte) (*Schema, error) {
	key := sha256.Sum256(schema)
	c.mu.Lock()
	s, ok := c.cache[key]
	c.mu.Unlock()
	if ok {
		return s, nil
	}
	s, err := compile(schema)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.cache) >= c.max || c.bytes+len(schema) > maxCacheBytes {
		clear(c.cache)
		c.bytes = 0
	}
	c.cache[key] = s
	c.bytes += len(schema)
	c.mu.Unlock()
	return s, nil
}

func compile(schema []byte) (*Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		return nil, schemaError("The response_format schema is not valid JSON.", err)
	}
	m := newMeasure(doc)
	if m.size(doc, 0) > maxExpanded {
		return nil, schemaError("The response_format schema is too complex: with its references expanded it exceeds "+strconv.Itoa(maxExpanded)+" keywords and values.", nil)
	}
	jc := jsonschema.NewCompiler()
	jc.DefaultDraft(jsonschema.Draft2020)
	jc.AssertFormat()
	jc.UseLoader(noLoader{})
	if err := jc.AddResource(schemaURL, doc); err != nil {
		return nil, schemaError("The response_format schema is not valid.", err)
	}
	s, err := jc.Compile(schemaURL)
	if err != nil {
		return nil, schemaError("The response_format schema is not a valid JSON Schema: "+compileProblem(err)+".", err)
	}
	return &Schema{s: s, raw: slices.Clone(schema), names: m.names}, nil
}

func schemaError(msg string, err error) *sluice.Error {
	return &sluice.Error{Code: sluice.CodeInvalidRequest, Param: "response_format", Message: msg, Err: err}
}

// compileProblem says what is wrong with a schema in a line, without the
// library's internal URLs.
func compileProblem(err error) string {
	var se *jsonschema.SchemaValidationError
	if errors.As(err, &se) && se.Err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(se.Err, &ve) {
			if vs := violations(ve, nil); len(vs) > 0 {
				return vs[0].Path + ": " + vs[0].Reason
			}
		}
	}
	var le *jsonschema.LoadURLError
	if errors.As(err, &le) {
		return "references to other documents are not allowed"
	}
	msg := strings.ReplaceAll(err.Error(), schemaURL, "")
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return strings.TrimSpace(msg)
}

// noLoader refuses to load any document: a schema is self-contained, and a
// client's schema must not make the gateway read files or URLs.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("loading %s: references to other documents are not allowed", url)
}

// A Violation is one way an answer breaks its schema: where, as a JSON
// Pointer into the answer ("" for the whole), and which rule. It never
// quotes the answer's own strings.
type Violation struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
	// Hint is the validator's own wording, which may quote the answer: for
	// the repair prompt sent back to the model, never for a client.
	Hint string `json:"-"`
}

// Check parses text as a JSON answer and validates it. The answer may be
// wrapped in a Markdown code fence, as models often do; value is the JSON
// itself as the model wrote it, without the fence. An answer that is not
// JSON has the one violation NotJSON.
func (s *Schema) Check(text string) (value []byte, vs []Violation) {
	raw := []byte(Unfence(text))
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, []Violation{NotJSON}
	}
	if err := s.s.Validate(doc); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			return nil, violations(ve, s.names)
		}
		return nil, []Violation{{Path: "", Reason: "the answer could not be validated"}}
	}
	return raw, nil
}

// NotJSON is the violation of an answer that is not a JSON value at all
// (prose, or JSON cut short).
var NotJSON = Violation{Path: "", Reason: "the answer is not a JSON value", Hint: "the answer is not a JSON value"}

// Unparsed reports whether vs says the answer was not JSON at all, as
// opposed to JSON that broke the schema.
func Unparsed(vs []Violation) bool { return len(vs) == 1 && vs[0] == NotJSON }

// Unfence returns text without surrounding white space and without a
// Markdown code fence around it (```json ... ```).
func Unfence(text string) string {
	t := strings.TrimSpace(text)
	if !strings.HasPrefix(t, "```") || !strings.HasSuffix(t, "```") || len(t) < 6 {
		return t
	}
	t = t[3 : len(t)-3]
	if i := strings.IndexByte(t, '\n'); i >= 0 && !strings.ContainsAny(t[:i], "{[\"") {
		t = t[i+1:] // the info string: json, JSON, ...
	}
	return strings.TrimSpace(t)
}

// maxViolations bounds the violations reported for one answer.
const maxViolations = 20

// violations flattens a validation error tree into its leaves. With names,
// a path names only the properties the schema declares (and array
// indexes); other keys, which the answer made up, read "*".
func violations(ve *jsonschema.ValidationError, names map[string]bool) []Violation {
	var out []Violation
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(out) >= maxViolations {
			return
		}
		if len(e.Causes) == 0 {
			out = append(out, Violation{Path: pointer(e.InstanceLocation, names), Reason: reason(e.ErrorKind), Hint: e.ErrorKind.LocalizedString(printer)})
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return out
}

// pointer returns a JSON Pointer (RFC 6901) from path segments; with names,
// a segment that is neither a declared property nor an index reads "*".
func pointer(segs []string, names map[string]bool) string {
	var b strings.Builder
	for _, s := range segs {
		b.WriteByte('/')
		if names != nil && !names[s] {
			if _, err := strconv.Atoi(s); err != nil {
				b.WriteByte('*')
				continue
			}
		}
		s = strings.ReplaceAll(s, "~", "~0")
		b.WriteString(strings.ReplaceAll(s, "/", "~1"))
	}
	return b.String()
}

var printer = message.NewPrinter(language.English)

// reason describes a violated rule in words that quote the schema, never
// the answer: the kinds whose messages would quote the answer's strings
// are worded here.
func reason(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Pattern:
		return "does not match the pattern " + k.Want
	case *kind.Format:
		return "is not a valid " + k.Want
	case *kind.Minimum:
		return "must be >= " + ratString(k.Want)
	case *kind.Maximum:
		return "must be <= " + ratString(k.Want)
	case *kind.ExclusiveMinimum:
		return "must be > " + ratString(k.Want)
	case *kind.ExclusiveMaximum:
		return "must be < " + ratString(k.Want)
	case *kind.MultipleOf:
		return "must be a multiple of " + ratString(k.Want)
	case *kind.Enum:
		return k.LocalizedString(printer)
	case *kind.Const:
		return k.LocalizedString(printer)
	case *kind.PropertyNames:
		return "has a property name the schema does not allow"
	case *kind.AdditionalProperties:
		if len(k.Properties) == 1 {
			return "has a property the schema does not allow"
		}
		return fmt.Sprintf("has %d properties the schema does not allow", len(k.Properties))
	}
	return k.LocalizedString(printer)
}

func ratString(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return fmt.Sprint(f)
}

// ViolationError returns the schema_violation *sluice.Error for an answer
// that still broke its schema after attempts tries.
func ViolationError(vs []Violation, attempts int) *sluice.Error {
	var b strings.Builder
	fmt.Fprintf(&b, "The model's answer did not match the schema")
	if attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts", attempts)
	}
	b.WriteString(": ")
	for i, v := range vs {
		if i > 0 {
			b.WriteString("; ")
		}
		if i == 5 {
			fmt.Fprintf(&b, "and %d more", len(vs)-5)
			break
		}
		p := v.Path
		if p == "" {
			p = "(root)"
		}
		b.WriteString(p + ": " + v.Reason)
	}
	b.WriteByte('.')
	e := &sluice.Error{Code: sluice.CodeSchemaViolation, Message: b.String()}
	for _, v := range vs {
		e.Details = append(e.Details, sluice.ErrorDetail{Path: v.Path, Reason: v.Reason})
	}
	return e
}
