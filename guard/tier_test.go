package guard

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluice-gw/sluice"
)

func chat(model string, maxTokens int, msgs ...string) *sluice.Request {
	req := &sluice.Request{Model: model, MaxOutputTokens: maxTokens}
	for _, m := range msgs {
		req.Messages = append(req.Messages, sluice.Message{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart(m)}})
	}
	return req
}

func withTools(req *sluice.Request, names ...string) *sluice.Request {
	for _, n := range names {
		req.Tools = append(req.Tools, sluice.Tool{Name: n, Parameters: json.RawMessage(`{"type":"object"}`)})
	}
	return req
}

func TestAdmit(t *testing.T) {
	long := strings.Repeat("word ", 200) // 201 tokens in o200k_base, 208 with the framing
	for _, tc := range []struct {
		name      string
		req       *sluice.Request
		tier      Tier
		body      int
		code      sluice.Code
		param     string
		msg       string // part of the message
		maxOut    int
		clamped   bool
		tools     []string
		dropped   []string
		promptMin int
	}{
		{name: "no limits", req: chat("fast", 0, "hi"), tier: Tier{}},
		{name: "body within", req: chat("fast", 0, "hi"), tier: Tier{MaxBodyBytes: 100}, body: 100},
		{name: "body over", req: chat("fast", 0, "hi"), tier: Tier{MaxBodyBytes: 100}, body: 101,
			code: sluice.CodeRequestTooLarge, msg: "101 bytes; at most 100"},
		{name: "messages within", req: chat("fast", 0, "a", "b"), tier: Tier{MaxMessages: 2}},
		{name: "messages over", req: chat("fast", 0, "a", "b", "c"), tier: Tier{MaxMessages: 2},
			code: sluice.CodeRequestTooLarge, param: "messages", msg: "3 messages; at most 2"},
		{name: "system counts as a message", req: func() *sluice.Request {
			r := chat("fast", 0, "a", "b")
			r.System = []sluice.Part{sluice.TextPart("s"), sluice.TextPart("t")}
			return r
		}(), tier: Tier{MaxMessages: 2}, code: sluice.CodeRequestTooLarge, param: "messages"},
		{name: "model allowed", req: chat("fast", 0, "hi"), tier: Tier{Models: []string{"slow", "fast"}}},
		{name: "model by prefix", req: chat("gpt-4o-mini", 0, "hi"), tier: Tier{Models: []string{"gpt-4o*"}}},
		{name: "model not allowed", req: chat("smart", 0, "hi"), tier: Tier{Models: []string{"fast"}},
			code: sluice.CodePermissionDenied, param: "model", msg: `"smart"`},
		{name: "output unset takes the limit", req: chat("fast", 0, "hi"), tier: Tier{MaxOutputTokens: 512}, maxOut: 512},
		{name: "output within", req: chat("fast", 100, "hi"), tier: Tier{MaxOutputTokens: 512}, maxOut: 100},
		{name: "output clamped (default)", req: chat("fast", 4096, "hi"), tier: Tier{MaxOutputTokens: 512}, maxOut: 512, clamped: true},
		{name: "output clamped", req: chat("fast", 4096, "hi"), tier: Tier{MaxOutputTokens: 512, MaxOutputPolicy: OutputClamp}, maxOut: 512, clamped: true},
		{name: "output refused", req: chat("fast", 4096, "hi"), tier: Tier{MaxOutputTokens: 512, MaxOutputPolicy: OutputRefuse},
			code: sluice.CodeInvalidRequest, param: "max_tokens", msg: "4096; at most 512"},
		{name: "output no limit", req: chat("fast", 9999, "hi"), tier: Tier{}, maxOut: 9999},
		{name: "prompt within", req: chat("fast", 0, long), tier: Tier{MaxPromptTokens: 208}, promptMin: 208},
		{name: "prompt over", req: chat("fast", 0, long), tier: Tier{MaxPromptTokens: 207},
			code: sluice.CodePromptTooLong, param: "messages", msg: "208 tokens; at most 207"},
		{name: "tools any", req: withTools(chat("fast", 0, "hi"), "a", "b"), tier: Tier{}, tools: []string{"a", "b"}},
		{name: "tools allowed", req: withTools(chat("fast", 0, "hi"), "a", "b"), tier: Tier{Tools: []string{"a", "b", "c"}}, tools: []string{"a", "b"}},
		{name: "tool refused", req: withTools(chat("fast", 0, "hi"), "a", "rm_rf"), tier: Tier{Tools: []string{"a"}},
			code: sluice.CodeInvalidRequest, param: "tools", msg: `"rm_rf"`},
		{name: "tool dropped", req: withTools(chat("fast", 0, "hi"), "a", "rm_rf", "b"), tier: Tier{Tools: []string{"a", "b"}, ToolPolicy: ToolDrop},
			tools: []string{"a", "b"}, dropped: []string{"rm_rf"}},
		{name: "no tools allowed", req: withTools(chat("fast", 0, "hi"), "a"), tier: Tier{Tools: []string{}},
			code: sluice.CodeInvalidRequest, param: "tools"},
		{name: "tool choice names a dropped tool", req: func() *sluice.Request {
			r := withTools(chat("fast", 0, "hi"), "a", "rm_rf")
			r.ToolChoice = sluice.ToolChoice{Mode: sluice.ToolChoiceTool, Name: "rm_rf"}
			return r
		}(), tier: Tier{Tools: []string{"a"}, ToolPolicy: ToolDrop}, code: sluice.CodeInvalidRequest, param: "tool_choice"},
		{name: "tool required, all dropped", req: func() *sluice.Request {
			r := withTools(chat("fast", 0, "hi"), "rm_rf")
			r.ToolChoice = sluice.ToolChoice{Mode: sluice.ToolChoiceRequired}
			return r
		}(), tier: Tier{Tools: []string{"a"}, ToolPolicy: ToolDrop}, code: sluice.CodeInvalidRequest, param: "tool_choice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(tc.req.Tools)
			a, err := Admit(tc.req, "gpt-4o", tc.tier, tc.body)
			if tc.code != "" {
				var e *sluice.Error
				if !errors.As(err, &e) || e.Code != tc.code || e.Param != tc.param || !strings.Contains(e.Message, tc.msg) {
					t.Fatalf("err = %#v, want code %s param %q message with %q", err, tc.code, tc.param, tc.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.MaxOutputTokens != tc.maxOut || a.Clamped != tc.clamped {
				t.Errorf("max output %d clamped %v, want %d %v", a.MaxOutputTokens, a.Clamped, tc.maxOut, tc.clamped)
			}
			var names []string
			for _, tool := range a.Tools {
				names = append(names, tool.Name)
			}
			if diff := cmp.Diff(tc.tools, names); diff != "" {
				t.Errorf("tools (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.dropped, a.Dropped); diff != "" {
				t.Errorf("dropped (-want +got):\n%s", diff)
			}
			if len(tc.req.Tools) != before {
				t.Error("Admit modified the request's tools")
			}
			if a.PromptTokens < tc.promptMin || a.PromptTokens == 0 {
				t.Errorf("prompt tokens %d", a.PromptTokens)
			}
		})
	}
}

func TestAdmitCountsWithoutDroppedTools(t *testing.T) {
	req := withTools(chat("fast", 0, "hi"), "a")
	req.Tools = append(req.Tools, sluice.Tool{Name: "huge", Description: strings.Repeat("long text ", 500)})
	a, err := Admit(req, "gpt-4o", Tier{Tools: []string{"a"}, ToolPolicy: ToolDrop, MaxPromptTokens: 100}, 0)
	if err != nil {
		t.Fatalf("the dropped tool was counted: %v", err)
	}
	a.Apply(req)
	if len(req.Tools) != 1 || req.Tools[0].Name != "a" || req.MaxOutputTokens != 0 {
		t.Errorf("Apply: %+v", req)
	}
	if a.ReserveTokens() != a.PromptTokens+DefaultOutputReserve {
		t.Errorf("ReserveTokens = %d", a.ReserveTokens())
	}
}

func TestTighten(t *testing.T) {
	tier := Tier{
		Name: "pro", Models: []string{"fast", "smart", "gpt-*"},
		MaxPromptTokens: 8000, MaxOutputTokens: 0, MaxMessages: 50, MaxBodyBytes: 1 << 20,
		RPM: 600, TPM: 100000, UserRPM: 60, MaxStreams: 10,
		DailyBudgetUSD: 10, MonthlyBudgetUSD: 100, MaxOutputPolicy: OutputRefuse,
	}
	route := Tier{
		MaxPromptTokens: 4000, MaxOutputTokens: 1024, MaxMessages: 100, TPM: 50000, UserTPM: 5000,
		DailyBudgetUSD: 20, Tools: []string{"search", "calc"}, ToolPolicy: ToolDrop,
	}
	got := tier.Tighten(route)
	want := Tier{
		Name: "pro", Models: []string{"fast", "smart", "gpt-*"},
		MaxPromptTokens: 4000, MaxOutputTokens: 1024, MaxMessages: 50, MaxBodyBytes: 1 << 20,
		RPM: 600, TPM: 50000, UserRPM: 60, UserTPM: 5000, MaxStreams: 10,
		DailyBudgetUSD: 10, MonthlyBudgetUSD: 100, MaxOutputPolicy: OutputRefuse,
		Tools: []string{"search", "calc"}, ToolPolicy: ToolDrop,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Tighten (-want +got):\n%s", diff)
	}

	// Lists: the names both allow.
	a := Tier{Models: []string{"gpt-*", "claude"}, Tools: []string{"x", "y"}}
	b := Tier{Models: []string{"gpt-4o", "llama"}, Tools: []string{"y", "z"}}
	ab := a.Tighten(b)
	if diff := cmp.Diff([]string{"gpt-4o"}, ab.Models); diff != "" {
		t.Errorf("models (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"y"}, ab.Tools); diff != "" {
		t.Errorf("tools (-want +got):\n%s", diff)
	}
	none := Tier{Models: []string{"a"}, Tools: []string{"x"}}.Tighten(Tier{Models: []string{"b"}, Tools: []string{"y"}})
	if none.AllowsModel("a") || none.AllowsModel("b") || none.AllowsModel("\x00") || none.AllowsModel("") {
		t.Errorf("disjoint models allow something: %q", none.Models)
	}
	if none.AllowsTool("x") || none.AllowsTool("y") || none.Tools == nil {
		t.Errorf("disjoint tools allow something: %q", none.Tools)
	}
	if !(Tier{}).AllowsTool("anything") || !(Tier{}).AllowsModel("anything") {
		t.Error("an empty tier refuses")
	}
	// An unset route changes nothing.
	if diff := cmp.Diff(tier, tier.Tighten(Tier{})); diff != "" {
		t.Errorf("Tighten(zero) (-want +got):\n%s", diff)
	}
}
