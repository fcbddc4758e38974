//go:build unix

package gateway_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/guard"
	"github.com/sluice-gw/sluice/pipeline"
	"github.com/sluice-gw/sluice/store"
)

// admissionTier holds every call to limits it never reaches, so that each
// call pays for the checks and is always admitted.
const admissionTier = `auth: {admin_key: adm-secret}
tiers:
  - {name: t, rpm: 1000000000, tpm: 1000000000000, max_prompt_tokens: 8000}
`

const admissionModels = `providers:
  - {name: s, type: sim, tokens: 20}
models:
  - {name: m, targets: [{provider: s, model: m}]}
`

// BenchmarkAdmission measures one non-streaming OpenAI request through the
// gateway's handler (a recorder, no network) to the in-process simulator,
// with and without the admission path: a required key, a tier with rpm,
// tpm and max_prompt_tokens (so the prompt is counted and both limits are
// reserved and settled), and the usage ledger in memory or in SQLite. The
// difference between "keys+tier/sqlite" and "open/memory" is what admission
// and a durable ledger cost a request.
//
// Besides wall time it reports cpu-ns/op, the process's CPU time (user and
// system) per request, which includes the ledger's batched writes off the
// request path and everything else the process did meanwhile, and checks
// that the ledger holds one row per request.
func BenchmarkAdmission(b *testing.B) {
	for _, bc := range []struct {
		name   string
		keys   bool
		sqlite bool
	}{
		{"open/memory", false, false},
		{"open/sqlite", false, true},
		{"keys+tier/memory", true, false},
		{"keys+tier/sqlite", true, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			src := admissionModels
			if bc.keys {
				src = admissionTier + src
			}
			if bc.sqlite {
				src = "state: {sqlite: \"" + filepath.Join(b.TempDir(), "ledger.db") + "\"}\n" + src
			}
			p := pipelineFromYAML(b, src, pipeline.Options{})
			h := gateway.NewServer(nil, p, gateway.Options{})
			auth := ""
			if bc.keys {
				secret, _, err := p.Auth().Create(context.Background(), guard.KeySpec{Tier: "t", Tenant: "acme"})
				if err != nil {
					b.Fatal(err)
				}
				auth = "Bearer " + secret
			}
			serve := func() {
				req := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(chatBody))
				req.RemoteAddr = "127.0.0.1:40000"
				req.Header.Set("Content-Type", "application/json")
				if auth != "" {
					req.Header.Set("Authorization", auth)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
			serve() // the key is cached and the tokenizer loaded before the clock starts
			ctx := context.Background()
			if err := p.FlushLedger(ctx); err != nil {
				b.Fatal(err)
			}
			before := usageTotal(b, p).Requests
			b.ReportAllocs()
			cpu0 := processCPU()
			n := 0
			for b.Loop() {
				serve()
				n++
			}
			// The rows still waiting are written before the CPU is read:
			// the ledger's writes are part of the cost.
			if err := p.FlushLedger(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(processCPU()-cpu0)/float64(n), "cpu-ns/op")
			if got := usageTotal(b, p).Requests - before; got != int64(n) {
				b.Fatalf("ledger has %d rows for %d requests", got, n)
			}
		})
	}
}

// usageTotal returns the ledger's total over all time.
func usageTotal(b *testing.B, p *pipeline.Pipeline) store.UsageTotal {
	b.Helper()
	totals, err := p.Ledger().Usage(context.Background(), store.UsageQuery{})
	if err != nil {
		b.Fatal(err)
	}
	if len(totals) == 0 {
		return store.UsageTotal{}
	}
	return totals[0]
}

// processCPU returns the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
