package jsonw

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// FuzzAppendString checks that the output is what encoding/json writes
// (without its HTML escaping) and decodes back to the same text.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote \" and \\", "tab\tnl\ncr\r\b\f\x00\x1f", "é ü 漢字 🙂", "\u2028\u2029", "bad \xff utf8", "<a>&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := AppendString(nil, s)
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		if w := bytes.TrimSuffix(want.Bytes(), []byte("\n")); !bytes.Equal(got, w) {
			t.Fatalf("AppendString(%q) = %s, encoding/json writes %s", s, got, w)
		}
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("output %s does not decode: %v", got, err)
		}
	})
}

// FuzzAppendUnquoted checks that unquoting what AppendString wrote gives back
// the text, and that whatever it accepts, encoding/json decodes the same.
func FuzzAppendUnquoted(f *testing.F) {
	for _, s := range []string{"", "plain", `q \" b \\ s \/`, `\u00e9\ud83d\ude42`, `\ud800`, `\n\t\b\f\r`, "bad \xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if utf8.ValidString(s) {
			q := AppendString(nil, s)
			got, ok := AppendUnquoted(nil, q[1:len(q)-1])
			if !ok || string(got) != s {
				t.Fatalf("round trip of %q: %q, %v", s, got, ok)
			}
		}
		got, ok := AppendUnquoted(nil, []byte(s))
		if !ok {
			return
		}
		var want string
		if err := json.Unmarshal([]byte(`"`+s+`"`), &want); err != nil {
			return // not a string body: the caller's scanner refuses it first
		}
		if want != string(got) {
			t.Fatalf("AppendUnquoted(%q) = %q, encoding/json: %q", s, got, want)
		}
	})
}
