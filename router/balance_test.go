package router

import (
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-gw/sluice"
)

// seeded returns a deterministic Options.Rand.
func seeded() func() float64 {
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(1, 2))
	return func() float64 {
		mu.Lock()
		defer mu.Unlock()
		return r.Float64()
	}
}

// TestBalanceWeights checks that an idle rank splits calls by weight.
func TestBalanceWeights(t *testing.T) {
	a, b, c := &fake{name: "a"}, &fake{name: "b"}, &fake{name: "c"}
	r := mustNew(t, Options{Rand: seeded()}, Route{Name: "m", Targets: []Target{
		{ProviderName: "a", Provider: a, Model: "a", Weight: 3},
		{ProviderName: "b", Provider: b, Model: "b", Weight: 1},
		{ProviderName: "c", Provider: c, Model: "c"}, // a rank of its own: the fallback
	}})
	const n = 4000
	got := map[string]int{}
	for i := range n {
		res := do(t.Context(), r, "m", i%2 == 0)
		if res.err != nil {
			t.Fatal(res.err)
		}
		got[res.model]++
	}
	if share := float64(got["a"]) / n; share < 0.72 || share > 0.78 || got["a"]+got["b"] != n {
		t.Errorf("a served %d, b %d, c %d of %d calls; want 3:1 between a and b", got["a"], got["b"], got["c"], n)
	}
}

// TestBalanceLeastOutstanding checks that a rank picks its target with the
// fewest outstanding calls per unit of weight, counting the calls of every
// route (a stream is outstanding until it is closed), and that the rest of
// the rank come before the next rank.
func TestBalanceLeastOutstanding(t *testing.T) {
	a, b := &fake{name: "a"}, &fake{name: "b"}
	ta := Target{ProviderName: "a", Provider: a, Model: "a", Weight: 2}
	tb := Target{ProviderName: "b", Provider: b, Model: "b", Weight: 1}
	r := mustNew(t, Options{Rand: func() float64 { return 0.99 }}, // equals: keep the first
		Route{Name: "m", Targets: []Target{ta, tb}},
		Route{Name: "only-b", Targets: []Target{tb}},
	)
	var held []sluice.Stream
	var order []string
	for range 5 {
		s, err := r.Stream(t.Context(), &sluice.Request{Model: "m"})
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, s)
		ev, _ := sluice.Pull(s)
		start, _ := ev()
		order = append(order, start.Model)
	}
	// a: 0/2 = b: 0/1, the first; then b 0 < a 1/2; a 1/2 < b 1; a 2/2 = b 1,
	// the first; b 1 < a 3/2.
	if diff := cmp.Diff([]string{"a", "b", "a", "a", "b"}, order); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	for _, s := range held {
		s.Close()
	}
	// Load from another route counts: b is busy, so a goes first.
	s, err := r.Stream(t.Context(), &sluice.Request{Model: "only-b"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for range 3 {
		if res := do(t.Context(), r, "m", false); res.model != "a" {
			t.Errorf("with b busy elsewhere, served by %q", res.model)
		}
	}
	if a.open.Load() != 0 || b.open.Load() != 1 {
		t.Errorf("open streams: a %d, b %d", a.open.Load(), b.open.Load())
	}
}

// TestBalanceRanks checks the plan: weighted targets in a row form a rank,
// a weight of zero is a rank of its own in its place, and a failed target
// moves on within its rank, then to the next.
func TestBalanceRanks(t *testing.T) {
	down := always(upstream(503, 0))
	mk := func(name string, w int, fail func(int) error) Target {
		return Target{ProviderName: name, Provider: &fake{name: name, fail: fail}, Model: name, Weight: w}
	}
	tests := []struct {
		name    string
		targets []Target
		ranks   [][]string // the attempts' providers: each rank in any order
	}{
		{"no weights", []Target{mk("a", 0, down), mk("b", 0, down), mk("c", 0, nil)}, [][]string{{"a"}, {"b"}, {"c"}}},
		{"rank then fallback", []Target{mk("a", 1, down), mk("b", 1, down), mk("c", 0, nil)}, [][]string{{"a", "b"}, {"c"}}},
		{"fallback then rank", []Target{mk("a", 0, down), mk("b", 1, down), mk("c", 1, down), mk("d", 0, nil)}, [][]string{{"a"}, {"b", "c"}, {"d"}}},
		{"two ranks split by a zero", []Target{mk("a", 1, down), mk("b", 1, down), mk("x", 0, down), mk("c", 5, down), mk("d", 1, down)},
			[][]string{{"a", "b"}, {"x"}, {"c", "d"}}},
		{"a lone weighted target", []Target{mk("a", 0, down), mk("b", 3, down), mk("c", 0, nil)}, [][]string{{"a"}, {"b"}, {"c"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustNew(t, Options{Rand: seeded()}, Route{Name: "m", Targets: tt.targets})
			seen := map[string]bool{}
			multi := false
			for range 50 {
				res := do(t.Context(), r, "m", false)
				var got []string
				for _, a := range res.attempts {
					got = append(got, strings.Fields(a)[0])
				}
				i := 0
				for _, rank := range tt.ranks {
					multi = multi || len(rank) > 1
					if i+len(rank) > len(got) || !sameSet(got[i:i+len(rank)], rank) {
						t.Fatalf("attempts %v, want ranks %v", got, tt.ranks)
					}
					i += len(rank)
				}
				if i != len(got) {
					t.Fatalf("attempts %v, want ranks %v", got, tt.ranks)
				}
				seen[strings.Join(got, " ")] = true
			}
			if multi && len(seen) < 2 {
				t.Errorf("one order only in 50 calls: %v", seen)
			}
		})
	}
}

// TestBalanceRankOrder checks the order the rest of a rank is tried in:
// by load, then by weighted chance.
func TestBalanceRankOrder(t *testing.T) {
	mk := func(w int, out int64) *target {
		t := &target{Target: Target{Weight: w}, ts: &targetState{count: true}}
		t.ts.out.Store(out)
		return t
	}
	x, y, z := mk(1, 3), mk(4, 0), mk(2, 1)
	ts := []*target{x, y, z}
	order(ts, half)
	if ts[0] != y || ts[1] != z || ts[2] != x {
		t.Errorf("order by load per weight: got weights %d %d %d, want 4 2 1", ts[0].Weight, ts[1].Weight, ts[2].Weight)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}
