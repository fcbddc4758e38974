package contract

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/invopop/jsonschema"

	"github.com/sluice-gw/sluice"
)

// A Client is what Generate calls: a *pipeline.Pipeline is one, and so is
// any sluice.Provider (which, unlike a pipeline, neither validates nor
// repairs answers).
type Client interface {
	Complete(ctx context.Context, req *sluice.Request) (*sluice.Response, error)
}

// A StreamClient is a Client that also streams, as Stream needs.
type StreamClient interface {
	Client
	Stream(ctx context.Context, req *sluice.Request) (sluice.Stream, error)
}

// A typeSchema is what SchemaFor derives from one Go type, computed once.
type typeSchema struct {
	raw    json.RawMessage
	schema *Schema
	name   string // the Output.Name sent when the request names none
	err    error
}

// typeSchemas caches a *typeSchema per reflect.Type. Like encoding/json's
// own cache it holds only what is derived from types, never request data.
var typeSchemas sync.Map

// SchemaFor returns the JSON Schema (draft 2020-12) of T, derived from its
// Go type with github.com/invopop/jsonschema and cached per type.
//
// Property names and optionality come from the json tags: a field with
// omitempty (or omitzero) is optional, every other field is required.
// Objects allow no other properties (additionalProperties false). The
// jsonschema tag adds keywords: description=..., enum=a,enum=b,
// minimum=..., pattern=..., and so on (see invopop/jsonschema; escape a
// comma in a value as \,). Named struct types used more than once, or
// recursively, go in $defs and are referenced with $ref; a reference back
// to T itself is "#". The root is T's own schema (an object for a struct),
// without $schema or $id, as providers' strict modes want.
//
// OpenAI's strict mode also wants every property required: give T no
// omitempty fields when the answer comes from there.
//
// A type that has no JSON Schema (a channel, a func) is an error.
func SchemaFor[T any]() (json.RawMessage, error) {
	ts := schemaOf(reflect.TypeFor[T]())
	if ts.err != nil {
		return nil, ts.err
	}
	return slices.Clone(ts.raw), nil
}

func schemaOf(t reflect.Type) *typeSchema {
	if v, ok := typeSchemas.Load(t); ok {
		return v.(*typeSchema)
	}
	v, _ := typeSchemas.LoadOrStore(t, reflectSchema(t))
	return v.(*typeSchema)
}

func reflectSchema(t reflect.Type) (ts *typeSchema) {
	root := t
	for root.Kind() == reflect.Pointer {
		root = root.Elem()
	}
	ts = &typeSchema{name: outputName(root)}
	defer func() {
		// invopop panics on kinds JSON cannot carry.
		if p := recover(); p != nil {
			ts.err = fmt.Errorf("contract: no JSON Schema for %s: %v", t, p)
		}
	}()
	n := &namer{names: map[reflect.Type]string{}, used: map[string]bool{}}
	r := &jsonschema.Reflector{
		Anonymous:      true, // no $id
		ExpandedStruct: true, // the root is the object, not a $ref to it
		Namer:          n.name,
	}
	s := r.ReflectFromType(root)
	s.Version = "" // no $schema
	raw, err := json.Marshal(s)
	if err != nil {
		ts.err = fmt.Errorf("contract: JSON Schema of %s: %w", t, err)
		return ts
	}
	if name := n.name(root); name != "" {
		// ExpandedStruct moved the root's definition to the root; a
		// recursive reference to it points there. The pattern can only be
		// a $ref member: inside a JSON string its quotes would be escaped.
		raw = bytes.ReplaceAll(raw, []byte(`"$ref":"#/$defs/`+name+`"`), []byte(`"$ref":"#"`))
	}
	ts.raw = raw
	ts.schema, err = compile(raw)
	if err != nil {
		ts.err = fmt.Errorf("contract: JSON Schema of %s: %w", t, err)
	}
	return ts
}

// A namer names the $defs of one reflection: the Go type name, made safe
// for a JSON Pointer and a provider's schema name, and made unique, so two
// types of one name from different packages do not share a definition.
type namer struct {
	names map[reflect.Type]string
	used  map[string]bool
}

func (n *namer) name(t reflect.Type) string {
	if s, ok := n.names[t]; ok {
		return s
	}
	base := sanitize(t.Name())
	s := base
	for i := 2; s != "" && n.used[s]; i++ {
		s = fmt.Sprintf("%s%d", base, i)
	}
	n.names[t] = s
	if s != "" {
		n.used[s] = true
	}
	return s
}

// sanitize keeps the letters, digits, '_' and '-' of a type name, without
// the package paths of a generic type's arguments, replacing runs of
// anything else with one '_': "Page[example.com/shop.Item]" is "Page_Item".
func sanitize(name string) string {
	var short strings.Builder
	for seg := range strings.FieldsFuncSeq(name, func(r rune) bool { return r == '[' || r == ']' || r == ',' }) {
		if i := strings.LastIndexAny(seg, "./"); i >= 0 {
			seg = seg[i+1:]
		}
		short.WriteString(seg + "_")
	}
	name = short.String()
	var b strings.Builder
	for _, r := range name {
		switch {
		case r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-'):
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "_"):
			b.WriteByte('_')
		}
	}
	return strings.TrimSuffix(b.String(), "_")
}

// outputName returns the schema name sent for t: its type name, at most 64
// characters of [a-zA-Z0-9_-] as OpenAI requires, or "response" for an
// unnamed type.
func outputName(t reflect.Type) string {
	s := sanitize(t.Name())
	if len(s) > 64 {
		s = s[:64]
	}
	if s == "" {
		s = "response"
	}
	return s
}

// structured returns a copy of req asking for ts's schema.
func structured(req *sluice.Request, ts *typeSchema, stream bool) (*sluice.Request, error) {
	if req == nil {
		return nil, sluice.NewError(sluice.CodeInvalidRequest, "The request is empty.")
	}
	r := *req
	name := req.Output.Name
	if name == "" {
		name = ts.name
	}
	r.Output = sluice.Output{
		Type: sluice.OutputJSONSchema, Name: name, Description: req.Output.Description,
		Schema: slices.Clone(ts.raw), // the cached bytes stay ours
		Strict: true,
	}
	r.Stream = stream
	return &r, nil
}

// decode decodes a JSON value into a T, refusing members T has no field for.
func decode[T any](value []byte) (T, error) {
	var v T
	d := json.NewDecoder(bytes.NewReader(value))
	d.DisallowUnknownFields()
	if err := d.Decode(&v); err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// Generate asks c for an answer of type T: it sends a copy of req whose
// Output asks for T's JSON Schema (SchemaFor) in strict mode, named after
// T's type unless req.Output.Name is set (req.Output's Description is kept,
// any other Output setting is replaced); it then checks the answer against
// the schema itself, since a client that is not a pipeline does not, and
// decodes it into a T. req is not modified.
//
// The errors are: SchemaFor's for a type without a schema; an
// invalid_request *sluice.Error for a nil req; the client's own errors (a
// pipeline's schema_violation after its repair attempts among them); a
// schema_violation *sluice.Error (see ViolationError) for an answer that
// breaks the schema; and a wrapped encoding/json error when a valid answer
// still does not decode into T (a number too large for its field, say).
// With the last two the response is returned too, for its usage.
func Generate[T any](ctx context.Context, c Client, req *sluice.Request) (T, *sluice.Response, error) {
	var zero T
	ts := schemaOf(reflect.TypeFor[T]())
	if ts.err != nil {
		return zero, nil, ts.err
	}
	r, err := structured(req, ts, false)
	if err != nil {
		return zero, nil, err
	}
	resp, err := c.Complete(ctx, r)
	if err != nil {
		return zero, resp, err
	}
	if resp == nil {
		return zero, nil, sluice.WrapError(sluice.CodeInternal, errors.New("contract: the client returned no response and no error"))
	}
	value, vs := ts.schema.Check(resp.Message.Text())
	if len(vs) > 0 {
		return zero, resp, ViolationError(vs, 1)
	}
	v, err := decode[T](value)
	if err != nil {
		return zero, resp, fmt.Errorf("contract: decode answer into %s: %w", reflect.TypeFor[T](), err)
	}
	return v, resp, nil
}

// partialEvery is the answer length up to which Stream decodes a partial
// value after every text delta; past it, only once the text has grown by
// a thirty-second, so that long answers cost O(n log n), not O(n²).
const partialEvery = 4096

// Stream streams an answer of type T, asking c as Generate does (with
// req.Stream set on the copy). The sequence yields partial values while the
// text arrives, then the whole answer: the last value yielded with a nil
// error is the answer, checked against the schema and decoded as Generate
// decodes it; the values before it are not checked.
//
// A partial value is the valid-so-far object of contract/partial (closed
// strings, complete numbers, complete members, open containers closed),
// read through Partials: it is yielded when it grew and decodes into a T.
// Past partialEvery bytes, partial values are decoded less often, so that
// decoding stays a small share of a long answer.
//
// An error ends the sequence: Generate's errors, or the stream's own error
// (mid-stream failures, a pipeline's schema_violation). Breaking out of the
// loop releases the stream. Each range over the sequence makes a call of
// its own.
func Stream[T any](ctx context.Context, c StreamClient, req *sluice.Request) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		ts := schemaOf(reflect.TypeFor[T]())
		if ts.err != nil {
			yield(zero, ts.err)
			return
		}
		r, err := structured(req, ts, true)
		if err != nil {
			yield(zero, err)
			return
		}
		s, err := c.Stream(ctx, r)
		if err != nil {
			yield(zero, err)
			return
		}
		defer s.Close()
		var (
			partials Partials
			snap     []byte
			grew     bool
			tried    int // the text length at the last decode
		)
		for ev, err := range s.All() {
			if err != nil {
				yield(zero, err)
				return
			}
			if ev.Type != sluice.EventText || ev.Text == "" {
				continue
			}
			if snap, grew = partials.Add(snap[:0], ev.Text); !grew {
				continue
			}
			n := len(partials.Text())
			if n > partialEvery && n-tried < n/32 {
				continue
			}
			tried = n
			if v, err := decode[T](snap); err == nil {
				if !yield(v, nil) {
					return
				}
			}
		}
		value, vs := ts.schema.Check(partials.Text())
		if len(vs) > 0 {
			yield(zero, ViolationError(vs, 1))
			return
		}
		v, err := decode[T](value)
		if err != nil {
			yield(zero, fmt.Errorf("contract: decode answer into %s: %w", reflect.TypeFor[T](), err))
			return
		}
		yield(v, nil)
	}
}
