package eval_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sluice-gw/sluice/eval"
)

// mustCase parses one dataset line with the given expect object, and
// fails the test if it has a problem: the cases checked here are the ones
// a dataset can hold.
func mustCase(t testing.TB, expect string) *eval.Case {
	t.Helper()
	cases, problems := parse(t, `{"id":"c","input":"x","expect":`+expect+`}`)
	if len(problems) != 0 || len(cases) != 1 {
		t.Fatalf("expect %s: problems %v", expect, problems)
	}
	return &cases[0]
}

var callOK = eval.Check{Kind: "call", Pass: true}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name   string
		expect string
		a      eval.Attempt
		want   []eval.Check // after the call check
	}{
		{
			name:   "no expectations",
			expect: `{}`,
			a:      eval.Attempt{Output: "anything"},
		},

		// schema
		{
			name:   "schema met",
			expect: `{}`,
			a:      eval.Attempt{Output: `{}`, Schema: true, Valid: true},
			want:   []eval.Check{{Kind: "schema", Pass: true}},
		},
		{
			name:   "schema not met",
			expect: `{"valid":true}`,
			a:      eval.Attempt{Output: `{}`, Schema: true, Valid: false},
			want:   []eval.Check{{Kind: "schema", Detail: "does not meet the schema"}},
		},
		{
			name:   "valid without a schema: JSON",
			expect: `{"valid":true}`,
			a:      eval.Attempt{Output: ` [1, "two", null] `},
			want:   []eval.Check{{Kind: "schema", Pass: true}},
		},
		{
			name:   "valid without a schema: fenced JSON",
			expect: `{"valid":true}`,
			a:      eval.Attempt{Output: "```json\n{\"a\": 1}\n```"},
			want:   []eval.Check{{Kind: "schema", Pass: true}},
		},
		{
			name:   "valid without a schema: not JSON",
			expect: `{"valid":true}`,
			a:      eval.Attempt{Output: `Sure! {"a":1}`},
			want:   []eval.Check{{Kind: "schema", Detail: "not JSON"}},
		},
		{
			name:   "valid without a schema: two values",
			expect: `{"valid":true}`,
			a:      eval.Attempt{Output: `{"a":1} {"a":2}`},
			want:   []eval.Check{{Kind: "schema", Detail: "not JSON"}},
		},
		{
			name:   "valid without a schema: empty",
			expect: `{"valid":true}`,
			a:      eval.Attempt{Output: ``},
			want:   []eval.Check{{Kind: "schema", Detail: "not JSON"}},
		},

		// json: equals
		{
			name:   "equals number",
			expect: `{"json":[{"path":"$.n","equals":4}]}`,
			a:      eval.Attempt{Output: `{"n":4}`},
			want:   []eval.Check{{Kind: "json", Name: "$.n", Pass: true}},
		},
		{
			name:   "equals number fails",
			expect: `{"json":[{"path":"$.n","equals":4}]}`,
			a:      eval.Attempt{Output: `{"n":3}`},
			want:   []eval.Check{{Kind: "json", Name: "$.n", Detail: "got 3, want 4"}},
		},
		{
			name:   "equals string fails",
			expect: `{"json":[{"path":"$.s","equals":"Ann"}]}`,
			a:      eval.Attempt{Output: `{"s":"Bob <b@x>"}`},
			want:   []eval.Check{{Kind: "json", Name: "$.s", Detail: `got "Bob <b@x>", want "Ann"`}},
		},
		{
			name:   "equals type mismatch",
			expect: `{"json":[{"path":"$.n","equals":"4"}]}`,
			a:      eval.Attempt{Output: `{"n":4}`},
			want:   []eval.Check{{Kind: "json", Name: "$.n", Detail: `got 4, want "4"`}},
		},
		{
			name:   "equals object, keys in another order",
			expect: `{"json":[{"path":"$","equals":{"b":[1,2],"a":{"y":null,"x":true}}}]}`,
			a:      eval.Attempt{Output: `{"a":{"x":true,"y":null},"b":[1.0,2e0]}`},
			want:   []eval.Check{{Kind: "json", Name: "$", Pass: true}},
		},
		{
			name:   "equals object with an extra key fails",
			expect: `{"json":[{"path":"$","equals":{"a":1}}]}`,
			a:      eval.Attempt{Output: `{"a":1,"b":2}`},
			want:   []eval.Check{{Kind: "json", Name: "$", Detail: `got {"a":1,"b":2}, want {"a":1}`}},
		},
		{
			name:   "equals array in another order fails",
			expect: `{"json":[{"path":"$.a","equals":[1,2]}]}`,
			a:      eval.Attempt{Output: `{"a":[2,1]}`},
			want:   []eval.Check{{Kind: "json", Name: "$.a", Detail: "got [2,1], want [1,2]"}},
		},
		{
			name:   "equals null",
			expect: `{"json":[{"path":"$.a","equals":null}]}`,
			a:      eval.Attempt{Output: `{"a":null}`},
			want:   []eval.Check{{Kind: "json", Name: "$.a", Pass: true}},
		},
		{
			name:   "equals null, value missing",
			expect: `{"json":[{"path":"$.a","equals":null}]}`,
			a:      eval.Attempt{Output: `{}`},
			want:   []eval.Check{{Kind: "json", Name: "$.a", Detail: "no value at $.a"}},
		},
		{
			name:   "equals long value is cut",
			expect: `{"json":[{"path":"$.s","equals":"short"}]}`,
			a:      eval.Attempt{Output: `{"s":"` + strings.Repeat("é", 100) + `"}`},
			want:   []eval.Check{{Kind: "json", Name: "$.s", Detail: `got "` + strings.Repeat("é", 39) + `…, want "short"`}},
		},

		// json: one_of
		{
			name:   "one_of",
			expect: `{"json":[{"path":"$.c","one_of":["a",2,null]}]}`,
			a:      eval.Attempt{Output: `{"c":2.0}`},
			want:   []eval.Check{{Kind: "json", Name: "$.c", Pass: true}},
		},
		{
			name:   "one_of fails",
			expect: `{"json":[{"path":"$.c","one_of":["a","b"]}]}`,
			a:      eval.Attempt{Output: `{"c":"c"}`},
			want:   []eval.Check{{Kind: "json", Name: "$.c", Detail: `got "c", want one of ["a","b"]`}},
		},

		// json: matches
		{
			name:   "matches",
			expect: `{"json":[{"path":"$.s","matches":"^x\\d+$"}]}`,
			a:      eval.Attempt{Output: `{"s":"x42"}`},
			want:   []eval.Check{{Kind: "json", Name: "$.s", Pass: true}},
		},
		{
			name:   "matches is unanchored",
			expect: `{"json":[{"path":"$.s","matches":"b"}]}`,
			a:      eval.Attempt{Output: `{"s":"abc"}`},
			want:   []eval.Check{{Kind: "json", Name: "$.s", Pass: true}},
		},
		{
			name:   "matches fails",
			expect: `{"json":[{"path":"$.s","matches":"^x"}]}`,
			a:      eval.Attempt{Output: `{"s":"yx"}`},
			want:   []eval.Check{{Kind: "json", Name: "$.s", Detail: "does not match ^x"}},
		},
		{
			name:   "matches a number fails",
			expect: `{"json":[{"path":"$.s","matches":"^1"}]}`,
			a:      eval.Attempt{Output: `{"s":12}`},
			want:   []eval.Check{{Kind: "json", Name: "$.s", Detail: "got number, want a string"}},
		},

		// json: min and max
		{
			name:   "min and max",
			expect: `{"json":[{"path":"$.n","min":1,"max":2.5}]}`,
			a:      eval.Attempt{Output: `{"n":2.5}`},
			want:   []eval.Check{{Kind: "json", Name: "$.n", Pass: true}},
		},
		{
			name:   "below min",
			expect: `{"json":[{"path":"$.n","min":4}]}`,
			a:      eval.Attempt{Output: `{"n":3}`},
			want:   []eval.Check{{Kind: "json", Name: "$.n", Detail: "got 3, want >= 4"}},
		},
		{
			name:   "above max",
			expect: `{"json":[{"path":"$.n","max":-0.5}]}`,
			a:      eval.Attempt{Output: `{"n":1e-3}`},
			want:   []eval.Check{{Kind: "json", Name: "$.n", Detail: "got 1e-3, want <= -0.5"}},
		},
		{
			name:   "beyond float64 above max",
			expect: `{"json":[{"path":"$.n","max":1e308}]}`,
			a:      eval.Attempt{Output: `{"n":1e400}`},
			want:   []eval.Check{{Kind: "json", Name: "$.n", Detail: "got 1e400, want <= 1e+308"}},
		},
		{
			name:   "min of a string fails",
			expect: `{"json":[{"path":"$.n","min":0}]}`,
			a:      eval.Attempt{Output: `{"n":"5"}`},
			want:   []eval.Check{{Kind: "json", Name: "$.n", Detail: "got string, want a number"}},
		},

		// json: min_len and max_len
		{
			name:   "array length",
			expect: `{"json":[{"path":"$.a","min_len":2,"max_len":2}]}`,
			a:      eval.Attempt{Output: `{"a":[1,[2,3]]}`},
			want:   []eval.Check{{Kind: "json", Name: "$.a", Pass: true}},
		},
		{
			name:   "string length counts code points",
			expect: `{"json":[{"path":"$.s","max_len":5}]}`,
			a:      eval.Attempt{Output: `{"s":"héllo"}`},
			want:   []eval.Check{{Kind: "json", Name: "$.s", Pass: true}},
		},
		{
			name:   "too short",
			expect: `{"json":[{"path":"$.a","min_len":3}]}`,
			a:      eval.Attempt{Output: `{"a":[1,2]}`},
			want:   []eval.Check{{Kind: "json", Name: "$.a", Detail: "length 2, want >= 3"}},
		},
		{
			name:   "too long",
			expect: `{"json":[{"path":"$.s","max_len":0}]}`,
			a:      eval.Attempt{Output: `{"s":"x"}`},
			want:   []eval.Check{{Kind: "json", Name: "$.s", Detail: "length 1, want <= 0"}},
		},
		{
			name:   "length of an object fails",
			expect: `{"json":[{"path":"$.o","min_len":0}]}`,
			a:      eval.Attempt{Output: `{"o":{}}`},
			want:   []eval.Check{{Kind: "json", Name: "$.o", Detail: "got object, want an array or a string"}},
		},

		// json: exists
		{
			name:   "exists",
			expect: `{"json":[{"path":"$.a","exists":true}]}`,
			a:      eval.Attempt{Output: `{"a":null}`},
			want:   []eval.Check{{Kind: "json", Name: "$.a", Pass: true}},
		},
		{
			name:   "exists fails",
			expect: `{"json":[{"path":"$.a.b","exists":true}]}`,
			a:      eval.Attempt{Output: `{"a":{}}`},
			want:   []eval.Check{{Kind: "json", Name: "$.a.b", Detail: "no value at $.a.b"}},
		},
		{
			name:   "absent",
			expect: `{"json":[{"path":"$.a.b","exists":false}]}`,
			a:      eval.Attempt{Output: `{"a":{"c":1}}`},
			want:   []eval.Check{{Kind: "json", Name: "$.a.b", Pass: true}},
		},
		{
			name:   "absent fails",
			expect: `{"json":[{"path":"$.a","exists":false}]}`,
			a:      eval.Attempt{Output: `{"a":false}`},
			want:   []eval.Check{{Kind: "json", Name: "$.a", Detail: "unexpected value at $.a"}},
		},

		// json: the output
		{
			name:   "json on output that is not JSON",
			expect: `{"json":[{"path":"$.a","exists":true},{"path":"$.b","exists":false}]}`,
			a:      eval.Attempt{Output: `The answer is 4.`},
			want: []eval.Check{
				{Kind: "json", Name: "$.a", Detail: "not JSON"},
				{Kind: "json", Name: "$.b", Detail: "not JSON"},
			},
		},
		{
			name:   "json on a fenced route answer",
			expect: `{"json":[{"path":"$.a[-1]","equals":3}]}`,
			a:      eval.Attempt{Output: "```json\n{\"a\": [1, 2, 3]}\n```\n"},
			want:   []eval.Check{{Kind: "json", Name: "$.a[-1]", Pass: true}},
		},

		// contains and not_contains
		{
			name:   "contains",
			expect: `{"contains":["Paris","paris"],"not_contains":["London","Rome"]}`,
			a:      eval.Attempt{Output: "It is Paris, not Rome."},
			want: []eval.Check{
				{Kind: "contains", Name: "Paris", Pass: true},
				{Kind: "contains", Name: "paris", Detail: "not found"},
				{Kind: "not_contains", Name: "London", Pass: true},
				{Kind: "not_contains", Name: "Rome", Detail: "found"},
			},
		},
		{
			name:   "contains looks at the raw output",
			expect: `{"contains":["` + "```" + `"]}`,
			a:      eval.Attempt{Output: "```json\n{}\n```"},
			want:   []eval.Check{{Kind: "contains", Name: "```", Pass: true}},
		},

		// latency and tokens
		{
			name:   "latency at the bound",
			expect: `{"max_latency_ms":200}`,
			a:      eval.Attempt{Latency: 200 * time.Millisecond},
			want:   []eval.Check{{Kind: "latency", Pass: true}},
		},
		{
			name:   "latency over",
			expect: `{"max_latency_ms":200}`,
			a:      eval.Attempt{Latency: 341 * time.Millisecond},
			want:   []eval.Check{{Kind: "latency", Detail: "341ms > 200ms"}},
		},
		{
			name:   "latency just over is shown over",
			expect: `{"max_latency_ms":200}`,
			a:      eval.Attempt{Latency: 200*time.Millisecond + 40*time.Microsecond},
			want:   []eval.Check{{Kind: "latency", Detail: "200.1ms > 200ms"}},
		},
		{
			name:   "fractional latency bound",
			expect: `{"max_latency_ms":0.5}`,
			a:      eval.Attempt{Latency: time.Millisecond},
			want:   []eval.Check{{Kind: "latency", Detail: "1ms > 0.5ms"}},
		},
		{
			name:   "tokens at the bound",
			expect: `{"max_tokens":256}`,
			a:      eval.Attempt{OutputTokens: 256},
			want:   []eval.Check{{Kind: "tokens", Pass: true}},
		},
		{
			name:   "tokens over",
			expect: `{"max_tokens":256}`,
			a:      eval.Attempt{OutputTokens: 512},
			want:   []eval.Check{{Kind: "tokens", Detail: "512 tokens > 256"}},
		},

		// every kind, in CheckKinds order
		{
			name: "every kind",
			expect: `{"max_tokens":10,"max_latency_ms":50,"not_contains":["error"],"contains":["ok"],` +
				`"json":[{"path":"$.status","equals":"ok"},{"path":"$.n","min":1}],"valid":true}`,
			a: eval.Attempt{Output: `{"status":"ok","n":0}`, Schema: true, Valid: true, Latency: 10 * time.Millisecond, OutputTokens: 11},
			want: []eval.Check{
				{Kind: "schema", Pass: true},
				{Kind: "json", Name: "$.status", Pass: true},
				{Kind: "json", Name: "$.n", Detail: "got 0, want >= 1"},
				{Kind: "contains", Name: "ok", Pass: true},
				{Kind: "not_contains", Name: "error", Pass: true},
				{Kind: "latency", Pass: true},
				{Kind: "tokens", Detail: "11 tokens > 10"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustCase(t, tc.expect)
			a := tc.a
			c.Check(&a)
			want := append([]eval.Check{callOK}, tc.want...)
			if diff := cmp.Diff(want, a.Checks); diff != "" {
				t.Errorf("checks (-want +got):\n%s", diff)
			}
			wantPass := true
			for _, ch := range want {
				wantPass = wantPass && ch.Pass
			}
			if a.Pass != wantPass {
				t.Errorf("Pass = %v, want %v", a.Pass, wantPass)
			}
		})
	}
}

func TestCheckFailedCall(t *testing.T) {
	c := mustCase(t, `{"valid":true,"json":[{"path":"$","exists":true}],"contains":["x"],"max_tokens":1}`)
	a := eval.Attempt{Code: "upstream_timeout", Output: "x", Pass: true, Checks: []eval.Check{{Kind: "stale"}}}
	c.Check(&a)
	want := []eval.Check{{Kind: "call", Detail: "upstream_timeout"}}
	if diff := cmp.Diff(want, a.Checks); diff != "" {
		t.Errorf("checks (-want +got):\n%s", diff)
	}
	if a.Pass {
		t.Error("Pass = true for a failed call")
	}
}

func TestCheckPassResets(t *testing.T) {
	// Check sets Pass and Checks afresh: a reused Attempt keeps nothing.
	c := mustCase(t, `{"contains":["x"]}`)
	a := eval.Attempt{Output: "y"}
	c.Check(&a)
	if a.Pass {
		t.Fatal("Pass = true, want false")
	}
	a.Output = "x"
	c.Check(&a)
	if !a.Pass || len(a.Checks) != 2 {
		t.Errorf("Pass = %v with %d checks, want true with 2", a.Pass, len(a.Checks))
	}
}

func TestCheckJSONEqual(t *testing.T) {
	for _, tc := range []struct {
		got, want string
		equal     bool
	}{
		{`1`, `1.0`, true},
		{`1`, `1e0`, true},
		{`1`, `10e-1`, true},
		{`100`, `1E2`, true},
		{`100`, `1e+2`, true},
		{`0.5`, `5e-1`, true},
		{`0.50`, `0.5`, true},
		{`0`, `-0`, true},
		{`0`, `0.0e10`, true},
		{`-1.5`, `-15e-1`, true},
		{`-1.5`, `1.5`, false},
		{`1`, `1.0000000000000001`, false}, // equal as float64
		{`12345678901234567890`, `12345678901234567890`, true},
		{`12345678901234567890`, `12345678901234567891`, false}, // equal as float64
		{`12345678901234567890`, `1.234567890123456789e19`, true},
		{`1e999999999`, `10e999999998`, true},
		{`1e999999999`, `1e999999998`, false},
		{`1e-999999999`, `0`, false},
		{`"1"`, `1`, false},
		{`"a\u00e9"`, `"aé"`, true},
		{`true`, `true`, true},
		{`true`, `1`, false},
		{`false`, `null`, false},
		{`null`, `null`, true},
		{`[]`, `{}`, false},
		{`[]`, `[]`, true},
		{`[1,[2,{"a":3}]]`, `[1.0,[2,{"a":3e0}]]`, true},
		{`[1,2]`, `[1,2,3]`, false},
		{`{"a":1,"b":2}`, `{"b":2,"a":1}`, true},
		{`{"a":1}`, `{"a":1,"b":null}`, false},
		{`{"a":null}`, `{"b":null}`, false},
		{`{"a":{"b":[]}}`, `{"a":{"b":{}}}`, false},
	} {
		t.Run(tc.got+" vs "+tc.want, func(t *testing.T) {
			c := mustCase(t, `{"json":[{"path":"$.v","equals":`+tc.want+`}]}`)
			a := eval.Attempt{Output: `{"v":` + tc.got + `}`}
			c.Check(&a)
			if a.Pass != tc.equal {
				t.Errorf("Pass = %v, want %v (checks %+v)", a.Pass, tc.equal, a.Checks)
			}
			// Equality is symmetric.
			c = mustCase(t, `{"json":[{"path":"$.v","equals":`+tc.got+`}]}`)
			a = eval.Attempt{Output: `{"v":` + tc.want + `}`}
			c.Check(&a)
			if a.Pass != tc.equal {
				t.Errorf("swapped: Pass = %v, want %v (checks %+v)", a.Pass, tc.equal, a.Checks)
			}
		})
	}
}

func TestCheckPaths(t *testing.T) {
	const doc = `{
		"a": {"b.c": [10, 20, 30], "b": {"c": "nested"}},
		"x-y_Z9": 1,
		"it's": 2,
		"q\"": 3,
		"": 4,
		"back\\slash": 5,
		"arr": [[1, 2], [3]],
		"0": "zero key",
		"é": 6
	}`
	for _, tc := range []struct {
		path string
		want string // the value's JSON; "" for none
	}{
		{`$.a.b.c`, `"nested"`},
		{`$['a']["b"]['c']`, `"nested"`},
		{`$.a['b.c']`, `[10,20,30]`},
		{`$.a["b.c"][0]`, `10`},
		{`$.a['b.c'][2]`, `30`},
		{`$.a['b.c'][-1]`, `30`},
		{`$.a['b.c'][-3]`, `10`},
		{`$.a['b.c'][-4]`, ``},
		{`$.a['b.c'][3]`, ``},
		{`$.x-y_Z9`, `1`},
		{`$['it\'s']`, `2`},
		{`$["it's"]`, `2`},
		{`$["q\""]`, `3`},
		{`$['q"']`, `3`},
		{`$['']`, `4`},
		{`$['back\\slash']`, `5`},
		{`$.arr[0][1]`, `2`},
		{`$.arr[-1][-1]`, `3`},
		{`$.arr[1][1]`, ``},
		{`$.0`, `"zero key"`},
		{`$[0]`, ``},    // an index on an object
		{`$.arr.0`, ``}, // a name on an array
		{`$['é']`, `6`},
		{`$.a.b.c.d`, ``}, // a name on a string
		{`$.a.b.c[0]`, ``},
		{`$.missing`, ``},
		{`$.a.b.missing`, ``},
	} {
		t.Run(tc.path, func(t *testing.T) {
			pathJSON := strings.ReplaceAll(strings.ReplaceAll(tc.path, `\`, `\\`), `"`, `\"`)
			expect := `{"json":[{"path":"` + pathJSON + `","equals":` + tc.want + `}]}`
			want := []eval.Check{callOK, {Kind: "json", Name: tc.path, Pass: true}}
			if tc.want == "" {
				expect = `{"json":[{"path":"` + pathJSON + `","exists":true}]}`
				want[1] = eval.Check{Kind: "json", Name: tc.path, Detail: "no value at " + tc.path}
			}
			c := mustCase(t, expect)
			a := eval.Attempt{Output: doc}
			c.Check(&a)
			if diff := cmp.Diff(want, a.Checks); diff != "" {
				t.Errorf("checks (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckFence(t *testing.T) {
	for _, tc := range []struct {
		name   string
		output string
		json   bool // whether the output is taken as {"a":1}
	}{
		{"plain", `{"a":1}`, true},
		{"json fence", "```json\n{\"a\":1}\n```", true},
		{"bare fence", "```\n{\"a\":1}\n```", true},
		{"fence with white space around", "\n  ```JSON  \r\n{\n \"a\": 1\r\n}\r\n```  \n\n", true},
		{"four backticks", "````json\n{\"a\":1}\n````", true},
		{"longer closing fence", "```json\n{\"a\":1}\n`````", true},
		{"shorter closing fence", "````json\n{\"a\":1}\n```", false},
		{"text before the fence", "Here it is:\n```json\n{\"a\":1}\n```", false},
		{"text after the fence", "```json\n{\"a\":1}\n```\nHope this helps.", false},
		{"no closing fence", "```json\n{\"a\":1}", false},
		{"one line", "```json {\"a\":1}```", false},
		{"closing fence on the content line", "```json\n{\"a\":1}```", false},
		{"two fences", "```json\n```\n```json\n{\"a\":1}\n```", false},
		{"empty block", "```json\n```", false},
		{"backtick in the info string", "``` a`b\n{\"a\":1}\n```", false},
		{"tilde fence", "~~~json\n{\"a\":1}\n~~~", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustCase(t, `{"json":[{"path":"$.a","equals":1}]}`)
			a := eval.Attempt{Output: tc.output}
			c.Check(&a)
			want := eval.Check{Kind: "json", Name: "$.a", Pass: true}
			if !tc.json {
				want = eval.Check{Kind: "json", Name: "$.a", Detail: "not JSON"}
			}
			if diff := cmp.Diff([]eval.Check{callOK, want}, a.Checks); diff != "" {
				t.Errorf("checks (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckUnparsedCase(t *testing.T) {
	// A Case built in Go, not read from a dataset, may hold what
	// ParseDataset rejects; Check reports it without panicking.
	ptr := func(v float64) *float64 { return &v }
	c := eval.Case{ID: "go", Expect: eval.Expect{JSON: []eval.PathAssertion{
		{Path: "a"},
		{Path: "$[", Matches: "x"},
		{Path: "$.s", Matches: "("},
		{Path: "$.s", Equals: []byte("{")},
		{Path: "$.s", OneOf: []json.RawMessage{[]byte(`"x"`), []byte("nul")}},
		{Path: "$.s"}, // no assertion: the value must exist
		{Path: "$.s", Matches: "^x", MinLen: new(int)}, // two assertions: both must hold
		{Path: "$.n", Min: ptr(2), Max: ptr(1)},
	}}}
	a := eval.Attempt{Output: `{"s":"xy","n":1.5}`}
	c.Check(&a)
	want := []eval.Check{
		callOK,
		{Kind: "json", Name: "a", Detail: "bad path"},
		{Kind: "json", Name: "$[", Detail: "bad path"},
		{Kind: "json", Name: "$.s", Detail: "bad regexp"},
		{Kind: "json", Name: "$.s", Detail: "bad equals value"},
		{Kind: "json", Name: "$.s", Detail: "bad one_of value"},
		{Kind: "json", Name: "$.s", Pass: true},
		{Kind: "json", Name: "$.s", Pass: true},
		{Kind: "json", Name: "$.n", Detail: "got 1.5, want >= 2"},
	}
	if diff := cmp.Diff(want, a.Checks); diff != "" {
		t.Errorf("checks (-want +got):\n%s", diff)
	}
}

func TestCheckConcurrent(t *testing.T) {
	c := mustCase(t, `{"valid":true,"contains":["ok"],"json":[`+
		`{"path":"$.s","matches":"^o[k]+$"},`+
		`{"path":"$.n","equals":12345678901234567890},`+
		`{"path":"$.t","one_of":["a","b"]},`+
		`{"path":"$.arr","min_len":1},`+
		`{"path":"$.arr[-1]","min":0,"max":10}]}`)
	outputs := []struct {
		output string
		pass   bool
	}{
		{`{"s":"ok","n":12345678901234567890,"t":"b","arr":[1,2,3]}`, true},
		{"```json\n{\"s\":\"okk\",\"n\":1.234567890123456789e19,\"t\":\"a\",\"arr\":[0]}\n```", true},
		{`{"s":"ko","n":12345678901234567890,"t":"b","arr":[1]}`, false},
		{`{"s":"ok","n":12345678901234567891,"t":"b","arr":[1]}`, false},
		{`{"s":"ok","n":12345678901234567890,"t":"b","arr":[11]}`, false},
		{`not json, but ok`, false},
	}
	const goroutines, rounds = 8, 200
	errs := make(chan error, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for r := range rounds {
				o := outputs[(g+r)%len(outputs)]
				a := eval.Attempt{Output: o.output, Latency: time.Duration(r) * time.Millisecond}
				c.Check(&a)
				if a.Pass != o.pass {
					errs <- fmt.Errorf("goroutine %d: output %q: Pass = %v, want %v (checks %+v)", g, o.output, a.Pass, o.pass, a.Checks)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func FuzzCheck(f *testing.F) {
	for _, s := range [][2]string{
		{`$`, `{}`},
		{`$.a['b.c'][-1]`, `{"a":{"b.c":[1,2]}}`},
		{`$["q\""][0]`, "```json\n{\"q\\\"\":[\"x\"]}\n```"},
		{`$[-9223372036854775808]`, `[1]`},
		{`$['`, `1e999999999`},
		{`$.x`, "```\n```"},
		{`$..`, `[[[[[]]]]]`},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, path, output string) {
		zero, one := 0, 1.0
		yes := true
		c := eval.Case{ID: "f", Expect: eval.Expect{
			Valid:       true,
			Contains:    []string{path},
			NotContains: []string{output},
			JSON: []eval.PathAssertion{
				{Path: path, Exists: &yes},
				{Path: path, Equals: []byte(`1`)},
				{Path: path, OneOf: []json.RawMessage{[]byte(`"x"`), []byte(`1e999999999`)}},
				{Path: path, Matches: `^\w`},
				{Path: path, Min: &one},
				{Path: path, MinLen: &zero},
			},
		}}
		a := eval.Attempt{Output: output}
		c.Check(&a)
		if n := 1 + 1 + len(c.Expect.JSON) + 2; len(a.Checks) != n {
			t.Fatalf("%d checks, want %d", len(a.Checks), n)
		}
		pass := true
		for _, ch := range a.Checks {
			pass = pass && ch.Pass
			if ch.Pass != (ch.Detail == "") {
				t.Fatalf("check %+v: Pass and Detail disagree", ch)
			}
		}
		if a.Pass != pass {
			t.Fatalf("Pass = %v, but the checks say %v", a.Pass, pass)
		}
	})
}
