// Package browser starts the headless Chromium of the browser tests: the
// dashboard's and the eval report's.
package browser

import (
	"os"
	"testing"

	"github.com/chromedp/chromedp"
)

// Path is Debian's Chromium (package chromium), which CI installs.
const Path = "/usr/bin/chromium"

// Require skips t when Chromium is not installed, or fails it when
// SLUICE_TEST_REQUIRE_SERVICES=1 (as in CI).
func Require(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(Path); err != nil {
		if os.Getenv("SLUICE_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatalf("no browser at %s, and SLUICE_TEST_REQUIRE_SERVICES=1: %v", Path, err)
		}
		t.Skipf("SKIPPED: no browser at %s: this test needs Debian's chromium", Path)
	}
}

// Options are the allocator options of a headless Chromium that makes no
// network connection of its own (this machine's network is closed), with
// its profile in dir and a window of width × height.
func Options(dir string, width, height int) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(Path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(dir),
		chromedp.WindowSize(width, height),
	}
}
