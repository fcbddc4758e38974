package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-gw/sluice/store"
)

// ledgerColumns are the columns Write fills, in the order of copyRow.
var ledgerColumns = []string{
	"time", "request_id", "key_id", "tenant", "tier", "user_id", "route", "contract", "provider",
	"upstream_model", "stream", "input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens",
	"estimated", "cost_usd", "latency_us", "ttft_us", "status", "error_code", "attempts", "failovers",
	"parse_failures", "schema_failures", "repairs", "outcome",
}

// Write implements store.Ledger. The rows go in one COPY, a single
// statement and so a single transaction.
func (db *DB) Write(ctx context.Context, rows []store.LedgerRow) error {
	if len(rows) == 0 {
		return nil
	}
	vals := make([]any, len(ledgerColumns)) // reused: COPY encodes a row before asking for the next
	src := pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
		r := &rows[i]
		vals[0], vals[1], vals[2], vals[3], vals[4], vals[5] = r.Time, r.RequestID, r.KeyID, r.Tenant, r.Tier, r.User
		vals[6], vals[7], vals[8], vals[9] = r.Route, r.Contract, r.Provider, r.UpstreamModel
		vals[10], vals[11], vals[12], vals[13], vals[14] = r.Stream, r.InputTokens, r.OutputTokens, r.CachedTokens, r.ReasoningTokens
		vals[15], vals[16], vals[17], vals[18] = r.Estimated, r.CostUSD, r.Latency.Microseconds(), r.TTFT.Microseconds()
		vals[19], vals[20], vals[21], vals[22] = int32(r.Status), r.ErrorCode, int32(r.Attempts), int32(r.Failovers)
		vals[23], vals[24], vals[25], vals[26] = int32(r.ParseFailures), int32(r.SchemaFailures), int32(r.Repairs), r.Outcome
		return vals, nil
	})
	n, err := db.pool.CopyFrom(ctx, pgx.Identifier{"ledger"}, ledgerColumns, src)
	if err != nil {
		return fmt.Errorf("write ledger: %w", err)
	}
	if n != int64(len(rows)) {
		return fmt.Errorf("write ledger: %d of %d rows copied", n, len(rows))
	}
	return nil
}

// groupSQL is the expression of each grouping of UsageQuery.By.
var groupSQL = map[string]string{
	"":             `''`,
	store.ByKey:    `key_id`,
	store.ByTenant: `tenant`,
	store.ByModel:  `route`,
	store.ByDay:    `to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD')`,
}

// Usage implements store.Ledger.
func (db *DB) Usage(ctx context.Context, q store.UsageQuery) ([]store.UsageTotal, error) {
	group, ok := groupSQL[q.By]
	if !ok {
		return nil, fmt.Errorf("ledger usage: unknown grouping %q", q.By)
	}
	where, args := store.UsageWhere(q, func(n int) string { return "$" + strconv.Itoa(n) }, func(t time.Time) any { return t })
	var sb strings.Builder
	sb.WriteString(`SELECT (` + group + `)::text COLLATE "C" AS grp, count(*), count(*) FILTER (WHERE error_code <> ''),
		sum(input_tokens)::bigint, sum(output_tokens)::bigint, sum(cached_tokens)::bigint,
		sum(reasoning_tokens)::bigint, sum(cost_usd) FROM ledger`)
	if where != "" {
		sb.WriteString(` WHERE ` + where)
	}
	sb.WriteString(` GROUP BY grp ORDER BY grp`)
	rows, err := db.pool.Query(ctx, sb.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("ledger usage: %w", err)
	}
	defer rows.Close()
	return store.ScanUsage(rows)
}

// Spend implements store.Ledger.
func (db *DB) Spend(ctx context.Context, keyID, tenant string, since time.Time) (float64, error) {
	query, who := `SELECT coalesce(sum(cost_usd), 0) FROM ledger WHERE key_id = $1 AND time >= $2`, keyID
	if keyID == "" {
		query, who = `SELECT coalesce(sum(cost_usd), 0) FROM ledger WHERE tenant = $1 AND time >= $2`, tenant
	}
	var spend float64
	if err := db.pool.QueryRow(ctx, query, who, since).Scan(&spend); err != nil {
		return 0, fmt.Errorf("ledger spend: %w", err)
	}
	return spend, nil
}
