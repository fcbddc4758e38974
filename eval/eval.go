// Package eval runs golden datasets through Sluice's routes and contracts,
// in-process through a pipeline or against a running gateway over HTTP,
// and reports pass rates, schema validity, flakiness, latency, tokens and
// cost, compared with an earlier run when one is given.
//
// A dataset is JSONL, one Case a line (ParseDataset). A run calls each case
// on each target (a model route or a contract) Repeat times; each call is
// an Attempt, checked against the case's expectations (Case.Check). The
// Report aggregates them (NewReport), compares with a baseline
// (Compare), and renders as JSON (stable: see docs/eval.md) and as a
// self-contained HTML page (WriteHTML).
package eval

import (
	"encoding/json"
	"time"
)

// A Case is one line of a dataset: an input, and what its answer must
// satisfy.
type Case struct {
	// ID names the case in reports; unique within a dataset.
	ID string `json:"id"`
	// Messages is the input of a model route: a chat. Input is the input
	// of a contract: a string or an object. A case has one or the other.
	Messages []Message       `json:"messages,omitempty"`
	Input    json.RawMessage `json:"input,omitempty"`
	// Expect is what the answer must satisfy; zero: only that the call
	// succeeds.
	Expect Expect `json:"expect"`
	// Line is the case's line in its dataset (1-based).
	Line int `json:"-"`
}

// A Message is one message of a case's chat input.
type Message struct {
	Role    string `json:"role"` // system, user or assistant
	Content string `json:"content"`
}

// Expect is what a case's answer must satisfy. Every field set is one
// check (one assertion per JSON entry); a case passes when the call
// succeeded and every check passed.
type Expect struct {
	// Valid, when true, requires the answer to meet the target's schema:
	// kind "schema". For a contract, the answer met the contract's schema
	// (a contract target always checks it, as if true); for a model
	// route, the answer is JSON.
	Valid bool `json:"valid,omitempty"`
	// JSON are assertions on the answer parsed as JSON: kind "json".
	JSON []PathAssertion `json:"json,omitempty"`
	// Contains and NotContains are substrings the answer's text must and
	// must not hold (case-sensitive): kinds "contains", "not_contains".
	Contains    []string `json:"contains,omitempty"`
	NotContains []string `json:"not_contains,omitempty"`
	// MaxLatencyMS bounds the call's latency in milliseconds: kind
	// "latency". MaxTokens bounds its output tokens: kind "tokens".
	MaxLatencyMS float64 `json:"max_latency_ms,omitempty"`
	MaxTokens    int     `json:"max_tokens,omitempty"`
}

// A PathAssertion is one assertion on the value at Path in the answer's
// JSON. Path is a JSONPath subset: "$" for the whole answer, then ".name",
// "['name']" or "[N]" steps ("$.items[0].price"). Exactly one of the
// assertions below is set, besides Path:
type PathAssertion struct {
	Path string `json:"path"`
	// Equals: the value equals this JSON value (numbers by value, objects
	// regardless of key order).
	Equals json.RawMessage `json:"equals,omitempty"`
	// OneOf: the value equals one of these.
	OneOf []json.RawMessage `json:"one_of,omitempty"`
	// Matches: the value is a string matching this regular expression
	// (RE2 syntax, unanchored).
	Matches string `json:"matches,omitempty"`
	// Min and Max: the value is a number within [Min, Max] (either may be
	// left out).
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
	// MinLen and MaxLen: the value is an array (or a string) whose length
	// is within [MinLen, MaxLen].
	MinLen *int `json:"min_len,omitempty"`
	MaxLen *int `json:"max_len,omitempty"`
	// Exists: the path is present (true) or absent (false).
	Exists *bool `json:"exists,omitempty"`
}

// An Attempt is one call of one case on one target, and how it went.
type Attempt struct {
	Case   string `json:"case"`
	Target string `json:"target"` // the route or contract name
	Rep    int    `json:"rep"`    // 0-based repetition
	// Output is the answer's text (for a contract: its JSON); Code the
	// error code when the call failed ("" when it succeeded).
	Output string `json:"output,omitempty"`
	Code   string `json:"code,omitempty"`
	// Pass reports whether the call succeeded and every check passed.
	Pass   bool    `json:"pass"`
	Checks []Check `json:"checks,omitempty"`
	// Model and Provider name the upstream that answered ("" if none).
	Model    string `json:"model,omitempty"`
	Provider string `json:"provider,omitempty"`
	// Latency is the whole call's; TTFT a stream's time to first content
	// (zero when the call did not stream).
	Latency time.Duration `json:"latency_ns"`
	TTFT    time.Duration `json:"ttft_ns,omitempty"`
	// InputTokens and OutputTokens are the call's usage; CostUSD its cost.
	InputTokens  int     `json:"input_tokens"`
	OutputTokens int     `json:"output_tokens"`
	CostUSD      float64 `json:"cost_usd"`
	// Schema reports whether the target had a schema to meet; then Valid
	// whether the answer met it, and Repairs how many repair requests the
	// gateway made for it.
	Schema  bool `json:"schema,omitempty"`
	Valid   bool `json:"valid,omitempty"`
	Repairs int  `json:"repairs,omitempty"`
}

// A Check is the outcome of one expectation on one attempt.
type Check struct {
	// Kind is "call" (the call succeeded), "schema", "json", "contains",
	// "not_contains", "latency" or "tokens".
	Kind string `json:"kind"`
	// Name says which: the path of a json check, the substring of a
	// contains check; empty for the others.
	Name string `json:"name,omitempty"`
	Pass bool   `json:"pass"`
	// Detail says why a check failed, in a few words ("got 3, want 4").
	Detail string `json:"detail,omitempty"`
}

// RunInfo describes a run, for its report.
type RunInfo struct {
	// Dataset is the dataset file's name; Kind "route" or "contract";
	// Targets the routes or contracts run, in the order given.
	Dataset string   `json:"dataset"`
	Kind    string   `json:"kind"`
	Targets []string `json:"targets"`
	// Gateway is the URL of the gateway the run called; empty when it ran
	// in-process.
	Gateway     string `json:"gateway,omitempty"`
	Repeat      int    `json:"repeat"`
	Concurrency int    `json:"concurrency"`
	// Cases is the number of cases in the dataset; Planned the attempts
	// the run meant to make (cases × targets × repeat).
	Cases   int `json:"cases"`
	Planned int `json:"planned"`
	// Started and Finished bound the run.
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Stopped says why the run ended before its plan: "interrupted" (a
	// signal or a cancelled context) or "max_cost" (--max-cost reached);
	// empty when it ran to the end. A stopped run's report covers the
	// attempts made.
	Stopped string `json:"stopped,omitempty"`
	// MaxCostUSD is the cost guard (0: none).
	MaxCostUSD float64 `json:"max_cost_usd,omitempty"`
}
