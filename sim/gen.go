package sim

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash"
	"math"
	"math/rand/v2"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sluice-gw/sluice"
)

// An answer is everything a call will produce, decided before the first
// event: the stream only paces it out.
type answer struct {
	id          string // "sim-<hex>"
	pieces      []piece
	calls       []callInfo
	finish      sluice.FinishReason
	inputTokens int
}

// A piece is one content event: a text delta, or a fragment of a tool call's
// arguments. Each counts as one output token.
type piece struct {
	text string
	call int  // -1 for text, else the tool call's index
	head bool // the call's first delta: carries its id and name
}

type callInfo struct {
	id, name string
}

// defaultTokens is the answer length when nothing asks otherwise.
const defaultTokens = 24

// plan decides the answer to req under fault f. Errors are invalid_request
// *sluice.Error values.
func (p *Provider) plan(req *sluice.Request, f Fault) (*answer, error) {
	if req == nil {
		return nil, sluice.NewError(sluice.CodeInvalidRequest, "A request is required.")
	}
	if len(req.Messages) == 0 {
		return nil, &sluice.Error{Code: sluice.CodeInvalidRequest, Message: "At least one message is required.", Param: "messages"}
	}
	tokens := f.Tokens
	if tokens <= 0 {
		tokens = p.tokens
	}
	tokens = min(tokens, MaxTokens)

	sum := requestHash(req)
	g := &gen{rng: rand.New(rand.NewPCG(binary.LittleEndian.Uint64(sum[0:8]), binary.LittleEndian.Uint64(sum[8:16])))}
	a := &answer{id: "sim-" + hex.EncodeToString(sum[16:28]), finish: sluice.FinishStop, inputTokens: countInput(req)}

	for i := range req.Tools {
		if params := req.Tools[i].Parameters; len(params) > 0 && !json.Valid(params) {
			return nil, &sluice.Error{Code: sluice.CodeInvalidRequest, Message: "A tool's parameters schema is not valid JSON.", Param: "tools"}
		}
	}

	if f.Attempts > 0 {
		attempt := 1
		for i := range req.Messages {
			if req.Messages[i].Role == sluice.RoleAssistant {
				attempt++
			}
		}
		if attempt > f.Attempts {
			f.Prose, f.SchemaBreak, f.Fences, f.Truncate = false, false, false, false
		}
	}
	last := &req.Messages[len(req.Messages)-1]
	switch {
	case len(req.Tools) > 0 && req.ToolChoice.Mode != sluice.ToolChoiceNone && last.Role == sluice.RoleUser:
		if err := g.toolCalls(a, req, last); err != nil {
			return nil, err
		}
		a.finish = sluice.FinishToolCalls
	case req.ToolChoice.Mode == sluice.ToolChoiceTool && !hasTool(req.Tools, req.ToolChoice.Name):
		return nil, unknownTool()
	case (req.Output.Type == sluice.OutputJSONSchema || req.Output.Type == sluice.OutputJSONObject) && !f.Prose:
		schema := []byte(jsonObjectSchema)
		if req.Output.Type == sluice.OutputJSONSchema && len(bytes.TrimSpace(req.Output.Schema)) > 0 {
			schema = req.Output.Schema
		}
		root, err := decodeSchema(schema)
		if err != nil {
			return nil, &sluice.Error{Code: sluice.CodeInvalidRequest, Message: "The output schema is not valid JSON.", Param: "response_format", Err: err}
		}
		g.root = root
		g.value(root, 0)
		out := string(g.out)
		if f.SchemaBreak {
			out = "[" + out + "]" // valid JSON, wrong shape
		}
		if f.Fences {
			out = "```json\n" + out + "\n```"
		}
		a.pieces = g.chunk(out, -1, nil)
	case last.Role == sluice.RoleTool:
		a.pieces = g.words(tokens, toolResultPrefix(req, last))
	default:
		a.pieces = g.words(tokens, nil)
	}

	if last.Role == sluice.RoleAssistant && len(a.pieces) > 0 && a.pieces[0].call < 0 {
		// A final assistant message is a prefill: the answer continues its
		// text, as Anthropic's models do, so it starts with a space unless
		// the prefill ends in one.
		if t := last.Text(); t != "" && !strings.HasSuffix(t, " ") && !strings.HasPrefix(a.pieces[0].text, " ") {
			a.pieces[0].text = " " + a.pieces[0].text
		}
	}
	if f.Truncate {
		a.pieces = a.pieces[:len(a.pieces)/2]
		a.finish = sluice.FinishLength
	}
	if req.MaxOutputTokens > 0 && req.MaxOutputTokens < len(a.pieces) {
		a.pieces = a.pieces[:req.MaxOutputTokens]
		a.finish = sluice.FinishLength
	}
	return a, nil
}

func hasTool(tools []sluice.Tool, name string) bool {
	for i := range tools {
		if tools[i].Name == name {
			return true
		}
	}
	return false
}

func unknownTool() error {
	return &sluice.Error{Code: sluice.CodeInvalidRequest, Message: "tool_choice names a tool that is not offered.", Param: "tool_choice"}
}

// toolCalls plans the tool calls: the named tool with ToolChoiceTool;
// otherwise the first tool, or the first two when the last user message
// contains the word "parallel", at least two tools are offered and parallel
// calls are not turned off.
func (g *gen) toolCalls(a *answer, req *sluice.Request, last *sluice.Message) error {
	var picked []*sluice.Tool
	if req.ToolChoice.Mode == sluice.ToolChoiceTool {
		for i := range req.Tools {
			if req.Tools[i].Name == req.ToolChoice.Name {
				picked = append(picked, &req.Tools[i])
				break
			}
		}
		if picked == nil {
			return unknownTool()
		}
	} else {
		picked = append(picked, &req.Tools[0])
		parallelOK := req.ParallelToolCalls == nil || *req.ParallelToolCalls
		if parallelOK && len(req.Tools) >= 2 && hasWord(last.Text(), "parallel") {
			picked = append(picked, &req.Tools[1])
		}
	}
	for i, t := range picked {
		var schema any = true
		if len(bytes.TrimSpace(t.Parameters)) > 0 {
			s, err := decodeSchema(t.Parameters)
			if err != nil {
				return &sluice.Error{Code: sluice.CodeInvalidRequest, Message: "A tool's parameters schema is not valid JSON.", Param: "tools", Err: err}
			}
			schema = s
		}
		g.root = schema
		g.out = g.out[:0]
		if o, ok := schema.(*object); !ok || resolvedType(o) == "" {
			// No schema, or one without a type: arguments are an object.
			schema = mergeObjects(&object{keys: []string{"type"}, vals: map[string]any{"type": "object"}}, asObject(schema))
		}
		g.value(schema, 0)
		id := "call_" + g.hex(12)
		a.calls = append(a.calls, callInfo{id: id, name: t.Name})
		a.pieces = g.chunk(string(g.out), i, a.pieces)
	}
	return nil
}

// hasWord reports whether text contains word, ignoring case and punctuation.
func hasWord(text, word string) bool {
	for f := range strings.FieldsFuncSeq(text, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		if strings.EqualFold(f, word) {
			return true
		}
	}
	return false
}

// toolResultPrefix returns the sentence that opens an answer to tool
// results: each tool's name and the start of what it returned.
func toolResultPrefix(req *sluice.Request, last *sluice.Message) []string {
	names := map[string]string{}
	for i := range req.Messages {
		for _, p := range req.Messages[i].Parts {
			if p.Type == sluice.PartToolCall {
				names[p.ToolCallID] = p.ToolName
			}
		}
	}
	var words []string
	for _, p := range last.Parts {
		if p.Type != sluice.PartToolResult {
			continue
		}
		name := names[p.ToolCallID]
		if name == "" {
			name = "the tool"
		}
		result := p.Text
		if result == "" {
			result = sluice.JoinText(p.Content)
		}
		det := "The"
		if len(words) > 0 {
			words[len(words)-1] += ";"
			det = "the"
		}
		verb := "returned"
		if p.IsError {
			verb = "failed with"
		}
		words = append(words, det, name, "tool", verb)
		rw := strings.Fields(result)
		if len(rw) == 0 {
			rw = []string{"nothing"}
		}
		if len(rw) > 12 {
			rw = append(rw[:12:12], "...")
		}
		words = append(words, rw...)
	}
	if len(words) == 0 {
		return nil
	}
	words[len(words)-1] += "."
	return words
}

// gen holds the state of one answer's generation: the random source seeded
// from the request, and the JSON being built.
type gen struct {
	rng   *rand.Rand
	root  any    // the schema $refs resolve against
	out   []byte // JSON text
	steps int    // schema nodes visited, bounded by maxSteps
}

// maxSteps bounds the work spent on one schema: a client's schema can nest
// allOf and $ref so that naive resolution grows exponentially.
const maxSteps = 100000

func (g *gen) hex(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.rng.Uint32())
	}
	return hex.EncodeToString(b)
}

// chunk splits s into fragments of two to six characters, as models stream
// JSON, and appends them to pieces as content of call (-1 for text).
func (g *gen) chunk(s string, call int, pieces []piece) []piece {
	first := true
	for len(s) > 0 {
		n := 2 + g.rng.IntN(5)
		end := 0
		for i := 0; i < n && end < len(s); i++ {
			_, size := utf8.DecodeRuneInString(s[end:])
			end += size
		}
		pieces = append(pieces, piece{text: s[:end], call: call, head: first && call >= 0})
		first = false
		s = s[end:]
	}
	if first && call >= 0 { // empty arguments still open the call
		pieces = append(pieces, piece{call: call, head: true})
	}
	return pieces
}

// A word of a text answer: its letters, whether it starts a sentence, and
// the punctuation after it (0 for none).
type word struct {
	s     string
	upper bool
	end   byte
}

// words returns a text answer of n words, opening with prefix, as pieces of
// one word each (with its leading space after the first). The text ends with
// a full stop.
func (g *gen) words(n int, prefix []string) []piece {
	if n <= 0 {
		return nil
	}
	ws := make([]word, 0, n+16)
	for _, p := range prefix {
		ws = append(ws, word{s: p})
	}
	for len(ws) < n {
		ws = g.sentence(ws)
	}
	ws = ws[:n]
	if last := &ws[n-1]; !strings.HasSuffix(last.s, ".") {
		last.end = '.'
	}

	size := n - 1
	for _, w := range ws {
		size += len(w.s) + 1
	}
	b := make([]byte, 0, size)
	ends := make([]int, n)
	for i, w := range ws {
		if i > 0 {
			b = append(b, ' ')
		}
		start := len(b)
		b = append(b, w.s...)
		if w.upper && len(w.s) > 0 && 'a' <= w.s[0] && w.s[0] <= 'z' {
			b[start] -= 'a' - 'A'
		}
		if w.end != 0 {
			b = append(b, w.end)
		}
		ends[i] = len(b)
	}
	text := string(b)
	pieces := make([]piece, n)
	start := 0
	for i, end := range ends {
		pieces[i] = piece{text: text[start:end], call: -1}
		start = end
	}
	return pieces
}

// sentence appends one sentence of five to fourteen words: subject, verb,
// object, and sometimes a phrase and an adverb.
func (g *gen) sentence(ws []word) []word {
	start := len(ws)
	ws = g.nounPhrase(ws)
	ws = append(ws, word{s: g.pick(verbs)})
	ws = g.nounPhrase(ws)
	if g.rng.IntN(2) == 0 {
		ws = append(ws, word{s: g.pick(preps)})
		ws = g.nounPhrase(ws)
	}
	if g.rng.IntN(3) == 0 {
		ws = append(ws, word{s: g.pick(adverbs)})
	}
	ws[start].upper = true
	ws[len(ws)-1].end = '.'
	return ws
}

func (g *gen) nounPhrase(ws []word) []word {
	det := g.pick(dets)
	var adj string
	if g.rng.IntN(2) == 0 {
		adj = g.pick(adjectives)
	}
	noun := g.pick(nouns)
	if det == "a" {
		next := noun
		if adj != "" {
			next = adj
		}
		if strings.ContainsRune("aeiou", rune(next[0])) {
			det = "an"
		}
	}
	ws = append(ws, word{s: det})
	if adj != "" {
		ws = append(ws, word{s: adj})
	}
	return append(ws, word{s: noun})
}

func (g *gen) pick(list []string) string { return list[g.rng.IntN(len(list))] }

var (
	dets       = []string{"the", "the", "a", "every", "this", "our", "each", "that"}
	adjectives = []string{"quiet", "bright", "careful", "steady", "small", "large", "early", "late", "simple", "clear",
		"gentle", "rapid", "open", "hidden", "useful", "local", "remote", "modern", "ancient", "curious", "patient",
		"loyal", "busy", "calm", "eager", "golden", "silver", "narrow", "wide", "fresh", "warm", "cold"}
	nouns = []string{"river", "signal", "team", "model", "garden", "report", "engine", "city", "window", "story",
		"question", "answer", "journey", "market", "library", "system", "village", "bridge", "forest", "message",
		"pattern", "harbor", "lantern", "notebook", "schedule", "kitchen", "planet", "teacher", "record", "server",
		"request", "island", "painter", "mountain", "letter", "network", "design", "morning", "evening", "project"}
	verbs = []string{"carries", "shapes", "finds", "builds", "follows", "reaches", "explains", "answers", "keeps",
		"watches", "crosses", "improves", "gathers", "measures", "describes", "joins", "opens", "guides", "writes",
		"checks", "supports", "reveals", "balances", "connects"}
	preps   = []string{"with", "across", "near", "under", "beyond", "through", "after", "before", "inside", "along"}
	adverbs = []string{"quickly", "slowly", "again", "today", "together", "carefully", "quietly", "often", "soon"}
)

// jsonObjectSchema shapes the answer to a json_object request.
const jsonObjectSchema = `{"type":"object","properties":{
"answer":{"type":"string","minLength":12},
"confidence":{"type":"number","minimum":0,"maximum":1},
"tags":{"type":"array","items":{"type":"string","maxLength":12},"minItems":1,"maxItems":3}},
"required":["answer","confidence","tags"],"additionalProperties":false}`

// requestHash digests the parts of req that decide the answer: model,
// system, messages, tools, tool choice, output and seed. MaxOutputTokens is
// left out so that a shorter limit cuts the same answer.
func requestHash(req *sluice.Request) [32]byte {
	h := sha256.New()
	w := hashWriter{h: h, b: make([]byte, 0, 1024)}
	w.str("sim/v1")
	w.str(req.Model)
	w.parts(req.System)
	w.num(int64(len(req.Messages)))
	for i := range req.Messages {
		m := &req.Messages[i]
		w.str(string(m.Role))
		w.str(m.Name)
		w.parts(m.Parts)
	}
	w.num(int64(len(req.Tools)))
	for i := range req.Tools {
		t := &req.Tools[i]
		w.str(t.Name)
		w.str(t.Description)
		w.bytes(t.Parameters)
		w.flag(t.Strict)
	}
	w.str(string(req.ToolChoice.Mode))
	w.str(req.ToolChoice.Name)
	w.flag(req.ParallelToolCalls != nil)
	w.flag(req.ParallelToolCalls != nil && *req.ParallelToolCalls)
	w.str(string(req.Output.Type))
	w.str(req.Output.Name)
	w.bytes(req.Output.Schema)
	w.flag(req.Seed != nil)
	if req.Seed != nil {
		w.num(*req.Seed)
	}
	w.flush()
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// hashWriter feeds length-prefixed fields to a hash through one buffer, so
// that strings are not converted to byte slices one by one.
type hashWriter struct {
	h hash.Hash
	b []byte
}

func (w *hashWriter) flush() {
	w.h.Write(w.b)
	w.b = w.b[:0]
}

func (w *hashWriter) num(n int64) {
	w.b = binary.LittleEndian.AppendUint64(w.b, uint64(n))
}

func (w *hashWriter) str(s string) {
	w.num(int64(len(s)))
	w.b = append(w.b, s...)
	if len(w.b) >= 4096 {
		w.flush()
	}
}

func (w *hashWriter) bytes(b []byte) {
	w.num(int64(len(b)))
	w.b = append(w.b, b...)
	if len(w.b) >= 4096 {
		w.flush()
	}
}

func (w *hashWriter) flag(b bool) {
	if b {
		w.num(1)
	} else {
		w.num(0)
	}
}

func (w *hashWriter) parts(ps []sluice.Part) {
	w.num(int64(len(ps)))
	for i := range ps {
		p := &ps[i]
		w.str(string(p.Type))
		w.str(p.Text)
		w.str(p.ImageURL)
		w.bytes(p.ImageData)
		w.str(p.ToolCallID)
		w.str(p.ToolName)
		w.str(p.Arguments)
		w.flag(p.IsError)
		w.parts(p.Content)
	}
}

// imageTokens is what one image counts for in the input estimate.
const imageTokens = 85

// countInput estimates the prompt's tokens: words and punctuation marks of
// the system text, messages, tool definitions and output schema, at least 1.
func countInput(req *sluice.Request) int {
	n := 0
	for _, p := range req.System {
		n += countTokens(p.Text)
	}
	var parts func(ps []sluice.Part)
	parts = func(ps []sluice.Part) {
		for i := range ps {
			p := &ps[i]
			n += countTokens(p.Text) + countTokens(p.ToolName) + countTokens(p.Arguments)
			if p.Type == sluice.PartImage {
				n += imageTokens
			}
			parts(p.Content)
		}
	}
	for i := range req.Messages {
		parts(req.Messages[i].Parts)
	}
	for i := range req.Tools {
		t := &req.Tools[i]
		n += countTokens(t.Name) + countTokens(t.Description) + countTokens(string(t.Parameters))
	}
	n += countTokens(string(req.Output.Schema))
	return max(n, 1)
}

// countTokens counts runs of letters and digits, and other non-space
// characters one each.
func countTokens(s string) int {
	n := 0
	inWord := false
	for _, r := range s {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_':
			if !inWord {
				n++
				inWord = true
			}
		case unicode.IsSpace(r):
			inWord = false
		default:
			n++
			inWord = false
		}
	}
	return n
}

// object is a JSON object that keeps its keys' order, so that generated
// objects list properties in schema order, as models do.
type object struct {
	keys []string
	vals map[string]any
}

func (o *object) get(k string) (any, bool) {
	if o == nil {
		return nil, false
	}
	v, ok := o.vals[k]
	return v, ok
}

func (o *object) set(k string, v any) {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

func asObject(v any) *object {
	o, _ := v.(*object)
	return o
}

// maxSchemaDepth bounds the nesting of a decoded schema.
const maxSchemaDepth = 512

// decodeSchema decodes JSON into values of type *object, []any, string,
// json.Number, bool and nil.
func decodeSchema(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := readJSON(dec, 0)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(data[dec.InputOffset():])) > 0 {
		return nil, errors.New("trailing data after the schema")
	}
	return v, nil
}

func readJSON(dec *json.Decoder, depth int) (any, error) {
	if depth > maxSchemaDepth {
		return nil, errors.New("schema nested too deeply")
	}
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t {
	case json.Delim('{'):
		o := &object{vals: map[string]any{}}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k, _ := kt.(string)
			v, err := readJSON(dec, depth+1)
			if err != nil {
				return nil, err
			}
			o.set(k, v)
		}
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
		return o, nil
	case json.Delim('['):
		arr := []any{}
		for dec.More() {
			v, err := readJSON(dec, depth+1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
		return arr, nil
	case json.Delim('}'), json.Delim(']'):
		return nil, errors.New("unexpected end of JSON value")
	}
	return t, nil
}

// Depths of generation: beyond softDepth only required properties and
// minItems are generated, so recursive schemas end; beyond hardDepth the
// generator writes null.
const (
	softDepth = 6
	hardDepth = 24
)

// maxOutput bounds the JSON text generated for one answer: a schema comes
// from the client, and minItems or minLength could ask for gigabytes. Past it
// the generator writes null.
const maxOutput = 256 << 10

// maxItems bounds the items of one generated array.
const maxItems = 10000

// maxMinLength bounds the minLength honoured.
const maxMinLength = 1 << 16

// value appends to g.out a JSON value satisfying schema s (see the package
// documentation for the keywords understood).
func (g *gen) value(s any, depth int) {
	g.steps++
	if depth > hardDepth || len(g.out) > maxOutput || g.steps > maxSteps {
		g.out = append(g.out, "null"...)
		return
	}
	switch s := s.(type) {
	case bool:
		if s {
			g.str(g.phrase(1, 3), -1, -1)
		} else {
			g.out = append(g.out, "null"...)
		}
		return
	case *object:
		o := g.resolve(s, depth)
		if c, ok := o.get("const"); ok {
			g.out = appendJSON(g.out, c)
			return
		}
		if e, ok := o.get("enum"); ok {
			if list, ok := e.([]any); ok && len(list) > 0 {
				g.out = appendJSON(g.out, list[g.rng.IntN(len(list))])
				return
			}
		}
		switch resolvedType(o) {
		case "object":
			g.object(o, depth)
		case "array":
			g.array(o, depth)
		case "integer":
			g.integer(o)
		case "number":
			g.number(o)
		case "boolean":
			g.out = strconv.AppendBool(g.out, g.rng.IntN(2) == 0)
		case "null":
			g.out = append(g.out, "null"...)
		default:
			g.stringValue(o)
		}
		return
	}
	// Not a schema: write a string.
	g.str(g.phrase(1, 3), -1, -1)
}

// resolve follows $ref and merges allOf, anyOf and oneOf (the first branch
// that is not only null) into one schema object.
func (g *gen) resolve(o *object, depth int) *object {
	for range hardDepth {
		g.steps++
		if depth > hardDepth || g.steps > maxSteps {
			return o
		}
		var next *object
		if ref, ok := o.get("$ref"); ok {
			target := asObject(g.lookupRef(ref))
			next = mergeObjects(target, without(o, "$ref"))
		} else if all, ok := o.get("allOf"); ok {
			merged := without(o, "allOf")
			if list, ok := all.([]any); ok {
				for _, b := range list {
					if bo := asObject(b); bo != nil {
						merged = mergeObjects(merged, g.resolve(bo, depth+1))
					}
				}
			}
			next = merged
		} else if key := firstKey(o, "anyOf", "oneOf"); key != "" {
			branches, _ := o.vals[key].([]any)
			var pick *object
			for _, b := range branches {
				bo := asObject(b)
				if bo == nil {
					continue
				}
				if pick == nil {
					pick = bo
				}
				if t, _ := bo.get("type"); t != "null" {
					pick = bo
					break
				}
			}
			next = mergeObjects(without(o, key), pick)
		}
		if next == nil {
			return o
		}
		o = next
	}
	return o
}

func firstKey(o *object, keys ...string) string {
	for _, k := range keys {
		if _, ok := o.vals[k]; ok {
			return k
		}
	}
	return ""
}

// lookupRef resolves a local JSON pointer ("#", "#/$defs/x",
// "#/definitions/x", any "#/a/b/0"); other references resolve to nil.
func (g *gen) lookupRef(ref any) any {
	s, _ := ref.(string)
	if !strings.HasPrefix(s, "#") {
		return nil
	}
	cur := g.root
	for tok := range strings.SplitSeq(strings.TrimPrefix(s, "#"), "/") {
		if tok == "" {
			continue
		}
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case *object:
			cur = c.vals[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	return cur
}

// mergeObjects returns a new schema with b's keywords over a's; properties
// merge by name and required lists join.
func mergeObjects(a, b *object) *object {
	out := &object{vals: make(map[string]any)}
	for _, src := range []*object{a, b} {
		if src == nil {
			continue
		}
		for _, k := range src.keys {
			v := src.vals[k]
			switch k {
			case "properties":
				if prev, ok := out.vals[k].(*object); ok {
					if vo, ok := v.(*object); ok {
						merged := &object{keys: append([]string(nil), prev.keys...), vals: make(map[string]any, len(prev.vals))}
						for pk, pv := range prev.vals {
							merged.vals[pk] = pv
						}
						for _, pk := range vo.keys {
							merged.set(pk, vo.vals[pk])
						}
						v = merged
					}
				}
			case "required":
				if prev, ok := out.vals[k].([]any); ok {
					if vl, ok := v.([]any); ok {
						v = append(append([]any(nil), prev...), vl...)
					}
				}
			}
			out.set(k, v)
		}
	}
	return out
}

func without(o *object, key string) *object {
	out := &object{vals: make(map[string]any, len(o.vals))}
	for _, k := range o.keys {
		if k != key {
			out.set(k, o.vals[k])
		}
	}
	return out
}

// resolvedType returns the JSON type to generate for o: its type (the first
// that is not null, from a list), or one inferred from its keywords.
func resolvedType(o *object) string {
	switch t := o.vals["type"].(type) {
	case string:
		return t
	case []any:
		first := ""
		for _, e := range t {
			if s, ok := e.(string); ok {
				if first == "" {
					first = s
				}
				if s != "null" {
					return s
				}
			}
		}
		if first != "" {
			return first
		}
	}
	has := func(keys ...string) bool { return firstKey(o, keys...) != "" }
	switch {
	case has("properties", "required", "additionalProperties", "patternProperties", "minProperties", "maxProperties"):
		return "object"
	case has("items", "prefixItems", "minItems", "maxItems", "uniqueItems"):
		return "array"
	case has("minLength", "maxLength", "pattern", "format"):
		return "string"
	case has("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"):
		return "number"
	}
	return ""
}

func (g *gen) object(o *object, depth int) {
	props := asObject(o.vals["properties"])
	required := map[string]bool{}
	var reqOrder []string
	if list, ok := o.vals["required"].([]any); ok {
		for _, r := range list {
			if s, ok := r.(string); ok && !required[s] {
				required[s] = true
				reqOrder = append(reqOrder, s)
			}
		}
	}
	extra := o.vals["additionalProperties"]
	if extra == false {
		extra = nil
	} else if extra == nil || extra == true {
		extra = true
	}

	maxProps := intKeyword(o, "maxProperties", math.MaxInt)
	minProps := intKeyword(o, "minProperties", 0)
	type field struct {
		name   string
		schema any
	}
	var fields []field
	seen := map[string]bool{}
	if props != nil {
		// Every property when room allows and recursion is shallow; the
		// required ones always.
		optionalRoom := maxProps - len(reqOrder)
		for _, k := range props.keys {
			if !required[k] {
				if depth > softDepth || optionalRoom <= 0 {
					continue
				}
				optionalRoom--
			}
			fields = append(fields, field{k, props.vals[k]})
			seen[k] = true
		}
	}
	for _, k := range reqOrder {
		if !seen[k] {
			fields = append(fields, field{k, extra})
			seen[k] = true
		}
	}
	for i := 1; len(fields) < minProps && extra != nil && i < 1000; i++ {
		k := "field_" + strconv.Itoa(i)
		if !seen[k] {
			fields = append(fields, field{k, extra})
			seen[k] = true
		}
	}
	g.out = append(g.out, '{')
	for i, f := range fields {
		if i > 0 {
			g.out = append(g.out, ',')
		}
		g.out = appendString(g.out, f.name)
		g.out = append(g.out, ':')
		g.value(f.schema, depth+1)
	}
	g.out = append(g.out, '}')
}

func (g *gen) array(o *object, depth int) {
	lo := intKeyword(o, "minItems", 0)
	hi := intKeyword(o, "maxItems", math.MaxInt)
	prefix, _ := o.vals["prefixItems"].([]any)
	items, hasItems := o.vals["items"]
	if list, ok := items.([]any); ok { // draft-4 tuple form
		prefix, items = list, o.vals["additionalItems"]
		hasItems = items != nil
	}
	if !hasItems {
		items = true
	}
	if items == false {
		hi = min(hi, len(prefix))
	}
	n := lo
	if depth <= softDepth {
		n = max(lo, min(len(prefix), hi), 1+g.rng.IntN(3))
	}
	n = min(n, hi, maxItems)
	unique := o.vals["uniqueItems"] == true

	g.out = append(g.out, '[')
	var seen map[string]bool
	if unique {
		seen = map[string]bool{}
	}
	count := 0
	for attempt := 0; count < n && attempt < 4*n+8 && len(g.out) < maxOutput; attempt++ {
		var s any = items
		if count < len(prefix) {
			s = prefix[count]
		}
		mark := len(g.out)
		if count > 0 {
			g.out = append(g.out, ',')
		}
		start := len(g.out)
		g.value(s, depth+1)
		if unique {
			v := string(g.out[start:])
			if seen[v] {
				g.out = g.out[:mark]
				continue
			}
			seen[v] = true
		}
		count++
	}
	g.out = append(g.out, ']')
}

// intKeyword returns a non-negative integer keyword of o, or def.
func intKeyword(o *object, key string, def int) int {
	f, ok := numKeyword(o, key)
	if !ok || f < 0 {
		return def
	}
	if f > 1<<30 {
		return 1 << 30
	}
	return int(f)
}

func numKeyword(o *object, key string) (float64, bool) {
	n, ok := o.vals[key].(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

// bounds returns the numeric range of o: lo and hi with whether each end is
// exclusive, reading both the 2020-12 (number) and draft-4 (boolean) forms of
// exclusiveMinimum and exclusiveMaximum.
func bounds(o *object) (lo, hi float64, hasLo, hasHi, exLo, exHi bool) {
	lo, hasLo = numKeyword(o, "minimum")
	hi, hasHi = numKeyword(o, "maximum")
	if v, ok := numKeyword(o, "exclusiveMinimum"); ok && (!hasLo || v >= lo) {
		lo, hasLo, exLo = v, true, true
	} else if o.vals["exclusiveMinimum"] == true && hasLo {
		exLo = true
	}
	if v, ok := numKeyword(o, "exclusiveMaximum"); ok && (!hasHi || v <= hi) {
		hi, hasHi, exHi = v, true, true
	} else if o.vals["exclusiveMaximum"] == true && hasHi {
		exHi = true
	}
	return
}

// maxExact is the largest magnitude generated: integers beyond it lose
// precision as float64.
const maxExact = 1 << 53

func (g *gen) integer(o *object) {
	lo, hi, hasLo, hasHi, exLo, exHi := bounds(o)
	var ilo, ihi float64
	switch {
	case hasLo:
		ilo = math.Ceil(lo)
		if exLo && ilo == lo {
			ilo++
		}
	case hasHi:
		ilo = math.Floor(hi) - 100
	}
	switch {
	case hasHi:
		ihi = math.Floor(hi)
		if exHi && ihi == hi {
			ihi--
		}
	default:
		ihi = ilo + 100
	}
	ilo = math.Max(ilo, -maxExact)
	ihi = math.Min(ihi, maxExact)
	if ihi < ilo {
		ihi = ilo
	}
	v := ilo
	if m, ok := numKeyword(o, "multipleOf"); ok && m > 0 && m == math.Trunc(m) {
		kLo, kHi := math.Ceil(ilo/m), math.Floor(ihi/m)
		if kHi >= kLo {
			v = (kLo + float64(g.rng.Int64N(int64(math.Min(kHi-kLo, maxExact))+1))) * m
		}
	} else {
		v = ilo + float64(g.rng.Int64N(int64(ihi-ilo)+1))
	}
	g.out = strconv.AppendInt(g.out, int64(v), 10)
}

func (g *gen) number(o *object) {
	lo, hi, hasLo, hasHi, exLo, exHi := bounds(o)
	switch {
	case !hasLo && !hasHi:
		lo, hi = 0, 100
	case !hasLo:
		lo = hi - 100
	case !hasHi:
		hi = lo + 100
	}
	if mn, ok := o.vals["multipleOf"].(json.Number); ok {
		if m, _ := mn.Float64(); m > 0 && !math.IsInf(m, 0) {
			kLo, kHi := math.Ceil(lo/m), math.Floor(hi/m)
			if exLo && kLo*m <= lo {
				kLo++
			}
			if exHi && kHi*m >= hi {
				kHi--
			}
			if kHi >= kLo && kHi-kLo < maxExact {
				k := kLo + float64(g.rng.Int64N(int64(kHi-kLo)+1))
				g.out = strconv.AppendFloat(g.out, k*m, 'f', decimals(string(mn)), 64)
				return
			}
		}
	}
	v := math.Round((lo+g.rng.Float64()*(hi-lo))*100) / 100
	if v < lo || v > hi || (exLo && v == lo) || (exHi && v == hi) {
		v = lo + (hi-lo)/2
	}
	if math.IsInf(v, 0) || math.IsNaN(v) {
		v = 0
	}
	g.out = strconv.AppendFloat(g.out, v, 'f', -1, 64)
}

// decimals returns the number of digits after the point in a JSON number's
// text, for printing multiples of it exactly.
func decimals(num string) int {
	mant, exp, _ := strings.Cut(strings.ToLower(num), "e")
	d := 0
	if _, frac, ok := strings.Cut(mant, "."); ok {
		d = len(frac)
	}
	if e, err := strconv.Atoi(exp); err == nil {
		d -= e
	}
	return max(0, min(d, 20))
}

func (g *gen) stringValue(o *object) {
	minLen := min(intKeyword(o, "minLength", -1), maxMinLength)
	maxLen := intKeyword(o, "maxLength", -1)
	format, _ := o.vals["format"].(string)
	pattern, _ := o.vals["pattern"].(string)

	if pattern != "" {
		if s, ok := g.patternString(pattern, minLen, maxLen); ok {
			g.out = appendString(g.out, s)
			return
		}
		// No candidate matched: fall through to an ordinary string.
	}
	if s, ok := g.formatString(format); ok {
		g.out = appendString(g.out, s)
		return
	}
	g.str(g.phrase(1, 4), minLen, maxLen)
}

// str appends s as a JSON string, padded with words or cut to fit the length
// bounds (in characters; -1 for none).
func (g *gen) str(s string, minLen, maxLen int) {
	if n := utf8.RuneCountInString(s); minLen > n {
		var b strings.Builder
		b.WriteString(s)
		for n < minLen {
			w := g.pick(nouns) // ASCII: bytes are characters
			b.WriteByte(' ')
			b.WriteString(w)
			n += 1 + len(w)
		}
		s = b.String()
	}
	if maxLen >= 0 && utf8.RuneCountInString(s) > maxLen {
		s = strings.TrimRight(string([]rune(s)[:maxLen]), " ")
		for utf8.RuneCountInString(s) < minLen { // a trailing space was trimmed
			s += "s"
		}
	}
	g.out = appendString(g.out, s)
}

// phrase returns lo to hi words.
func (g *gen) phrase(lo, hi int) string {
	n := lo + g.rng.IntN(hi-lo+1)
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		if i == n-1 {
			b.WriteString(g.pick(nouns))
		} else {
			b.WriteString(g.pick(adjectives))
		}
	}
	return b.String()
}

func (g *gen) formatString(format string) (string, bool) {
	switch format {
	case "date-time":
		return g.time().Format(time.RFC3339), true
	case "date":
		return g.time().Format(time.DateOnly), true
	case "time":
		return g.time().Format("15:04:05Z"), true
	case "email", "idn-email":
		return g.pick(adjectives) + "." + g.pick(nouns) + "@example.com", true
	case "uri", "url", "iri", "uri-reference", "iri-reference":
		return "https://example.com/" + g.pick(nouns) + "/" + strconv.Itoa(g.rng.IntN(1000)), true
	case "hostname", "idn-hostname":
		return g.pick(nouns) + ".example.com", true
	case "uuid":
		b := make([]byte, 16)
		for i := range b {
			b[i] = byte(g.rng.Uint32())
		}
		b[6] = b[6]&0x0f | 0x40
		b[8] = b[8]&0x3f | 0x80
		h := hex.EncodeToString(b)
		return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], true
	case "ipv4":
		return "192.0.2." + strconv.Itoa(1+g.rng.IntN(254)), true
	case "ipv6":
		return "2001:db8::" + strconv.FormatInt(int64(1+g.rng.IntN(0xfffe)), 16), true
	case "duration":
		return "PT" + strconv.Itoa(1+g.rng.IntN(59)) + "M", true
	}
	return "", false
}

func (g *gen) time() time.Time {
	start := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	return start.Add(time.Duration(g.rng.Int64N(int64(6*365*24*time.Hour))) / time.Second * time.Second)
}

// patternString returns a string matching pattern (and the length bounds):
// first strings generated from the pattern's syntax tree, then a few plain
// candidates. It reports false when the pattern does not compile as Go
// regular expression syntax or nothing matched.
func (g *gen) patternString(pattern string, minLen, maxLen int) (string, bool) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return "", false
	}
	fits := func(s string) bool {
		n := utf8.RuneCountInString(s)
		return (minLen < 0 || n >= minLen) && (maxLen < 0 || n <= maxLen) && re.MatchString(s)
	}
	if tree, err := syntax.Parse(pattern, syntax.Perl); err == nil {
		for range 8 {
			var b strings.Builder
			g.fromRegexp(&b, tree, 0)
			if s := b.String(); fits(s) {
				return s, true
			}
		}
	}
	for _, s := range []string{g.pick(nouns), g.phrase(2, 3), "abc", "ABC", "12345", "a1", "example", "x", "0"} {
		if fits(s) {
			return s, true
		}
	}
	return "", false
}

// fromRegexp writes a string that the regular expression re matches.
func (g *gen) fromRegexp(b *strings.Builder, re *syntax.Regexp, depth int) {
	if depth > 100 || b.Len() > 4096 {
		return
	}
	repeat := func(lo, hi int) {
		if hi < 0 || hi > lo+3 {
			hi = lo + 3
		}
		n := lo + g.rng.IntN(hi-lo+1)
		for range n {
			g.fromRegexp(b, re.Sub[0], depth+1)
		}
	}
	switch re.Op {
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			b.WriteRune(r)
		}
	case syntax.OpCharClass:
		b.WriteRune(g.classRune(re.Rune))
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		b.WriteByte(byte('a' + g.rng.IntN(26)))
	case syntax.OpCapture:
		g.fromRegexp(b, re.Sub[0], depth+1)
	case syntax.OpStar:
		repeat(0, 2)
	case syntax.OpPlus:
		repeat(1, 3)
	case syntax.OpQuest:
		repeat(0, 1)
	case syntax.OpRepeat:
		repeat(re.Min, re.Max)
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			g.fromRegexp(b, sub, depth+1)
		}
	case syntax.OpAlternate:
		g.fromRegexp(b, re.Sub[g.rng.IntN(len(re.Sub))], depth+1)
	}
	// Anchors, word boundaries and empty matches write nothing.
}

// classRune picks a character of a class given as rune ranges, preferring
// printable ASCII.
func (g *gen) classRune(ranges []rune) rune {
	var ascii []rune
	for i := 0; i+1 < len(ranges); i += 2 {
		for r := max(ranges[i], 0x21); r <= min(ranges[i+1], 0x7e); r++ {
			ascii = append(ascii, r)
		}
	}
	if len(ascii) > 0 {
		return ascii[g.rng.IntN(len(ascii))]
	}
	for i := 0; i+1 < len(ranges); i += 2 {
		for r := ranges[i]; r <= ranges[i+1] && r <= unicode.MaxRune; r++ {
			if utf8.ValidRune(r) && unicode.IsPrint(r) {
				return r
			}
			if r-ranges[i] > 4096 {
				break
			}
		}
	}
	if len(ranges) > 0 && utf8.ValidRune(ranges[0]) {
		return ranges[0]
	}
	return 'a'
}

// appendJSON appends a decoded JSON value.
func appendJSON(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, v)
	case json.Number:
		return append(b, v...)
	case string:
		return appendString(b, v)
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSON(b, e)
		}
		return append(b, ']')
	case *object:
		b = append(b, '{')
		for i, k := range v.keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendJSON(b, v.vals[k])
		}
		return append(b, '}')
	}
	return append(b, "null"...) // decodeSchema makes no other types
}

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028':
			b = append(b, `\u2028`...)
		case r == '\u2029':
			b = append(b, `\u2029`...)
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
