package sqlite

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/driver"

	"github.com/sluice-gw/sluice/store"
)

const insertLedgerSQL = `INSERT INTO ledger (
	time, request_id, key_id, tenant, tier, user_id, route, contract, provider, upstream_model,
	stream, input_tokens, output_tokens, cached_tokens, reasoning_tokens, estimated, cost_usd,
	latency_us, ttft_us, status, error_code, attempts, failovers,
	parse_failures, schema_failures, repairs, outcome
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// Write implements store.Ledger: the rows are inserted in one transaction.
// It binds the values through SQLite's own API rather than database/sql,
// which would allocate for each value of each row.
func (db *DB) Write(ctx context.Context, rows []store.LedgerRow) error {
	if len(rows) == 0 {
		return nil
	}
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return fmt.Errorf("write ledger: %w", err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		c := dc.(driver.Conn).Raw()
		defer c.SetInterrupt(c.SetInterrupt(ctx))
		return insertRows(c, rows)
	})
	if err != nil {
		return fmt.Errorf("write ledger: %w", err)
	}
	return nil
}

// insertRows inserts rows in one transaction on c.
func insertRows(c *sqlite3.Conn, rows []store.LedgerRow) (err error) {
	stmt, _, err := c.Prepare(insertLedgerSQL)
	if err != nil {
		return err
	}
	defer stmt.Close()
	tx, err := c.BeginImmediate()
	if err != nil {
		return err
	}
	defer tx.End(&err)
	for i := range rows {
		r := &rows[i]
		// Bind errors (out of memory, a closed statement) come back from
		// Exec too.
		stmt.BindInt64(1, r.Time.UnixMicro())
		stmt.BindText(2, r.RequestID)
		stmt.BindText(3, r.KeyID)
		stmt.BindText(4, r.Tenant)
		stmt.BindText(5, r.Tier)
		stmt.BindText(6, r.User)
		stmt.BindText(7, r.Route)
		stmt.BindText(8, r.Contract)
		stmt.BindText(9, r.Provider)
		stmt.BindText(10, r.UpstreamModel)
		stmt.BindBool(11, r.Stream)
		stmt.BindInt64(12, r.InputTokens)
		stmt.BindInt64(13, r.OutputTokens)
		stmt.BindInt64(14, r.CachedTokens)
		stmt.BindInt64(15, r.ReasoningTokens)
		stmt.BindBool(16, r.Estimated)
		stmt.BindFloat(17, r.CostUSD)
		stmt.BindInt64(18, r.Latency.Microseconds())
		stmt.BindInt64(19, r.TTFT.Microseconds())
		stmt.BindInt(20, r.Status)
		stmt.BindText(21, r.ErrorCode)
		stmt.BindInt(22, r.Attempts)
		stmt.BindInt(23, r.Failovers)
		stmt.BindInt(24, r.ParseFailures)
		stmt.BindInt(25, r.SchemaFailures)
		stmt.BindInt(26, r.Repairs)
		stmt.BindText(27, r.Outcome)
		if err := stmt.Exec(); err != nil {
			return err
		}
	}
	return nil
}

// groupSQL is the expression of each grouping of UsageQuery.By.
var groupSQL = map[string]string{
	"":             `''`,
	store.ByKey:    `key_id`,
	store.ByTenant: `tenant`,
	store.ByModel:  `route`,
	store.ByDay:    `strftime('%Y-%m-%d', time / 1000000, 'unixepoch')`,
}

// Usage implements store.Ledger.
func (db *DB) Usage(ctx context.Context, q store.UsageQuery) ([]store.UsageTotal, error) {
	group, ok := groupSQL[q.By]
	if !ok {
		return nil, fmt.Errorf("ledger usage: unknown grouping %q", q.By)
	}
	where, args := store.UsageWhere(q, func(int) string { return "?" }, func(t time.Time) any { return t.UnixMicro() })
	var sb strings.Builder
	sb.WriteString(`SELECT ` + group + ` AS grp, count(*), sum(error_code <> ''),
		sum(input_tokens), sum(output_tokens), sum(cached_tokens), sum(reasoning_tokens), sum(cost_usd)
		FROM ledger`)
	if where != "" {
		sb.WriteString(` WHERE ` + where)
	}
	sb.WriteString(` GROUP BY grp ORDER BY grp`)
	rows, err := db.read.QueryContext(ctx, sb.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("ledger usage: %w", err)
	}
	defer rows.Close()
	return store.ScanUsage(rows)
}

// Spend implements store.Ledger.
func (db *DB) Spend(ctx context.Context, keyID, tenant string, since time.Time) (float64, error) {
	query, who := `SELECT total(cost_usd) FROM ledger WHERE key_id = ? AND time >= ?`, keyID
	if keyID == "" {
		query, who = `SELECT total(cost_usd) FROM ledger WHERE tenant = ? AND time >= ?`, tenant
	}
	var spend float64
	if err := db.read.QueryRowContext(ctx, query, who, since.UnixMicro()).Scan(&spend); err != nil {
		return 0, fmt.Errorf("ledger spend: %w", err)
	}
	return spend, nil
}
