// Package config reads Sluice's YAML configuration file: the listen address,
// shutdown and body limits, the upstream providers and the public model names
// routed to them.
//
// Parse and Load decode the file in strict mode (an unknown key is an error
// with its line and column), expand ${VAR} and ${VAR:-default} references in
// scalar values, apply defaults and validate. Every error names the field and,
// when it comes from a file, the line and column. Default builds a zero-config
// Config from the environment: real providers when their API keys are set, the
// simulator otherwise. docs/config.md documents every key.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// The defaults applied to zero fields.
const (
	DefaultListen       = "127.0.0.1:8080"
	DefaultDrainTimeout = 10 * time.Second
	DefaultMaxBodyBytes = 4 << 20 // 4 MiB

	DefaultHeartbeat          = 15 * time.Second
	DefaultStreamWriteTimeout = 30 * time.Second
	DefaultResumeGrace        = 30 * time.Second
	DefaultResumeRetention    = 5 * time.Minute
	DefaultResumeMaxBytes     = 64 << 20 // 64 MiB

	DefaultOpenAIBaseURL    = "https://api.openai.com/v1"
	DefaultAnthropicBaseURL = "https://api.anthropic.com"
	// DefaultAnthropicMaxTokens is max_tokens_default for anthropic providers
	// that set none: the Anthropic API requires max_tokens on every call.
	DefaultAnthropicMaxTokens = 4096

	// The default deadlines of an upstream call (see Timeouts).
	DefaultConnectTimeout    = 10 * time.Second
	DefaultFirstTokenTimeout = 2 * time.Minute
	DefaultIdleTimeout       = time.Minute
	DefaultTotalTimeout      = 10 * time.Minute
)

// The provider types.
const (
	TypeOpenAI    = "openai"    // OpenAI Chat Completions and every compatible server
	TypeAnthropic = "anthropic" // Anthropic Messages
	TypeSim       = "sim"       // the built-in simulator: no network, no key
)

// Config is the whole configuration file. A zero field means the default.
type Config struct {
	// Listen is the gateway's host:port. Default 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// DrainTimeout is how long a graceful shutdown waits for in-flight
	// requests and streams to finish. Default 10s.
	DrainTimeout Duration `yaml:"drain_timeout"`
	// MaxBodyBytes limits a request body. Default 4 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// Streams tunes streamed answers to clients.
	Streams Streams `yaml:"streams"`
	// State says where state shared by instances lives; empty means this
	// process's memory.
	State State `yaml:"state"`
	// Providers are the upstream APIs, by name.
	Providers []Provider `yaml:"providers"`
	// Models are the public model names clients ask for, each routed to an
	// ordered list of targets.
	Models []Model `yaml:"models"`
	// Contracts are named structured calls: a schema, the model route that
	// answers it and a system prompt, served at /v1/contracts/{name}.
	Contracts []Contract `yaml:"contracts"`
	// Tiers are the sets of limits API keys are given.
	Tiers []Tier `yaml:"tiers"`
	// Tenants are budgets shared by the keys of a tenant.
	Tenants []Tenant `yaml:"tenants"`
	// IPLimits limit requests per client address.
	IPLimits IPLimits `yaml:"ip_limits"`
	// Auth, when present, requires API keys (unless it sets allow_open)
	// and configures the admin key. Absent, any key is accepted, on a
	// loopback address only.
	Auth *Auth `yaml:"auth"`
	// Pricing overrides and extends the built-in price table, by upstream
	// model name.
	Pricing map[string]Price `yaml:"pricing"`
	// Metrics says where GET /metrics is served.
	Metrics Metrics `yaml:"metrics"`
	// Simulated reports whether Default fell back to the simulator because no
	// API key was set. It is never read from the file.
	Simulated bool `yaml:"-"`
}

// Metrics says where the Prometheus metrics are served.
type Metrics struct {
	// Listen is a separate host:port serving GET /metrics (and
	// /healthz), such as an admin network's address; empty: /metrics is
	// on the main listener.
	Listen string `yaml:"listen"`
}

// Provider is one upstream API.
type Provider struct {
	// Name identifies the provider in targets, logs and metrics. Required,
	// unique.
	Name string `yaml:"name"`
	// Type is openai, anthropic or sim.
	Type string `yaml:"type"`
	// BaseURL is the API's absolute http(s) URL. Default
	// https://api.openai.com/v1 for openai, https://api.anthropic.com for
	// anthropic; unused by sim.
	BaseURL string `yaml:"base_url"`
	// APIKey authenticates to the upstream. It may be empty: self-hosted
	// servers often need none.
	APIKey Secret `yaml:"api_key"`
	// Headers are extra HTTP headers sent with every upstream request.
	Headers map[string]string `yaml:"headers"`
	// MaxTokensDefault is the max_tokens sent when a request sets none.
	// Default 4096 for anthropic (whose API requires it); zero elsewhere
	// means the upstream's own default.
	MaxTokensDefault int `yaml:"max_tokens_default"`
	// StructuredOutput says how a request for JSON output reaches the
	// upstream (types openai and anthropic only). native, the default,
	// sends the constraint the API applies while decoding; prompt sends a
	// system instruction carrying the schema instead; tool (anthropic
	// only) makes the model call one tool whose input schema is the
	// schema, and gives its input back as the answer. See
	// docs/dialects.md.
	StructuredOutput string `yaml:"structured_output"`
	// Server is the kind of OpenAI-compatible server (type openai only):
	// openai, the default, vllm or ollama, for the structured-output field
	// each understands.
	Server string `yaml:"server"`
	// Fault is the simulator's faults for every request (type sim only), in
	// the syntax of `sluice sim --fault`, e.g. "ttft=200ms,chunk_delay=10ms".
	// Empty means none.
	Fault string `yaml:"fault"`
	// Tokens is the simulator's answer length in tokens (type sim only);
	// zero means 24.
	Tokens int `yaml:"tokens"`
	// MaxConcurrent caps the calls in flight to this provider (0: no cap);
	// past it, calls wait up to QueueTimeout, then fail with overloaded.
	MaxConcurrent int      `yaml:"max_concurrent"`
	QueueTimeout  Duration `yaml:"queue_timeout"`
	// Timeouts are the deadlines of every call to this provider; a zero
	// field means its default (connect 10s, first_token 2m, idle 1m, total
	// 10m).
	Timeouts Timeouts `yaml:"timeouts"`
}

// Streams tunes streamed answers to clients.
type Streams struct {
	// Heartbeat is the longest silence on an open stream before the gateway
	// writes an SSE comment line, which clients ignore and proxies see as
	// traffic. Default 15s.
	Heartbeat Duration `yaml:"heartbeat"`
	// WriteTimeout bounds each write to a client: one that stops reading
	// for longer is disconnected and its upstream call cancelled. Default
	// 30s.
	WriteTimeout Duration `yaml:"write_timeout"`
	// ResumeGrace is how long an upstream call goes on after its client
	// disconnected, waiting for the client to resume the stream; while a
	// resumed reader is attached it goes on, and ends about a grace period
	// after the last one leaves. Default 30s; off cancels the upstream call
	// when the client goes.
	ResumeGrace Duration `yaml:"resume_grace"`
	// ResumeRetention is how long a finished stream stays replayable.
	// Default 5m; off drops its log shortly (10s) after it ends. With both resume_grace
	// and resume_retention off, streams are not logged and not resumable.
	ResumeRetention Duration `yaml:"resume_retention"`
	// ResumeMaxBytes bounds the stream logs kept in this process's memory
	// (not in Redis): past it, finished streams are dropped oldest first
	// before their retention ends. Default 64 MiB.
	ResumeMaxBytes int64 `yaml:"resume_max_bytes"`
}

// State says where state shared by instances lives.
type State struct {
	// Redis is a redis:// URL. When set, stream logs live in Redis, so a
	// stream may be resumed on any instance sharing it.
	Redis Secret `yaml:"redis"`
	// SQLite is the database file of the embedded default (the usage
	// ledger, API keys and queued jobs). The sluice commands default it to
	// ./sluice.db; "off" (and, for pipeline.New, empty) keeps them in
	// memory.
	SQLite string `yaml:"sqlite"`
	// Postgres, when set, holds the ledger, keys and jobs instead, shared
	// by instances.
	Postgres Secret `yaml:"postgres"`
	// IdempotencyTTL is how long an Idempotency-Key is remembered. Default
	// 24h.
	IdempotencyTTL Duration `yaml:"idempotency_ttl"`
}

// Timeouts are the deadlines of one upstream call. Whichever fires first ends
// the call with upstream_timeout.
type Timeouts struct {
	// Connect bounds establishing the connection to the upstream.
	Connect Duration `yaml:"connect"`
	// FirstToken bounds the wait from the start of a call to the first
	// content of a stream.
	FirstToken Duration `yaml:"first_token"`
	// Idle bounds the gap between two events of a stream.
	Idle Duration `yaml:"idle"`
	// Total bounds the whole call, stream included.
	Total Duration `yaml:"total"`
}

// Or returns t with its zero fields taken from def.
func (t Timeouts) Or(def Timeouts) Timeouts {
	if t.Connect == 0 {
		t.Connect = def.Connect
	}
	if t.FirstToken == 0 {
		t.FirstToken = def.FirstToken
	}
	if t.Idle == 0 {
		t.Idle = def.Idle
	}
	if t.Total == 0 {
		t.Total = def.Total
	}
	return t
}

// Model maps a public model name to the targets that serve it.
type Model struct {
	// Name is what clients put in "model". Required, unique.
	Name string `yaml:"name"`
	// Targets are tried in order: the first is the primary, the rest are
	// fallbacks. At least one.
	Targets []Target `yaml:"targets"`
	// Timeouts override, field by field, the timeouts of each target's
	// provider for this model; a zero field keeps the provider's.
	Timeouts Timeouts `yaml:"timeouts"`
	// Failover set to mid_stream continues a stream that breaks after its
	// first content on the next targets, as one stream (see docs/config.md).
	// Empty: a broken stream ends with an error event.
	Failover string `yaml:"failover"`
	// RepairAttempts is how many times an answer to a json_schema or
	// json_object request that breaks its schema is asked again before the
	// call fails with schema_violation. Unset means 1; 0 turns repair off.
	RepairAttempts *int `yaml:"repair_attempts"`
	// Retry, Hedge, Breaker and Cache are the route's resilience policies;
	// unset: the defaults (see docs/config.md).
	Retry   *Retry   `yaml:"retry"`
	Hedge   *Hedge   `yaml:"hedge"`
	Breaker *Breaker `yaml:"breaker"`
	Cache   *Cache   `yaml:"cache"`
	// Limits tighten the callers' tier limits on this route.
	Limits *Limits `yaml:"limits"`
	// Tools, when set, is the allowlist of tool names the model may be
	// offered and may call; ToolPolicy says what happens to others:
	// "refuse" (default: the request is refused) or "drop".
	Tools      []string `yaml:"tools"`
	ToolPolicy string   `yaml:"tool_policy"`
	// ExposeRawOutput includes the model's raw answer in a schema_violation
	// error, for routes whose clients may see it.
	ExposeRawOutput bool `yaml:"expose_raw_output"`
	// LogContent logs the prompts and answers of the route's calls in the
	// request log line, with secret-looking strings redacted. Off, they
	// are never logged.
	LogContent bool `yaml:"log_content"`
}

// A Contract is a named structured call: an input goes to a model route
// with the contract's system prompt, and the answer must satisfy the
// contract's JSON Schema.
type Contract struct {
	// Name identifies the contract in /v1/contracts/{name}: letters,
	// digits, '-', '_' and '.'. Required, unique.
	Name string `yaml:"name"`
	// Description says what the contract is for; GET /v1/contracts/{name}
	// shows it with the schema.
	Description string `yaml:"description"`
	// Model is the model route (a models[].name) that answers. Required.
	Model string `yaml:"model"`
	// Schema is the JSON Schema, inline as YAML or as a JSON string.
	// Exactly one of schema and schema_file.
	Schema any `yaml:"schema"`
	// SchemaFile is a file holding the schema as JSON, relative to the
	// config file.
	SchemaFile string `yaml:"schema_file"`
	// System is the system prompt sent with every input.
	System string `yaml:"system"`
	// RepairAttempts overrides the model route's repair attempts (0 to 5).
	RepairAttempts *int `yaml:"repair_attempts"`
	// SchemaJSON is the schema as JSON, from Schema or SchemaFile; Parse
	// and Load fill it.
	SchemaJSON json.RawMessage `yaml:"-"`
}

// contractName is what a contract's name may hold: it is a URL path segment.
var contractName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// resolveContracts fills each contract's SchemaJSON, reading schema files
// relative to dir.
func (c *Config) resolveContracts(dir string) error {
	var v validator
	for i := range c.Contracts {
		ct := &c.Contracts[i]
		at := []any{"contracts", i}
		switch {
		case ct.Schema != nil && ct.SchemaFile != "":
			v.add("give schema or schema_file, not both", append(at, "schema_file")...)
		case ct.SchemaFile != "":
			path := ct.SchemaFile
			if !filepath.IsAbs(path) && dir != "" {
				path = filepath.Join(dir, path)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				v.add("cannot read the schema file: "+err.Error(), append(at, "schema_file")...)
			} else if !json.Valid(b) {
				v.add("the schema file is not JSON", append(at, "schema_file")...)
			} else {
				ct.SchemaJSON = b
			}
		case ct.Schema != nil:
			if s, ok := ct.Schema.(string); ok {
				if !json.Valid([]byte(s)) {
					v.add("a schema given as a string must be JSON", append(at, "schema")...)
				} else {
					ct.SchemaJSON = json.RawMessage(s)
				}
			} else if b, err := json.Marshal(ct.Schema); err != nil {
				v.add("the schema cannot be written as JSON: "+err.Error(), append(at, "schema")...)
			} else {
				ct.SchemaJSON = b
			}
		}
	}
	return v.err()
}

// FailoverMidStream is the Model.Failover value that turns on mid-stream
// failover.
const FailoverMidStream = "mid_stream"

// Target is one provider and the model name it knows the model by.
type Target struct {
	Provider string `yaml:"provider"` // a Provider's Name
	Model    string `yaml:"model"`    // the upstream model name
	// Weight > 0 makes the target part of a balanced group: consecutive
	// weighted targets share the load by least outstanding requests,
	// weighted.
	Weight int `yaml:"weight"`
}

// Duration is a time.Duration written in YAML as "10s", "1m30s" or "250ms".
// Where a field says so, "off" turns its feature off; it reads as Off.
type Duration time.Duration

// Off is the Duration "off" reads as.
const Off Duration = math.MinInt64

// IsOff reports whether d is Off.
func (d Duration) IsOff() bool { return d == Off }

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String returns d in time.Duration's syntax, or "off".
func (d Duration) String() string {
	if d == Off {
		return "off"
	}
	return time.Duration(d).String()
}

// UnmarshalYAML reads a duration string such as "10s". A bare 0 and null
// mean zero. Errors carry the node's position.
func (d *Duration) UnmarshalYAML(node ast.Node) error {
	switch n := node.(type) {
	case *ast.NullNode:
		*d = 0
		return nil
	case *ast.IntegerNode:
		if n.GetToken() != nil && n.GetToken().Value == "0" {
			*d = 0
			return nil
		}
	case *ast.StringNode:
		if strings.TrimSpace(n.Value) == "off" {
			*d = Off
			return nil
		}
		v, err := time.ParseDuration(strings.TrimSpace(n.Value))
		if err == nil {
			*d = Duration(v)
			return nil
		}
	}
	return &nodeError{tok: node.GetToken(), msg: "want a duration such as 10s, 1m30s or 250ms (or off where the key allows)"}
}

// MarshalYAML writes d as a duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// redacted is what a Secret prints instead of its value.
const redacted = "[redacted]"

// Secret is a credential. It prints as "[redacted]" through fmt, slog and
// YAML or JSON encoding (an empty Secret stays empty), so a Config can be
// logged whole; Value returns the secret itself.
type Secret string

// Value returns the secret.
func (s Secret) Value() string { return string(s) }

// String returns "[redacted]", or "" for an empty secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString keeps %#v from printing the secret.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// LogValue keeps slog from printing the secret.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalYAML keeps a marshalled Config from holding the secret.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalJSON keeps a marshalled Config from holding the secret.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.String())), nil }

// Error is one problem in a configuration. Parse and Load return one or more
// of them (joined with errors.Join); errors.As finds the first.
type Error struct {
	File   string // the file, for Load; empty otherwise
	Line   int    // 1-based; 0 when unknown (Validate, or a missing section)
	Column int    // 1-based; 0 when unknown
	Field  string // the field's path, such as providers[1].type; empty for syntax errors
	Msg    string

	path []any // Field as keys (string) and indexes (int), for locate
}

// Error formats e as file:line:col: field: msg, leaving out what is unknown.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	if e.Line > 0 {
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteByte(':')
		if e.Column > 0 {
			b.WriteString(strconv.Itoa(e.Column))
			b.WriteByte(':')
		}
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// nodeError is an error found at a YAML token, during expansion or decoding.
type nodeError struct {
	tok *token.Token
	msg string
}

func (e *nodeError) Error() string { return e.msg }

// Parse reads a configuration from YAML text. It expands ${VAR} and
// ${VAR:-default} references in scalar values with getenv (after parsing, so
// a variable's value never changes the YAML structure; never in keys or
// comments; $${ is a literal ${), decodes in strict mode, applies defaults and
// validates. Errors are *Error values with line and column, joined with
// errors.Join when there are several. A nil getenv sees no variables.
func Parse(data []byte, getenv func(string) string) (*Config, error) {
	return parse(data, getenv, "")
}

// parse is Parse with schema files read relative to dir.
func parse(data []byte, getenv func(string) string, dir string) (*Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	src, err := protectRefs(data)
	if err != nil {
		return nil, err
	}
	f, err := parser.ParseBytes(src, 0)
	if err != nil {
		return nil, yamlError(nil, err)
	}
	var body ast.Node
	switch len(f.Docs) {
	case 0:
	case 1:
		body = f.Docs[0].Body
	default:
		tok := f.Docs[1].Start
		if tok == nil {
			tok = f.Docs[1].GetToken()
		}
		return nil, posError(tok, "", "want one YAML document, found "+strconv.Itoa(len(f.Docs)))
	}
	if body != nil {
		if err := expandNode(body, getenv); err != nil {
			return nil, yamlError(body, err)
		}
	}
	c := &Config{}
	if body != nil {
		if _, isNull := body.(*ast.NullNode); !isNull {
			if err := decode(body, c); err != nil {
				return nil, yamlError(body, err)
			}
		}
	}
	c.applyDefaults()
	if err := c.resolveContracts(dir); err != nil {
		return nil, locate(body, err)
	}
	if err := c.Validate(); err != nil {
		return nil, locate(body, err)
	}
	return c, nil
}

// decode decodes body into c in strict mode. The YAML decoder has been seen
// to panic on some malformed trees; decode turns that into an error, so bad
// input never panics.
func decode(body ast.Node, c *Config) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &nodeError{tok: body.GetToken(), msg: "cannot decode this document"}
		}
	}()
	return yaml.NodeToValue(body, c, yaml.Strict())
}

// Load reads and parses the file at path. Errors name the file.
func Load(path string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := parse(data, getenv, filepath.Dir(path))
	if err != nil {
		return nil, nameFile(err, path)
	}
	return c, nil
}

// nameFile sets File on every *Error in err.
func nameFile(err error, path string) error {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	out := make([]error, 0, len(errs))
	for _, e := range errs {
		var ce *Error
		if errors.As(e, &ce) {
			cp := *ce
			cp.File = path
			out = append(out, &cp)
			continue
		}
		out = append(out, fmt.Errorf("%s: %w", path, e))
	}
	if len(out) == 1 {
		return out[0]
	}
	return errors.Join(out...)
}

// Default returns the zero-config configuration, defaults applied. With
// OPENAI_API_KEY set it has a provider "openai" (base OPENAI_BASE_URL or
// https://api.openai.com/v1) and its models; with ANTHROPIC_API_KEY a provider
// "anthropic" (base ANTHROPIC_BASE_URL or https://api.anthropic.com) and its
// models; with neither, the simulator (provider "sim", models sim-fast,
// sim-smart and sim-json) and Simulated set. Each model is routed to the
// model of the same name. The base URLs from the environment are not checked
// here: call Validate.
func Default(getenv func(string) string) *Config {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	c := &Config{}
	add := func(p Provider, models ...string) {
		c.Providers = append(c.Providers, p)
		for _, m := range models {
			c.Models = append(c.Models, Model{Name: m, Targets: []Target{{Provider: p.Name, Model: m}}})
		}
	}
	if key := getenv("OPENAI_API_KEY"); key != "" {
		add(Provider{Name: "openai", Type: TypeOpenAI, BaseURL: getenv("OPENAI_BASE_URL"), APIKey: Secret(key)},
			"gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano")
	}
	if key := getenv("ANTHROPIC_API_KEY"); key != "" {
		add(Provider{Name: "anthropic", Type: TypeAnthropic, BaseURL: getenv("ANTHROPIC_BASE_URL"), APIKey: Secret(key)},
			"claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1")
	}
	if len(c.Providers) == 0 {
		add(Provider{Name: "sim", Type: TypeSim}, "sim-fast", "sim-smart", "sim-json")
		c.Simulated = true
	}
	c.applyDefaults()
	return c
}

// applyDefaults fills zero fields with their defaults.
func (c *Config) applyDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = Duration(DefaultDrainTimeout)
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Streams.Heartbeat == 0 {
		c.Streams.Heartbeat = Duration(DefaultHeartbeat)
	}
	if c.Streams.WriteTimeout == 0 {
		c.Streams.WriteTimeout = Duration(DefaultStreamWriteTimeout)
	}
	if c.Streams.ResumeGrace == 0 {
		c.Streams.ResumeGrace = Duration(DefaultResumeGrace)
	}
	if c.Streams.ResumeRetention == 0 {
		c.Streams.ResumeRetention = Duration(DefaultResumeRetention)
	}
	if c.Streams.ResumeMaxBytes == 0 {
		c.Streams.ResumeMaxBytes = DefaultResumeMaxBytes
	}
	defaults := Timeouts{
		Connect: Duration(DefaultConnectTimeout), FirstToken: Duration(DefaultFirstTokenTimeout),
		Idle: Duration(DefaultIdleTimeout), Total: Duration(DefaultTotalTimeout),
	}
	for i := range c.Providers {
		p := &c.Providers[i]
		p.Timeouts = p.Timeouts.Or(defaults)
		switch p.Type {
		case TypeOpenAI:
			if p.BaseURL == "" {
				p.BaseURL = DefaultOpenAIBaseURL
			}
		case TypeAnthropic:
			if p.BaseURL == "" {
				p.BaseURL = DefaultAnthropicBaseURL
			}
			if p.MaxTokensDefault == 0 {
				p.MaxTokensDefault = DefaultAnthropicMaxTokens
			}
		}
	}
}

// Validate checks c and returns every problem found, as *Error values joined
// with errors.Join, or nil. Zero fields that have defaults are accepted.
func (c *Config) Validate() error {
	var v validator
	if c.Listen != "" {
		if msg := checkHostPort(c.Listen); msg != "" {
			v.add(msg, "listen")
		}
	}
	if c.Metrics.Listen != "" {
		if msg := checkHostPort(c.Metrics.Listen); msg != "" {
			v.add(msg, "metrics", "listen")
		}
	}
	if c.DrainTimeout < 0 {
		v.add("must not be negative", "drain_timeout")
	}
	for _, f := range []struct {
		key string
		d   Duration
	}{{"heartbeat", c.Streams.Heartbeat}, {"resume_grace", c.Streams.ResumeGrace}, {"resume_retention", c.Streams.ResumeRetention}} {
		if f.d < 0 && !f.d.IsOff() {
			v.add("must not be negative (off turns it off)", "streams", f.key)
		}
	}
	if r := c.State.Redis.Value(); r != "" {
		if u, err := url.Parse(r); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			v.add("want a redis:// or rediss:// URL with a host", "state", "redis")
		}
	}
	if c.Streams.ResumeMaxBytes < 0 {
		v.add("must not be negative", "streams", "resume_max_bytes")
	}
	if c.Streams.WriteTimeout < 0 {
		v.add("must not be negative", "streams", "write_timeout")
	}
	if c.MaxBodyBytes < 0 {
		v.add("must not be negative", "max_body_bytes")
	}
	if len(c.Providers) == 0 {
		v.add("at least one provider is required", "providers")
	}
	byName := make(map[string]int, len(c.Providers))
	for i, p := range c.Providers {
		at := []any{"providers", i}
		switch {
		case p.Name == "":
			v.add("required", append(at, "name")...)
		default:
			if j, dup := byName[p.Name]; dup {
				v.add(fmt.Sprintf("duplicate provider name %q (also providers[%d])", p.Name, j), append(at, "name")...)
			} else {
				byName[p.Name] = i
			}
		}
		switch p.Type {
		case TypeOpenAI, TypeAnthropic, TypeSim:
		case "":
			v.add("required (openai, anthropic or sim)", append(at, "type")...)
		default:
			v.add(fmt.Sprintf("unknown type %q (want openai, anthropic or sim)", p.Type), append(at, "type")...)
		}
		if p.BaseURL != "" {
			if msg := checkURL(p.BaseURL); msg != "" {
				v.add(msg, append(at, "base_url")...)
			}
		}
		for _, name := range slices.Sorted(maps.Keys(p.Headers)) {
			value := p.Headers[name]
			if !validHeaderName(name) {
				v.add("not a valid HTTP header name", append(at, "headers", name)...)
			} else if strings.ContainsAny(value, "\r\n\x00") {
				v.add("header value must not contain CR, LF or NUL", append(at, "headers", name)...)
			}
		}
		if p.MaxTokensDefault < 0 {
			v.add("must not be negative", append(at, "max_tokens_default")...)
		}
		switch {
		case p.StructuredOutput == "":
		case p.Type != TypeOpenAI && p.Type != TypeAnthropic:
			v.add("only a provider of type openai or anthropic takes structured_output", append(at, "structured_output")...)
		case p.StructuredOutput == "native" || p.StructuredOutput == "prompt":
		case p.Type == TypeAnthropic && p.StructuredOutput == "tool":
		case p.Type == TypeAnthropic:
			v.add(fmt.Sprintf("unknown structured_output %q (want native, tool or prompt)", p.StructuredOutput), append(at, "structured_output")...)
		default:
			v.add(fmt.Sprintf("unknown structured_output %q (want native or prompt)", p.StructuredOutput), append(at, "structured_output")...)
		}
		switch {
		case p.Server == "":
		case p.Type != TypeOpenAI:
			v.add("only a provider of type openai takes server", append(at, "server")...)
		case p.Server != "openai" && p.Server != "vllm" && p.Server != "ollama":
			v.add(fmt.Sprintf("unknown server %q (want openai, vllm or ollama)", p.Server), append(at, "server")...)
		}
		if p.Type != TypeSim && (p.Fault != "" || p.Tokens != 0) {
			v.add("only a provider of type sim takes fault and tokens", append(at, "type")...)
		}
		if p.Tokens < 0 {
			v.add("must not be negative", append(at, "tokens")...)
		}
		checkTimeouts(&v, p.Timeouts, at)
	}
	if len(c.Models) == 0 {
		v.add("at least one model is required", "models")
	}
	models := make(map[string]int, len(c.Models))
	for i, m := range c.Models {
		at := []any{"models", i}
		if m.Name == "" {
			v.add("required", append(at, "name")...)
		} else if j, dup := models[m.Name]; dup {
			v.add(fmt.Sprintf("duplicate model name %q (also models[%d])", m.Name, j), append(at, "name")...)
		} else {
			models[m.Name] = i
		}
		if len(m.Targets) == 0 {
			v.add("at least one target is required", append(at, "targets")...)
		}
		checkTimeouts(&v, m.Timeouts, at)
		if m.RepairAttempts != nil && (*m.RepairAttempts < 0 || *m.RepairAttempts > 5) {
			v.add("must be from 0 to 5", append(at, "repair_attempts")...)
		}
		if m.Failover != "" && m.Failover != FailoverMidStream {
			v.add(fmt.Sprintf("unknown failover %q (want mid_stream, or leave it out)", m.Failover), append(at, "failover")...)
		}
		for k, t := range m.Targets {
			tat := append(at, "targets", k)
			if t.Provider == "" {
				v.add("required", append(tat, "provider")...)
			} else if _, ok := byName[t.Provider]; !ok {
				v.add(fmt.Sprintf("unknown provider %q", t.Provider), append(tat, "provider")...)
			}
			if t.Model == "" {
				v.add("required", append(tat, "model")...)
			}
		}
	}
	contracts := map[string]int{}
	for i, ct := range c.Contracts {
		at := []any{"contracts", i}
		switch _, dup := contracts[ct.Name]; {
		case ct.Name == "":
			v.add("required", append(at, "name")...)
		case !contractName.MatchString(ct.Name):
			v.add("use letters, digits, '-', '_' and '.' only (at most 64)", append(at, "name")...)
		case dup:
			v.add(fmt.Sprintf("duplicate contract name %q (also contracts[%d])", ct.Name, contracts[ct.Name]), append(at, "name")...)
		default:
			contracts[ct.Name] = i
		}
		if ct.Model == "" {
			v.add("required", append(at, "model")...)
		} else if _, ok := models[ct.Model]; !ok {
			v.add(fmt.Sprintf("unknown model %q (want one of models[].name)", ct.Model), append(at, "model")...)
		}
		if ct.Schema == nil && ct.SchemaFile == "" {
			v.add("a schema or a schema_file is required", append(at, "schema")...)
		}
		if ct.RepairAttempts != nil && (*ct.RepairAttempts < 0 || *ct.RepairAttempts > 5) {
			v.add("must be from 0 to 5", append(at, "repair_attempts")...)
		}
		if strings.Contains(ct.System, "{{") {
			if _, err := template.New("system").Parse(ct.System); err != nil {
				v.add("the prompt template does not parse: "+err.Error(), append(at, "system")...)
			}
		}
	}
	c.validatePolicies(&v)
	return v.err()
}

// validator collects validation problems with their paths.
type validator struct {
	errs []error
}

// add records a problem at path, a sequence of keys (string) and indexes (int).
func (v *validator) add(msg string, path ...any) {
	p := append([]any(nil), path...)
	v.errs = append(v.errs, &Error{Field: formatPath(p), Msg: msg, path: p})
}

func (v *validator) err() error { return joinErrors(v.errs) }

func joinErrors(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return errors.Join(errs...)
}

// formatPath renders a path as providers[1].headers.X-Org.
func formatPath(path []any) string {
	var b strings.Builder
	for _, el := range path {
		switch el := el.(type) {
		case int:
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(el))
			b.WriteByte(']')
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(el)
		}
	}
	return b.String()
}

// locate adds line and column to the *Error values in err, looking their
// field paths up in the YAML tree. A field missing from the file is reported
// at its nearest present parent.
func locate(body ast.Node, err error) error {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		ce, ok := e.(*Error)
		if !ok || body == nil || len(ce.path) == 0 {
			continue
		}
		if tok := lookup(body, ce.path); tok != nil && tok.Position != nil {
			ce.Line, ce.Column = tok.Position.Line, tok.Position.Column
		}
	}
	return err
}

// lookup walks path down from n and returns the token that best marks the
// deepest element found: a key for a mapping entry, the start of an item for a
// sequence index.
func lookup(n ast.Node, path []any) *token.Token {
	var best *token.Token
	for _, el := range path {
		n = unwrap(n)
		switch el := el.(type) {
		case string:
			mv := findKey(n, el)
			if mv == nil {
				return best
			}
			best = startToken(mv)
			n = mv.Value
		case int:
			seq, ok := n.(*ast.SequenceNode)
			if !ok || el < 0 || el >= len(seq.Values) {
				return best
			}
			n = seq.Values[el]
			best = startToken(n)
		}
	}
	return best
}

// unwrap returns the node under anchors and tags.
func unwrap(n ast.Node) ast.Node {
	for {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		default:
			return n
		}
	}
}

func mappingValues(n ast.Node) []*ast.MappingValueNode {
	switch m := n.(type) {
	case *ast.MappingNode:
		return m.Values
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{m}
	}
	return nil
}

func findKey(n ast.Node, key string) *ast.MappingValueNode {
	for _, mv := range mappingValues(n) {
		if keyString(mv.Key) == key {
			return mv
		}
	}
	return nil
}

func keyString(k ast.MapKeyNode) string {
	if k == nil {
		return ""
	}
	if s, ok := k.(*ast.StringNode); ok {
		return s.Value
	}
	if tok := k.GetToken(); tok != nil {
		return tok.Value
	}
	return ""
}

// startToken returns the token where n begins in the source: the key of a
// mapping entry, the first key of a block mapping, the node's own token
// otherwise.
func startToken(n ast.Node) *token.Token {
	switch v := n.(type) {
	case *ast.MappingValueNode:
		if v.Key != nil {
			return v.Key.GetToken()
		}
	case *ast.MappingNode:
		if !v.IsFlowStyle && len(v.Values) > 0 && v.Values[0].Key != nil {
			return v.Values[0].Key.GetToken()
		}
	}
	if n == nil {
		return nil
	}
	return n.GetToken()
}

// yamlError converts an error from the YAML parser or decoder, or from
// expansion, into an *Error with position and, when the token is found in
// body, the field path.
func yamlError(body ast.Node, err error) error {
	var ne *nodeError
	if errors.As(err, &ne) {
		return posError(ne.tok, fieldAt(body, ne.tok), ne.msg)
	}
	var te *yaml.TypeError
	if errors.As(err, &te) && te.DstType != nil {
		return posError(te.Token, fieldAt(body, te.Token), "want "+kindName(te.DstType))
	}
	var ye yaml.Error
	if errors.As(err, &ye) {
		return posError(ye.GetToken(), fieldAt(body, ye.GetToken()), ye.GetMessage())
	}
	return &Error{Msg: err.Error()}
}

// kindName names what a value of type t is written as in YAML.
func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return "a " + t.String()
}

func posError(tok *token.Token, field, msg string) *Error {
	e := &Error{Field: field, Msg: msg}
	if tok != nil && tok.Position != nil {
		e.Line, e.Column = tok.Position.Line, tok.Position.Column
	}
	return e
}

// fieldAt returns the path of the key or value whose token is tok, or "".
func fieldAt(body ast.Node, tok *token.Token) string {
	if body == nil || tok == nil {
		return ""
	}
	var found []any
	var walk func(n ast.Node, path []any) bool
	walk = func(n ast.Node, path []any) bool {
		if n == nil {
			return false
		}
		if n.GetToken() == tok {
			found = path
			return true
		}
		switch v := n.(type) {
		case *ast.AnchorNode:
			return walk(v.Value, path)
		case *ast.TagNode:
			return walk(v.Value, path)
		case *ast.LiteralNode:
			return v.Value != nil && walk(v.Value, path)
		case *ast.MappingNode:
			for _, mv := range v.Values {
				if walk(mv, path) {
					return true
				}
			}
		case *ast.MappingValueNode:
			p := append(path[:len(path):len(path)], keyString(v.Key))
			if v.Key != nil && v.Key.GetToken() == tok {
				found = p
				return true
			}
			return walk(v.Value, p)
		case *ast.SequenceNode:
			for i, item := range v.Values {
				if walk(item, append(path[:len(path):len(path)], i)) {
					return true
				}
			}
		}
		return false
	}
	walk(body, nil)
	return formatPath(found)
}

// checkHostPort returns what is wrong with a host:port listen address, or "".
func checkHostPort(s string) string {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Sprintf("%q is not host:port", s)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Sprintf("%q: port must be a number from 0 to 65535", s)
	}
	return ""
}

// checkURL returns what is wrong with a base URL, or "". It never echoes the
// URL, which may hold credentials.
func checkURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "not a valid URL"
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "want an absolute http:// or https:// URL"
	}
	if u.Host == "" {
		return "want an absolute URL with a host"
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "must not have a query or fragment"
	}
	return ""
}

// validHeaderName reports whether s is an HTTP header field name (an RFC 9110
// token).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// checkTimeouts reports negative timeouts under at.
func checkTimeouts(v *validator, t Timeouts, at []any) {
	for _, f := range []struct {
		name string
		d    Duration
	}{{"connect", t.Connect}, {"first_token", t.FirstToken}, {"idle", t.Idle}, {"total", t.Total}} {
		if f.d < 0 {
			v.add("must not be negative", append(append([]any(nil), at...), "timeouts", f.name)...)
		}
	}
}
