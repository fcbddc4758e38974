package gateway

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32")}
	tests := []struct {
		remote, xff string
		trusted     []netip.Prefix
		want        string
	}{
		{"203.0.113.9:1234", "", trusted, "203.0.113.9"},
		{"203.0.113.9:1234", "1.2.3.4", trusted, "203.0.113.9"},                        // not from a trusted proxy
		{"127.0.0.1:1234", "198.51.100.7", trusted, "198.51.100.7"},                    // one trusted proxy
		{"127.0.0.1:1234", "6.6.6.6, 198.51.100.7, 10.1.2.3", trusted, "198.51.100.7"}, // the client's own claim is skipped
		{"127.0.0.1:1234", "198.51.100.7", nil, "127.0.0.1"},                           // no trusted proxies configured
		{"127.0.0.1:1234", "not-an-ip", trusted, "127.0.0.1"},                          // a malformed chain is ignored
		{"127.0.0.1:1234", "10.1.1.1", trusted, "127.0.0.1"},                           // every hop trusted
	}
	for _, tc := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := clientIP(r, tc.trusted); got != tc.want {
			t.Errorf("clientIP(%s, %q) = %s, want %s", tc.remote, tc.xff, got, tc.want)
		}
	}
}
