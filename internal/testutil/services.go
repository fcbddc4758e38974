// Package testutil holds helpers for the project's tests: the addresses of
// the services (Redis, PostgreSQL) that backend tests run against.
package testutil

import (
	"net"
	"net/url"
	"os"
	"testing"
	"time"
)

// RedisURL returns the Redis server tests use: SLUICE_TEST_REDIS_URL, or
// redis://127.0.0.1:6379/0. If the server cannot be reached the test is
// skipped with a loud message, or fails when SLUICE_TEST_REQUIRE_SERVICES=1
// (as in CI).
func RedisURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("SLUICE_TEST_REDIS_URL")
	if u == "" {
		u = "redis://127.0.0.1:6379/0"
	}
	require(t, "Redis", u, "6379")
	return u
}

// require checks that the server of rawURL accepts TCP connections.
func require(t testing.TB, name, rawURL, defaultPort string) {
	t.Helper()
	pu, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("%s test URL %q: %v", name, rawURL, err)
	}
	host := pu.Host
	if pu.Port() == "" {
		host = net.JoinHostPort(pu.Hostname(), defaultPort)
	}
	c, err := net.DialTimeout("tcp", host, 2*time.Second)
	if err == nil {
		c.Close()
		return
	}
	if os.Getenv("SLUICE_TEST_REQUIRE_SERVICES") == "1" {
		t.Fatalf("%s at %s is required (SLUICE_TEST_REQUIRE_SERVICES=1) but unreachable: %v", name, host, err)
	}
	t.Skipf("SKIPPING: %s at %s is unreachable (%v); start it or set its SLUICE_TEST_*_URL to run this test", name, host, err)
}
