package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// A LedgerRow is one request as the usage ledger keeps it: who asked, what
// served it, what it consumed and cost, and how it ended.
type LedgerRow struct {
	// Time is when the request arrived; RequestID is the id the client was
	// given in the Request-Id header.
	Time      time.Time
	RequestID string
	// KeyID is the id of the API key (never the key), Tenant and Tier its
	// owner and tier, User the end user the key or request named. Empty
	// when the gateway runs without keys.
	KeyID  string
	Tenant string
	Tier   string
	User   string
	// Route is the public model name; Contract the named contract, if the
	// request called one.
	Route    string
	Contract string
	// Provider and UpstreamModel name the target that served the request
	// (the last that answered); empty if none did.
	Provider      string
	UpstreamModel string
	Stream        bool
	// Tokens as the upstream reported them (Estimated: the output count was
	// estimated because the stream ended before the upstream counted it).
	InputTokens     int64
	OutputTokens    int64
	CachedTokens    int64 // input tokens read from the provider's cache
	ReasoningTokens int64
	Estimated       bool
	// CostUSD is the request's cost from the price table, in US dollars.
	CostUSD float64
	// Latency is the whole request; TTFT the time to the first content
	// (zero when the request was not streamed or produced none).
	Latency time.Duration
	TTFT    time.Duration
	// Status is the HTTP status the client was answered with (200 for a
	// stream that started, even if it ended with an error event); ErrorCode
	// the sluice error code, empty on success.
	Status    int
	ErrorCode string
	// Attempts counts upstream calls (retries, fallbacks, hedges, repairs
	// and failovers included); Failovers the targets that took over a
	// broken stream.
	Attempts  int
	Failovers int
	// Structured-output outcome: answers that were not JSON, answers that
	// broke the schema, repair requests made, and Outcome: "" (no schema),
	// "valid", "repaired" or "violation".
	ParseFailures  int
	SchemaFailures int
	Repairs        int
	Outcome        string
}

// Contract outcomes of LedgerRow.Outcome.
const (
	OutcomeValid     = "valid"
	OutcomeRepaired  = "repaired"
	OutcomeViolation = "violation"
)

// A Ledger keeps one row per request. Implementations are safe for
// concurrent use.
type Ledger interface {
	// Write stores rows in one transaction: all of them or none.
	Write(ctx context.Context, rows []LedgerRow) error
	// Usage sums the rows q selects, grouped as q says, groups in
	// ascending order.
	Usage(ctx context.Context, q UsageQuery) ([]UsageTotal, error)
	// Spend returns the cost in US dollars of the rows of key keyID (or,
	// with keyID empty, of tenant) at or after since: how budgets learn
	// what was spent before the process started.
	Spend(ctx context.Context, keyID, tenant string, since time.Time) (float64, error)
}

// Groupings of UsageQuery.By.
const (
	ByKey    = "key"
	ByTenant = "tenant"
	ByModel  = "model" // the public model name (LedgerRow.Route)
	ByDay    = "day"   // the UTC day, as 2006-01-02
)

// A UsageQuery selects ledger rows and says how to group them.
type UsageQuery struct {
	// By is one of ByKey, ByTenant, ByModel, ByDay; empty sums everything
	// into one group named "".
	By string
	// From and To bound Time (From inclusive, To exclusive); zero means
	// unbounded.
	From, To time.Time
	// KeyID and Tenant, when set, keep only their rows.
	KeyID  string
	Tenant string
}

// A UsageTotal is the sum of a group of ledger rows.
type UsageTotal struct {
	Group           string
	Requests        int64
	Errors          int64 // rows with an error code
	InputTokens     int64
	OutputTokens    int64
	CachedTokens    int64
	ReasoningTokens int64
	CostUSD         float64
}

// UsageWhere returns the conditions of q's bounds and filters for a SQL
// ledger (joined with AND; empty for none) and their arguments: ph(n) is
// the dialect's n-th placeholder, and at a time's argument.
func UsageWhere(q UsageQuery, ph func(n int) string, at func(time.Time) any) (string, []any) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, cond+ph(len(args)))
	}
	if !q.From.IsZero() {
		add(`time >= `, at(q.From))
	}
	if !q.To.IsZero() {
		add(`time < `, at(q.To))
	}
	if q.KeyID != "" {
		add(`key_id = `, q.KeyID)
	}
	if q.Tenant != "" {
		add(`tenant = `, q.Tenant)
	}
	return strings.Join(where, ` AND `), args
}

// Rows are the rows of a SQL query; pgx.Rows and *sql.Rows are.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// CollectRows reads every row of rows with scan.
func CollectRows[T any](rows Rows, scan func(Rows) (T, error)) ([]T, error) {
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// ScanUsage reads the totals of a SQL usage query selecting, in order,
// the group, requests, errors, input, output, cached and reasoning tokens,
// and cost.
func ScanUsage(rows Rows) ([]UsageTotal, error) {
	out, err := CollectRows(rows, func(r Rows) (UsageTotal, error) {
		var u UsageTotal
		err := r.Scan(&u.Group, &u.Requests, &u.Errors, &u.InputTokens, &u.OutputTokens,
			&u.CachedTokens, &u.ReasoningTokens, &u.CostUSD)
		return u, err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger usage: %w", err)
	}
	return out, nil
}
