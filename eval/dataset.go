package eval

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"

	"github.com/sluice-gw/sluice/internal/jsonw"
)

// CheckKinds lists the kinds of check in the order an attempt's Checks hold
// them and reports show them.
var CheckKinds = []string{"call", "schema", "json", "contains", "not_contains", "latency", "tokens"}

// A Problem is something wrong with one line of a dataset, or with one case
// for the kind of run asked for.
type Problem struct {
	Line int    // 1-based; 0 when the problem is not on one line
	Msg  string // what is wrong, for the dataset's author
}

// Error returns "line N: msg", or just msg when Line is 0.
func (p Problem) Error() string {
	if p.Line <= 0 {
		return p.Msg
	}
	return "line " + strconv.Itoa(p.Line) + ": " + p.Msg
}

// ParseDataset reads a JSONL dataset: one Case a line, as a JSON object.
// Blank lines and lines whose first non-blank character is '#' are
// skipped; line endings may be "\n" or "\r\n", the last line needs none,
// and a UTF-8 byte order mark at the start is ignored. Lines may be long
// (several megabytes).
//
// A line that is not one JSON object, or whose object has a field Case does
// not know (at any depth: in expect and in json assertions too), a value of
// the wrong type, no id, an id an earlier line has, both or neither of
// messages and input, an input that is neither a string nor an object, a
// message with an unknown role or empty content, an empty contains or
// not_contains entry, a negative max_latency_ms or max_tokens, or a json
// assertion with a bad path, a bad regular expression, not exactly one
// assertion besides its path, min > max, min_len > max_len or a negative
// length, is a Problem with its line number, and the line is left out.
// A line may have several Problems.
//
// ParseDataset returns the good cases in order, each with its Line set, and
// every Problem in line order. err is only for an error reading r; then the
// cases and problems are those of the lines read before it.
func ParseDataset(r io.Reader) (cases []Case, problems []Problem, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	seen := make(map[string]int) // id -> line of its first use
	for n := 1; ; n++ {
		line, rerr := br.ReadBytes('\n')
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return cases, problems, fmt.Errorf("read dataset: %w", rerr)
		}
		if len(line) == 0 && rerr != nil {
			return cases, problems, nil
		}
		if n == 1 {
			line = bytes.TrimPrefix(line, []byte("\uFEFF"))
		}
		line = bytes.TrimSpace(line) // also drops "\r\n" and "\n"
		if len(line) > 0 && line[0] != '#' {
			c, ps := parseCase(line, n, seen)
			if len(ps) == 0 {
				cases = append(cases, c)
			}
			problems = append(problems, ps...)
		}
		if rerr != nil { // io.EOF after a last line without "\n"
			return cases, problems, nil
		}
	}
}

// parseCase decodes and validates one non-blank, non-comment line n. It
// records the case's id in seen, even when the line has other problems, so
// that a later line reusing the id is reported too.
func parseCase(line []byte, n int, seen map[string]int) (Case, []Problem) {
	var c Case
	if line[0] != '{' {
		if json.Valid(line) {
			return c, []Problem{{n, "not a JSON object"}}
		}
		return c, []Problem{{n, "not valid JSON"}}
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, []Problem{{n, decodeMsg(err)}}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return c, []Problem{{n, "trailing data after the JSON object"}}
	}
	c.Line = n

	var ps []Problem
	add := func(format string, args ...any) {
		ps = append(ps, Problem{n, fmt.Sprintf(format, args...)})
	}
	switch first, dup := seen[c.ID]; {
	case strings.TrimSpace(c.ID) == "":
		add("missing id")
	case dup:
		add("duplicate id %q (first on line %d)", c.ID, first)
	default:
		seen[c.ID] = n
	}

	hasInput := len(c.Input) > 0 && string(c.Input) != "null"
	switch {
	case len(c.Messages) > 0 && hasInput:
		add("has both messages and input")
	case len(c.Messages) == 0 && !hasInput:
		add("needs messages (for a route) or input (for a contract)")
	case hasInput && c.Input[0] != '"' && c.Input[0] != '{':
		add("input must be a string or an object")
	}
	for i, m := range c.Messages {
		switch m.Role {
		case "system", "user", "assistant":
		default:
			add("messages[%d]: unknown role %q (want system, user or assistant)", i, m.Role)
		}
		if strings.TrimSpace(m.Content) == "" {
			add("messages[%d]: empty content", i)
		}
	}

	e := &c.Expect
	for i, s := range e.Contains {
		if s == "" {
			add("expect.contains[%d]: empty string", i)
		}
	}
	for i, s := range e.NotContains {
		if s == "" {
			add("expect.not_contains[%d]: empty string", i)
		}
	}
	if e.MaxLatencyMS < 0 {
		add("expect.max_latency_ms: negative")
	}
	if e.MaxTokens < 0 {
		add("expect.max_tokens: negative")
	}
	for i := range e.JSON {
		for _, msg := range validateAssertion(&e.JSON[i]) {
			add("expect.json[%d]: %s", i, msg)
		}
	}
	return c, ps
}

// validateAssertion returns what is wrong with a, if anything.
func validateAssertion(a *PathAssertion) []string {
	var msgs []string
	if _, err := parsePath(a.Path); err != nil {
		msgs = append(msgs, "path: "+err.Error())
	}
	if a.Matches != "" {
		if _, err := regexp.Compile(a.Matches); err != nil {
			msgs = append(msgs, "matches: bad regexp: "+regexpMsg(err))
		}
	}
	if a.OneOf != nil && len(a.OneOf) == 0 {
		msgs = append(msgs, "one_of: empty")
	}
	if a.Min != nil && a.Max != nil && *a.Min > *a.Max {
		msgs = append(msgs, "min "+formatFloat(*a.Min)+" > max "+formatFloat(*a.Max))
	}
	if a.MinLen != nil && *a.MinLen < 0 {
		msgs = append(msgs, "min_len: negative")
	}
	if a.MaxLen != nil && *a.MaxLen < 0 {
		msgs = append(msgs, "max_len: negative")
	}
	if a.MinLen != nil && a.MaxLen != nil && *a.MinLen > *a.MaxLen {
		msgs = append(msgs, fmt.Sprintf("min_len %d > max_len %d", *a.MinLen, *a.MaxLen))
	}
	switch k := assertionKinds(a); len(k) {
	case 0:
		msgs = append(msgs, "no assertion besides path (want one of equals, one_of, matches, min/max, min_len/max_len, exists)")
	case 1:
	default:
		msgs = append(msgs, "more than one assertion ("+strings.Join(k, ", ")+"); use one json entry for each")
	}
	return msgs
}

// assertionKinds names the assertions set in a; min and max count as one,
// and so do min_len and max_len.
func assertionKinds(a *PathAssertion) []string {
	var k []string
	if len(a.Equals) > 0 {
		k = append(k, "equals")
	}
	if a.OneOf != nil {
		k = append(k, "one_of")
	}
	if a.Matches != "" {
		k = append(k, "matches")
	}
	if a.Min != nil || a.Max != nil {
		k = append(k, "min/max")
	}
	if a.MinLen != nil || a.MaxLen != nil {
		k = append(k, "min_len/max_len")
	}
	if a.Exists != nil {
		k = append(k, "exists")
	}
	return k
}

// decodeMsg turns an encoding/json error into a Problem message.
func decodeMsg(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("not valid JSON: %s (byte %d)", syn.Error(), syn.Offset)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "value"
		}
		return fmt.Sprintf("%s: got %s, want %s", field, typ.Value, jsonw.KindName(typ.Type))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "not valid JSON: unexpected end of line"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// regexpMsg shortens a regexp compile error: its pattern is already known.
func regexpMsg(err error) string {
	var re *syntax.Error
	if errors.As(err, &re) {
		return string(re.Code) + ": `" + re.Expr + "`"
	}
	return err.Error()
}

// CheckFits returns a Problem for each case that does not fit a run of kind
// "route" (which needs Messages) or "contract" (which needs Input). For any
// other kind it returns one Problem with Line 0.
func CheckFits(cases []Case, kind string) []Problem {
	var ps []Problem
	switch kind {
	case "route":
		for _, c := range cases {
			if len(c.Messages) == 0 {
				ps = append(ps, Problem{c.Line, fmt.Sprintf("case %q has no messages; a route run needs messages", c.ID)})
			}
		}
	case "contract":
		for _, c := range cases {
			if len(c.Input) == 0 || string(c.Input) == "null" {
				ps = append(ps, Problem{c.Line, fmt.Sprintf("case %q has no input; a contract run needs input", c.ID)})
			}
		}
	default:
		ps = append(ps, Problem{0, fmt.Sprintf("unknown run kind %q (want route or contract)", kind)})
	}
	return ps
}
