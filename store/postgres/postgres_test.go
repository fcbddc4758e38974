package postgres_test

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/sluice-gw/sluice/internal/testutil"
	"github.com/sluice-gw/sluice/store"
	"github.com/sluice-gw/sluice/store/postgres"
	"github.com/sluice-gw/sluice/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestLedger(t *testing.T) {
	storetest.RunLedger(t, func(t testing.TB) store.Ledger { return openDB(t, schemaURL(t)) })
}

func TestKeys(t *testing.T) {
	storetest.RunKeys(t, func(t testing.TB) store.Keys { return openDB(t, schemaURL(t)) })
}

// schemaURL creates a schema of its own for the test, dropped when the test
// ends, and returns the test server's URL with that schema as search_path.
func schemaURL(t testing.TB) string { return testutil.PostgresSchemaURL(t) }

// exec runs sql on the server at rawURL with a connection of its own.
func exec(t testing.TB, rawURL, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// openDB opens the store at rawURL, closed when the test ends.
func openDB(t testing.TB, rawURL string) *postgres.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := postgres.Open(ctx, rawURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestLedgerColumns checks that every field of a row lands in its column,
// durations as integer microseconds, in the schema of the search_path.
func TestLedgerColumns(t *testing.T) {
	ctx := context.Background()
	u := schemaURL(t)
	db := openDB(t, u)
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
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var got store.LedgerRow
	var gotTime time.Time
	var latency, ttft int64
	var status, attempts, failovers, parse, schema, repairs int32
	err = conn.QueryRow(ctx, `SELECT time, request_id, key_id, tenant, tier, user_id,
		route, contract, provider, upstream_model, stream, input_tokens, output_tokens, cached_tokens,
		reasoning_tokens, estimated, cost_usd, latency_us, ttft_us, status, error_code, attempts,
		failovers, parse_failures, schema_failures, repairs, outcome FROM ledger`).Scan(
		&gotTime, &got.RequestID, &got.KeyID, &got.Tenant, &got.Tier, &got.User, &got.Route, &got.Contract,
		&got.Provider, &got.UpstreamModel, &got.Stream, &got.InputTokens, &got.OutputTokens,
		&got.CachedTokens, &got.ReasoningTokens, &got.Estimated, &got.CostUSD, &latency, &ttft,
		&status, &got.ErrorCode, &attempts, &failovers, &parse, &schema, &repairs, &got.Outcome)
	if err != nil {
		t.Fatal(err)
	}
	got.Status, got.Attempts, got.Failovers = int(status), int(attempts), int(failovers)
	got.ParseFailures, got.SchemaFailures, got.Repairs = int(parse), int(schema), int(repairs)
	if want := at.Truncate(time.Microsecond); !gotTime.Equal(want) {
		t.Errorf("time = %v, want %v", gotTime, want)
	}
	if latency != 1500 || ttft != 3 {
		t.Errorf("latency_us, ttft_us = %d, %d; want 1500, 3", latency, ttft)
	}
	want := row
	got.Time, got.Latency, got.TTFT = want.Time, want.Latency, want.TTFT
	if got != want {
		t.Errorf("row read back:\n got  %+v\n want %+v", got, want)
	}
}

// TestWriteAllOrNone checks that a batch with a row the database refuses
// stores none of its rows.
func TestWriteAllOrNone(t *testing.T) {
	ctx := context.Background()
	u := schemaURL(t)
	db := openDB(t, u)
	exec(t, u, `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.request_id = 'bad' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$`)
	exec(t, u, `CREATE TRIGGER refuse BEFORE INSERT ON ledger FOR EACH ROW EXECUTE FUNCTION refuse()`)
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
	if err := db.Write(ctx, rows[:2]); err != nil {
		t.Fatal(err)
	}
	if spend, err := db.Spend(ctx, "k", "", time.Time{}); err != nil || spend != 2 {
		t.Errorf("Spend = %v, %v; want 2", spend, err)
	}
}

// TestShared checks that two DBs on one schema, as two gateway instances
// have, see each other's writes, and that opening a migrated schema (or
// several instances migrating at once) changes nothing.
func TestShared(t *testing.T) {
	ctx := context.Background()
	u := schemaURL(t)
	dbs := make([]*postgres.DB, 4)
	var wg sync.WaitGroup
	for i := range dbs {
		wg.Go(func() { dbs[i] = openDB(t, u) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if err := dbs[0].CreateKey(ctx, store.Key{ID: "k_1", Hash: "h", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := dbs[1].Write(ctx, []store.LedgerRow{{Time: time.Now(), KeyID: "k_1", CostUSD: 2}}); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs[2].KeyByHash(ctx, "h"); err != nil {
		t.Errorf("KeyByHash through another DB: %v", err)
	}
	if spend, err := dbs[3].Spend(ctx, "k_1", "", time.Time{}); err != nil || spend != 2 {
		t.Errorf("Spend through another DB = %v, %v; want 2", spend, err)
	}
}

// TestSchemas checks that the tables go in the search_path's schema: two
// schemas on one database are two stores.
func TestSchemas(t *testing.T) {
	ctx := context.Background()
	a, b := openDB(t, schemaURL(t)), openDB(t, schemaURL(t))
	if err := a.CreateKey(ctx, store.Key{ID: "k_1", Hash: "h", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.KeyByID(ctx, "k_1"); err != store.ErrNotFound {
		t.Errorf("key of another schema: err = %v, want ErrNotFound", err)
	}
}

func TestOpenErrors(t *testing.T) {
	base := testutil.PostgresURL(t)
	const secret = "s3cr3t-pa55word"
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	withPassword := func(host string, q url.Values) string {
		v := *u
		v.User = url.UserPassword("nobody", secret)
		if host != "" {
			v.Host = host
		}
		if q != nil {
			v.RawQuery = q.Encode()
		}
		return v.String()
	}
	for _, tc := range []struct{ name, url string }{
		{"NotAURL", "postgres://nobody:" + secret + "@host:notaport/db"},
		{"Unreachable", withPassword("127.0.0.1:1", nil)},
		{"WrongUser", withPassword("", nil)},
		{"NoSuchSchema", func() string {
			q := u.Query()
			q.Set("search_path", "sluicetest_does_not_exist")
			v := *u
			v.RawQuery = q.Encode()
			return v.String()
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			db, err := postgres.Open(ctx, tc.url)
			if err == nil {
				db.Close()
				t.Fatalf("Open(%q) succeeded", tc.url)
			}
			t.Logf("Open error: %v", err)
			if strings.Contains(err.Error(), secret) {
				t.Errorf("Open error shows the password: %v", err)
			}
		})
	}
}

// BenchmarkWrite measures Ledger.Write of a batch of 512 rows, as the
// ledger writer sends them.
func BenchmarkWrite(b *testing.B) {
	ctx := context.Background()
	db := openDB(b, schemaURL(b))
	rows := benchRows(512)
	b.ReportAllocs()
	for b.Loop() {
		if err := db.Write(ctx, rows); err != nil {
			b.Fatal(err)
		}
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
