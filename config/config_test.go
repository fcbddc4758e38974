package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// envFunc returns a getenv over a map.
func envFunc(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// minimal is the smallest valid body after the top-level keys.
const minimal = `providers:
  - name: s
    type: sim
models:
  - name: m
    targets: [{provider: s, model: m}]
`

// defaultStreams are the stream settings when none are set.
var defaultStreams = Streams{
	Heartbeat: Duration(DefaultHeartbeat), WriteTimeout: Duration(DefaultStreamWriteTimeout),
	ResumeGrace: Duration(DefaultResumeGrace), ResumeRetention: Duration(DefaultResumeRetention),
	ResumeMaxBytes: DefaultResumeMaxBytes,
}

// defaultTimeouts are the timeouts a provider gets when it sets none.
var defaultTimeouts = Timeouts{
	Connect: Duration(DefaultConnectTimeout), FirstToken: Duration(DefaultFirstTokenTimeout),
	Idle: Duration(DefaultIdleTimeout), Total: Duration(DefaultTotalTimeout),
}

// with returns t with the non-zero fields of over.
func (t Timeouts) with(over Timeouts) Timeouts { return over.Or(t) }

func TestParseGood(t *testing.T) {
	tests := []struct {
		name string
		src  string
		env  map[string]string
		want *Config
	}{
		{
			name: "full",
			src: `listen: 0.0.0.0:9000   # all interfaces
drain_timeout: 30s
max_body_bytes: 1048576
providers:
  - name: main
    type: openai
    base_url: https://api.openai.com/v1
    api_key: ${OPENAI_API_KEY}
    headers: {X-Org: abc}
    timeouts: {first_token: 30s}
  - name: claude
    type: anthropic
    api_key: ${ANTHROPIC_API_KEY}
    max_tokens_default: 8192
  - name: local
    type: openai
    base_url: http://127.0.0.1:11434/v1
models:
  - name: smart
    targets:
      - {provider: main, model: gpt-4o-mini}
      - provider: claude
        model: claude-haiku-4-5
  - name: cheap
    targets: [{provider: local, model: llama3}]
    timeouts: {idle: 5s}
`,
			env: map[string]string{"OPENAI_API_KEY": "sk-1", "ANTHROPIC_API_KEY": "sk-ant"},
			want: &Config{
				Listen:       "0.0.0.0:9000",
				DrainTimeout: Duration(30 * time.Second),
				MaxBodyBytes: 1 << 20,
				Streams:      defaultStreams,
				Providers: []Provider{
					{Name: "main", Type: "openai", BaseURL: "https://api.openai.com/v1", APIKey: "sk-1", Headers: map[string]string{"X-Org": "abc"}, Timeouts: defaultTimeouts.with(Timeouts{FirstToken: Duration(30 * time.Second)})},
					{Name: "claude", Type: "anthropic", BaseURL: DefaultAnthropicBaseURL, APIKey: "sk-ant", MaxTokensDefault: 8192, Timeouts: defaultTimeouts},
					{Name: "local", Type: "openai", BaseURL: "http://127.0.0.1:11434/v1", Timeouts: defaultTimeouts},
				},
				Models: []Model{
					{Name: "smart", Targets: []Target{{Provider: "main", Model: "gpt-4o-mini"}, {Provider: "claude", Model: "claude-haiku-4-5"}}},
					{Name: "cheap", Targets: []Target{{Provider: "local", Model: "llama3"}}, Timeouts: Timeouts{Idle: Duration(5 * time.Second)}},
				},
			},
		},
		{
			name: "defaults",
			src: `providers:
  - {name: o, type: openai}
  - {name: a, type: anthropic}
models:
  - name: m
    targets: [{provider: o, model: x}]
`,
			want: &Config{
				Listen:       DefaultListen,
				DrainTimeout: Duration(DefaultDrainTimeout),
				MaxBodyBytes: DefaultMaxBodyBytes,
				Streams:      defaultStreams,
				Providers: []Provider{
					{Name: "o", Type: "openai", BaseURL: DefaultOpenAIBaseURL, Timeouts: defaultTimeouts},
					{Name: "a", Type: "anthropic", BaseURL: DefaultAnthropicBaseURL, MaxTokensDefault: DefaultAnthropicMaxTokens, Timeouts: defaultTimeouts},
				},
				Models: []Model{{Name: "m", Targets: []Target{{Provider: "o", Model: "x"}}}},
			},
		},
		{
			name: "zero duration and port zero",
			src:  "listen: ':0'\ndrain_timeout: 0\n" + minimal,
			want: &Config{
				Listen:       ":0",
				DrainTimeout: Duration(DefaultDrainTimeout),
				MaxBodyBytes: DefaultMaxBodyBytes,
				Streams:      defaultStreams,
				Providers:    []Provider{{Name: "s", Type: "sim", Timeouts: defaultTimeouts}},
				Models:       []Model{{Name: "m", Targets: []Target{{Provider: "s", Model: "m"}}}},
			},
		},
		{
			name: "anchors and aliases",
			src: `providers:
  - &p {name: s, type: sim}
models:
  - name: a
    targets: &t [{provider: s, model: m}]
  - name: b
    targets: *t
`,
			want: &Config{
				Listen:       DefaultListen,
				DrainTimeout: Duration(DefaultDrainTimeout),
				MaxBodyBytes: DefaultMaxBodyBytes,
				Streams:      defaultStreams,
				Providers:    []Provider{{Name: "s", Type: "sim", Timeouts: defaultTimeouts}},
				Models: []Model{
					{Name: "a", Targets: []Target{{Provider: "s", Model: "m"}}},
					{Name: "b", Targets: []Target{{Provider: "s", Model: "m"}}},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.src), envFunc(tt.env))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string // the whole error text
	}{
		{
			name: "unknown type",
			src: `providers:
  - name: a
    type: sim
  - name: b
    type: sim
  - name: c
    type: opneai
models:
  - name: m
    targets: [{provider: a, model: m}]
`,
			want: `7:5: providers[2].type: unknown type "opneai" (want openai, anthropic or sim)`,
		},
		{
			name: "unknown key",
			src:  "listen: 127.0.0.1:1\nlisen: x\n" + minimal,
			want: `2:1: lisen: unknown field "lisen"`,
		},
		{
			name: "unknown nested key",
			src: `providers:
  - name: s
    type: sim
    apikey: x
models:
  - name: m
    targets: [{provider: s, model: m, weight: 2}]
`,
			want: `4:5: providers[0].apikey: unknown field "apikey"`,
		},
		{
			name: "duplicate key",
			src:  "listen: a:1\nlisten: b:2\n" + minimal,
			want: `2:1: mapping key "listen" already defined at [1:1]`,
		},
		{
			name: "syntax",
			src:  "providers: [\n",
			want: `1:12: sequence end token ']' not found`,
		},
		{
			name: "bad duration",
			src:  "drain_timeout: soon\n" + minimal,
			want: `1:16: drain_timeout: want a duration such as 10s, 1m30s or 250ms (or off where the key allows)`,
		},
		{
			name: "negative duration",
			src:  "drain_timeout: -1s\n" + minimal,
			want: `1:1: drain_timeout: must not be negative`,
		},
		{
			name: "wrong scalar type",
			src:  "max_body_bytes: lots\n" + minimal,
			want: `1:17: max_body_bytes: want an integer`,
		},
		{
			name: "negative body",
			src:  "max_body_bytes: -5\n" + minimal,
			want: `1:1: max_body_bytes: must not be negative`,
		},
		{
			name: "listen not host:port",
			src:  "listen: localhost\n" + minimal,
			want: `1:1: listen: "localhost" is not host:port`,
		},
		{
			name: "listen bad port",
			src:  "listen: localhost:http\n" + minimal,
			want: `1:1: listen: "localhost:http": port must be a number from 0 to 65535`,
		},
		{
			name: "provider name missing",
			src: `providers:
  - type: sim
models:
  - name: m
    targets: [{provider: x, model: m}]
`,
			want: "2:5: providers[0]: name: required\n" + // placeholder, replaced below
				"",
		},
		{
			name: "duplicate provider",
			src: `providers:
  - {name: a, type: sim}
  - {name: a, type: sim}
models:
  - name: m
    targets: [{provider: a, model: m}]
`,
			want: `3:6: providers[1].name: duplicate provider name "a" (also providers[0])`,
		},
		{
			name: "type missing",
			src: `providers:
  - name: a
models:
  - name: m
    targets: [{provider: a, model: m}]
`,
			want: `2:5: providers[0].type: required (openai, anthropic or sim)`,
		},
		{
			name: "base url not absolute",
			src: `providers:
  - name: a
    type: openai
    base_url: api.openai.com/v1
models:
  - name: m
    targets: [{provider: a, model: m}]
`,
			want: `4:5: providers[0].base_url: want an absolute http:// or https:// URL`,
		},
		{
			name: "base url scheme",
			src: `providers:
  - name: a
    type: openai
    base_url: ftp://user:secret@example.com/
models:
  - name: m
    targets: [{provider: a, model: m}]
`,
			want: `4:5: providers[0].base_url: want an absolute http:// or https:// URL`,
		},
		{
			name: "bad header",
			src: `providers:
  - name: a
    type: openai
    headers:
      "X Org": v
models:
  - name: m
    targets: [{provider: a, model: m}]
`,
			want: `5:7: providers[0].headers.X Org: not a valid HTTP header name`,
		},
		{
			name: "negative max tokens",
			src: `providers:
  - name: a
    type: anthropic
    max_tokens_default: -1
models:
  - name: m
    targets: [{provider: a, model: m}]
`,
			want: `4:5: providers[0].max_tokens_default: must not be negative`,
		},
		{
			name: "no providers no models",
			src:  "listen: 127.0.0.1:1\n",
			want: "providers: at least one provider is required\nmodels: at least one model is required",
		},
		{
			name: "duplicate model",
			src: `providers: [{name: s, type: sim}]
models:
  - name: m
    targets: [{provider: s, model: m}]
  - name: m
    targets: [{provider: s, model: m}]
`,
			want: `5:5: models[1].name: duplicate model name "m" (also models[0])`,
		},
		{
			name: "empty targets",
			src: `providers: [{name: s, type: sim}]
models:
  - name: m
    targets: []
`,
			want: `4:5: models[0].targets: at least one target is required`,
		},
		{
			name: "missing targets",
			src: `providers: [{name: s, type: sim}]
models:
  - name: m
`,
			want: `3:5: models[0].targets: at least one target is required`,
		},
		{
			name: "unknown target provider",
			src: `providers: [{name: s, type: sim}]
models:
  - name: m
    targets:
      - {provider: s, model: m}
      - {provider: t, model: m}
`,
			want: `6:10: models[0].targets[1].provider: unknown provider "t"`,
		},
		{
			name: "target model missing",
			src: `providers: [{name: s, type: sim}]
models:
  - name: m
    targets:
      - provider: s
`,
			want: `5:9: models[0].targets[0].model: required`,
		},
		{
			name: "two documents",
			src:  minimal + "---\n" + minimal,
			want: `7:1: want one YAML document, found 2`,
		},
		{
			name: "not a mapping",
			src:  "- a\n- b\n",
			want: `1:1: sequence was used where mapping is expected`,
		},
		{
			name: "bad reference",
			src:  "listen: ${1X}\n" + minimal,
			want: `1:9: listen: invalid ${...} reference: want ${NAME} or ${NAME:-default} (write $${ for a literal ${)`,
		},
		{
			name: "local tag",
			src:  "providers: !foo [a]\n",
			want: `1:12: providers: unsupported YAML tag`,
		},
		{
			name: "reserved characters",
			src:  "listen: \ue000\n",
			want: `1:9: the characters U+E000 to U+E17F are reserved`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "provider name missing" {
				tt.want = "2:5: providers[0].name: required\n5:16: models[0].targets[0].provider: unknown provider \"x\""
			}
			c, err := Parse([]byte(tt.src), envFunc(nil))
			if err == nil {
				t.Fatalf("Parse = %+v, want error %q", c, tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error:\n got %q\nwant %q", got, tt.want)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not a *config.Error", err)
			}
		})
	}
}

func TestEnvExpansion(t *testing.T) {
	env := map[string]string{
		"KEY":   "sk-#not a comment: {x}\nline two \"quoted\"",
		"HOST":  "127.0.0.1",
		"PORT":  "9999",
		"BYTES": "2048",
		"WAIT":  "3s",
		"EMPTY": "",
		"MODEL": "gpt-4o",
		"REF":   "${KEY}", // a value is not expanded again
	}
	tests := []struct {
		name  string
		value string // the YAML text of providers[0].api_key
		want  string
	}{
		{"plain", "${KEY}", env["KEY"]},
		{"double quoted", `"${KEY}"`, env["KEY"]},
		{"single quoted", `'${KEY}'`, env["KEY"]},
		{"inside text", "pre-${MODEL}-post", "pre-gpt-4o-post"},
		{"two refs", "${HOST}:${PORT}", "127.0.0.1:9999"},
		{"unset", "${NOPE}", ""},
		{"unset with default", "${NOPE:-fallback}", "fallback"},
		{"empty with default", "${EMPTY:-fallback}", "fallback"},
		{"set with default", "${MODEL:-fallback}", "gpt-4o"},
		{"default with punctuation", `"${NOPE:-a, b: #c}"`, "a, b: #c"},
		{"empty default", "${NOPE:-}", ""},
		{"escape", "$${KEY}", "${KEY}"},
		{"no recursion", "${REF}", "${KEY}"},
		{"dollar alone", "a$b", "a$b"},
		{"standard tag", "!!str 123", "123"},
		{"block literal", "|\n      x ${MODEL}\n      y", "x gpt-4o\ny\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "providers:\n  - name: p\n    type: openai\n    api_key: " + tt.value + "\n" +
				"models:\n  - name: m\n    targets: [{provider: p, model: m}]\n"
			c, err := Parse([]byte(src), envFunc(env))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := c.Providers[0].APIKey.Value(); got != tt.want {
				t.Errorf("api_key = %q, want %q", got, tt.want)
			}
		})
	}

	t.Run("typed fields and flow mappings", func(t *testing.T) {
		src := `listen: ${HOST}:${PORT}   # ${NOT_EXPANDED_IN_COMMENTS}
drain_timeout: ${WAIT}
max_body_bytes: ${BYTES}
providers:
  - name: p
    type: ${TYPE:-openai}
    headers: {X-Model: ${MODEL}, X-Default: ${NOPE:-a, b}}
# ${ALSO_A_COMMENT
models:
  - name: m
    targets: [{provider: p, model: ${MODEL}}]
`
		var asked []string
		getenv := func(k string) string {
			asked = append(asked, k)
			return env[k]
		}
		c, err := Parse([]byte(src), getenv)
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		if c.Listen != "127.0.0.1:9999" || c.DrainTimeout.D() != 3*time.Second || c.MaxBodyBytes != 2048 {
			t.Errorf("got listen %q drain %v body %d", c.Listen, c.DrainTimeout, c.MaxBodyBytes)
		}
		if c.Providers[0].Type != "openai" || c.Models[0].Targets[0].Model != "gpt-4o" {
			t.Errorf("got %+v", c)
		}
		wantHeaders := map[string]string{"X-Model": "gpt-4o", "X-Default": "a, b"}
		if diff := cmp.Diff(wantHeaders, c.Providers[0].Headers); diff != "" {
			t.Errorf("headers (-want +got):\n%s", diff)
		}
		for _, k := range asked {
			if strings.HasPrefix(k, "NOT_") || strings.HasPrefix(k, "ALSO_") {
				t.Errorf("looked up %s, which is in a comment", k)
			}
		}
	})

	t.Run("positions after expansion", func(t *testing.T) {
		// The error after a reference on the same line keeps its column.
		src := `providers:
  - {name: p, type: openai, base_url: "${NOPE:-x}", api_key: ${KEY}}
  - {name: q, type: ${BAD:-nope}}
models:
  - name: m
    targets: [{provider: p, model: m}]
`
		_, err := Parse([]byte(src), envFunc(env))
		want := "2:29: providers[0].base_url: want an absolute http:// or https:// URL\n" +
			"3:15: providers[1].type: unknown type \"nope\" (want openai, anthropic or sim)"
		if err == nil || err.Error() != want {
			t.Errorf("error:\n got %v\nwant %s", err, want)
		}
	})

	t.Run("variable value is not YAML", func(t *testing.T) {
		src := "listen: ${HOST}\n" + minimal
		_, err := Parse([]byte(src), envFunc(map[string]string{"HOST": "a:1\nbogus: 2"}))
		want := `1:1: listen: "a:1\nbogus: 2" is not host:port`
		if err == nil || err.Error() != want {
			t.Errorf("error = %v, want %s", err, want)
		}
	})

	t.Run("empty api key is allowed", func(t *testing.T) {
		src := "providers: [{name: p, type: openai, base_url: 'http://127.0.0.1:8000/v1', api_key: '${UNSET}'}]\n" +
			"models: [{name: m, targets: [{provider: p, model: m}]}]\n"
		c, err := Parse([]byte(src), envFunc(nil))
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		if c.Providers[0].APIKey != "" {
			t.Errorf("api_key = %q, want empty", c.Providers[0].APIKey.Value())
		}
	})
}

// TestDocExample parses the complete example of docs/config.md.
func TestDocExample(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "config.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```yaml\n")
	example, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("no yaml block in docs/config.md")
	}
	c, err := Parse([]byte(example), envFunc(map[string]string{"OPENAI_API_KEY": "k"}))
	if err != nil {
		t.Fatalf("docs example: %v", err)
	}
	if len(c.Providers) != 4 || len(c.Models) != 3 || c.Providers[1].BaseURL != DefaultAnthropicBaseURL {
		t.Errorf("docs example parsed to %+v", c)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "config.yaml")
	writeFile(t, good, minimal)
	writeFile(t, bad, "providers:\n  - name: a\n    type: sim\n  - name: b\n    type: opneai\n"+
		"models: [{name: m, targets: [{provider: a, model: m}]}]\nextra: 1\n")

	c, err := Load(good, nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Providers[0].Name != "s" {
		t.Errorf("got %+v", c)
	}

	_, err = Load(bad, nil)
	want := bad + `:7:1: extra: unknown field "extra"`
	if err == nil || err.Error() != want {
		t.Errorf("Load error = %v, want %s", err, want)
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.File != bad || ce.Line != 7 || ce.Column != 1 {
		t.Errorf("error fields = %+v", ce)
	}

	writeFile(t, bad, "providers:\n  - name: a\n    type: sim\n  - name: b\n    type: opneai\n"+
		"models: [{name: m, targets: [{provider: c, model: m}]}]\n")
	_, err = Load(bad, nil)
	want = bad + `:5:5: providers[1].type: unknown type "opneai" (want openai, anthropic or sim)` + "\n" +
		bad + `:6:31: models[0].targets[0].provider: unknown provider "c"`
	if err == nil || err.Error() != want {
		t.Errorf("Load error = %v, want %s", err, want)
	}

	_, err = Load(filepath.Join(dir, "missing.yaml"), nil)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("Load missing = %v", err)
	}
}

func writeFile(tb testing.TB, path, data string) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		tb.Fatal(err)
	}
}

func TestDefault(t *testing.T) {
	names := func(c *Config) (providers, models []string) {
		for _, p := range c.Providers {
			providers = append(providers, p.Name+"="+p.Type+"@"+p.BaseURL)
		}
		for _, m := range c.Models {
			if len(m.Targets) != 1 || m.Targets[0].Model != m.Name {
				t.Errorf("model %s targets %+v, want itself", m.Name, m.Targets)
			}
			models = append(models, m.Targets[0].Provider+"/"+m.Name)
		}
		return
	}
	tests := []struct {
		name          string
		env           map[string]string
		wantProviders []string
		wantModels    []string
		simulated     bool
	}{
		{
			name:          "no keys",
			wantProviders: []string{"sim=sim@"},
			wantModels:    []string{"sim/sim-fast", "sim/sim-smart", "sim/sim-json"},
			simulated:     true,
		},
		{
			name:          "openai",
			env:           map[string]string{"OPENAI_API_KEY": "sk-o"},
			wantProviders: []string{"openai=openai@https://api.openai.com/v1"},
			wantModels:    []string{"openai/gpt-4o-mini", "openai/gpt-4o", "openai/gpt-4.1", "openai/gpt-4.1-mini", "openai/gpt-4.1-nano"},
		},
		{
			name:          "anthropic with base url",
			env:           map[string]string{"ANTHROPIC_API_KEY": "sk-a", "ANTHROPIC_BASE_URL": "http://127.0.0.1:9/"},
			wantProviders: []string{"anthropic=anthropic@http://127.0.0.1:9/"},
			wantModels:    []string{"anthropic/claude-sonnet-4-5", "anthropic/claude-haiku-4-5", "anthropic/claude-opus-4-1"},
		},
		{
			name: "both",
			env: map[string]string{"OPENAI_API_KEY": "sk-o", "OPENAI_BASE_URL": "http://127.0.0.1:8/v1",
				"ANTHROPIC_API_KEY": "sk-a"},
			wantProviders: []string{"openai=openai@http://127.0.0.1:8/v1", "anthropic=anthropic@https://api.anthropic.com"},
			wantModels: []string{"openai/gpt-4o-mini", "openai/gpt-4o", "openai/gpt-4.1", "openai/gpt-4.1-mini", "openai/gpt-4.1-nano",
				"anthropic/claude-sonnet-4-5", "anthropic/claude-haiku-4-5", "anthropic/claude-opus-4-1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default(envFunc(tt.env))
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			providers, models := names(c)
			if diff := cmp.Diff(tt.wantProviders, providers); diff != "" {
				t.Errorf("providers (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantModels, models); diff != "" {
				t.Errorf("models (-want +got):\n%s", diff)
			}
			if c.Simulated != tt.simulated {
				t.Errorf("Simulated = %v, want %v", c.Simulated, tt.simulated)
			}
			if c.Listen != DefaultListen || c.DrainTimeout.D() != DefaultDrainTimeout || c.MaxBodyBytes != DefaultMaxBodyBytes {
				t.Errorf("defaults not applied: %+v", c)
			}
			for _, p := range c.Providers {
				if want := tt.env[strings.ToUpper(p.Name)+"_API_KEY"]; p.APIKey.Value() != want {
					t.Errorf("%s api key = %q, want %q", p.Name, p.APIKey.Value(), want)
				}
			}
		})
	}
	if c := Default(nil); !c.Simulated {
		t.Errorf("Default(nil) not simulated")
	}
}

func TestValidateWithoutDefaults(t *testing.T) {
	c := &Config{
		Providers: []Provider{{Name: "s", Type: TypeSim}},
		Models:    []Model{{Name: "m", Targets: []Target{{Provider: "s", Model: "m"}}}},
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate of a config with zero defaults: %v", err)
	}
	c.Providers[0].Type = "x"
	err := c.Validate()
	var ce *Error
	if !errors.As(err, &ce) || ce.Field != "providers[0].type" || ce.Line != 0 {
		t.Errorf("Validate = %v (%+v)", err, ce)
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	const key = "sk-very-secret-value"
	c := &Config{Providers: []Provider{{Name: "p", Type: "openai", APIKey: key}}}
	p := c.Providers[0]

	var out []string
	for _, format := range []string{"%v", "%s", "%+v", "%#v", "%q", "%x"} {
		out = append(out, fmt.Sprintf(format, p.APIKey), fmt.Sprintf(format, p), fmt.Sprintf(format, c))
	}
	out = append(out, fmt.Sprint(p.APIKey), fmt.Sprintln(p))

	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		l := slog.New(h)
		l.Info("config", "key", p.APIKey, "provider", p, "config", c)
		l.Info("group", slog.Group("g", slog.Any("key", p.APIKey)))
	}
	out = append(out, buf.String())

	y, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, string(y), string(j))

	for _, s := range out {
		if strings.Contains(s, key) || strings.Contains(s, fmt.Sprintf("%x", key)) {
			t.Errorf("secret printed: %s", s)
		}
	}
	if got := fmt.Sprint(p.APIKey); got != "[redacted]" {
		t.Errorf("Sprint = %q", got)
	}
	if !strings.Contains(buf.String(), "[redacted]") {
		t.Errorf("slog output lacks the placeholder: %s", buf.String())
	}
	if got := fmt.Sprintf("%s|%v", Secret(""), Secret("")); got != "|" {
		t.Errorf("empty secret prints %q", got)
	}
	if p.APIKey.Value() != key {
		t.Errorf("Value = %q", p.APIKey.Value())
	}
}

func TestDuration(t *testing.T) {
	d := Duration(90 * time.Second)
	if d.String() != "1m30s" || d.D() != 90*time.Second {
		t.Errorf("String %q D %v", d.String(), d.D())
	}
	b, err := yaml.Marshal(struct {
		D Duration `yaml:"d"`
	}{d})
	if err != nil || string(b) != "d: 1m30s\n" {
		t.Errorf("marshal = %q, %v", b, err)
	}
	var back struct {
		D Duration `yaml:"d"`
	}
	if err := yaml.Unmarshal(b, &back); err != nil || back.D != d {
		t.Errorf("unmarshal = %v, %v", back.D, err)
	}
	var null struct {
		D Duration `yaml:"d"`
	}
	if err := yaml.Unmarshal([]byte("d: null\n"), &null); err != nil || null.D != 0 {
		t.Errorf("null = %v, %v", null.D, err)
	}
	if err := yaml.Unmarshal([]byte("d: 5\n"), &back); err == nil {
		t.Errorf("bare 5 accepted as %v", back.D)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte("listen: ${A:-127.0.0.1:1}\ndrain_timeout: 1s\n" + minimal))
	f.Add([]byte("providers: [{name: a, type: openai, headers: {X: ${B}}}]\nmodels: [{name: m, targets: [{provider: a, model: ${C:-x}}]}]\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("${: \ue000 $${} ${A:-\n"))
	f.Add([]byte("---\n---\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, envFunc(map[string]string{"A": "127.0.0.1:9", "B": "v"}))
		if err != nil {
			if c != nil {
				t.Errorf("Parse returned a config with error %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Errorf("parsed config does not validate: %v", err)
		}
	})
}

// TestStreamsAndState checks the streams keys that may be off and the
// state section.
func TestStreamsAndState(t *testing.T) {
	c, err := Parse([]byte("streams: {heartbeat: off, resume_grace: off, resume_retention: 1m}\nstate: {redis: redis://:pw@127.0.0.1:6379/2}\n"+minimal), envFunc(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Streams.Heartbeat.IsOff() || !c.Streams.ResumeGrace.IsOff() || c.Streams.ResumeRetention.D() != time.Minute {
		t.Errorf("streams = %+v", c.Streams)
	}
	if c.State.Redis.Value() != "redis://:pw@127.0.0.1:6379/2" || strings.Contains(fmt.Sprint(c.State), "pw") {
		t.Errorf("state = %v", c.State)
	}
	if c.Streams.ResumeGrace.String() != "off" {
		t.Errorf("String() = %q, want off", c.Streams.ResumeGrace.String())
	}
	for src, want := range map[string]string{
		"streams: {resume_grace: -1s}\n":       "streams.resume_grace: must not be negative",
		"streams: {write_timeout: off}\n":      "streams.write_timeout: must not be negative",
		"state: {redis: http://127.0.0.1}\n":   "state.redis: want a redis://",
		"streams: {resume_retention: never}\n": "want a duration",
	} {
		_, err := Parse([]byte(src+minimal), envFunc(nil))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", src, err, want)
		}
	}
}

func TestFailover(t *testing.T) {
	c, err := Parse([]byte("providers: [{name: s, type: sim}]\nmodels: [{name: x, failover: mid_stream, targets: [{provider: s, model: m}]}]\n"), envFunc(nil))
	if err != nil || c.Models[0].Failover != FailoverMidStream {
		t.Fatalf("failover: mid_stream: %v", err)
	}
	_, err = Parse([]byte("providers: [{name: s, type: sim}]\nmodels: [{name: x, failover: always, targets: [{provider: s, model: m}]}]\n"), envFunc(nil))
	if err == nil || !strings.Contains(err.Error(), "2:20: models[0].failover: unknown failover") {
		t.Errorf("failover: always: err = %v", err)
	}
}

func TestNegativeTimeouts(t *testing.T) {
	_, err := Parse([]byte("providers:\n  - {name: s, type: sim, timeouts: {idle: -1s}}\nmodels:\n  - {name: m, targets: [{provider: s, model: m}], timeouts: {total: -2s}}\n"), envFunc(nil))
	if err == nil {
		t.Fatal("negative timeouts accepted")
	}
	for _, want := range []string{"providers[0].timeouts.idle", "models[0].timeouts.total", "2:37:", "4:62:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestContracts checks the contracts section: a schema inline as YAML, as
// a JSON string, or from a file next to the config, and the mistakes that
// are refused with their place.
func TestContracts(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "city.json"), []byte(`{"type":"object","required":["city"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	src := minimal + `contracts:
  - name: person
    description: A person named in the text.
    model: m
    system: Extract the person.
    repair_attempts: 2
    schema:
      type: object
      properties: {name: {type: string}, age: {type: integer, minimum: 0}}
      required: [name]
  - {name: json-string, model: m, schema: '{"type":"array"}'}
  - {name: city, model: m, schema_file: city.json}
`
	path := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, envFunc(nil))
	if err != nil {
		t.Fatal(err)
	}
	var person map[string]any
	if err := json.Unmarshal(c.Contracts[0].SchemaJSON, &person); err != nil || person["type"] != "object" || *c.Contracts[0].RepairAttempts != 2 {
		t.Errorf("inline schema %s: %v", c.Contracts[0].SchemaJSON, err)
	}
	if string(c.Contracts[1].SchemaJSON) != `{"type":"array"}` || string(c.Contracts[2].SchemaJSON) != `{"type":"object","required":["city"]}` {
		t.Errorf("schemas %s and %s", c.Contracts[1].SchemaJSON, c.Contracts[2].SchemaJSON)
	}
	for bad, want := range map[string]string{
		"contracts: [{name: a, model: nope, schema: {type: object}}]\n":                   "contracts[0].model: unknown model",
		"contracts: [{name: a, model: m}]\n":                                              "contracts[0].schema: a schema or a schema_file is required",
		"contracts: [{name: a/b, model: m, schema: {}}]\n":                                "contracts[0].name: use letters",
		"contracts: [{name: a, model: m, schema: {}}, {name: a, model: m, schema: {}}]\n": "contracts[1].name: duplicate contract name",
		"contracts: [{name: a, model: m, schema: {}, schema_file: x.json}]\n":             "contracts[0].schema_file: give schema or schema_file, not both",
		"contracts: [{name: a, model: m, schema: 'not json'}]\n":                          "contracts[0].schema: a schema given as a string must be JSON",
		"contracts: [{name: a, model: m, schema_file: /nonexistent/s.json}]\n":            "contracts[0].schema_file: cannot read",
	} {
		_, err := Parse([]byte(minimal+bad), envFunc(nil))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", bad, err, want)
		}
	}
}

// TestStructuredOutputKeys checks structured_output and server: the values
// each provider type takes, and the mistakes refused with their place.
func TestStructuredOutputKeys(t *testing.T) {
	models := "models: [{name: m, targets: [{provider: p, model: m}]}]\n"
	for _, good := range []struct{ typ, structured, server string }{
		{"openai", "", ""}, {"openai", "native", "openai"}, {"openai", "prompt", "vllm"}, {"openai", "native", "ollama"},
		{"anthropic", "native", ""}, {"anthropic", "tool", ""}, {"anthropic", "prompt", ""},
	} {
		src := fmt.Sprintf("providers:\n  - name: p\n    type: %s\n    structured_output: %q\n    server: %q\n", good.typ, good.structured, good.server) + models
		c, err := Parse([]byte(src), envFunc(nil))
		if err != nil {
			t.Errorf("%+v: %v", good, err)
			continue
		}
		if p := c.Providers[0]; p.StructuredOutput != good.structured || p.Server != good.server {
			t.Errorf("%+v: parsed structured_output %q, server %q", good, p.StructuredOutput, p.Server)
		}
	}
	for _, bad := range []struct{ src, want string }{
		{"providers:\n  - name: p\n    type: openai\n    structured_output: tool\n",
			`4:5: providers[0].structured_output: unknown structured_output "tool" (want native or prompt)`},
		{"providers:\n  - name: p\n    type: anthropic\n    structured_output: Native\n",
			`4:5: providers[0].structured_output: unknown structured_output "Native" (want native, tool or prompt)`},
		{"providers:\n  - name: p\n    type: sim\n    structured_output: prompt\n",
			`4:5: providers[0].structured_output: only a provider of type openai or anthropic takes structured_output`},
		{"providers:\n  - name: p\n    type: openai\n    server: tgi\n",
			`4:5: providers[0].server: unknown server "tgi" (want openai, vllm or ollama)`},
		{"providers:\n  - name: p\n    type: anthropic\n    server: vllm\n",
			`4:5: providers[0].server: only a provider of type openai takes server`},
		{"providers:\n  - {name: p, type: sim, server: ollama}\n",
			`2:26: providers[0].server: only a provider of type openai takes server`},
	} {
		_, err := Parse([]byte(bad.src+models), envFunc(nil))
		if err == nil || err.Error() != bad.want {
			t.Errorf("%q: err = %v, want %s", bad.src, err, bad.want)
		}
	}
}
