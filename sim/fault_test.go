package sim

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseFault(t *testing.T) {
	tests := []struct {
		in   string
		want Fault
	}{
		{"", Fault{}},
		{" , ,", Fault{}},
		{"latency=200ms,ttft=1s,chunk_delay=10ms,stall_after=5,drop_after=6,error_at=2,status=429,retry_after=2s,prose,truncate,tokens=100",
			Fault{Latency: 200 * time.Millisecond, TTFT: time.Second, ChunkDelay: 10 * time.Millisecond, StallAfter: 5,
				DropAfter: 6, ErrorAt: 2, Status: 429, RetryAfter: 2 * time.Second, Prose: true, Truncate: true, Tokens: 100}},
		{" status = 529 , retry_after=1m30s ", Fault{Status: 529, RetryAfter: 90 * time.Second}},
		{"prose=true,truncate=false", Fault{Prose: true}},
		{"latency=0s,tokens=0", Fault{}},
		{"tokens=65536", Fault{Tokens: MaxTokens}},
		{"status=503,status_first=2", Fault{Status: 503, StatusFirst: 2}},
		{"tail=0.05:2s", Fault{TailP: 0.05, Tail: 2 * time.Second}},
		{"tail = 1 : 150ms", Fault{TailP: 1, Tail: 150 * time.Millisecond}},
		{"tail=0.5:0s", Fault{TailP: 0.5}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseFault(tt.in)
			if err != nil {
				t.Fatalf("ParseFault(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseFault(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			back, err := ParseFault(got.String())
			if err != nil || back != got {
				t.Errorf("round trip through %q = %+v, %v", got.String(), back, err)
			}
		})
	}
}

func TestParseFaultErrors(t *testing.T) {
	tests := []struct {
		in   string
		item string // the item the error must name
	}{
		{"latency", "latency"},
		{"latency=fast", "latency=fast"},
		{"latency=-1s", "latency=-1s"},
		{"ttft=1", "ttft=1"},
		{"stall_after=x", "stall_after=x"},
		{"drop_after=-2", "drop_after=-2"},
		{"status=200", "status=200"},
		{"status=600", "status=600"},
		{"status", "status"},
		{"tokens=65537", "tokens=65537"},
		{"prose=maybe", "prose=maybe"},
		{"latency=1s,speed=2", "speed=2"},
		{"prose,prose", "prose"},
		{"tokens=1,tokens=2", "tokens=2"},
		{"status_first=-1", "status_first=-1"},
		{"tail", "tail"},
		{"tail=0.1", "tail=0.1"},
		{"tail=1.5:1s", "tail=1.5:1s"},
		{"tail=NaN:1s", "tail=NaN:1s"},
		{"tail=0.1:-1s", "tail=0.1:-1s"},
		{"tail=0.1:soon", "tail=0.1:soon"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			f, err := ParseFault(tt.in)
			if err == nil {
				t.Fatalf("ParseFault(%q) = %+v, want error", tt.in, f)
			}
			if !strings.Contains(err.Error(), `"`+tt.item+`"`) {
				t.Errorf("error %q does not name %q", err, tt.item)
			}
		})
	}
}

func TestFaultString(t *testing.T) {
	f := Fault{Latency: time.Second, Status: 503, Truncate: true}
	if got, want := f.String(), "latency=1s,status=503,truncate"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	if (Fault{}).String() != "" {
		t.Errorf("zero Fault prints %q", Fault{}.String())
	}
}

func TestFaultMerge(t *testing.T) {
	base := Fault{Latency: time.Second, TTFT: time.Second, Status: 500, Prose: true, Tokens: 10}
	over := Fault{Latency: 2 * time.Second, ChunkDelay: time.Millisecond, StallAfter: 1, DropAfter: 2, RetryAfter: 3 * time.Second, Truncate: true, Status: 429,
		StatusFirst: 1, TailP: 0.5, Tail: time.Second}
	want := Fault{Latency: 2 * time.Second, TTFT: time.Second, ChunkDelay: time.Millisecond, StallAfter: 1, DropAfter: 2,
		Status: 429, RetryAfter: 3 * time.Second, Prose: true, Truncate: true, Tokens: 10, StatusFirst: 1, TailP: 0.5, Tail: time.Second}
	if diff := cmp.Diff(want, base.Merge(over)); diff != "" {
		t.Errorf("Merge (-want +got):\n%s", diff)
	}
	if base.Merge(Fault{}) != base {
		t.Errorf("merging the zero Fault changed %+v", base)
	}
	if (Fault{}).Merge(base) != base {
		t.Errorf("merging over the zero Fault differs")
	}
}

func TestWithFault(t *testing.T) {
	ctx := context.Background()
	if _, ok := FaultFrom(ctx); ok {
		t.Errorf("fault in a plain context")
	}
	f := Fault{Status: 503}
	got, ok := FaultFrom(WithFault(ctx, f))
	if !ok || got != f {
		t.Errorf("FaultFrom = %+v, %v", got, ok)
	}
}

func FuzzParseFault(f *testing.F) {
	for _, s := range []string{
		"", "latency=200ms,ttft=1s,chunk_delay=10ms,stall_after=5,drop_after=5,error_at=1,status=429,retry_after=2s,prose,truncate,tokens=100",
		"prose=false", "latency=1h2m3.000000004s", "status=503,status_first=3", "tail=0.05:2s", "tail=1e-7:1ns", "status=599,,", "=", "tokens=+5", "latency=9223372036854775807ns",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fault, err := ParseFault(s)
		if err != nil {
			return
		}
		back, err := ParseFault(fault.String())
		if err != nil {
			t.Fatalf("ParseFault(%q) = %+v, whose String %q does not parse: %v", s, fault, fault.String(), err)
		}
		if back != fault {
			t.Fatalf("round trip of %q: %+v != %+v", s, back, fault)
		}
	})
}
