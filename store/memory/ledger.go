package memory

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/store"
)

// DefaultMaxLedgerRows bounds the rows a Ledger keeps when
// LedgerOptions.MaxRows is zero: the last few minutes of a busy instance,
// a few megabytes. Rows hold pointers, so a larger ring is heap the
// garbage collector scans on every cycle; a ledger that must keep more
// belongs in SQLite or PostgreSQL.
const DefaultMaxLedgerRows = 10_000

// LedgerOptions configure a Ledger. The zero value of each field means its
// default.
type LedgerOptions struct {
	// MaxRows bounds the rows kept. Past it, the oldest rows are dropped,
	// and Usage and Spend no longer count them. 0 means
	// DefaultMaxLedgerRows.
	MaxRows int
}

// A Ledger keeps the usage ledger in memory: for tests, and for an
// instance that keeps no file, where it holds the latest requests only. It
// is safe for concurrent use.
//
// Like the SQL ledgers, it keeps times and durations to the microsecond and
// groups days in UTC.
type Ledger struct {
	max int

	mu sync.RWMutex
	// rows is a ring once full: the oldest row is rows[next].
	rows []store.LedgerRow
	next int
}

var _ store.Ledger = (*Ledger)(nil)

// NewLedger returns an empty Ledger.
func NewLedger(opts LedgerOptions) *Ledger {
	if opts.MaxRows <= 0 {
		opts.MaxRows = DefaultMaxLedgerRows
	}
	return &Ledger{max: opts.MaxRows}
}

// Write implements store.Ledger. It writes nothing if ctx has ended.
func (l *Ledger) Write(ctx context.Context, rows []store.LedgerRow) error {
	if len(rows) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("write ledger: %w", err)
	}
	if len(rows) > l.max {
		rows = rows[len(rows)-l.max:]
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range rows {
		r.Time = micros(r.Time)
		r.Latency = r.Latency.Truncate(time.Microsecond)
		r.TTFT = r.TTFT.Truncate(time.Microsecond)
		if len(l.rows) < l.max {
			l.rows = append(l.rows, r)
			continue
		}
		l.rows[l.next] = r
		l.next = (l.next + 1) % l.max
	}
	return nil
}

// Usage implements store.Ledger.
func (l *Ledger) Usage(ctx context.Context, q store.UsageQuery) ([]store.UsageTotal, error) {
	group, err := grouping(q.By)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ledger usage: %w", err)
	}
	from, to := micros(q.From), micros(q.To)
	totals := map[string]*store.UsageTotal{}
	l.mu.RLock()
	for i := range l.rows {
		r := &l.rows[i]
		if !q.From.IsZero() && r.Time.Before(from) ||
			!q.To.IsZero() && !r.Time.Before(to) ||
			q.KeyID != "" && r.KeyID != q.KeyID ||
			q.Tenant != "" && r.Tenant != q.Tenant {
			continue
		}
		g := group(r)
		u := totals[g]
		if u == nil {
			u = &store.UsageTotal{Group: g}
			totals[g] = u
		}
		u.Requests++
		if r.ErrorCode != "" {
			u.Errors++
		}
		u.InputTokens += r.InputTokens
		u.OutputTokens += r.OutputTokens
		u.CachedTokens += r.CachedTokens
		u.ReasoningTokens += r.ReasoningTokens
		u.CostUSD += r.CostUSD
	}
	l.mu.RUnlock()
	out := make([]store.UsageTotal, 0, len(totals))
	for _, u := range totals {
		out = append(out, *u)
	}
	slices.SortFunc(out, func(a, b store.UsageTotal) int { return strings.Compare(a.Group, b.Group) })
	return out, nil
}

// grouping returns the group of a row for UsageQuery.By.
func grouping(by string) (func(*store.LedgerRow) string, error) {
	switch by {
	case "":
		return func(*store.LedgerRow) string { return "" }, nil
	case store.ByKey:
		return func(r *store.LedgerRow) string { return r.KeyID }, nil
	case store.ByTenant:
		return func(r *store.LedgerRow) string { return r.Tenant }, nil
	case store.ByModel:
		return func(r *store.LedgerRow) string { return r.Route }, nil
	case store.ByDay:
		return func(r *store.LedgerRow) string { return r.Time.Format(time.DateOnly) }, nil
	}
	return nil, fmt.Errorf("ledger usage: unknown grouping %q", by)
}

// Spend implements store.Ledger.
func (l *Ledger) Spend(ctx context.Context, keyID, tenant string, since time.Time) (float64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("ledger spend: %w", err)
	}
	since = micros(since)
	var sum float64
	l.mu.RLock()
	defer l.mu.RUnlock()
	for i := range l.rows {
		r := &l.rows[i]
		if r.Time.Before(since) {
			continue
		}
		if keyID != "" && r.KeyID == keyID || keyID == "" && r.Tenant == tenant {
			sum += r.CostUSD
		}
	}
	return sum, nil
}

// Rows returns a copy of the rows kept, oldest first, with their times in
// UTC to the microsecond.
func (l *Ledger) Rows() []store.LedgerRow {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]store.LedgerRow, 0, len(l.rows))
	out = append(out, l.rows[l.next:]...)
	return append(out, l.rows[:l.next]...)
}

// micros returns t in UTC to the microsecond, as the SQL stores keep times.
// The zero time stays zero.
func micros(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}
