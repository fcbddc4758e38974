package eval

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Check checks attempt a against c's expectations and sets a.Checks and
// a.Pass. It reads c and writes only a, so it is safe to call from many
// goroutines at once on the same Case, each with its own Attempt.
//
// The first check is always of kind "call": it passes when a.Code is "".
// When the call failed, Checks holds just that check, with the code as its
// Detail, and Pass is false. Otherwise one check follows per expectation,
// in CheckKinds order:
//
//   - "schema", when c.Expect.Valid is set or a.Schema: it passes when
//     a.Valid if the target had a schema, else when the output is JSON;
//   - "json", one per assertion, named by its path;
//   - "contains" and "not_contains", one per substring, named by it, on the
//     output as it is;
//   - "latency" (a.Latency at most MaxLatencyMS) and "tokens"
//     (a.OutputTokens at most MaxTokens), when those are set.
//
// The output is a contract's JSON or a route's text. The schema check
// without a schema and the json assertions parse it as one JSON value;
// when the whole output is one Markdown code block ("```json" ... "```",
// any info string), the block's content is parsed instead, since models
// often fence the JSON they are asked for. Numbers compare by value (1 and
// 1.0 are equal, and big integers exactly), objects regardless of key
// order, arrays in order. A string's length counts Unicode code points.
//
// Pass reports whether every check passed. A Detail says in a few words
// why a check failed ("got 3, want 4", "no value at $.a.b", "341ms >
// 200ms"); it quotes at most a short piece of the output.
func (c *Case) Check(a *Attempt) {
	call := Check{Kind: "call", Pass: a.Code == ""}
	if !call.Pass {
		call.Detail = a.Code
		a.Checks = []Check{call}
		a.Pass = false
		return
	}
	e := &c.Expect
	checks := make([]Check, 1, 4+len(e.JSON)+len(e.Contains)+len(e.NotContains))
	checks[0] = call

	var (
		parsed bool
		doc    any
		docErr error
	)
	output := func() (any, error) {
		if !parsed {
			doc, docErr = parseOutput(a.Output)
			parsed = true
		}
		return doc, docErr
	}

	if e.Valid || a.Schema {
		ch := Check{Kind: "schema"}
		switch {
		case a.Schema:
			ch.Pass = a.Valid
			if !ch.Pass {
				ch.Detail = "does not meet the schema"
			}
		default:
			_, err := output()
			ch.Pass = err == nil
			if !ch.Pass {
				ch.Detail = "not JSON"
			}
		}
		checks = append(checks, ch)
	}
	for i := range e.JSON {
		pa := &e.JSON[i]
		ch := Check{Kind: "json", Name: pa.Path}
		if v, err := output(); err != nil {
			ch.Detail = "not JSON"
		} else {
			ch.Detail = checkPath(pa, v)
		}
		ch.Pass = ch.Detail == ""
		checks = append(checks, ch)
	}
	for _, s := range e.Contains {
		ch := Check{Kind: "contains", Name: s, Pass: strings.Contains(a.Output, s)}
		if !ch.Pass {
			ch.Detail = "not found"
		}
		checks = append(checks, ch)
	}
	for _, s := range e.NotContains {
		ch := Check{Kind: "not_contains", Name: s, Pass: !strings.Contains(a.Output, s)}
		if !ch.Pass {
			ch.Detail = "found"
		}
		checks = append(checks, ch)
	}
	if e.MaxLatencyMS > 0 {
		ms := float64(a.Latency) / float64(time.Millisecond)
		ch := Check{Kind: "latency", Pass: ms <= e.MaxLatencyMS}
		if !ch.Pass {
			// Round up to 0.1ms so that the shown latency exceeds the bound too.
			ch.Detail = formatFloat(math.Ceil(ms*10)/10) + "ms > " + formatFloat(e.MaxLatencyMS) + "ms"
		}
		checks = append(checks, ch)
	}
	if e.MaxTokens > 0 {
		ch := Check{Kind: "tokens", Pass: a.OutputTokens <= e.MaxTokens}
		if !ch.Pass {
			ch.Detail = fmt.Sprintf("%d tokens > %d", a.OutputTokens, e.MaxTokens)
		}
		checks = append(checks, ch)
	}

	a.Checks = checks
	a.Pass = true
	for _, ch := range checks {
		a.Pass = a.Pass && ch.Pass
	}
}

// checkPath checks the assertion pa on the parsed output v and returns why
// it failed, or "" when it passed. Every assertion set must hold; a
// PathAssertion with none set only requires a value at its path.
func checkPath(pa *PathAssertion, v any) string {
	steps, err := parsePath(pa.Path)
	if err != nil {
		return "bad path"
	}
	got, found := lookup(v, steps)
	if pa.Exists != nil && !*pa.Exists {
		if found {
			return "unexpected value at " + pa.Path
		}
		return ""
	}
	if !found {
		return "no value at " + pa.Path
	}
	if len(pa.Equals) > 0 {
		want, err := parseJSON(pa.Equals)
		if err != nil {
			return "bad equals value"
		}
		if !jsonEqual(got, want) {
			return "got " + render(got) + ", want " + render(want)
		}
	}
	if pa.OneOf != nil {
		wants := make([]any, 0, len(pa.OneOf))
		match := false
		for _, raw := range pa.OneOf {
			want, err := parseJSON(raw)
			if err != nil {
				return "bad one_of value"
			}
			wants = append(wants, want)
			match = match || jsonEqual(got, want)
		}
		if !match {
			return "got " + render(got) + ", want one of " + render(wants)
		}
	}
	if pa.Matches != "" {
		re, err := compileRegexp(pa.Matches)
		if err != nil {
			return "bad regexp"
		}
		s, ok := got.(string)
		if !ok {
			return "got " + kindOf(got) + ", want a string"
		}
		if !re.MatchString(s) {
			return "does not match " + truncate(pa.Matches, maxShown)
		}
	}
	if pa.Min != nil || pa.Max != nil {
		n, ok := got.(json.Number)
		if !ok {
			return "got " + kindOf(got) + ", want a number"
		}
		// A number beyond float64's range parses as ±Inf (or 0), which
		// still orders correctly against float64 bounds.
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return "got " + kindOf(got) + ", want a number"
		}
		if pa.Min != nil && f < *pa.Min {
			return "got " + truncate(string(n), maxShown) + ", want >= " + formatFloat(*pa.Min)
		}
		if pa.Max != nil && f > *pa.Max {
			return "got " + truncate(string(n), maxShown) + ", want <= " + formatFloat(*pa.Max)
		}
	}
	if pa.MinLen != nil || pa.MaxLen != nil {
		var n int
		switch g := got.(type) {
		case []any:
			n = len(g)
		case string:
			n = utf8.RuneCountInString(g)
		default:
			return "got " + kindOf(got) + ", want an array or a string"
		}
		if pa.MinLen != nil && n < *pa.MinLen {
			return fmt.Sprintf("length %d, want >= %d", n, *pa.MinLen)
		}
		if pa.MaxLen != nil && n > *pa.MaxLen {
			return fmt.Sprintf("length %d, want <= %d", n, *pa.MaxLen)
		}
	}
	return ""
}

// A step is one step of a path: an object member, or an array element
// (negative indexes count from the end: -1 is the last).
type step struct {
	key     string
	index   int
	isIndex bool
}

// parsePath parses the JSONPath subset of PathAssertion.Path: "$", then
// any number of ".name" (name of [A-Za-z0-9_-]), "['name']" or "[\"name\"]"
// (a backslash escapes a quote or a backslash) and "[N]" steps.
func parsePath(p string) ([]step, error) {
	if p == "" {
		return nil, errors.New("empty")
	}
	if p[0] != '$' {
		return nil, errors.New("must start with $")
	}
	var steps []step
	for i := 1; i < len(p); {
		switch p[i] {
		case '.':
			j := i + 1
			for j < len(p) && isNameByte(p[j]) {
				j++
			}
			if j == i+1 {
				return nil, fmt.Errorf("no name after . at offset %d", i)
			}
			steps = append(steps, step{key: p[i+1 : j]})
			i = j
		case '[':
			if i+1 < len(p) && (p[i+1] == '\'' || p[i+1] == '"') {
				key, next, err := parseQuoted(p, i+1)
				if err != nil {
					return nil, err
				}
				steps = append(steps, step{key: key})
				i = next
				continue
			}
			j := i + 1
			if j < len(p) && p[j] == '-' {
				j++
			}
			digits := j
			for j < len(p) && p[j] >= '0' && p[j] <= '9' {
				j++
			}
			if j == digits || j >= len(p) || p[j] != ']' {
				return nil, fmt.Errorf("want a quoted name or an index in [ ] at offset %d", i)
			}
			n, err := strconv.Atoi(p[i+1 : j])
			if err != nil {
				return nil, fmt.Errorf("index out of range at offset %d", i)
			}
			steps = append(steps, step{index: n, isIndex: true})
			i = j + 1
		default:
			return nil, fmt.Errorf("unexpected %q at offset %d", p[i], i)
		}
	}
	return steps, nil
}

// parseQuoted parses the quoted name starting at p[q] and its closing ']',
// returning the name and the offset after the ']'.
func parseQuoted(p string, q int) (key string, next int, err error) {
	quote := p[q]
	var b strings.Builder
	for j := q + 1; j < len(p); j++ {
		switch ch := p[j]; ch {
		case '\\':
			if j+1 < len(p) && (p[j+1] == '\'' || p[j+1] == '"' || p[j+1] == '\\') {
				b.WriteByte(p[j+1])
				j++
				continue
			}
			return "", 0, fmt.Errorf("bad escape at offset %d", j)
		case quote:
			if j+1 >= len(p) || p[j+1] != ']' {
				return "", 0, fmt.Errorf("want ] after the quoted name at offset %d", j+1)
			}
			return b.String(), j + 2, nil
		default:
			b.WriteByte(ch)
		}
	}
	return "", 0, fmt.Errorf("unterminated quoted name at offset %d", q)
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// lookup follows steps from v and reports whether there is a value there.
func lookup(v any, steps []step) (any, bool) {
	for _, s := range steps {
		if s.isIndex {
			arr, ok := v.([]any)
			if !ok {
				return nil, false
			}
			i := s.index
			if i < 0 {
				i += len(arr)
			}
			if i < 0 || i >= len(arr) {
				return nil, false
			}
			v = arr[i]
			continue
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = obj[s.key]; !ok {
			return nil, false
		}
	}
	return v, true
}

// parseOutput parses an attempt's output as one JSON value, after
// stripping a Markdown code fence around the whole of it.
func parseOutput(s string) (any, error) {
	return parseJSON([]byte(stripFence(s)))
}

// parseJSON parses b as exactly one JSON value, numbers as json.Number.
func parseJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the JSON value")
	}
	return v, nil
}

// stripFence returns the content of s's one Markdown code block when s,
// less surrounding white space, is a block fenced with backticks: an
// opening line of three or more backticks and an optional info string
// ("json"), and a closing line of at least as many backticks. Otherwise it
// returns s. JSON never starts with a backtick, so this changes no JSON.
func stripFence(s string) string {
	t := strings.TrimSpace(s)
	n := 0
	for n < len(t) && t[n] == '`' {
		n++
	}
	if n < 3 {
		return s
	}
	nl := strings.IndexByte(t, '\n')
	if nl < 0 || strings.IndexByte(t[n:nl], '`') >= 0 {
		return s
	}
	body := t[nl+1:]
	last := strings.LastIndexByte(body, '\n')
	closing := strings.TrimSpace(body[last+1:])
	if len(closing) < n || strings.Trim(closing, "`") != "" {
		return s
	}
	if last < 0 {
		return ""
	}
	return body[:last]
}

// jsonEqual reports whether JSON values a and b, as parseJSON returns them,
// are equal: numbers by value, objects regardless of key order, arrays in
// order.
func jsonEqual(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case json.Number:
		y, ok := b.(json.Number)
		return ok && numberEqual(x, y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !jsonEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !jsonEqual(xv, yv) {
				return false
			}
		}
		return true
	}
	return false
}

// numberEqual reports whether two JSON number literals have the same
// value, exactly, whatever their size or exponent.
func numberEqual(x, y json.Number) bool {
	if x == y {
		return true
	}
	xneg, xdigits, xexp := normalizeNumber(string(x))
	yneg, ydigits, yexp := normalizeNumber(string(y))
	return xneg == yneg && xdigits == ydigits && xexp.Cmp(yexp) == 0
}

// normalizeNumber writes a JSON number literal as ±digits × 10^exp with
// no leading or trailing zero in digits; zero is (false, "", 0). Two
// literals are equal in value exactly when their normal forms are.
func normalizeNumber(s string) (neg bool, digits string, exp *big.Int) {
	exp = new(big.Int)
	neg = strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	mant := s
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant = s[:i]
		if _, ok := exp.SetString(s[i+1:], 10); !ok {
			exp.SetInt64(0)
		}
	}
	whole, frac := mant, ""
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		whole, frac = mant[:i], mant[i+1:]
	}
	digits = strings.TrimLeft(whole+frac, "0")
	trimmed := strings.TrimRight(digits, "0")
	exp.Add(exp, big.NewInt(int64(len(digits)-len(trimmed)-len(frac))))
	if trimmed == "" {
		return false, "", new(big.Int)
	}
	return neg, trimmed, exp
}

// maxShown bounds how much of a value a Detail quotes, in runes.
const maxShown = 40

// render writes v as compact JSON for a Detail, cut to maxShown runes.
func render(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return kindOf(v)
	}
	return truncate(strings.TrimSuffix(b.String(), "\n"), maxShown)
}

// truncate cuts s to n runes, marking the cut with "…".
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for range n {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i] + "…"
}

// kindOf names the JSON type of v.
func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number, float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "value"
}

// formatFloat writes f in the shortest form that reads back as f, with an
// exponent only for very large or small magnitudes.
func formatFloat(f float64) string {
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// regexps memoizes the compiled patterns of json assertions, keyed by
// pattern: Check runs for every attempt, from many goroutines, and a Case
// has no field to keep them in. A *regexp.Regexp is safe for concurrent
// use. The cache keeps at most maxCachedRegexps patterns; past that,
// patterns are compiled on each use.
var regexps struct {
	m sync.Map // string -> *regexp.Regexp
	n atomic.Int64
}

const maxCachedRegexps = 4096

func compileRegexp(pattern string) (*regexp.Regexp, error) {
	if re, ok := regexps.m.Load(pattern); ok {
		return re.(*regexp.Regexp), nil
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	if regexps.n.Load() < maxCachedRegexps {
		if _, loaded := regexps.m.LoadOrStore(pattern, re); !loaded {
			regexps.n.Add(1)
		}
	}
	return re, nil
}
