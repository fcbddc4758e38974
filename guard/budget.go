package guard

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/store"
)

// A Price is a model's price in US dollars per million tokens.
type Price struct {
	Input  float64
	Output float64
	// CachedInput is the price of input read from the prompt cache; zero
	// means Input (no discount).
	CachedInput float64
	// CacheWrite is the price of input written to the prompt cache
	// (Anthropic reports such writes; OpenAI does not); zero means 1.25 ×
	// Input, Anthropic's rate for the default five-minute cache.
	CacheWrite float64
}

// DefaultPrices returns the built-in price table, by upstream model name.
// They are the providers' list prices for standard processing as last
// checked (OpenAI and Anthropic pricing pages, late 2025), without batch or
// priority rates and without Anthropic's long-context (over 200k input
// tokens) rates: override and extend them in the configuration
// (pricing:). Each call returns a new map.
func DefaultPrices() map[string]Price {
	return map[string]Price{
		// OpenAI
		"gpt-5":             {Input: 1.25, CachedInput: 0.125, Output: 10},
		"gpt-5.1":           {Input: 1.25, CachedInput: 0.125, Output: 10},
		"gpt-5-mini":        {Input: 0.25, CachedInput: 0.025, Output: 2},
		"gpt-5-nano":        {Input: 0.05, CachedInput: 0.005, Output: 0.40},
		"gpt-4.1":           {Input: 2, CachedInput: 0.50, Output: 8},
		"gpt-4.1-mini":      {Input: 0.40, CachedInput: 0.10, Output: 1.60},
		"gpt-4.1-nano":      {Input: 0.10, CachedInput: 0.025, Output: 0.40},
		"gpt-4.5-preview":   {Input: 75, CachedInput: 37.5, Output: 150},
		"gpt-4o":            {Input: 2.50, CachedInput: 1.25, Output: 10},
		"gpt-4o-2024-05-13": {Input: 5, Output: 15},
		"gpt-4o-mini":       {Input: 0.15, CachedInput: 0.075, Output: 0.60},
		"o1":                {Input: 15, CachedInput: 7.50, Output: 60},
		"o1-mini":           {Input: 1.10, CachedInput: 0.55, Output: 4.40},
		"o1-pro":            {Input: 150, Output: 600},
		"o3":                {Input: 2, CachedInput: 0.50, Output: 8},
		"o3-mini":           {Input: 1.10, CachedInput: 0.55, Output: 4.40},
		"o3-pro":            {Input: 20, Output: 80},
		"o4-mini":           {Input: 1.10, CachedInput: 0.275, Output: 4.40},
		"gpt-4-turbo":       {Input: 10, Output: 30},
		"gpt-4":             {Input: 30, Output: 60},
		"gpt-3.5-turbo":     {Input: 0.50, Output: 1.50},
		// Anthropic: cache reads 0.1 × input, five-minute cache writes 1.25 ×.
		"claude-opus-4-5":   {Input: 5, CachedInput: 0.50, CacheWrite: 6.25, Output: 25},
		"claude-opus-4-1":   {Input: 15, CachedInput: 1.50, CacheWrite: 18.75, Output: 75},
		"claude-opus-4":     {Input: 15, CachedInput: 1.50, CacheWrite: 18.75, Output: 75},
		"claude-sonnet-4-5": {Input: 3, CachedInput: 0.30, CacheWrite: 3.75, Output: 15},
		"claude-sonnet-4":   {Input: 3, CachedInput: 0.30, CacheWrite: 3.75, Output: 15},
		"claude-haiku-4-5":  {Input: 1, CachedInput: 0.10, CacheWrite: 1.25, Output: 5},
		"claude-3-7-sonnet": {Input: 3, CachedInput: 0.30, CacheWrite: 3.75, Output: 15},
		"claude-3-5-sonnet": {Input: 3, CachedInput: 0.30, CacheWrite: 3.75, Output: 15},
		"claude-3-5-haiku":  {Input: 0.80, CachedInput: 0.08, CacheWrite: 1, Output: 4},
		"claude-3-opus":     {Input: 15, CachedInput: 1.50, CacheWrite: 18.75, Output: 75},
		"claude-3-haiku":    {Input: 0.25, CachedInput: 0.03, CacheWrite: 0.30, Output: 1.25},
	}
}

// Pricing is a price table. A model's price is found by its name, lower
// case and without a provider prefix ("openai/", "us.anthropic."): the
// entry of that name, else of the longest name it extends by '-', '@' or
// ':' (so "gpt-4o-2024-08-06" costs what "gpt-4o" does, and a newer
// version of a family what the family does until it is listed). A Pricing
// is immutable and safe for concurrent use.
type Pricing struct {
	prices map[string]Price
}

// NewPricing returns DefaultPrices with overrides added over them (an
// override replaces the whole entry).
func NewPricing(overrides map[string]Price) *Pricing {
	p := &Pricing{prices: DefaultPrices()}
	for name, price := range overrides {
		p.prices[strings.ToLower(name)] = price
	}
	return p
}

// Price returns the price of model, and whether the table has one.
func (p *Pricing) Price(model string) (Price, bool) {
	m := baseModel(model)
	for {
		if price, ok := p.prices[m]; ok {
			return price, true
		}
		i := strings.LastIndexAny(m, "-@:")
		if i <= 0 {
			return Price{}, false
		}
		m = m[:i]
	}
}

// Cost returns the cost in US dollars of usage u on model: uncached input
// at the input price, cache reads and writes at theirs, output (reasoning
// included) at the output price. A model without a price costs 0.
func (p *Pricing) Cost(model string, u sluice.Usage) float64 {
	price, ok := p.Price(model)
	if !ok {
		return 0
	}
	cached, write := price.CachedInput, price.CacheWrite
	if cached == 0 {
		cached = price.Input
	}
	if write == 0 {
		write = 1.25 * price.Input
	}
	uncached := max(u.InputTokens-u.CacheReadTokens-u.CacheWriteTokens, 0)
	return (float64(uncached)*price.Input + float64(u.CacheReadTokens)*cached +
		float64(u.CacheWriteTokens)*write + float64(u.OutputTokens)*price.Output) / 1e6
}

// Estimate returns the most a request can cost before it is made:
// promptTokens at the input price (no cache discount) and maxOutput at the
// output price.
func (p *Pricing) Estimate(model string, promptTokens, maxOutput int) float64 {
	price, _ := p.Price(model)
	return (float64(promptTokens)*price.Input + float64(maxOutput)*price.Output) / 1e6
}

// A Budget bounds spend per UTC day and month in US dollars; zero fields
// do not limit.
type Budget struct {
	DailyUSD, MonthlyUSD float64
}

// BudgetOptions configure Budgets. The zero value of each field means its
// default.
type BudgetOptions struct {
	// Ledger tells what keys and tenants spent before this process
	// started; nil means they start from nothing.
	Ledger store.Ledger
	// Tenants are the budgets of tenants, by name (a key's own budget is
	// its tier's).
	Tenants map[string]Budget
	// Report, when set, is called with every error of the ledger.
	Report func(error)
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// OnSpend, when set, is called after a request's cost is charged to
	// an account with a budget, outside its lock: for the budget gauges.
	OnSpend func(Spend)
}

// A Spend is an account's spend after a request was charged to it.
type Spend struct {
	// Scope is "key" or "tenant"; Name the key's tier or the tenant.
	Scope, Name string
	// DayUSD and MonthUSD are the account's spend this UTC day and month.
	DayUSD, MonthUSD float64
	Budget           Budget
}

// Budgets keeps each key's and tenant's spend of the current UTC day and
// month, and refuses a request whose worst-case cost would take a spend
// past its budget. Spend is kept in this process's memory: each account
// is read from the ledger (store.Ledger.Spend since the start of the UTC
// day and month) when first needed, then kept up to date by the requests
// this process serves. With several instances, each sees what was spent
// before it started plus its own spend since, so together they may exceed
// a budget by what the others spent since. Budgets is safe for concurrent
// use.
type Budgets struct {
	opts BudgetOptions

	mu       sync.Mutex
	accounts map[string]*account
}

// account is the spend of one key or tenant.
type account struct {
	mu     sync.Mutex
	seeded bool
	// day is days since the Unix epoch, month year×12+month, both UTC.
	day, month               int64
	daySpent, dayHeld        float64
	monthSpent, monthHeld    float64
	keyID, tenant, scopeName string
}

// NewBudgets returns Budgets configured by opts.
func NewBudgets(opts BudgetOptions) *Budgets {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Budgets{opts: opts, accounts: make(map[string]*account)}
}

// hold is what one reservation holds on one account.
type hold struct {
	acc        *account
	day, month int64
	amount     float64
}

// Reserve holds estimatedCost (see Pricing.Estimate) against the budgets
// of key keyID (t.DailyBudgetUSD, t.MonthlyBudgetUSD) and of tenant
// (BudgetOptions.Tenants), or refuses with budget_exceeded, RetryAfter set
// to when the exhausted budget renews (the next UTC midnight or month).
// release, called once the request has ended with its actual cost
// (Pricing.Cost of its usage; 0 if no upstream call was made), replaces
// the held estimate with the actual cost; later calls do nothing.
//
// An account whose past spend cannot be read from the ledger refuses with
// overloaded (the error is reported) and is read again on its next use.
func (b *Budgets) Reserve(ctx context.Context, keyID, tenant string, estimatedCost float64, t Tier) (release func(actual float64), err error) {
	type scope struct {
		name, keyID, tenant string
		budget              Budget
		label               string // the tier or the tenant
	}
	var scopes [2]scope
	n := 0
	if keyID != "" && (t.DailyBudgetUSD > 0 || t.MonthlyBudgetUSD > 0) {
		scopes[n] = scope{"key", keyID, "", Budget{t.DailyBudgetUSD, t.MonthlyBudgetUSD}, t.Name}
		n++
	}
	if tb := b.opts.Tenants[tenant]; tenant != "" && (tb.DailyUSD > 0 || tb.MonthlyUSD > 0) {
		scopes[n] = scope{"tenant", "", tenant, tb, tenant}
		n++
	}
	if n == 0 {
		return func(float64) {}, nil
	}
	estimatedCost = max(estimatedCost, 0)
	now := b.opts.Now().UTC()
	var holds [2]hold
	undo := func(k int) {
		for _, h := range holds[:k] {
			h.acc.release(h, 0, false)
		}
	}
	for i, s := range scopes[:n] {
		acc := b.account(s.name, s.keyID, s.tenant)
		h, err := acc.hold(ctx, b, now, estimatedCost, s.budget)
		if err != nil {
			undo(i)
			return nil, err
		}
		holds[i] = h
	}
	var once sync.Once
	return func(actual float64) {
		once.Do(func() {
			for i, h := range holds[:n] {
				day, month := h.acc.release(h, max(actual, 0), true)
				if b.opts.OnSpend != nil {
					s := scopes[i]
					b.opts.OnSpend(Spend{Scope: s.name, Name: s.label, DayUSD: day, MonthUSD: month, Budget: s.budget})
				}
			}
		})
	}, nil
}

func (b *Budgets) account(scope, keyID, tenant string) *account {
	id := scope + ":" + keyID + tenant
	b.mu.Lock()
	defer b.mu.Unlock()
	acc := b.accounts[id]
	if acc == nil {
		acc = &account{keyID: keyID, tenant: tenant, scopeName: scope}
		b.accounts[id] = acc
	}
	return acc
}

// Spent returns what key keyID (with tenant empty) or tenant (with keyID
// empty) has spent this UTC day and month, as far as this process knows
// (requests in flight excluded), reading the ledger if the account was not
// used yet.
func (b *Budgets) Spent(ctx context.Context, keyID, tenant string) (day, month float64, err error) {
	scope := "key"
	if keyID == "" {
		scope = "tenant"
	}
	acc := b.account(scope, keyID, tenant)
	acc.mu.Lock()
	defer acc.mu.Unlock()
	now := b.opts.Now().UTC()
	if !acc.seeded {
		if err := acc.seed(ctx, b, now); err != nil {
			return 0, 0, fmt.Errorf("read spend from the ledger: %w", err)
		}
	}
	acc.roll(now)
	return acc.daySpent, acc.monthSpent, nil
}

func dayOf(t time.Time) int64   { return t.Unix() / 86400 }
func monthOf(t time.Time) int64 { return int64(t.Year())*12 + int64(t.Month()) - 1 }

// roll starts a new day or month when now is in one. a.mu is held.
func (a *account) roll(now time.Time) {
	if d := dayOf(now); d != a.day {
		a.day, a.daySpent, a.dayHeld = d, 0, 0
	}
	if m := monthOf(now); m != a.month {
		a.month, a.monthSpent, a.monthHeld = m, 0, 0
	}
}

// seed reads the account's spend of today and this month from the ledger.
// a.mu is held.
func (a *account) seed(ctx context.Context, b *Budgets, now time.Time) error {
	a.roll(now)
	if b.opts.Ledger != nil {
		dayStart := time.Unix(a.day*86400, 0).UTC()
		monthStart := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
		month, err := b.opts.Ledger.Spend(ctx, a.keyID, a.tenant, monthStart)
		if err != nil {
			return err
		}
		day, err := b.opts.Ledger.Spend(ctx, a.keyID, a.tenant, dayStart)
		if err != nil {
			return err
		}
		a.daySpent, a.monthSpent = day, month
	}
	a.seeded = true
	return nil
}

func (a *account) hold(ctx context.Context, b *Budgets, now time.Time, amount float64, budget Budget) (hold, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.seeded {
		if err := a.seed(ctx, b, now); err != nil {
			err = fmt.Errorf("read the spend of %s %s%s from the ledger: %w", a.scopeName, a.keyID, a.tenant, err)
			if b.opts.Report != nil {
				b.opts.Report(err)
			}
			return hold{}, &sluice.Error{Code: sluice.CodeOverloaded, Message: sluice.CodeOverloaded.DefaultMessage(),
				RetryAfter: time.Second, Err: err}
		}
	}
	a.roll(now)
	if over(a.daySpent+a.dayHeld, amount, budget.DailyUSD) {
		tomorrow := time.Unix((a.day+1)*86400, 0)
		return hold{}, budgetError("daily", a.scopeName, budget.DailyUSD, a.daySpent+a.dayHeld, tomorrow.Sub(now))
	}
	if over(a.monthSpent+a.monthHeld, amount, budget.MonthlyUSD) {
		next := time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, time.UTC)
		return hold{}, budgetError("monthly", a.scopeName, budget.MonthlyUSD, a.monthSpent+a.monthHeld, next.Sub(now))
	}
	a.dayHeld += amount
	a.monthHeld += amount
	return hold{acc: a, day: a.day, month: a.month, amount: amount}, nil
}

// over reports whether spending amount on top of used breaks limit: the
// budget is used up, or the amount would take it past its end.
func over(used, amount, limit float64) bool {
	return limit > 0 && (used >= limit || used+amount > limit)
}

func budgetError(period, scope string, limit, used float64, renew time.Duration) error {
	msg := fmt.Sprintf("The %s budget of this %s ($%.2f) is used up.", period, scope, limit)
	if used < limit {
		msg = fmt.Sprintf("This request could cost more than is left of the %s budget of this %s ($%.2f); lower max_tokens or try later.", period, scope, limit)
	}
	refusal := RefusedDailyBudget
	if period == "monthly" {
		refusal = RefusedMonthlyBudget
	}
	return &sluice.Error{Code: sluice.CodeBudgetExceeded, Message: msg, RetryAfter: renew, Err: refusal}
}

// release takes hold h off the account and, when spent, adds actual.
// Amounts held on a day or month that has since ended are gone with it.
func (a *account) release(h hold, actual float64, spent bool) (day, month float64) {
	a.mu.Lock()
	defer a.mu.Unlock()

	if a.day == h.day {
		a.dayHeld = max(a.dayHeld-h.amount, 0)
		if spent {
			a.daySpent += actual
		}
	}
	if a.month == h.month {
		a.monthHeld = max(a.monthHeld-h.amount, 0)
		if spent {
			a.monthSpent += actual
		}
	}
	return a.daySpent, a.monthSpent
}
