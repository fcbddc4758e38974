package testutil

import (
	"os"
	"testing"
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
