package guard

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sluice-gw/sluice"
	"github.com/tiktoken-go/tokenizer"
)

// libCount counts s with the library's own (regular-expression)
// tokenizer. ok is false when the library cannot count s, or counts it
// wrong: it skips U+007F (see TestCountText).
func libCount(t testing.TB, enc Encoding, s string) (n int, ok bool) {
	t.Helper()
	if strings.ContainsRune(s, 0x7f) {
		return 0, false
	}
	c, err := tokenizer.Get(tokenizer.Encoding(enc))
	if err != nil {
		t.Fatal(err)
	}
	n, err = c.Count(s)
	return n, err == nil
}

func TestCountText(t *testing.T) {
	for _, tc := range []struct {
		enc  Encoding
		text string
		want int
	}{
		{O200kBase, "hello world", 2},
		{Cl100kBase, "hello world", 2},
		{Cl100kBase, "tiktoken is great!", 6}, // the cookbook's example: [83, 1609, 5963, 374, 2294, 0]
		{O200kBase, "", 0},
		{O200kBase, " ", 1},
		// U+007F is a token of its own, as in tiktoken; the library's
		// regular expression skips it (its ASCII table of
		// [^\s\p{L}\p{N}] lacks bit 127), so it counts 0 here.
		{O200kBase, "\x7f", 1},
		{Cl100kBase, "a\x7fb", 3},
	} {
		if got := encoder(tc.enc).count(tc.text); got != tc.want {
			t.Errorf("%s %q: %d tokens, want %d", tc.enc, tc.text, got, tc.want)
		}
	}
}

// cookbookMessages are the example of OpenAI's cookbook "How to count
// tokens with tiktoken", which gives 129 prompt tokens for gpt-3.5-turbo
// and gpt-4 and 124 for gpt-4o and gpt-4o-mini, as the API reported them.
var cookbookMessages = []struct{ role, name, content string }{
	{"system", "", "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
	{"system", "example_user", "New synergies will help drive top-line growth."},
	{"system", "example_assistant", "Things working well together will increase revenue."},
	{"system", "example_user", "Let's circle back when we have more time to touch base on opportunities for increased leverage."},
	{"system", "example_assistant", "Let's talk later when we're less busy about how to do better."},
	{"user", "", "This late pivot means we don't have time to boil the ocean for the client deliverable."},
}

func TestCookbookExample(t *testing.T) {
	// The cookbook's rule, literally: 3 per message, the tokens of every
	// value (role, name, content), 1 per name, 3 for the reply.
	for _, tc := range []struct {
		model string
		want  int
	}{{"gpt-4o", 124}, {"gpt-4o-mini", 124}, {"gpt-4", 129}, {"gpt-3.5-turbo", 129}} {
		enc, _ := EncodingFor(tc.model)
		b := encoder(enc)
		n := replyPriming
		for _, m := range cookbookMessages {
			n += tokensPerMessage + b.count(m.role) + b.count(m.content)
			if m.name != "" {
				n += b.count(m.name) + tokensPerName
			}
		}
		if n != tc.want {
			t.Errorf("%s: the cookbook rule gives %d, want %d", tc.model, n, tc.want)
		}

		// The same conversation as a Request: the named system messages
		// become named user and assistant turns, whose roles are one token
		// like "system".
		req := &sluice.Request{System: []sluice.Part{sluice.TextPart(cookbookMessages[0].content)}}
		for _, m := range cookbookMessages[1:] {
			role := sluice.RoleUser
			if strings.HasSuffix(m.name, "assistant") {
				role = sluice.RoleAssistant
			}
			req.Messages = append(req.Messages, sluice.Message{Role: role, Name: m.name, Parts: []sluice.Part{sluice.TextPart(m.content)}})
		}
		got, exact := CountPrompt(req, tc.model)
		if got != tc.want || !exact {
			t.Errorf("%s: CountPrompt = %d (exact %v), want %d exact", tc.model, got, exact, tc.want)
		}
	}
}

func TestEncodingFor(t *testing.T) {
	for _, tc := range []struct {
		model string
		enc   Encoding
		exact bool
	}{
		{"gpt-4o", O200kBase, true},
		{"gpt-4o-2024-08-06", O200kBase, true},
		{"GPT-4o-mini", O200kBase, true},
		{"openai/gpt-4.1-nano", O200kBase, true},
		{"ft:gpt-4o-mini-2024-07-18:acme::abc123", O200kBase, true},
		{"o1", O200kBase, true},
		{"o3-mini", O200kBase, true},
		{"o4-mini-2025-04-16", O200kBase, true},
		{"gpt-5", O200kBase, true},
		{"gpt-5.1-chat-latest", O200kBase, true},
		{"chatgpt-4o-latest", O200kBase, true},
		{"gpt-4", Cl100kBase, true},
		{"gpt-4-turbo-2024-04-09", Cl100kBase, true},
		{"gpt-4-0613", Cl100kBase, true},
		{"gpt-3.5-turbo", Cl100kBase, true},
		{"gpt-35-turbo", Cl100kBase, true},
		{"text-embedding-3-small", Cl100kBase, true},
		{"claude-sonnet-4-20250514", O200kBase, false},
		{"us.anthropic.claude-3-5-haiku-20241022-v1:0", O200kBase, false},
		{"gemini-2.5-pro", O200kBase, false},
		{"llama-3.1-70b", O200kBase, false},
		{"o1x", O200kBase, false}, // not an o-series name
		{"", O200kBase, false},
	} {
		enc, exact := EncodingFor(tc.model)
		if enc != tc.enc || exact != tc.exact {
			t.Errorf("EncodingFor(%q) = %s, %v; want %s, %v", tc.model, enc, exact, tc.enc, tc.exact)
		}
	}
}

// samples are short texts in many scripts, with the pre-tokenizers'
// corner cases: contractions in both cases and with ſ, marks, modifier
// letters, title case, digits of other scripts, every kind of white space.
var samples = []string{
	"Hello, World! It's 2025; we're DONE'LL 'S 'ſ and ' alone. I'M here, they'd've.",
	"Ünïcödé façade — naïve café. ÀÉÎÕÜ ǅemal ǈ Ǳ ῼ",
	"日本語のテキストです。東京は晴れ。ｶﾀｶﾅ ㈱",
	"中文文本，包括标点符号。孙子曰：兵者，国之大事。",
	"한국어 텍스트입니다. 운수 좋은 날",
	"Русский текст с ЗАГЛАВНЫМИ буквами и числами 12345.",
	"العربية مع الأرقام ١٢٣٤٥ و علامات َ ُ ِ",
	"हिन्दी पाठ, देवनागरी में। ०१२३",
	"emoji 👍🏽 👨‍👩‍👧‍👦 ❤️ 🇫🇷 ok",
	"tabs\tand\r\nnewlines\n\n\n  \t \nend  \u00a0\u2003x\u3000y  ",
	"path/to/file.go:12:34 //comment\n\t\tx := a[i]/b[j] ///\n",
	"a\u0301b\u0301\u0301 ʰello ʰʰ x\u02b0y Ǆǅǆ",
	"   leading and trailing   ",
	"\n", "\r", " \n ", "'", "'s", "''s", "x's", "X'S", "9's", "1234567", "١٢٣٤",
	"$$$ ... !!! ??? --- ***", "<|endoftext|> special text",
	"```go\nfunc main() {\n\tfmt.Println(\"hi\")\n}\n```",
	`{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}`,
	strings.Repeat("a", 300), strings.Repeat("ab", 200), strings.Repeat(" ", 150) + "x", strings.Repeat("=", 500),
}

// palette mixes characters of every class the pre-tokenizers tell apart.
var palette = []rune("aAzZ09 \t\n\r\v\f'sStTmMdDlLrReEvV_-/.,;:!?\"()[]{}<>@#$%^&*+=|\\~`" +
	"ſéÉçÇ\u0301\u0308\u02b0\u02bcǅǈ日本語カナ中文한글ДдЖжعربي١٢३४\u00a0\u2003\u3000\u2028\u0085" +
	"👍🏽‍❤️Ⅻⅻ½²①")

func randomText(r *rand.Rand, n int) string {
	var b strings.Builder
	for range n {
		b.WriteRune(palette[r.IntN(len(palette))])
	}
	return b.String()
}

// TestCountMatchesLibrary checks that the hand-written pre-tokenizers and
// merges count as the library's regular-expression tokenizer does.
func TestCountMatchesLibrary(t *testing.T) {
	texts := append([]string(nil), samples...)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		texts = append(texts, randomText(r, 1+i%97))
	}
	for _, f := range corpusFiles(t) {
		data, err := os.ReadFile(f)
		if err == nil && utf8.Valid(data) {
			texts = append(texts, string(data))
		}
	}
	for _, enc := range []Encoding{O200kBase, Cl100kBase} {
		b := encoder(enc)
		for _, s := range texts {
			want, ok := libCount(t, enc, s)
			if !ok {
				continue
			}
			if got := b.count(s); got != want {
				t.Errorf("%s: %d tokens, library %d: %.80q", enc, got, want, s)
			}
		}
	}
}

func FuzzCountMatchesLibrary(f *testing.F) {
	for _, s := range samples {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			// The library reads invalid bytes as U+FFFD (three bytes);
			// this counter keeps them as single bytes, as tiktoken does.
			for _, enc := range []Encoding{O200kBase, Cl100kBase} {
				encoder(enc).count(s) // must not panic
			}
			return
		}
		for _, enc := range []Encoding{O200kBase, Cl100kBase} {
			want, ok := libCount(t, enc, s)
			if !ok {
				continue
			}
			if got := encoder(enc).count(s); got != want {
				t.Errorf("%s: %d tokens, library %d: %q", enc, got, want, s)
			}
		}
	})
}

// corpusFiles returns texts found on this machine: prose (Go's spec, this
// repository's docs), code (the Go standard library) and prose in French,
// Japanese, Chinese and Korean (golang.org/x/text's test data, in the
// module cache). Missing ones are skipped.
func corpusFiles(t testing.TB) []string {
	t.Helper()
	var files []string
	goroot := runtime.GOROOT()
	for _, p := range []string{
		"doc/go_spec.html", "doc/go_mem.html",
		"src/net/http/server.go", "src/encoding/json/decode.go", "src/runtime/proc.go",
	} {
		files = append(files, filepath.Join(goroot, p))
	}
	docs, _ := filepath.Glob("../docs/*.md")
	files = append(files, docs...)
	files = append(files, filepath.Join("..", "README.md"))
	if cache := modCache(); cache != "" {
		text, _ := filepath.Glob(filepath.Join(cache, "golang.org/x/text@*/encoding/testdata/*-utf-8.txt"))
		files = append(files, text...)
	}
	var found []string
	for _, f := range files {
		if _, err := os.Stat(f); err == nil {
			found = append(found, f)
		}
	}
	return found
}

func modCache() string {
	if c := os.Getenv("GOMODCACHE"); c != "" {
		return c
	}
	if p := os.Getenv("GOPATH"); p != "" {
		return filepath.Join(filepath.SplitList(p)[0], "pkg", "mod")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, "go", "pkg", "mod")
	}
	return ""
}

// TestTokenRatios reports, for the texts corpusFiles finds, how o200k_base
// compares with cl100k_base and with bytes/4: the figures behind
// EstimateFactor's comment. Run with -v to see them.
func TestTokenRatios(t *testing.T) {
	for _, f := range corpusFiles(t) {
		data, err := os.ReadFile(f)
		if err != nil || !utf8.Valid(data) {
			continue
		}
		s := string(data)
		o := encoder(O200kBase).count(s)
		c := encoder(Cl100kBase).count(s)
		t.Logf("%-40s %8d bytes %7d o200k  cl100k/o200k %.2f  (bytes/4)/o200k %.2f",
			filepath.Base(f), len(s), o, float64(c)/float64(o), float64(len(s))/4/float64(o))
	}
}

func TestCountPromptParts(t *testing.T) {
	text := func(role sluice.Role, s string) sluice.Message {
		return sluice.Message{Role: role, Parts: []sluice.Part{sluice.TextPart(s)}}
	}
	base := &sluice.Request{
		System:   []sluice.Part{sluice.TextPart("You are terse.")},
		Messages: []sluice.Message{text(sluice.RoleUser, "What is the capital of France?")},
	}
	n0, exact := CountPrompt(base, "gpt-4o")
	// 3 (reply) + 3+1+4 ("You are terse.") + 3+1+7 (the question).
	if want := 3 + 3 + 1 + encoder(O200kBase).count("You are terse.") + 3 + 1 + encoder(O200kBase).count("What is the capital of France?"); n0 != want || !exact {
		t.Fatalf("text only: %d (exact %v), want %d exact", n0, exact, want)
	}

	params := json.RawMessage(`{"type":"object","properties":{"city":{"type":"string","description":"The city"}},"required":["city"]}`)
	withTools := *base
	withTools.Tools = []sluice.Tool{{Name: "get_weather", Description: "Get the weather of a city.", Parameters: params}}
	n, exact := CountPrompt(&withTools, "gpt-4o")
	b := encoder(O200kBase)
	want := n0 + toolsTokens + toolDefTokens + b.count("get_weather") + b.count("Get the weather of a city.") + b.count(string(params))
	if n != want || exact {
		t.Errorf("with a tool: %d (exact %v), want %d estimated", n, exact, want)
	}

	// Claude: the o200k count scaled, plus the tool-use system prompt.
	nc, exact := CountPrompt(&withTools, "claude-sonnet-4-20250514")
	if want := estimate(want) + claudeToolSystemTokens; nc != want || exact {
		t.Errorf("claude with a tool: %d (exact %v), want %d estimated", nc, exact, want)
	}

	// Images add their rule's tokens, unscaled.
	img := *base
	img.Messages = []sluice.Message{{Role: sluice.RoleUser, Parts: []sluice.Part{
		sluice.TextPart("What is the capital of France?"),
		{Type: sluice.PartImage, ImageData: pngBytes(t, 1024, 1024), MediaType: "image/png"},
	}}}
	n, exact = CountPrompt(&img, "gpt-4o")
	if n != n0+765 || exact {
		t.Errorf("gpt-4o with a 1024² image: %d (exact %v), want %d estimated", n, exact, n0+765)
	}
	n, _ = CountPrompt(&img, "claude-3-5-haiku")
	if want := estimate(n0) + 1399; n != want { // ceil(1024²/750) = 1399
		t.Errorf("claude with a 1024² image: %d, want %d", n, want)
	}

	// Thinking is not sent to OpenAI; tool calls and results count.
	hist := *base
	hist.Messages = []sluice.Message{
		text(sluice.RoleUser, "Weather in Paris?"),
		{Role: sluice.RoleAssistant, Parts: []sluice.Part{
			{Type: sluice.PartThinking, Text: strings.Repeat("thinking hard ", 50)},
			{Type: sluice.PartToolCall, ToolCallID: "call_1", ToolName: "get_weather", Arguments: `{"city":"Paris"}`},
		}},
		{Role: sluice.RoleTool, Parts: []sluice.Part{{Type: sluice.PartToolResult, ToolCallID: "call_1", Text: "18°C, sunny"}}},
	}
	n, exact = CountPrompt(&hist, "gpt-4o")
	want = 3 + (3 + 1 + b.count("You are terse.")) + (3 + 1 + b.count("Weather in Paris?")) +
		(3 + 1 + toolCallTokens + b.count("get_weather") + b.count(`{"city":"Paris"}`)) +
		(3 + 1 + b.count("call_1") + b.count("18°C, sunny"))
	if n != want || exact {
		t.Errorf("history: %d (exact %v), want %d estimated", n, exact, want)
	}
	if nc, _ := CountPrompt(&hist, "claude-sonnet-4"); nc <= estimate(want) {
		t.Errorf("claude counts thinking: %d, want more than %d", nc, estimate(want))
	}

	// A JSON Schema output counts its schema.
	js := *base
	js.Output = sluice.Output{Type: sluice.OutputJSONSchema, Name: "answer", Schema: params}
	if n, exact := CountPrompt(&js, "gpt-4o"); n != n0+b.count("answer")+b.count(string(params)) || exact {
		t.Errorf("json schema: %d (exact %v)", n, exact)
	}
}

func TestCountTextEstimate(t *testing.T) {
	s := "The quick brown fox jumps over the lazy dog."
	o := encoder(O200kBase).count(s)
	if n, exact := CountText("gpt-4o", s); n != o || !exact {
		t.Errorf("gpt-4o: %d %v, want %d exact", n, exact, o)
	}
	if n, exact := CountText("claude-opus-4", s); n != estimate(o) || exact || n <= o {
		t.Errorf("claude: %d %v, want %d estimated", n, exact, estimate(o))
	}
}
