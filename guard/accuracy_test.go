package guard_test

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/guard"
	"github.com/sluice-gw/sluice/sim"
)

// TestAccuracyAgainstSimulator compares the prompt count made before a
// call with the input tokens the simulator reports for it, over prompts
// cut from the project's docs: the figures docs/tokens.md quotes
// (go test -run TestAccuracyAgainstSimulator -v ./guard/). The simulator
// counts words and punctuation, a rougher tokenizer than o200k's, so the
// two must agree in total within 25%, not exactly.
func TestAccuracyAgainstSimulator(t *testing.T) {
	var prompts []string
	for _, f := range []string{"../README.md", "../docs/config.md", "../docs/dialects.md"} {
		b, err := os.ReadFile(filepath.Clean(f))
		if err != nil {
			t.Fatal(err)
		}
		for _, para := range strings.Split(string(b), "\n\n") {
			if len(para) > 40 {
				prompts = append(prompts, para)
			}
		}
	}
	p := sim.New(sim.Options{Name: "s", Tokens: 1})
	var sumGuard, sumSim, sumAbs float64
	for _, text := range prompts {
		req := &sluice.Request{Model: "gpt-4o", Messages: []sluice.Message{{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart(text)}}}}
		n, _ := guard.CountPrompt(req, "gpt-4o")
		resp, err := p.Complete(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		s := float64(resp.Usage.InputTokens)
		sumGuard += float64(n)
		sumSim += s
		sumAbs += math.Abs(float64(n)-s) / s
	}
	total := (sumGuard - sumSim) / sumSim
	t.Logf("%d prompts: counted %.0f tokens, the simulator reported %.0f (%+.1f%% in total, %.1f%% mean absolute difference per prompt)",
		len(prompts), sumGuard, sumSim, 100*total, 100*sumAbs/float64(len(prompts)))
	if math.Abs(total) > 0.25 {
		t.Errorf("the counts differ by %.1f%% in total", 100*total)
	}
}
