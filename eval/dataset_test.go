package eval_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
	"github.com/sluice-gw/sluice/eval"
)

// parse runs ParseDataset on s and fails the test on an I/O error.
func parse(t testing.TB, s string) ([]eval.Case, []eval.Problem) {
	t.Helper()
	cases, problems, err := eval.ParseDataset(strings.NewReader(s))
	if err != nil {
		t.Fatalf("ParseDataset: %v", err)
	}
	return cases, problems
}

func ids(cases []eval.Case) []string {
	var s []string
	for _, c := range cases {
		s = append(s, c.ID)
	}
	return s
}

func TestParseDataset(t *testing.T) {
	const data = "\uFEFF# golden cases for the extract contract\n" +
		"\n" +
		`{"id":"route-1","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],"expect":{"contains":["hello"],"not_contains":["sorry"],"max_latency_ms":1500.5,"max_tokens":64}}` + "\n" +
		"   \t\n" +
		"  # an indented comment\n" +
		`{"id":"contract-1","input":{"text":"Ann is 31"},"expect":{"valid":true,"json":[` +
		`{"path":"$.name","equals":"Ann"},` +
		`{"path":"$.age","min":0,"max":150},` +
		`{"path":"$.tags","min_len":1},` +
		`{"path":"$.tags[-1]","one_of":["a",null,{"b":1}]},` +
		`{"path":"$['first name']","matches":"^A"},` +
		`{"path":"$.nickname","exists":false},` +
		`{"path":"$.spouse","equals":null}]}}` + "\n" +
		`{"id":"contract-2","input":"just text"}`

	cases, problems := parse(t, data)
	if len(problems) != 0 {
		t.Fatalf("problems: %v", problems)
	}
	f := func(v float64) *float64 { return &v }
	i := func(v int) *int { return &v }
	b := func(v bool) *bool { return &v }
	want := []eval.Case{
		{
			ID: "route-1",
			Messages: []eval.Message{
				{Role: "system", Content: "Be brief."},
				{Role: "user", Content: "Hi"},
			},
			Expect: eval.Expect{
				Contains:     []string{"hello"},
				NotContains:  []string{"sorry"},
				MaxLatencyMS: 1500.5,
				MaxTokens:    64,
			},
			Line: 3,
		},
		{
			ID:    "contract-1",
			Input: json.RawMessage(`{"text":"Ann is 31"}`),
			Expect: eval.Expect{
				Valid: true,
				JSON: []eval.PathAssertion{
					{Path: "$.name", Equals: json.RawMessage(`"Ann"`)},
					{Path: "$.age", Min: f(0), Max: f(150)},
					{Path: "$.tags", MinLen: i(1)},
					{Path: "$.tags[-1]", OneOf: []json.RawMessage{[]byte(`"a"`), []byte(`null`), []byte(`{"b":1}`)}},
					{Path: "$['first name']", Matches: "^A"},
					{Path: "$.nickname", Exists: b(false)},
					{Path: "$.spouse", Equals: json.RawMessage(`null`)},
				},
			},
			Line: 6,
		},
		{ID: "contract-2", Input: json.RawMessage(`"just text"`), Line: 7},
	}
	if diff := cmp.Diff(want, cases); diff != "" {
		t.Errorf("cases (-want +got):\n%s", diff)
	}
}

func TestParseDatasetLineEndings(t *testing.T) {
	for _, tc := range []struct {
		name      string
		data      string
		wantIDs   []string
		wantLines []int
	}{
		{
			name:      "LF",
			data:      "{\"id\":\"a\",\"input\":\"x\"}\n\n{\"id\":\"b\",\"input\":\"y\"}\n",
			wantIDs:   []string{"a", "b"},
			wantLines: []int{1, 3},
		},
		{
			name:      "CRLF",
			data:      "# c\r\n{\"id\":\"a\",\"input\":\"x\"}\r\n\r\n{\"id\":\"b\",\"input\":\"y\"}\r\n",
			wantIDs:   []string{"a", "b"},
			wantLines: []int{2, 4},
		},
		{
			name:      "final line without newline",
			data:      "{\"id\":\"a\",\"input\":\"x\"}\n{\"id\":\"b\",\"input\":\"y\"}",
			wantIDs:   []string{"a", "b"},
			wantLines: []int{1, 2},
		},
		{
			name:      "final CRLF line without newline",
			data:      "{\"id\":\"a\",\"input\":\"x\"}\r\n{\"id\":\"b\",\"input\":\"y\"}\r",
			wantIDs:   []string{"a", "b"},
			wantLines: []int{1, 2},
		},
		{
			name: "only blank and comment lines",
			data: "\n\n# nothing here\n   \n#",
		},
		{
			name: "empty",
			data: "",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cases, problems := parse(t, tc.data)
			if len(problems) != 0 {
				t.Fatalf("problems: %v", problems)
			}
			var lines []int
			for _, c := range cases {
				lines = append(lines, c.Line)
			}
			if diff := cmp.Diff(tc.wantIDs, ids(cases)); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantLines, lines); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseDatasetProblems(t *testing.T) {
	// Each bad line is line 4, between two good cases on lines 3 and 5.
	const head = "# dataset\n\n" + `{"id":"ok1","input":"x"}` + "\n"
	const tail = "\n" + `{"id":"ok2","messages":[{"role":"user","content":"hi"}]}` + "\n"
	for _, tc := range []struct {
		name string
		line string
		want []string // each problem's Msg, all on line 4
	}{
		{"not JSON", `hello`, []string{"not valid JSON"}},
		{"truncated JSON", `{"id":"a","input":"x"`, []string{"not valid JSON: unexpected end of line"}},
		{"syntax error", `{"id":"a",,"input":"x"}`, []string{"not valid JSON: invalid character ',' looking for beginning of object key string (byte 11)"}},
		{"array", `[{"id":"a","input":"x"}]`, []string{"not a JSON object"}},
		{"null", `null`, []string{"not a JSON object"}},
		{"trailing data", `{"id":"a","input":"x"} {"id":"b","input":"x"}`, []string{"trailing data after the JSON object"}},
		{"trailing garbage", `{"id":"a","input":"x"}x`, []string{"trailing data after the JSON object"}},
		{"unknown top-level field", `{"id":"a","input":"x","expected":{}}`, []string{`unknown field "expected"`}},
		{"unknown field in expect", `{"id":"a","input":"x","expect":{"contain":["x"]}}`, []string{`unknown field "contain"`}},
		{"unknown field in a json assertion", `{"id":"a","input":"x","expect":{"json":[{"path":"$","equal":1}]}}`, []string{`unknown field "equal"`}},
		{"unknown field in a message", `{"id":"a","messages":[{"role":"user","content":"hi","name":"x"}]}`, []string{`unknown field "name"`}},
		{"line is not a field", `{"id":"a","input":"x","Line":3}`, []string{`unknown field "Line"`}},
		{"wrong type", `{"id":"a","input":"x","expect":{"max_tokens":"5"}}`, []string{"expect.max_tokens: got string, want an integer"}},
		{"wrong type in assertion", `{"id":"a","input":"x","expect":{"json":[{"path":"$","min":"1"}]}}`, []string{"expect.json.min: got string, want a number"}},
		{"duplicate id", `{"id":"ok1","input":"y"}`, []string{`duplicate id "ok1" (first on line 3)`}},
		{"missing id", `{"input":"x"}`, []string{"missing id"}},
		{"blank id", `{"id":"  ","input":"x"}`, []string{"missing id"}},
		{"both messages and input", `{"id":"a","input":"x","messages":[{"role":"user","content":"hi"}]}`, []string{"has both messages and input"}},
		{"neither messages nor input", `{"id":"a","expect":{"contains":["x"]}}`, []string{"needs messages (for a route) or input (for a contract)"}},
		{"null input and no messages", `{"id":"a","input":null,"messages":[]}`, []string{"needs messages (for a route) or input (for a contract)"}},
		{"number input", `{"id":"a","input":42}`, []string{"input must be a string or an object"}},
		{"array input", `{"id":"a","input":["x"]}`, []string{"input must be a string or an object"}},
		{"bad role", `{"id":"a","messages":[{"role":"user","content":"hi"},{"role":"bot","content":"hi"}]}`, []string{`messages[1]: unknown role "bot" (want system, user or assistant)`}},
		{"empty content", `{"id":"a","messages":[{"role":"user","content":" "}]}`, []string{"messages[0]: empty content"}},
		{"bad role and empty content", `{"id":"a","messages":[{"role":"","content":""}]}`, []string{
			`messages[0]: unknown role "" (want system, user or assistant)`,
			"messages[0]: empty content",
		}},
		{"empty contains", `{"id":"a","input":"x","expect":{"contains":["ok",""]}}`, []string{"expect.contains[1]: empty string"}},
		{"empty not_contains", `{"id":"a","input":"x","expect":{"not_contains":[""]}}`, []string{"expect.not_contains[0]: empty string"}},
		{"negative latency", `{"id":"a","input":"x","expect":{"max_latency_ms":-1}}`, []string{"expect.max_latency_ms: negative"}},
		{"negative tokens", `{"id":"a","input":"x","expect":{"max_tokens":-1}}`, []string{"expect.max_tokens: negative"}},
		{"bad regexp", `{"id":"a","input":"x","expect":{"json":[{"path":"$.a","exists":true},{"path":"$.b","matches":"(ab"}]}}`, []string{"expect.json[1]: matches: bad regexp: missing closing ): `(ab`"}},
		{"path without $", `{"id":"a","input":"x","expect":{"json":[{"path":"a.b","exists":true}]}}`, []string{"expect.json[0]: path: must start with $"}},
		{"empty path", `{"id":"a","input":"x","expect":{"json":[{"exists":true}]}}`, []string{"expect.json[0]: path: empty"}},
		{"path ends with dot", `{"id":"a","input":"x","expect":{"json":[{"path":"$.a.","exists":true}]}}`, []string{"expect.json[0]: path: no name after . at offset 3"}},
		{"recursive descent", `{"id":"a","input":"x","expect":{"json":[{"path":"$..a","exists":true}]}}`, []string{"expect.json[0]: path: no name after . at offset 1"}},
		{"path with space in name", `{"id":"a","input":"x","expect":{"json":[{"path":"$.a b","exists":true}]}}`, []string{`expect.json[0]: path: unexpected ' ' at offset 3`}},
		{"unquoted bracket name", `{"id":"a","input":"x","expect":{"json":[{"path":"$[a]","exists":true}]}}`, []string{"expect.json[0]: path: want a quoted name or an index in [ ] at offset 1"}},
		{"wildcard", `{"id":"a","input":"x","expect":{"json":[{"path":"$[*]","exists":true}]}}`, []string{"expect.json[0]: path: want a quoted name or an index in [ ] at offset 1"}},
		{"unclosed index", `{"id":"a","input":"x","expect":{"json":[{"path":"$[1","exists":true}]}}`, []string{"expect.json[0]: path: want a quoted name or an index in [ ] at offset 1"}},
		{"unterminated quoted name", `{"id":"a","input":"x","expect":{"json":[{"path":"$['a","exists":true}]}}`, []string{"expect.json[0]: path: unterminated quoted name at offset 2"}},
		{"quoted name without ]", `{"id":"a","input":"x","expect":{"json":[{"path":"$['a'.b","exists":true}]}}`, []string{"expect.json[0]: path: want ] after the quoted name at offset 5"}},
		{"bad escape", `{"id":"a","input":"x","expect":{"json":[{"path":"$['a\\n']","exists":true}]}}`, []string{"expect.json[0]: path: bad escape at offset 4"}},
		{"huge index", `{"id":"a","input":"x","expect":{"json":[{"path":"$[99999999999999999999]","exists":true}]}}`, []string{"expect.json[0]: path: index out of range at offset 1"}},
		{"two assertions", `{"id":"a","input":"x","expect":{"json":[{"path":"$.a","equals":1,"matches":"x"}]}}`, []string{"expect.json[0]: more than one assertion (equals, matches); use one json entry for each"}},
		{"three assertions", `{"id":"a","input":"x","expect":{"json":[{"path":"$.a","one_of":[1],"min":0,"exists":true}]}}`, []string{"expect.json[0]: more than one assertion (one_of, min/max, exists); use one json entry for each"}},
		{"zero assertions", `{"id":"a","input":"x","expect":{"json":[{"path":"$.a"}]}}`, []string{"expect.json[0]: no assertion besides path (want one of equals, one_of, matches, min/max, min_len/max_len, exists)"}},
		{"empty one_of", `{"id":"a","input":"x","expect":{"json":[{"path":"$.a","one_of":[]}]}}`, []string{"expect.json[0]: one_of: empty"}},
		{"min above max", `{"id":"a","input":"x","expect":{"json":[{"path":"$.a","min":5,"max":2.5}]}}`, []string{"expect.json[0]: min 5 > max 2.5"}},
		{"negative min_len", `{"id":"a","input":"x","expect":{"json":[{"path":"$.a","min_len":-1}]}}`, []string{"expect.json[0]: min_len: negative"}},
		{"negative max_len", `{"id":"a","input":"x","expect":{"json":[{"path":"$.a","max_len":-2}]}}`, []string{"expect.json[0]: max_len: negative"}},
		{"min_len above max_len", `{"id":"a","input":"x","expect":{"json":[{"path":"$.a","min_len":3,"max_len":2}]}}`, []string{"expect.json[0]: min_len 3 > max_len 2"}},
		{"several problems in assertions", `{"id":"a","input":"x","expect":{"json":[{"path":"$.a","exists":true},{"path":"x","matches":"("},{"path":"$"}]}}`, []string{
			"expect.json[1]: path: must start with $",
			"expect.json[1]: matches: bad regexp: missing closing ): `(`",
			"expect.json[2]: no assertion besides path (want one of equals, one_of, matches, min/max, min_len/max_len, exists)",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cases, problems := parse(t, head+tc.line+tail)
			var want []eval.Problem
			for _, msg := range tc.want {
				want = append(want, eval.Problem{Line: 4, Msg: msg})
			}
			if diff := cmp.Diff(want, problems); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"ok1", "ok2"}, ids(cases)); diff != "" {
				t.Errorf("good cases (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseDatasetGoodEdgeCases(t *testing.T) {
	for _, line := range []string{
		`{"id":"a","input":"x","expect":{"json":[{"path":"$","exists":true}]}}`,
		`{"id":"a","input":"x","expect":{"json":[{"path":"$.a","min":2,"max":2}]}}`,
		`{"id":"a","input":"x","expect":{"json":[{"path":"$.a","max":-1}]}}`,
		`{"id":"a","input":"x","expect":{"json":[{"path":"$.a","min_len":0,"max_len":0}]}}`,
		`{"id":"a","input":"x","expect":{"json":[{"path":"$.a","equals":null}]}}`,
		`{"id":"a","input":"x","expect":{"json":[{"path":"$.a","equals":{"b":[1,{"unknown":true}]}}]}}`,
		`{"id":"a","input":"x","expect":{"json":[{"path":"$['a.b'][\"c\"][0][-1]['it\\'s']['']","exists":false}]}}`,
		`{"id":"a","input":"x","expect":{"json":[{"path":"$.a-b_C9","matches":"^$"}],"valid":false}}`,
		`{"id":"a","input":{},"expect":{}}`,
		`{"id":"a","input":"x","expect":null}`,
		`{"id":"a","messages":[{"role":"assistant","content":"earlier"},{"role":"user","content":"now"}]}`,
		`   {"id":"a","input":"x"}   `,
	} {
		t.Run(line, func(t *testing.T) {
			cases, problems := parse(t, line)
			if len(problems) != 0 {
				t.Fatalf("problems: %v", problems)
			}
			if len(cases) != 1 || cases[0].Line != 1 {
				t.Fatalf("cases = %+v, want one on line 1", cases)
			}
		})
	}
}

func TestParseDatasetDuplicateOfBadLine(t *testing.T) {
	// The first "a" is bad for another reason; the second is still a
	// duplicate, so that the author sees every problem in one pass.
	data := `{"id":"a","input":1}` + "\n" +
		`{"id":"b","input":"x"}` + "\n" +
		`{"id":"a","input":"x"}` + "\n" +
		`{"id":"a","input":"x"}` + "\n"
	cases, problems := parse(t, data)
	want := []eval.Problem{
		{Line: 1, Msg: "input must be a string or an object"},
		{Line: 3, Msg: `duplicate id "a" (first on line 1)`},
		{Line: 4, Msg: `duplicate id "a" (first on line 1)`},
	}
	if diff := cmp.Diff(want, problems); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"b"}, ids(cases)); diff != "" {
		t.Errorf("good cases (-want +got):\n%s", diff)
	}
}

func TestParseDatasetLongLine(t *testing.T) {
	big := strings.Repeat("ab", 1<<20) // 2 MiB
	data := `{"id":"long","messages":[{"role":"user","content":"` + big + `"}]}` + "\n" +
		"not json\n" +
		`{"id":"after","input":"x"}`
	cases, problems := parse(t, data)
	if diff := cmp.Diff([]eval.Problem{{Line: 2, Msg: "not valid JSON"}}, problems); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	if len(cases) != 2 {
		t.Fatalf("got %d cases, want 2", len(cases))
	}
	if got := cases[0].Messages[0].Content; got != big {
		t.Errorf("long content has %d bytes, want %d", len(got), len(big))
	}
	if cases[1].ID != "after" || cases[1].Line != 3 {
		t.Errorf("second case = %q on line %d, want after on line 3", cases[1].ID, cases[1].Line)
	}
}

func TestParseDatasetReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	r := io.MultiReader(
		strings.NewReader(`{"id":"a","input":"x"}`+"\nnot json\n"),
		iotest.ErrReader(boom),
	)
	cases, problems, err := eval.ParseDataset(r)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
	if len(cases) != 1 || len(problems) != 1 {
		t.Errorf("got %d cases and %d problems before the error, want 1 and 1", len(cases), len(problems))
	}
}

func TestParseDatasetSmallReads(t *testing.T) {
	// A reader that returns one byte at a time must give the same result.
	data := "# x\r\n" + `{"id":"a","input":"x"}` + "\r\n\r\nbad\n" + `{"id":"b","input":"y"}`
	cases, problems, err := eval.ParseDataset(iotest.OneByteReader(strings.NewReader(data)))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a", "b"}, ids(cases)); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]eval.Problem{{Line: 4, Msg: "not valid JSON"}}, problems); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

func TestProblemError(t *testing.T) {
	var err error = eval.Problem{Line: 12, Msg: "missing id"}
	if got, want := err.Error(), "line 12: missing id"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got, want := (eval.Problem{Msg: "unknown run kind"}).Error(), "unknown run kind"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestCheckFits(t *testing.T) {
	cases, problems := parse(t, "# mixed\n"+
		`{"id":"r1","messages":[{"role":"user","content":"hi"}]}`+"\n"+
		`{"id":"c1","input":{"a":1}}`+"\n"+
		`{"id":"c2","input":"text"}`+"\n")
	if len(problems) != 0 {
		t.Fatalf("problems: %v", problems)
	}
	for _, tc := range []struct {
		kind string
		want []eval.Problem
	}{
		{"route", []eval.Problem{
			{Line: 3, Msg: `case "c1" has no messages; a route run needs messages`},
			{Line: 4, Msg: `case "c2" has no messages; a route run needs messages`},
		}},
		{"contract", []eval.Problem{
			{Line: 2, Msg: `case "r1" has no input; a contract run needs input`},
		}},
		{"chat", []eval.Problem{
			{Line: 0, Msg: `unknown run kind "chat" (want route or contract)`},
		}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, eval.CheckFits(cases, tc.kind)); diff != "" {
				t.Errorf("CheckFits (-want +got):\n%s", diff)
			}
		})
	}
	if got := eval.CheckFits(cases[1:], "contract"); len(got) != 0 {
		t.Errorf("CheckFits(contract cases, contract) = %v, want none", got)
	}
	if got := eval.CheckFits(nil, "route"); len(got) != 0 {
		t.Errorf("CheckFits(nil, route) = %v, want none", got)
	}
}

func TestCheckKinds(t *testing.T) {
	want := []string{"call", "schema", "json", "contains", "not_contains", "latency", "tokens"}
	if diff := cmp.Diff(want, eval.CheckKinds); diff != "" {
		t.Errorf("CheckKinds (-want +got):\n%s", diff)
	}
}

// lineCount is the number of lines in data, counting a last line without
// a newline.
func lineCount(data []byte) int {
	n := bytes.Count(data, []byte("\n"))
	if len(data) > 0 && data[len(data)-1] != '\n' {
		n++
	}
	return n
}

func FuzzParseDataset(f *testing.F) {
	for _, s := range []string{
		"",
		"\n",
		"#\n",
		"\uFEFF{\"id\":\"a\",\"input\":\"x\"}",
		"{\"id\":\"a\",\"input\":\"x\"}\r\n{\"id\":\"a\",\"input\":\"x\"}\r\n",
		`{"id":"a","messages":[{"role":"user","content":"hi"}],"expect":{"contains":["x"],"not_contains":["y"],"max_latency_ms":10,"max_tokens":5}}`,
		`{"id":"a","input":{"k":[1,2]},"expect":{"valid":true,"json":[{"path":"$.k[-1]","equals":2},{"path":"$['k']","min_len":1,"max_len":3},{"path":"$.k[0]","min":0,"max":1},{"path":"$.s","matches":"^a+$"},{"path":"$.n","exists":false},{"path":"$.k[0]","one_of":[1,2]}]}}`,
		`{"id":"a","input":"x","expect":{"json":[{"path":"$['a\\'b'][\"c\"]","equals":1e400}]}}`,
		`{"id":"a","input":"x","expect":{"json":[{"path":"$[","matches":"("}]}}`,
		`{"id":1}` + "\n" + `[` + "\n" + `{"id":"a","input":"x","bogus":1}`,
		"{\"id\":\"a\"\n,\"input\":\"x\"}",
	} {
		f.Add([]byte(s))
	}
	outputs := []string{`{"k":[1,2],"s":"aa"}`, "```json\n[1,{\"a\":null}]\n```", "not json", ""}
	f.Fuzz(func(t *testing.T, data []byte) {
		cases, problems, err := eval.ParseDataset(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("ParseDataset: %v", err)
		}
		lines := lineCount(data)
		bad := make(map[int]bool)
		for _, p := range problems {
			if p.Line < 1 || p.Line > lines {
				t.Fatalf("problem %v outside lines 1..%d", p, lines)
			}
			if p.Msg == "" {
				t.Fatalf("problem on line %d has no message", p.Line)
			}
			bad[p.Line] = true
		}
		seen := make(map[string]bool)
		last := 0
		for _, c := range cases {
			if c.Line <= last || c.Line > lines {
				t.Fatalf("case %q on line %d: after line %d, input has %d lines", c.ID, c.Line, last, lines)
			}
			last = c.Line
			if bad[c.Line] {
				t.Fatalf("case %q on line %d, which has a problem", c.ID, c.Line)
			}
			if c.ID == "" || seen[c.ID] {
				t.Fatalf("case on line %d has an empty or repeated id %q", c.Line, c.ID)
			}
			seen[c.ID] = true
			if (len(c.Messages) > 0) == (len(c.Input) > 0) {
				t.Fatalf("case %q has both or neither of messages and input", c.ID)
			}
			for _, out := range outputs {
				a := eval.Attempt{Output: out}
				c.Check(&a)
				if len(a.Checks) == 0 || a.Checks[0].Kind != "call" {
					t.Fatalf("case %q: checks %+v do not start with call", c.ID, a.Checks)
				}
			}
		}
		eval.CheckFits(cases, "route")
		eval.CheckFits(cases, "contract")
	})
}
