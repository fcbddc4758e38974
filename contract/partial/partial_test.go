package partial

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// feed writes in to p in pieces of n bytes and returns the distinct
// snapshots seen after each piece, checking each as it goes.
func feed(t testing.TB, p *Parser, in []byte, n int) (snaps []string, err error) {
	t.Helper()
	var prev []byte
	for len(in) > 0 && err == nil {
		k := min(n, len(in))
		err = p.Write(in[:k])
		in = in[k:]
		changed := p.Changed()
		snap := p.Snapshot()
		checkStep(t, prev, snap, changed)
		if changed {
			snaps = append(snaps, string(snap))
		}
		prev = snap
	}
	return snaps, err
}

// checkStep checks a snapshot taken after a write: valid JSON, extending the
// one before, and changed exactly when it differs from it.
func checkStep(t testing.TB, prev, snap []byte, changed bool) {
	t.Helper()
	if snap != nil && !json.Valid(snap) {
		t.Fatalf("snapshot %q is not valid JSON", snap)
	}
	if changed != !bytes.Equal(prev, snap) {
		t.Fatalf("Changed = %v, but snapshot went from %q to %q", changed, prev, snap)
	}
	if err := extends(prev, snap); err != nil {
		t.Fatalf("snapshot %q does not extend %q: %v", snap, prev, err)
	}
}

func TestSnapshots(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // the distinct snapshots, fed byte by byte
	}{
		{"object", `{"a": 1, "b": "x", "c": true}`,
			[]string{`{}`, `{"a":1}`, `{"a":1,"b":"x"}`, `{"a":1,"b":"x","c":true}`}},
		{"array", ` [1, 2.5 ,"three", null, false] `,
			[]string{`[]`, `[1]`, `[1,2.5]`, `[1,2.5,"three"]`, `[1,2.5,"three",null]`, `[1,2.5,"three",null,false]`}},
		{"nested", `{"a":{"b":[1,{"c":"d"}],"e":[]},"f":{}}`,
			[]string{`{}`, `{"a":{}}`, `{"a":{"b":[]}}`, `{"a":{"b":[1]}}`, `{"a":{"b":[1,{}]}}`,
				`{"a":{"b":[1,{"c":"d"}]}}`, `{"a":{"b":[1,{"c":"d"}],"e":[]}}`, `{"a":{"b":[1,{"c":"d"}],"e":[]},"f":{}}`}},
		{"escapes", `{"k\"ey":"a\\b\/\n\t\u00e9\uD83D\uDE00","x":"\"","y":"é😀"}`,
			[]string{`{}`, `{"k\"ey":"a\\b\/\n\t\u00e9\uD83D\uDE00"}`, `{"k\"ey":"a\\b\/\n\t\u00e9\uD83D\uDE00","x":"\""}`,
				`{"k\"ey":"a\\b\/\n\t\u00e9\uD83D\uDE00","x":"\"","y":"é😀"}`}},
		{"numbers", "[0,-0,-0.5e+10,1E-2,12.25e3,100,9007199254740993\n]",
			[]string{`[]`, `[0]`, `[0,-0]`, `[0,-0,-0.5e+10]`, `[0,-0,-0.5e+10,1E-2]`, `[0,-0,-0.5e+10,1E-2,12.25e3]`,
				`[0,-0,-0.5e+10,1E-2,12.25e3,100]`, `[0,-0,-0.5e+10,1E-2,12.25e3,100,9007199254740993]`}},
		{"empty containers", `[[],{},[[]]]`,
			[]string{`[]`, `[[]]`, `[[],{}]`, `[[],{},[]]`, `[[],{},[[]]]`}},
		{"top-level string", ` "a\u0062c" `, []string{`"a\u0062c"`}},
		{"top-level literal", `null`, []string{`null`}},
		{"top-level number", `-12.5e3`, []string{`-12.5e3`}},
		{"duplicate keys", `{"a":1,"a":{"b":2}}`,
			[]string{`{}`, `{"a":1}`, `{"a":1,"a":{}}`, `{"a":1,"a":{"b":2}}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Parser
			got, err := feed(t, &p, []byte(tt.in), 1)
			if err != nil {
				t.Fatalf("Write: %v", err)
			}
			if err := p.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if p.Changed() { // a top-level number shows only at Close
				got = append(got, string(p.Snapshot()))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("snapshots (-want +got):\n%s", diff)
			}
			if !p.Done() {
				t.Error("Done = false after the whole value")
			}
			var q Parser
			if err := q.Write([]byte(tt.in)); err != nil {
				t.Fatalf("one-shot Write: %v", err)
			}
			if err := q.Close(); err != nil {
				t.Fatalf("one-shot Close: %v", err)
			}
			if got, want := string(q.Snapshot()), tt.want[len(tt.want)-1]; got != want {
				t.Errorf("one-shot snapshot = %s, want %s", got, want)
			}
		})
	}
}

func TestPrefixes(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" for a nil snapshot
	}{
		{``, ``},
		{`  `, ``},
		{`{`, `{}`},
		{`{"a`, `{}`},
		{`{"a"`, `{}`},
		{`{"a":`, `{}`},
		{`{"a":"hel`, `{}`},
		{`{"a":"hello"`, `{"a":"hello"}`},
		{`{"a":12`, `{}`},
		{`{"a":12 `, `{"a":12}`},
		{`{"a":12,`, `{"a":12}`},
		{`{"a":12}`, `{"a":12}`},
		{`{"a":1.`, `{}`},
		{`{"a":1.5e`, `{}`},
		{`{"a":tru`, `{}`},
		{`{"a":true`, `{"a":true}`},
		{`{"a":[`, `{"a":[]}`},
		{`{"a":[1,2`, `{"a":[1]}`},
		{`{"a":[1,2]`, `{"a":[1,2]}`},
		{`{"a":{"b":{"c":`, `{"a":{"b":{}}}`},
		{`{"a":{"b":{"c":"\u00`, `{"a":{"b":{}}}`},
		{`{"a":{"b":{"c":"\u00e9"`, `{"a":{"b":{"c":"\u00e9"}}}`},
		{`{"a":1,"b`, `{"a":1}`},
		{`[`, `[]`},
		{`["x","y`, `["x"]`},
		{`[[1],[2`, `[[1],[]]`},
		{`"abc`, ``},
		{`123`, ``},
		{`123 `, `123`},
		{`fals`, ``},
		{`false`, `false`},
	}
	for _, tt := range tests {
		var p Parser
		if err := p.Write([]byte(tt.in)); err != nil {
			t.Errorf("Write(%q): %v", tt.in, err)
			continue
		}
		if got := string(p.Snapshot()); got != tt.want {
			t.Errorf("after %q: snapshot %s, want %s", tt.in, got, tt.want)
		}
		if got := ref([]byte(tt.in), false); got != tt.want {
			t.Errorf("after %q: reference snapshot %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestSyntaxErrors(t *testing.T) {
	tests := []struct {
		in     string
		offset int64
		target error // ErrTooDeep or ErrTooLarge, if a limit
	}{
		{``, 0, nil},
		{` `, 1, nil},
		{`{"a" 1`, 5, nil},
		{`{"a":1 "b"`, 7, nil},
		{`{"a":1,}`, 7, nil},
		{`{,`, 1, nil},
		{`{1:2}`, 1, nil},
		{`[1,]`, 3, nil},
		{`[1 2]`, 3, nil},
		{`[1}`, 2, nil},
		{`{"a":1]`, 6, nil},
		{`]`, 0, nil},
		{`01`, 1, nil},
		{`-`, 1, nil},
		{`-a`, 1, nil},
		{`1.`, 2, nil},
		{`1.e5`, 2, nil},
		{`1e`, 2, nil},
		{`1e+`, 3, nil},
		{`[1.x]`, 3, nil},
		{`+1`, 0, nil},
		{`.5`, 0, nil},
		{`[1x]`, 2, nil},
		{`tru`, 3, nil},
		{`trux`, 3, nil},
		{`[true1]`, 5, nil},
		{`nul`, 3, nil},
		{`{"a":nil}`, 6, nil},
		{`"abc`, 4, nil},
		{"\"a\tb\"", 2, nil},
		{`"\x"`, 2, nil},
		{`"\u12g4"`, 5, nil},
		{"\"\xff\"", 1, nil},
		{"\"\xc0\x80\"", 1, nil},         // overlong
		{"\"\xed\xa0\x80\"", 2, nil},     // surrogate in UTF-8
		{"\"\xe2\x82\"", 3, nil},         // truncated sequence
		{"\"\xf4\x90\x80\x80\"", 2, nil}, // above U+10FFFF
		{`{"a":1}}`, 7, nil},
		{`{} {}`, 3, nil},
		{`1 2`, 2, nil},
		{"\xef\xbb\xbf{}", 0, nil}, // a byte order mark
		{`{"a":[1,2`, 9, nil},
		{strings.Repeat("[", DefaultMaxDepth+1), DefaultMaxDepth, ErrTooDeep},
	}
	for _, tt := range tests {
		for _, n := range []int{1, 2, len(tt.in) + 1} {
			var p Parser
			_, err := feed(t, &p, []byte(tt.in), n)
			if err == nil {
				err = p.Close()
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Errorf("%q in pieces of %d: error %v, want a *SyntaxError", tt.in, n, err)
				continue
			}
			if se.Offset != tt.offset {
				t.Errorf("%q in pieces of %d: offset %d (%v), want %d", tt.in, n, se.Offset, err, tt.offset)
			}
			if tt.target != nil && !errors.Is(err, tt.target) {
				t.Errorf("%q: error %v, want %v", tt.in, err, tt.target)
			}
			if err2 := p.Write([]byte(" ")); err2 != err {
				t.Errorf("%q: Write after the error returned %v, want the same error", tt.in, err2)
			}
			if err2 := p.Close(); err2 != err {
				t.Errorf("%q: Close after the error returned %v, want the same error", tt.in, err2)
			}
			if p.Done() {
				t.Errorf("%q: Done = true after an error", tt.in)
			}
		}
	}
}

func TestErrorMessage(t *testing.T) {
	var p Parser
	err := p.Write([]byte(`{"secret" 1`))
	if got, want := err.Error(), "partial: want ':' after object key at offset 10"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestLimits(t *testing.T) {
	p := Parser{MaxDepth: 2}
	if err := p.Write([]byte(`[[1],{"a":[]}]`)); !errors.Is(err, ErrTooDeep) {
		t.Errorf("depth 3 with MaxDepth 2: %v, want ErrTooDeep", err)
	}
	p = Parser{MaxDepth: 2}
	if err := p.Write([]byte(`[[1],{"a":2}]`)); err != nil {
		t.Errorf("depth 2 with MaxDepth 2: %v", err)
	}
	// The default limit stops deep input with an error, not a stack overflow.
	p = Parser{}
	deep := []byte(strings.Repeat(`{"a":[`, 1e5))
	if err := p.Write(deep); !errors.Is(err, ErrTooDeep) {
		t.Errorf("deep input: %v, want ErrTooDeep", err)
	}

	p = Parser{MaxBytes: 8}
	if err := p.Write([]byte(`[1,2,`)); err != nil {
		t.Fatal(err)
	}
	err := p.Write([]byte(`3,4]`))
	var se *SyntaxError
	if !errors.Is(err, ErrTooLarge) || !errors.As(err, &se) || se.Offset != 8 {
		t.Errorf("9 bytes with MaxBytes 8: %v, want ErrTooLarge at offset 8", err)
	}
	if got := string(p.Snapshot()); got != `[1,2,3]` {
		t.Errorf("snapshot at the limit = %s, want [1,2,3]", got)
	}
	p = Parser{MaxBytes: 7}
	if err := p.Write([]byte(`[1,2,3]`)); err != nil {
		t.Errorf("7 bytes with MaxBytes 7: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestLifecycle(t *testing.T) {
	var p Parser
	if p.Snapshot() != nil || p.Changed() || p.Done() {
		t.Fatal("a new Parser has a snapshot, a change or is done")
	}
	if err := p.Write([]byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	if !p.Done() {
		t.Error("Done = false after the value")
	}
	if err := p.Write([]byte(" \n")); err != nil {
		t.Errorf("trailing white space: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := p.Write([]byte(" ")); err == nil {
		t.Error("Write after Close succeeded")
	}
	if got := string(p.AppendSnapshot([]byte("x"))); got != `x{"a":1}` {
		t.Errorf("AppendSnapshot = %s", got)
	}
	if p.Changed() {
		t.Error("Changed after AppendSnapshot")
	}

	p = Parser{MaxDepth: 1}
	if err := p.Write([]byte(`[[`)); err == nil {
		t.Fatal("no error")
	}
	p.Reset()
	if p.MaxDepth != 1 || p.Snapshot() != nil {
		t.Errorf("after Reset: MaxDepth %d, snapshot %s", p.MaxDepth, p.Snapshot())
	}
	if err := p.Write([]byte(`["a"]`)); err != nil {
		t.Fatalf("Write after Reset: %v", err)
	}
	if err := p.Close(); err != nil || string(p.Snapshot()) != `["a"]` {
		t.Errorf("after Reset: Close %v, snapshot %s", err, p.Snapshot())
	}
}

// TestRandomDocuments feeds generated documents in random pieces and checks
// every snapshot against the reference and the one before it.
func TestRandomDocuments(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	iterations := 1000
	if testing.Short() {
		iterations = 300
	}
	for i := range iterations {
		doc := genDoc(rng, 1+rng.IntN(5))
		if !json.Valid(doc) || !utf8.Valid(doc) {
			t.Fatalf("generated invalid JSON: %s", doc)
		}
		var want bytes.Buffer
		if err := json.Compact(&want, doc); err != nil {
			t.Fatal(err)
		}

		var p Parser
		var prev []byte
		for pos := 0; pos < len(doc); {
			k := min(len(doc)-pos, 1+rng.IntN(1+rng.IntN(32)))
			if err := p.Write(doc[pos : pos+k]); err != nil {
				t.Fatalf("doc %d %s: Write at %d: %v", i, doc, pos, err)
			}
			pos += k
			changed := p.Changed()
			snap := p.Snapshot()
			checkStep(t, prev, snap, changed)
			if r := ref(doc[:pos], false); string(snap) != r {
				t.Fatalf("doc %s after %q:\n got %s\nwant %s", doc, doc[:pos], snap, r)
			}
			prev = snap
		}
		if err := p.Close(); err != nil {
			t.Fatalf("doc %s: Close: %v", doc, err)
		}
		final := p.Snapshot()
		checkStep(t, prev, final, !bytes.Equal(prev, final))
		if !bytes.Equal(final, want.Bytes()) {
			t.Fatalf("doc %s: final snapshot\n%s\nwant\n%s", doc, final, want.Bytes())
		}

		var q Parser
		_, err := feed(t, &q, doc, 1)
		if err == nil {
			err = q.Close()
		}
		if err != nil || !bytes.Equal(q.Snapshot(), final) {
			t.Fatalf("doc %s byte by byte: %v, %s; want %s", doc, err, q.Snapshot(), final)
		}
	}
}

// TestFiftyFields streams a 50-field object in small pieces: it grows
// monotonically, one event per new field or nested growth, to the whole
// object.
func TestFiftyFields(t *testing.T) {
	var b strings.Builder
	b.WriteString("{\n")
	for i := range 50 {
		if i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, "  %q: ", fmt.Sprintf("field_%02d", i))
		switch i % 5 {
		case 0:
			fmt.Fprintf(&b, "%q", strings.Repeat("text é \"quoted\" ", i%7+1))
		case 1:
			fmt.Fprintf(&b, "%d.%d", i*1000, i)
		case 2:
			fmt.Fprintf(&b, `{"n": %d, "tags": ["x", "y"], "ok": %v}`, i, i%2 == 0)
		case 3:
			fmt.Fprintf(&b, `[%d, %d, null]`, i, -i)
		default:
			b.WriteString("false")
		}
	}
	b.WriteString("\n}\n")
	doc := []byte(b.String())

	var p Parser
	snaps, err := feed(t, &p, doc, 7)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	fields := 0
	for _, s := range snaps {
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatal(err)
		}
		if len(m) < fields {
			t.Fatalf("fields went from %d to %d", fields, len(m))
		}
		fields = len(m)
	}
	var want bytes.Buffer
	if err := json.Compact(&want, doc); err != nil {
		t.Fatal(err)
	}
	if last := snaps[len(snaps)-1]; last != want.String() || fields != 50 {
		t.Errorf("last snapshot has %d fields:\n%s\nwant\n%s", fields, last, want.String())
	}
	if len(snaps) < 50 {
		t.Errorf("%d snapshots, want at least one per field", len(snaps))
	}
	t.Logf("%d bytes in 7-byte pieces: %d distinct snapshots", len(doc), len(snaps))
}

// TestLinearWork counts the scanner's steps: at most two per input byte (a
// byte that ends a number is read again), whatever the size of the input or
// the pieces, and a compacted value no longer than the input.
func TestLinearWork(t *testing.T) {
	for _, size := range []int{10 << 10, 1 << 20} {
		doc := benchDoc(size)
		for _, piece := range []int{1, 20, 4096} {
			var p Parser
			for pos := 0; pos < len(doc); pos += piece {
				if err := p.Write(doc[pos:min(pos+piece, len(doc))]); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			if p.steps < int64(len(doc)) || p.steps > 2*int64(len(doc)) {
				t.Errorf("%d bytes in pieces of %d: %d steps, want between 1 and 2 per byte", len(doc), piece, p.steps)
			}
			if len(p.out) > len(doc) {
				t.Errorf("%d bytes: value of %d bytes", len(doc), len(p.out))
			}
			t.Logf("%d bytes in pieces of %d: %.3f steps per byte", len(doc), piece, float64(p.steps)/float64(len(doc)))
		}
	}
}

// ref is the reference snapshot of a prefix of a valid JSON text, computed
// from scratch by recursive descent: the parser's rules, written as simply
// as possible. closed says whether the input has ended, which completes a
// top-level number.
func ref(in []byte, closed bool) string {
	r := refParser{s: in}
	v, _ := r.value(true, closed)
	return v
}

type refParser struct {
	s []byte
	i int
}

func (r *refParser) ws() {
	for r.i < len(r.s) && isSpace(r.s[r.i]) {
		r.i++
	}
}

func (r *refParser) eof() bool { r.ws(); return r.i == len(r.s) }

// value returns the shown text of the value at r.i, "" if none, and whether
// the value is complete.
func (r *refParser) value(top, closed bool) (string, bool) {
	if r.eof() {
		return "", false
	}
	c := r.s[r.i]
	switch {
	case c == '{' || c == '[':
		end := string(closer(c))
		r.i++
		var b strings.Builder
		b.WriteByte(c)
		n := 0
		for {
			if r.eof() {
				return b.String() + end, false
			}
			if r.s[r.i] == end[0] {
				r.i++
				return b.String() + end, true
			}
			if r.s[r.i] == ',' {
				r.i++
			}
			key := ""
			if c == '{' {
				if r.eof() {
					return b.String() + end, false
				}
				k, ok := r.str()
				if !ok || r.eof() {
					return b.String() + end, false
				}
				r.i++ // ':'
				key = k + ":"
			}
			v, ok := r.value(false, false)
			if v != "" {
				if n > 0 {
					b.WriteByte(',')
				}
				b.WriteString(key + v)
				n++
			}
			if !ok {
				return b.String() + end, false
			}
		}
	case c == '"':
		return r.str()
	case c == 't' || c == 'f' || c == 'n':
		lit := map[byte]string{'t': "true", 'f': "false", 'n': "null"}[c]
		if len(r.s)-r.i < len(lit) {
			r.i = len(r.s)
			return "", false
		}
		r.i += len(lit)
		return lit, true
	default:
		j := r.i
		for j < len(r.s) && strings.IndexByte("+-.eE0123456789", r.s[j]) >= 0 {
			j++
		}
		num := string(r.s[r.i:j])
		r.i = j
		if j == len(r.s) && !(top && closed) {
			return "", false
		}
		return num, true
	}
}

// str reads the string at r.i and returns it as written.
func (r *refParser) str() (string, bool) {
	for j := r.i + 1; j < len(r.s); j++ {
		switch r.s[j] {
		case '\\':
			j++
		case '"':
			s := string(r.s[r.i : j+1])
			r.i = j + 1
			return s, true
		}
	}
	r.i = len(r.s)
	return "", false
}

// A node is a decoded JSON value that keeps the order of object members,
// and duplicates.
type node struct {
	kind   byte // '{', '[', or 0 for a scalar
	scalar any
	keys   []string
	kids   []*node
}

func decode(b []byte) (*node, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	n, err := decodeNode(d)
	if err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, fmt.Errorf("data after the value: %v", err)
	}
	return n, nil
}

func decodeNode(d *json.Decoder) (*node, error) {
	tok, err := d.Token()
	if err != nil {
		return nil, err
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return &node{scalar: tok}, nil
	}
	n := &node{kind: byte(delim)}
	for d.More() {
		if n.kind == '{' {
			k, err := d.Token()
			if err != nil {
				return nil, err
			}
			n.keys = append(n.keys, k.(string))
		}
		kid, err := decodeNode(d)
		if err != nil {
			return nil, err
		}
		n.kids = append(n.kids, kid)
	}
	_, err = d.Token() // the closer
	return n, err
}

// extends reports, as an error, how later fails to extend earlier: every
// member and element of earlier must be in later, at the same place, with
// the same key and a value equal to it or, for objects and arrays, extending
// it. A nil earlier is extended by anything.
func extends(earlier, later []byte) error {
	if earlier == nil {
		return nil
	}
	if later == nil {
		return errors.New("later is empty")
	}
	a, err := decode(earlier)
	if err != nil {
		return err
	}
	b, err := decode(later)
	if err != nil {
		return err
	}
	return extendsNode(a, b, "$")
}

func extendsNode(a, b *node, path string) error {
	if a.kind != b.kind {
		return fmt.Errorf("%s: kind %q became %q", path, a.kind, b.kind)
	}
	if a.kind == 0 {
		if a.scalar != b.scalar {
			return fmt.Errorf("%s: %v became %v", path, a.scalar, b.scalar)
		}
		return nil
	}
	if len(b.kids) < len(a.kids) {
		return fmt.Errorf("%s: %d members became %d", path, len(a.kids), len(b.kids))
	}
	for i := range a.kids {
		p := path + "[" + strconv.Itoa(i) + "]"
		if a.kind == '{' {
			if a.keys[i] != b.keys[i] {
				return fmt.Errorf("%s: key %q became %q", path, a.keys[i], b.keys[i])
			}
			p = path + "." + a.keys[i]
		}
		if err := extendsNode(a.kids[i], b.kids[i], p); err != nil {
			return err
		}
	}
	return nil
}

func TestExtends(t *testing.T) {
	tests := []struct {
		a, b string
		ok   bool
	}{
		{`{}`, `{"a":1}`, true},
		{`{"a":1}`, `{"a":1,"b":[]}`, true},
		{`{"a":{"b":[1]}}`, `{"a":{"b":[1,2]},"c":3}`, true},
		{`{"a":1}`, `{"a":2}`, false},
		{`{"a":1}`, `{"b":1,"a":1}`, false},
		{`{"a":1,"b":2}`, `{"a":1}`, false},
		{`[1,[2]]`, `[1,[2,3],4]`, true},
		{`[1,[2]]`, `[1,[],4]`, false},
		{`[1]`, `{}`, false},
		{`"x"`, `"x"`, true},
		{`"x"`, `"xy"`, false},
	}
	for _, tt := range tests {
		if err := extends([]byte(tt.a), []byte(tt.b)); (err == nil) != tt.ok {
			t.Errorf("extends(%s, %s) = %v, want ok %v", tt.a, tt.b, err, tt.ok)
		}
	}
}

// genDoc returns a random JSON text with random white space.
func genDoc(rng *rand.Rand, depth int) []byte {
	var b bytes.Buffer
	space(rng, &b)
	genValue(rng, &b, depth)
	space(rng, &b)
	return b.Bytes()
}

func space(rng *rand.Rand, b *bytes.Buffer) {
	if rng.IntN(3) == 0 {
		b.WriteString([]string{" ", "\n", "\t", "\r\n  ", "  "}[rng.IntN(5)])
	}
}

func genValue(rng *rand.Rand, b *bytes.Buffer, depth int) {
	k := rng.IntN(10)
	if depth <= 0 {
		k = rng.IntN(6)
	}
	switch k {
	case 0, 1:
		genString(rng, b)
	case 2, 3:
		genNumber(rng, b)
	case 4:
		b.WriteString([]string{"true", "false", "null"}[rng.IntN(3)])
	case 5:
		b.WriteString([]string{"{}", "[]", "{ }", "[\n]"}[rng.IntN(4)])
	case 6, 7:
		b.WriteByte('{')
		for i := range rng.IntN(6) {
			if i > 0 {
				b.WriteByte(',')
			}
			space(rng, b)
			if rng.IntN(4) == 0 {
				genString(rng, b)
			} else { // a small set of keys, so duplicates happen
				fmt.Fprintf(b, `"k%d"`, rng.IntN(8))
			}
			space(rng, b)
			b.WriteByte(':')
			space(rng, b)
			genValue(rng, b, depth-1)
			space(rng, b)
		}
		b.WriteByte('}')
	default:
		b.WriteByte('[')
		for i := range rng.IntN(6) {
			if i > 0 {
				b.WriteByte(',')
			}
			space(rng, b)
			genValue(rng, b, depth-1)
			space(rng, b)
		}
		b.WriteByte(']')
	}
}

var stringParts = []string{
	"a", "b", "Z", " ", "0", "9", "-", "{", "}", "[", "]", ",", ":", "tru", "nul",
	`\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`, `\u0041`, `\u00e9`, `\uFFFF`, `\uD83D\uDE00`, `\ud800`,
	"é", "日本", "😀", "\u2028", "\x7f",
}

func genString(rng *rand.Rand, b *bytes.Buffer) {
	b.WriteByte('"')
	for range rng.IntN(8) {
		b.WriteString(stringParts[rng.IntN(len(stringParts))])
	}
	b.WriteByte('"')
}

func genNumber(rng *rand.Rand, b *bytes.Buffer) {
	if rng.IntN(3) == 0 {
		b.WriteByte('-')
	}
	if rng.IntN(4) == 0 {
		b.WriteByte('0')
	} else {
		b.WriteByte(byte('1' + rng.IntN(9)))
		for range rng.IntN(4) {
			b.WriteByte(byte('0' + rng.IntN(10)))
		}
	}
	if rng.IntN(3) == 0 {
		b.WriteByte('.')
		for range 1 + rng.IntN(3) {
			b.WriteByte(byte('0' + rng.IntN(10)))
		}
	}
	if rng.IntN(3) == 0 {
		b.WriteString([]string{"e", "E"}[rng.IntN(2)])
		b.WriteString([]string{"", "+", "-"}[rng.IntN(3)])
		for range 1 + rng.IntN(3) {
			b.WriteByte(byte('0' + rng.IntN(10)))
		}
	}
}

// benchDoc returns an indented object of about size bytes: an array of
// records such as a model might produce.
func benchDoc(size int) []byte {
	var b bytes.Buffer
	b.WriteString("{\n  \"summary\": \"A list of records, with \\\"quotes\\\", escapes \\u00e9 and UTF-8 é.\",\n  \"items\": [")
	for i := 0; b.Len() < size-120; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "\n    {\"id\": %d, \"name\": \"item %d\", \"price\": %d.%02d, \"ratio\": -1.5e-3, "+
			"\"tags\": [\"red\", \"large\"], \"in_stock\": %v, \"note\": null}", i, i, i*3, i%100, i%2 == 0)
	}
	b.WriteString("\n  ],\n  \"done\": true\n}\n")
	return b.Bytes()
}

func BenchmarkParser(b *testing.B) {
	doc := benchDoc(10 << 10)
	const piece = 20
	run := func(b *testing.B, snapshot func(p *Parser, buf []byte) []byte) {
		b.ReportAllocs()
		b.SetBytes(int64(len(doc)))
		var p Parser
		var buf []byte
		for b.Loop() {
			p.Reset()
			for pos := 0; pos < len(doc); pos += piece {
				if err := p.Write(doc[pos:min(pos+piece, len(doc))]); err != nil {
					b.Fatal(err)
				}
				if snapshot != nil {
					buf = snapshot(&p, buf)
				}
			}
			if err := p.Close(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("no-snapshot", func(b *testing.B) { run(b, nil) })
	b.Run("snapshot", func(b *testing.B) {
		run(b, func(p *Parser, _ []byte) []byte { return p.Snapshot() })
	})
	b.Run("snapshot-if-changed", func(b *testing.B) {
		run(b, func(p *Parser, buf []byte) []byte {
			if p.Changed() {
				return p.Snapshot()
			}
			return buf
		})
	})
	b.Run("append-snapshot", func(b *testing.B) {
		run(b, func(p *Parser, buf []byte) []byte { return p.AppendSnapshot(buf[:0]) })
	})
}

// BenchmarkParserSize shows the cost per byte staying flat from 10 KB to
// 1 MB, fed in 20-byte pieces.
func BenchmarkParserSize(b *testing.B) {
	for _, size := range []int{10 << 10, 1 << 20} {
		doc := benchDoc(size)
		b.Run(strconv.Itoa(size>>10)+"KB", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(doc)))
			var p Parser
			for b.Loop() {
				p.Reset()
				for pos := 0; pos < len(doc); pos += 20 {
					if err := p.Write(doc[pos:min(pos+20, len(doc))]); err != nil {
						b.Fatal(err)
					}
				}
				if err := p.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// jsonMaxDepth is encoding/json's nesting limit; the fuzz target uses it so
// that json.Valid is an exact oracle.
const jsonMaxDepth = 10000

// jsonErrorOffset returns where encoding/json finds invalid input in, in
// this package's convention: the offset of the offending byte, or len(in)
// if in ended too early.
func jsonErrorOffset(t *testing.T, in []byte) int64 {
	t.Helper()
	// A byte that is wrong everywhere tells an early end from an error at
	// the last byte: encoding/json counts the offending byte in Offset.
	probe := append(in[:len(in):len(in)], 0x01)
	var v json.RawMessage
	err := json.Unmarshal(probe, &v)
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("encoding/json accepts %q: %v", probe, err)
	}
	return se.Offset - 1
}

func FuzzParser(f *testing.F) {
	seeds := []string{
		`{"a": 1, "b": "x", "c": true}`, ` [1, 2.5 ,"three", null, false] `,
		`{"a":{"b":[1,{"c":"d"}],"e":[]},"f":{}}`,
		`{"k\"ey":"a\\b\/\n\t\u00e9\uD83D\uDE00","x":"\"","y":"é😀"}`,
		"[0,-0,-0.5e+10,1E-2,12.25e3,100,9007199254740993\n]", `"x"`, `-1.5e3`, `0`, `true`, ` null `,
		`{"a" 1`, `[1,]`, `01`, `1.e5`, `[1x]`, `trux`, "\"\xed\xa0\x80\"", `{} {}`, `{"a":[1,2`,
		"\xef\xbb\xbf{}", `"\u12g4"`, strings.Repeat("[", 300) + strings.Repeat("]", 300),
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		seeds = append(seeds, string(genDoc(rng, 4)))
	}
	for i, s := range seeds {
		f.Add([]byte(s), uint16(i*7))
	}
	f.Fuzz(func(t *testing.T, in []byte, cut uint16) {
		k := int(cut) % (len(in) + 1)
		p := Parser{MaxDepth: jsonMaxDepth}
		err := p.Write(in[:k])
		mid := p.Snapshot()
		if mid != nil && !json.Valid(mid) {
			t.Fatalf("snapshot after %q is not valid JSON: %q", in[:k], mid)
		}
		if err == nil {
			err = p.Write(in[k:])
		}
		if err == nil {
			err = p.Close()
		}
		final := p.Snapshot()
		if final != nil && !json.Valid(final) {
			t.Fatalf("snapshot after %q is not valid JSON: %q", in, final)
		}
		if e := extends(mid, final); e != nil {
			t.Fatalf("%q then %q: %v", mid, final, e)
		}

		// Byte by byte: the same error, at the same offset, and snapshot.
		q := Parser{MaxDepth: jsonMaxDepth}
		var qerr error
		for i := 0; i < len(in) && qerr == nil; i++ {
			qerr = q.Write(in[i : i+1])
		}
		if qerr == nil {
			qerr = q.Close()
		}
		if fmt.Sprint(err) != fmt.Sprint(qerr) || !bytes.Equal(final, q.Snapshot()) {
			t.Fatalf("%q: split at %d: %v, %q; byte by byte: %v, %q", in, k, err, final, qerr, q.Snapshot())
		}

		if json.Valid(in) && utf8.Valid(in) {
			if err != nil {
				t.Fatalf("valid %q: %v", in, err)
			}
			var want bytes.Buffer
			if err := json.Compact(&want, in); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(final, want.Bytes()) {
				t.Fatalf("valid %q: snapshot %q, want %q", in, final, want.Bytes())
			}
			if r := ref(in[:k], false); string(mid) != r {
				t.Fatalf("after %q: snapshot %q, reference %q", in[:k], mid, r)
			}
			return
		}
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Fatalf("invalid %q: error %v, want a *SyntaxError", in, err)
		}
		// Errors are reported as soon as they are certain: where
		// encoding/json finds them, or earlier for invalid UTF-8, which
		// encoding/json lets through.
		jsonOff := jsonErrorOffset(t, in)
		if utf8.Valid(in) && se.Offset != jsonOff || se.Offset > jsonOff {
			t.Fatalf("invalid %q: error at %d (%v), encoding/json's at %d", in, se.Offset, err, jsonOff)
		}
	})
}
