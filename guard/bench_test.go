package guard

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice"
	"github.com/tiktoken-go/tokenizer"
)

func shortRequest() *sluice.Request {
	return &sluice.Request{
		Model:  "fast",
		System: []sluice.Part{sluice.TextPart("You are a helpful assistant.")},
		Messages: []sluice.Message{{Role: sluice.RoleUser, Parts: []sluice.Part{
			sluice.TextPart("What is the capital of France? Answer in one word."),
		}}},
		MaxOutputTokens: 256,
	}
}

func chatRequest(turns int) *sluice.Request {
	req := shortRequest()
	para := "Sluice sits between an application and LLM providers; it decides where each request goes, " +
		"guards it, calls the provider with deadlines and retries, and meters what comes back. "
	for i := range turns {
		role := sluice.RoleUser
		if i%2 == 1 {
			role = sluice.RoleAssistant
		}
		req.Messages = append(req.Messages, sluice.Message{Role: role, Parts: []sluice.Part{sluice.TextPart(para)}})
	}
	req.Tools = []sluice.Tool{{Name: "search", Description: "Search the web.",
		Parameters: json.RawMessage(`{"type":"object","properties":{"q":{"type":"string"}},"required":["q"]}`)}}
	return req
}

func BenchmarkCountPrompt(b *testing.B) {
	Preload()
	long := shortRequest()
	data, _ := json.Marshal(DefaultPrices())
	long.Messages[0].Parts[0].Text = strings.Repeat(string(data)+"\n", 16) // ~50 KB of JSON
	for _, bc := range []struct {
		name  string
		req   *sluice.Request
		model string
	}{
		{"short/gpt-4o", shortRequest(), "gpt-4o"},
		{"short/gpt-4", shortRequest(), "gpt-4"},
		{"short/claude", shortRequest(), "claude-sonnet-4"},
		{"chat-10-turns+tool/gpt-4o", chatRequest(10), "gpt-4o"},
		{"json-50KB/gpt-4o", long, "gpt-4o"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			n, _ := CountPrompt(bc.req, bc.model)
			b.ReportMetric(float64(n), "tokens")
			b.ReportAllocs()
			for b.Loop() {
				CountPrompt(bc.req, bc.model)
			}
		})
	}
}

// BenchmarkLibraryCount is the library's own (regular-expression) count
// of the short prompt's text, for comparison.
func BenchmarkLibraryCount(b *testing.B) {
	c, _ := tokenizer.Get(tokenizer.O200kBase)
	s := "You are a helpful assistant.What is the capital of France? Answer in one word."
	b.ReportAllocs()
	for b.Loop() {
		c.Count(s)
	}
}

func BenchmarkAuthenticateCached(b *testing.B) {
	ctx := context.Background()
	a := NewAuthenticator(&fakeKeys{}, AuthOptions{})
	secret, _, _ := a.Create(ctx, KeySpec{Tenant: "acme", Tier: "pro"})
	a.Authenticate(ctx, secret)
	b.ReportAllocs()
	for b.Loop() {
		a.Authenticate(ctx, secret)
	}
}

// BenchmarkAdmission is the whole admission of a short request: a cached
// key, the tier and route, the prompt count, key and user rate limits on
// the in-process limiter, the budget, then settling both after the call.
func BenchmarkAdmission(b *testing.B) {
	Preload()
	ctx := context.Background()
	auth := NewAuthenticator(&fakeKeys{}, AuthOptions{})
	secret, _, _ := auth.Create(ctx, KeySpec{Tenant: "acme", Tier: "pro", User: "u1"})
	tier := Tier{Models: []string{"fast"}, MaxPromptTokens: 8000, MaxOutputTokens: 1024, MaxMessages: 100,
		MaxBodyBytes: 1 << 20, RPM: 1 << 40, TPM: 1 << 50, UserRPM: 1 << 40, DailyBudgetUSD: 1e12}
	route := Tier{MaxOutputTokens: 512, Tools: []string{"search"}}
	limits := NewLimits(nil, LimitsOptions{})
	budgets := NewBudgets(BudgetOptions{})
	pricing := NewPricing(nil)
	req := shortRequest()
	usage := sluice.Usage{InputTokens: 30, OutputTokens: 2}
	admit := func() {
		key, err := auth.Authenticate(ctx, secret)
		if err != nil {
			b.Fatal(err)
		}
		t := tier.Tighten(route)
		a, err := Admit(req, "gpt-4o", t, 400)
		if err != nil {
			b.Fatal(err)
		}
		who := Identity{KeyID: key.ID, User: key.User, Tenant: key.Tenant, IP: "10.0.0.1"}
		res, _, err := limits.Reserve(ctx, who, t, Rate{RPM: 1 << 40}, a.PromptTokens, a.OutputReserve())
		if err != nil {
			b.Fatal(err)
		}
		release, err := budgets.Reserve(ctx, key.ID, key.Tenant, pricing.Estimate("gpt-4o", a.PromptTokens, a.OutputReserve()), t)
		if err != nil {
			b.Fatal(err)
		}
		res.Settle(ctx, usage.TotalTokens())
		release(pricing.Cost("gpt-4o", usage))
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			admit()
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				admit()
			}
		})
	})
}
