package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/config"
)

// TestCheckOpen: serving on an address other hosts reach, with no keys
// required, is refused unless the config says so.
func TestCheckOpen(t *testing.T) {
	for _, tc := range []struct {
		listen string
		auth   *config.Auth
		ok     bool
	}{
		{"127.0.0.1:8080", nil, true},
		{"[::1]:8080", nil, true},
		{"localhost:8080", nil, true},
		{"0.0.0.0:8080", nil, false},
		{":8080", nil, false},
		{"10.1.2.3:8080", nil, false},
		{"0.0.0.0:8080", &config.Auth{}, true},
		{"0.0.0.0:8080", &config.Auth{AllowOpen: true}, true},
	} {
		err := checkOpen(&config.Config{Listen: tc.listen, Auth: tc.auth})
		if (err == nil) != tc.ok {
			t.Errorf("listen %s, auth %+v: %v", tc.listen, tc.auth, err)
		}
	}
}

// TestKeysAndUsage runs the key commands and sluice usage on a config's
// SQLite state: create prints the key alone on its last line, list shows
// it (never its hash), disable and rotate act on it.
func TestKeysAndUsage(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sluice.yaml")
	writeFile(t, cfg, "state: {sqlite: "+filepath.Join(dir, "s.db")+"}\nauth: {}\ntiers: [{name: free}]\nproviders: [{name: s, type: sim}]\nmodels: [{name: m, targets: [{provider: s, model: m}]}]\n")
	run1 := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := run(context.Background(), args, func(string) string { return "" }, nil, &out, &errOut); err != nil {
			t.Fatalf("sluice %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
		}
		return out.String()
	}
	out := run1("keys", "create", "--config", cfg, "--tier", "free", "--tenant", "acme")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	secret := lines[len(lines)-1]
	if !strings.HasPrefix(secret, "sk-sluice-") {
		t.Fatalf("create's last line %q is not a key", secret)
	}
	list := run1("keys", "list", "--config", cfg, "--json")
	if !strings.Contains(list, `"tenant": "acme"`) || strings.Contains(strings.ToLower(list), "hash") || strings.Contains(list, secret) {
		t.Errorf("list --json:\n%s", list)
	}
	var id string
	for _, f := range strings.Fields(run1("keys", "list", "--config", cfg)) {
		if strings.HasPrefix(f, "key_") {
			id = f
		}
	}
	if id == "" {
		t.Fatal("the key is not listed")
	}
	if out := run1("keys", "rotate", "--config", cfg, id); !strings.Contains(out, "sk-sluice-") || strings.Contains(out, secret) {
		t.Errorf("rotate: %s", out)
	}
	if out := run1("keys", "disable", "--config", cfg, id); !strings.Contains(out, "disabled") {
		t.Errorf("disable: %s", out)
	}
	if out := run1("keys", "list", "--config", cfg); !strings.Contains(out, "disabled") {
		t.Errorf("list after disable:\n%s", out)
	}
	var errOut bytes.Buffer
	if err := run(context.Background(), []string{"keys", "create", "--config", cfg, "--tier", "gold"}, func(string) string { return "" }, nil, &bytes.Buffer{}, &errOut); err == nil {
		t.Error("a key of an unknown tier was created")
	}
	if out := run1("usage", "--config", cfg, "--by", "model"); !strings.Contains(out, "REQUESTS") || !strings.Contains(out, "total") {
		t.Errorf("usage:\n%s", out)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
