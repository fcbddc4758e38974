package testutil

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresURL returns the PostgreSQL server tests use:
// SLUICE_TEST_POSTGRES_URL, or postgres://postgres@127.0.0.1:5432/test. If
// the server cannot be reached the test is skipped, or fails when
// SLUICE_TEST_REQUIRE_SERVICES=1 (as in CI).
func PostgresURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("SLUICE_TEST_POSTGRES_URL")
	if u == "" {
		u = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	require(t, "PostgreSQL", u, "5432")
	return u
}

// PostgresSchemaURL creates a schema of its own for the test on the
// server PostgresURL names, dropped when the test ends, and returns the
// server's URL with that schema as search_path.
func PostgresSchemaURL(t testing.TB) string {
	t.Helper()
	base := PostgresURL(t)
	b := make([]byte, 8)
	rand.Read(b)
	schema := "sluicetest_" + hex.EncodeToString(b)
	pgExec(t, base, `CREATE SCHEMA `+schema)
	t.Cleanup(func() { pgExec(t, base, `DROP SCHEMA `+schema+` CASCADE`) })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// pgExec runs sql on the server at rawURL with a connection of its own.
func pgExec(t testing.TB, rawURL, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
