package guard

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sluice-gw/sluice"
)

// OutputPolicy says what happens to a request asking for more output
// tokens than its tier allows.
type OutputPolicy string

// The output policies.
const (
	OutputClamp  OutputPolicy = "clamp"  // lower the request's max_tokens to the limit (the default)
	OutputRefuse OutputPolicy = "refuse" // refuse the request with invalid_request
)

// ToolPolicy says what happens to a request offering a tool its route does
// not allow.
type ToolPolicy string

// The tool policies.
const (
	ToolRefuse ToolPolicy = "refuse" // refuse the request with invalid_request (the default)
	ToolDrop   ToolPolicy = "drop"   // offer the model only the allowed tools
)

// DefaultOutputReserve is the output a request is assumed to produce, for
// rate limits and budgets, when neither it nor its tier caps output.
const DefaultOutputReserve = 4096

// A Tier is a set of limits: what a key's tier allows, tightened by the
// route the request is for (see Tighten). A zero field means no limit.
type Tier struct {
	// Name names the tier (in logs and ledger rows).
	Name string
	// Models are the public model names the tier may call; empty allows
	// every one. A name ending in '*' allows every name with that prefix.
	Models []string

	// MaxPromptTokens bounds the prompt, as CountPrompt counts it.
	MaxPromptTokens int
	// MaxOutputTokens bounds a request's max_tokens. A request that sets
	// none is given this cap. MaxOutputPolicy says what happens to a
	// request asking for more: clamp (the zero value) or refuse.
	MaxOutputTokens int
	MaxOutputPolicy OutputPolicy
	// MaxMessages bounds the messages of a request (its system prompt
	// counts as one); MaxBodyBytes the size of its body.
	MaxMessages  int
	MaxBodyBytes int64

	// RPM and TPM are the requests and tokens per minute of each key;
	// UserRPM and UserTPM those of each end user (Identity.User) of a
	// tenant, whichever key they come through.
	RPM, TPM         int64
	UserRPM, UserTPM int64
	// MaxStreams bounds the streams a key has open at once (per instance;
	// see Streams).
	MaxStreams int

	// DailyBudgetUSD and MonthlyBudgetUSD bound each key's spend per UTC
	// day and month.
	DailyBudgetUSD, MonthlyBudgetUSD float64

	// Tools, when not nil, lists the tools a model may be offered (and so
	// call): an empty, non-nil list allows none. ToolPolicy says what
	// happens to a request offering others: refuse (the zero value) or
	// drop them.
	Tools      []string
	ToolPolicy ToolPolicy
}

// Tighten returns t limited further by route: each limit is the smaller of
// the two that are set, models and tools those both allow (when they share
// none, the result allows none). The policies
// (MaxOutputPolicy, ToolPolicy) are route's where it sets them, else t's.
func (t Tier) Tighten(route Tier) Tier {
	out := t
	out.Models = intersect(t.Models, route.Models, true)
	if out.Models != nil && len(out.Models) == 0 {
		out.Models = []string{noModel} // the lists share no name: allow none
	}
	out.MaxPromptTokens = minLimit(t.MaxPromptTokens, route.MaxPromptTokens)
	out.MaxOutputTokens = minLimit(t.MaxOutputTokens, route.MaxOutputTokens)
	out.MaxMessages = minLimit(t.MaxMessages, route.MaxMessages)
	out.MaxBodyBytes = minLimit(t.MaxBodyBytes, route.MaxBodyBytes)
	out.RPM = minLimit(t.RPM, route.RPM)
	out.TPM = minLimit(t.TPM, route.TPM)
	out.UserRPM = minLimit(t.UserRPM, route.UserRPM)
	out.UserTPM = minLimit(t.UserTPM, route.UserTPM)
	out.MaxStreams = minLimit(t.MaxStreams, route.MaxStreams)
	out.DailyBudgetUSD = minLimit(t.DailyBudgetUSD, route.DailyBudgetUSD)
	out.MonthlyBudgetUSD = minLimit(t.MonthlyBudgetUSD, route.MonthlyBudgetUSD)
	out.Tools = intersect(t.Tools, route.Tools, false)
	if route.MaxOutputPolicy != "" {
		out.MaxOutputPolicy = route.MaxOutputPolicy
	}
	if route.ToolPolicy != "" {
		out.ToolPolicy = route.ToolPolicy
	}
	return out
}

// noModel is a model list entry no request matches: AllowsModel refuses
// names holding a NUL byte before it looks at the list.
const noModel = "\x00"

// minLimit returns the smaller of a and b, where zero means no limit.
func minLimit[T int | int64 | float64](a, b T) T {
	switch {
	case a <= 0:
		return b
	case b <= 0:
		return a
	}
	return min(a, b)
}

// intersect returns the names both lists allow. For models an empty list
// allows all (emptyAll); for tools a nil one does.
func intersect(a, b []string, emptyAll bool) []string {
	unset := func(l []string) bool { return l == nil || emptyAll && len(l) == 0 }
	switch {
	case unset(a):
		return b
	case unset(b):
		return a
	}
	out := []string{}
	for _, n := range a {
		if matchName(b, n) {
			out = append(out, n)
		}
	}
	for _, n := range b {
		if matchName(a, n) && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// matchName reports whether list allows name: it holds name, or a pattern
// "prefix*" that name starts with.
func matchName(list []string, name string) bool {
	for _, p := range list {
		if p == name {
			return true
		}
		if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}

// AllowsModel reports whether t may call the public model name model.
func (t Tier) AllowsModel(model string) bool {
	if len(t.Models) == 0 {
		return true
	}
	return !strings.Contains(model, noModel) && matchName(t.Models, model)
}

// An Admission is what Admit decided about a request that passed.
type Admission struct {
	// PromptTokens is the prompt as CountPrompt counts it (without the
	// dropped tools); Exact reports whether the count is exact.
	PromptTokens int
	Exact        bool
	// MaxOutputTokens is the output cap to send upstream: the request's,
	// clamped to the tier's limit, or the tier's limit when the request
	// set none. Zero: neither set one (the provider's default applies).
	// Clamped reports whether the request's own cap was lowered.
	MaxOutputTokens int
	Clamped         bool
	// Tools are the tools to offer: the request's, less Dropped (the
	// names ToolDrop removed). It is the request's own slice when nothing
	// was dropped.
	Tools   []sluice.Tool
	Dropped []string
}

// ReserveTokens returns the tokens to reserve for the request at
// admission, for rate limits and budgets: the prompt plus the output cap,
// or DefaultOutputReserve when there is none.
func (a Admission) ReserveTokens() int {
	return a.PromptTokens + a.OutputReserve()
}

// OutputReserve returns the output tokens to reserve: MaxOutputTokens, or
// DefaultOutputReserve when it is zero.
func (a Admission) OutputReserve() int {
	if a.MaxOutputTokens > 0 {
		return a.MaxOutputTokens
	}
	return DefaultOutputReserve
}

// Apply sets req's output cap and tools to those a admitted. It does not
// modify the slice req.Tools held.
func (a Admission) Apply(req *sluice.Request) {
	req.MaxOutputTokens = a.MaxOutputTokens
	req.Tools = a.Tools
}

// Admit checks req against t before any upstream call, cheapest checks
// first, and returns what passed or the first refusal as an *sluice.Error:
//
//   - request_too_large: the body is over MaxBodyBytes (bodyBytes is its
//     size; 0 when unknown) or the messages over MaxMessages;
//   - permission_denied (param "model"): req.Model, the public model name,
//     is not in t.Models. The route exists (the router decides not_found);
//     this key may not use it;
//   - invalid_request (param "tools" or "tool_choice"): a tool not in
//     t.Tools under ToolRefuse, or a tool_choice naming a tool that is not
//     allowed under either policy;
//   - invalid_request (param "max_tokens"): max_tokens over
//     MaxOutputTokens under OutputRefuse;
//   - prompt_too_long (param "messages"): the prompt, counted for model
//     (the upstream model name of the route's primary target), is over
//     MaxPromptTokens.
//
// Admit does not modify req; see Admission.Apply.
func Admit(req *sluice.Request, model string, t Tier, bodyBytes int) (Admission, error) {
	return AdmitCounting(req, model, t, bodyBytes, true)
}

// NeedsCount reports whether admission under t needs the prompt counted:
// for its prompt limit, its tokens per minute or its budgets.
func (t Tier) NeedsCount() bool {
	return t.MaxPromptTokens > 0 || t.TPM > 0 || t.UserTPM > 0 || t.DailyBudgetUSD > 0 || t.MonthlyBudgetUSD > 0
}

// AdmitCounting is Admit, counting the prompt only when count is set (the
// tier, or a budget or limit beside it, needs the count); uncounted,
// Admission.PromptTokens is 0. Counting loads the tokenizers' vocabularies
// on first use (see Preload).
func AdmitCounting(req *sluice.Request, model string, t Tier, bodyBytes int, count bool) (Admission, error) {
	if t.MaxBodyBytes > 0 && int64(bodyBytes) > t.MaxBodyBytes {
		return Admission{}, &sluice.Error{Code: sluice.CodeRequestTooLarge, Err: RefusedBodySize,
			Message: fmt.Sprintf("The request body has %d bytes; at most %d are allowed.", bodyBytes, t.MaxBodyBytes)}
	}
	if n := countMessages(req); t.MaxMessages > 0 && n > t.MaxMessages {
		return Admission{}, &sluice.Error{Code: sluice.CodeRequestTooLarge, Param: "messages", Err: RefusedMessages,
			Message: fmt.Sprintf("The request has %d messages; at most %d are allowed.", n, t.MaxMessages)}
	}
	if !t.AllowsModel(req.Model) {
		return Admission{}, &sluice.Error{Code: sluice.CodePermissionDenied, Param: "model", Err: RefusedModel,
			Message: fmt.Sprintf("This key may not use the model %q.", req.Model)}
	}
	a := Admission{Tools: req.Tools}
	if t.Tools != nil {
		tools, dropped, err := allowTools(req, t)
		if err != nil {
			return Admission{}, err
		}
		a.Tools, a.Dropped = tools, dropped
	}
	a.MaxOutputTokens = req.MaxOutputTokens
	if lim := t.MaxOutputTokens; lim > 0 {
		switch {
		case req.MaxOutputTokens <= 0:
			a.MaxOutputTokens = lim
		case req.MaxOutputTokens > lim && t.MaxOutputPolicy == OutputRefuse:
			return Admission{}, &sluice.Error{Code: sluice.CodeInvalidRequest, Param: "max_tokens", Err: RefusedOutputTokens,
				Message: fmt.Sprintf("max_tokens is %d; at most %d is allowed.", req.MaxOutputTokens, lim)}
		case req.MaxOutputTokens > lim:
			a.MaxOutputTokens, a.Clamped = lim, true
		}
	}
	if !count {
		return a, nil
	}
	a.PromptTokens, a.Exact = countPrompt(req, a.Tools, lookupModel(model))
	if t.MaxPromptTokens > 0 && a.PromptTokens > t.MaxPromptTokens {
		about := ""
		if !a.Exact {
			about = "about "
		}
		return Admission{}, &sluice.Error{Code: sluice.CodePromptTooLong, Param: "messages", Err: RefusedPromptTokens,
			Message: fmt.Sprintf("The prompt has %s%d tokens; at most %d are allowed.", about, a.PromptTokens, t.MaxPromptTokens)}
	}
	return a, nil
}

// countMessages counts req's messages, its system prompt as one.
func countMessages(req *sluice.Request) int {
	n := len(req.Messages)
	if len(req.System) > 0 {
		n++
	}
	return n
}

// allowTools applies t's tool allowlist to req.
func allowTools(req *sluice.Request, t Tier) (tools []sluice.Tool, dropped []string, err error) {
	tools = req.Tools
	for i := range req.Tools {
		name := req.Tools[i].Name
		if matchName(t.Tools, name) {
			continue
		}
		if t.ToolPolicy != ToolDrop {
			return nil, nil, &sluice.Error{Code: sluice.CodeInvalidRequest, Param: "tools", Err: RefusedTools,
				Message: fmt.Sprintf("The tool %q is not allowed on this route.", name)}
		}
		dropped = append(dropped, name)
	}
	if len(dropped) > 0 {
		tools = make([]sluice.Tool, 0, len(req.Tools)-len(dropped))
		for _, tool := range req.Tools {
			if matchName(t.Tools, tool.Name) {
				tools = append(tools, tool)
			}
		}
	}
	if req.ToolChoice.Mode == sluice.ToolChoiceTool && !matchName(t.Tools, req.ToolChoice.Name) {
		return nil, nil, &sluice.Error{Code: sluice.CodeInvalidRequest, Param: "tool_choice", Err: RefusedTools,
			Message: fmt.Sprintf("The tool %q is not allowed on this route.", req.ToolChoice.Name)}
	}
	if req.ToolChoice.Mode == sluice.ToolChoiceRequired && len(tools) == 0 && len(req.Tools) > 0 {
		return nil, nil, &sluice.Error{Code: sluice.CodeInvalidRequest, Param: "tool_choice", Err: RefusedTools,
			Message: "tool_choice requires a tool call, and none of the tools offered is allowed on this route."}
	}
	return tools, dropped, nil
}

// AllowsTool reports whether t lets a model call the tool name: for the
// response-side check of tool calls.
func (t Tier) AllowsTool(name string) bool {
	return t.Tools == nil || matchName(t.Tools, name)
}
