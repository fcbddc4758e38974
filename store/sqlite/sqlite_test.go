package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3/driver"
	"go.uber.org/goleak"

	"github.com/sluice-gw/sluice/store"
	"github.com/sluice-gw/sluice/store/sqlite"
	"github.com/sluice-gw/sluice/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestLedger(t *testing.T) {
	storetest.RunLedger(t, func(t testing.TB) store.Ledger { return openDB(t) })
}

func TestKeys(t *testing.T) {
	storetest.RunKeys(t, func(t testing.TB) store.Keys { return openDB(t) })
}

// openDB opens a new database in the test's temporary directory, closed
// when the test ends.
func openDB(t testing.TB) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "sluice.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return db
}

// rawDB opens the file at path with database/sql alone, to look at what the
// store wrote.
func rawDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := driver.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestLedgerColumns checks that every field of a row lands in its column,
// times and durations as integer microseconds.
func TestLedgerColumns(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sluice.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	at := time.Date(2030, 1, 2, 3, 4, 5, 6789, time.FixedZone("X", 3600))
	row := store.LedgerRow{
		Time: at, RequestID: "r", KeyID: "k", Tenant: "t", Tier: "free", User: "u", Route: "m",
		Contract: "c", Provider: "p", UpstreamModel: "um", Stream: true, InputTokens: 1, OutputTokens: 2,
		CachedTokens: 3, ReasoningTokens: 4, Estimated: true, CostUSD: 0.5,
		Latency: 1500*time.Microsecond + 7, TTFT: 3 * time.Microsecond, Status: 200, ErrorCode: "e",
		Attempts: 5, Failovers: 6, ParseFailures: 7, SchemaFailures: 8, Repairs: 9, Outcome: store.OutcomeViolation,
	}
	if err := db.Write(ctx, []store.LedgerRow{row}); err != nil {
		t.Fatal(err)
	}
	var got store.LedgerRow
	var us, latency, ttft int64
	err = rawDB(t, path).QueryRowContext(ctx, `SELECT time, request_id, key_id, tenant, tier, user_id,
		route, contract, provider, upstream_model, stream, input_tokens, output_tokens, cached_tokens,
		reasoning_tokens, estimated, cost_usd, latency_us, ttft_us, status, error_code, attempts,
		failovers, parse_failures, schema_failures, repairs, outcome FROM ledger`).Scan(
		&us, &got.RequestID, &got.KeyID, &got.Tenant, &got.Tier, &got.User, &got.Route, &got.Contract,
		&got.Provider, &got.UpstreamModel, &got.Stream, &got.InputTokens, &got.OutputTokens,
		&got.CachedTokens, &got.ReasoningTokens, &got.Estimated, &got.CostUSD, &latency, &ttft,
		&got.Status, &got.ErrorCode, &got.Attempts, &got.Failovers, &got.ParseFailures,
		&got.SchemaFailures, &got.Repairs, &got.Outcome)
	if err != nil {
		t.Fatal(err)
	}
	if want := at.UnixMicro(); us != want {
		t.Errorf("time = %d, want %d", us, want)
	}
	if latency != 1500 || ttft != 3 {
		t.Errorf("latency_us, ttft_us = %d, %d; want 1500, 3", latency, ttft)
	}
	want := row
	want.Time, want.Latency, want.TTFT = time.Time{}, 0, 0
	if got != want {
		t.Errorf("row read back:\n got  %+v\n want %+v", got, want)
	}
}

// TestWriteAllOrNone checks that a batch with a row the database refuses
// stores none of its rows.
func TestWriteAllOrNone(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sluice.db")
	db := openPath(t, path)
	_, err := rawDB(t, path).ExecContext(ctx, `CREATE TRIGGER refuse BEFORE INSERT ON ledger
		WHEN NEW.request_id = 'bad' BEGIN SELECT RAISE(ABORT, 'refused'); END`)
	if err != nil {
		t.Fatal(err)
	}
	rows := []store.LedgerRow{
		{Time: time.Now(), RequestID: "ok1", KeyID: "k", CostUSD: 1},
		{Time: time.Now(), RequestID: "ok2", KeyID: "k", CostUSD: 1},
		{Time: time.Now(), RequestID: "bad", KeyID: "k", CostUSD: 1},
	}
	if err := db.Write(ctx, rows); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("Write of a refused row: err = %v", err)
	}
	if spend, err := db.Spend(ctx, "k", "", time.Time{}); err != nil || spend != 0 {
		t.Errorf("Spend after a refused batch = %v, %v; want 0", spend, err)
	}
	// The connection is left fit for the next write.
	if err := db.Write(ctx, rows[:2]); err != nil {
		t.Fatal(err)
	}
	if spend, err := db.Spend(ctx, "k", "", time.Time{}); err != nil || spend != 2 {
		t.Errorf("Spend = %v, %v; want 2", spend, err)
	}
}

// TestReopen checks that what was written is there after a restart, and
// that opening a database with the schema in place changes nothing.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sluice.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	key := store.Key{ID: "k_1", Hash: "h", Name: "n", Created: time.UnixMicro(1_900_000_000_000_001)}
	if err := db.CreateKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := db.Write(ctx, []store.LedgerRow{{Time: time.Now(), KeyID: "k_1", CostUSD: 2}}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openPath(t, path)
	got, err := db.KeyByHash(ctx, "h")
	if err != nil || !got.Created.Equal(key.Created) {
		t.Errorf("KeyByHash after reopening = %+v, %v", got, err)
	}
	if spend, err := db.Spend(ctx, "k_1", "", time.Time{}); err != nil || spend != 2 {
		t.Errorf("Spend after reopening = %v, %v; want 2", spend, err)
	}
	var versions int
	if err := rawDB(t, path).QueryRowContext(ctx, `SELECT count(*) FROM goose_db_version WHERE version_id > 0`).Scan(&versions); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if versions != len(files) {
		t.Errorf("goose_db_version has %d migrations, want %d", versions, len(files))
	}
}

// TestPragmas checks the journal mode kept in the file.
func TestPragmas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sluice.db")
	openPath(t, path)
	var mode string
	if err := rawDB(t, path).QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
}

// TestReadWhileWriting checks that reads go on while a write transaction
// is open (WAL mode), and see only committed rows.
func TestReadWhileWriting(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sluice.db")
	db := openPath(t, path)
	if err := db.Write(ctx, []store.LedgerRow{{Time: time.Now(), KeyID: "k", CostUSD: 1}}); err != nil {
		t.Fatal(err)
	}
	// Another connection holds the write lock.
	other := rawDB(t, path)
	tx, err := other.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE ledger SET cost_usd = 5`); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if spend, err := db.Spend(rctx, "k", "", time.Time{}); err != nil || spend != 1 {
		t.Errorf("Spend during another's write = %v, %v; want 1", spend, err)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	for _, path := range []string{"", ":memory:", "file::memory:?cache=shared", filepath.Join(t.TempDir(), "missing-dir", "sluice.db")} {
		if db, err := sqlite.Open(ctx, path); err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded", path)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if db, err := sqlite.Open(cctx, filepath.Join(t.TempDir(), "sluice.db")); err == nil {
		db.Close()
		t.Error("Open with a cancelled context succeeded")
	}
}

func openPath(t testing.TB, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// BenchmarkWrite measures Ledger.Write of a batch of 512 rows, as the
// ledger writer sends them.
func BenchmarkWrite(b *testing.B) {
	ctx := context.Background()
	db := openDB(b)
	rows := benchRows(512)
	b.ReportAllocs()
	for b.Loop() {
		if err := db.Write(ctx, rows); err != nil {
			b.Fatal(err)
		}
		// The next batch comes later, as in a running gateway.
		for i := range rows {
			rows[i].Time = rows[i].Time.Add(time.Second)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rows)), "ns/row")
}

func benchRows(n int) []store.LedgerRow {
	rows := make([]store.LedgerRow, n)
	now := time.Now()
	for i := range rows {
		rows[i] = store.LedgerRow{
			Time: now.Add(time.Duration(i) * time.Millisecond), RequestID: "req_" + strconv.Itoa(i),
			KeyID: "k_" + strconv.Itoa(i%10), Tenant: "acme", Tier: "pro", Route: "gpt-4o",
			Provider: "openai", UpstreamModel: "gpt-4o-2024-08-06", Stream: i%2 == 0,
			InputTokens: 1200, OutputTokens: 350, CachedTokens: 1024, CostUSD: 0.0042,
			Latency: 1800 * time.Millisecond, TTFT: 400 * time.Millisecond, Status: 200, Attempts: 1,
		}
	}
	return rows
}
