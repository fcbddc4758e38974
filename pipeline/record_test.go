package pipeline_test

import (
	"context"
	"testing"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/config"
	"github.com/sluice-gw/sluice/pipeline"
	"github.com/sluice-gw/sluice/store"
	"github.com/sluice-gw/sluice/store/memory"
)

// TestRecords checks that every call reports one Record when it ends, with
// the usage the upstream reported, or for a stream cut short the usage
// known so far with its output estimated from what was sent.
func TestRecords(t *testing.T) {
	cfg, err := config.Parse([]byte(`
tiers: [{name: free}]
providers:
  - {name: s, type: sim, tokens: 40}
  - {name: drops, type: sim, tokens: 40, fault: drop_after=12}
  - {name: down, type: sim, fault: status=503}
models:
  - {name: ok, targets: [{provider: s, model: m}]}
  - {name: drops, targets: [{provider: drops, model: m}]}
  - {name: down, targets: [{provider: down, model: m}]}
`), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	var recs []pipeline.Record
	p, err := pipeline.New(context.Background(), cfg, pipeline.Options{OnRecord: func(_ context.Context, r pipeline.Record) { recs = append(recs, r) }})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	stream := func(model string, stopAfter int) sluice.Usage {
		req := userRequest(model, "Hello there.")
		req.Stream = true
		s, err := p.Stream(ctx, req)
		if err != nil {
			return sluice.Usage{}
		}
		defer s.Close()
		n := 0
		var u sluice.Usage
		for ev, err := range s.All() {
			if err != nil {
				break
			}
			if ev.Type == sluice.EventUsage {
				u = ev.Usage
			}
			if n++; n == stopAfter {
				break
			}
		}
		return u
	}

	creq := userRequest("ok", "Hello there.")
	creq.ID, creq.Caller = "req-1", sluice.Caller{Key: "k1", Tenant: "acme", Tier: "free", User: "u", IP: "10.0.0.1"}
	resp, err := p.Complete(ctx, creq)
	if err != nil {
		t.Fatal(err)
	}
	full := stream("ok", 0)
	stream("drops", 0)
	stream("ok", 6) // the caller stops reading after six events
	stream("down", 0)

	if len(recs) != 5 {
		t.Fatalf("%d records, want 5: %+v", len(recs), recs)
	}
	if r := recs[0]; r.Stream || r.Err != nil || r.Usage != resp.Usage || r.Model != "ok" || r.Status != 200 || r.TTFT != 0 ||
		r.ID != "req-1" || r.Caller != creq.Caller || r.Start.IsZero() || r.Duration <= 0 {
		t.Errorf("Complete record %+v, want usage %+v, id and caller", r, resp.Usage)
	}
	if r := recs[1]; !r.Stream || r.Err != nil || r.Estimated || r.Usage != full || full.OutputTokens != 40 || r.Status != 200 ||
		r.TTFT <= 0 || r.TTFT > r.Duration {
		t.Errorf("stream record %+v, want usage %+v (40 output tokens), a TTFT", r, full)
	}
	// Twelve one-word tokens went out before the drop: about 12 tokens at
	// four bytes each, never zero.
	if r := recs[2]; sluice.ErrorCode(r.Err) != sluice.CodeStreamInterrupted || r.Status != 200 || !r.Estimated || r.Usage.OutputTokens < 10 || r.Usage.OutputTokens > 25 || r.Usage.InputTokens == 0 {
		t.Errorf("dropped stream record %+v, want stream_interrupted with input tokens and about 12 output tokens, estimated", r)
	}
	if r := recs[3]; r.Err == nil || !r.Estimated || r.Usage.OutputTokens == 0 {
		t.Errorf("released stream record %+v, want an error and estimated output", r)
	}
	if r := recs[4]; r.Err == nil || sluice.ErrorCode(r.Err) != sluice.StatusCode(503) || r.Status != 503 || r.Usage != (sluice.Usage{}) {
		t.Errorf("failed stream record %+v", r)
	}
}

// TestLedgerStructured checks that each ledger row carries the call's
// structured-output outcome: parse and schema failures, repairs, and
// whether the answer was valid, repaired or a violation.
func TestLedgerStructured(t *testing.T) {
	cfg, err := config.Parse([]byte(`
providers:
  - {name: good, type: sim}
  - {name: prose-once, type: sim, fault: "prose,attempts=1"}
  - {name: prose, type: sim, fault: prose}
models:
  - {name: good, targets: [{provider: good, model: m}]}
  - {name: prose-once, targets: [{provider: prose-once, model: m}]}
  - {name: prose, targets: [{provider: prose, model: m}]}
`), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	ledger := memory.NewLedger(memory.LedgerOptions{})
	p, err := pipeline.New(context.Background(), cfg, pipeline.Options{Ledger: ledger})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	for _, model := range []string{"good", "prose-once", "prose"} {
		req := userRequest(model, "Name a city.")
		req.ID = "req-" + model
		req.Output = sluice.Output{Type: sluice.OutputJSONObject}
		p.Complete(ctx, req)
	}
	plain := userRequest("good", "Hello.")
	p.Complete(ctx, plain)
	if err := p.FlushLedger(ctx); err != nil {
		t.Fatal(err)
	}
	rows := ledger.Rows()
	if len(rows) != 4 {
		t.Fatalf("%d rows, want 4", len(rows))
	}
	want := map[string]store.LedgerRow{
		"req-good":       {Outcome: store.OutcomeValid, Attempts: 1, Status: 200},
		"req-prose-once": {Outcome: store.OutcomeRepaired, ParseFailures: 1, Repairs: 1, Attempts: 2, Status: 200},
		"req-prose":      {Outcome: store.OutcomeViolation, ParseFailures: 2, Repairs: 1, Attempts: 2, Status: 502, ErrorCode: "schema_violation"},
		"":               {Attempts: 1, Status: 200},
	}
	for _, r := range rows {
		w, ok := want[r.RequestID]
		if !ok || r.Outcome != w.Outcome || r.ParseFailures != w.ParseFailures || r.SchemaFailures != w.SchemaFailures ||
			r.Repairs != w.Repairs || r.Attempts != w.Attempts || r.Status != w.Status || r.ErrorCode != w.ErrorCode ||
			r.Route == "" || r.Provider == "" || r.InputTokens == 0 {
			t.Errorf("row %+v, want %+v", r, w)
		}
	}
}
