package router

import (
	"context"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-gw/sluice"
)

// stallProvider streams n text events, waiting gap before each, then
// finishes; every wait ends early when ctx does.
type stallProvider struct {
	first, gap time.Duration
	n          int
	released   *int
}

func (p *stallProvider) Complete(ctx context.Context, req *sluice.Request) (*sluice.Response, error) {
	s, err := p.Stream(ctx, req)
	if err != nil {
		return nil, err
	}
	return sluice.Collect(s)
}

func (p *stallProvider) Stream(ctx context.Context, _ *sluice.Request) (sluice.Stream, error) {
	i := -1
	return sluice.NewStream(func() (sluice.Event, error) {
		i++
		wait := p.gap
		switch {
		case i == 0:
			return sluice.Event{Type: sluice.EventStart}, nil
		case i == 1:
			wait = p.first
		case i > p.n+1:
			return sluice.Event{}, errEOF
		case i == p.n+1:
			return sluice.Event{Type: sluice.EventFinish, FinishReason: sluice.FinishStop}, nil
		}
		select {
		case <-time.After(wait):
			return sluice.Event{Type: sluice.EventText, Text: "x"}, nil
		case <-ctx.Done():
			return sluice.Event{}, sluice.WrapError(sluice.CodeStreamInterrupted, ctx.Err())
		}
	}, func() error { *p.released++; return nil }), nil
}

var errEOF = io.EOF

func TestTimeouts(t *testing.T) {
	tests := []struct {
		name      string
		p         stallProvider
		t         Timeouts
		wantCode  sluice.Code
		wantTexts int
		wantAt    time.Duration
	}{
		{"within every deadline", stallProvider{first: time.Second, gap: 500 * time.Millisecond, n: 5}, Timeouts{FirstToken: 2 * time.Second, Idle: time.Second, Total: time.Minute}, "", 5, 3500 * time.Millisecond},
		{"slow first token", stallProvider{first: 10 * time.Second, gap: 0, n: 5}, Timeouts{FirstToken: 2 * time.Second}, sluice.CodeUpstreamTimeout, 0, 2 * time.Second},
		{"short answer finishes", stallProvider{first: 0, gap: 0, n: 2}, Timeouts{Idle: time.Second}, "", 2, 0},
		{"idle gap too long", stallProvider{first: 0, gap: 5 * time.Second, n: 5}, Timeouts{Idle: time.Second}, sluice.CodeUpstreamTimeout, 1, time.Second},
		{"total", stallProvider{first: 0, gap: 450 * time.Millisecond, n: 100}, Timeouts{Idle: time.Second, Total: 2 * time.Second}, sluice.CodeUpstreamTimeout, 5, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				released := 0
				sp := tt.p
				sp.released = &released
				p := WithTimeouts(&sp, tt.t)
				start := time.Now()
				s, err := p.Stream(t.Context(), &sluice.Request{})
				if err != nil {
					t.Fatal(err)
				}
				texts := 0
				var last error
				for ev, err := range s.All() {
					if err != nil {
						last = err
						break
					}
					if ev.Type == sluice.EventText {
						texts++
					}
				}
				s.Close()
				if got := sluice.ErrorCode(last); last != nil && got != tt.wantCode || last == nil && tt.wantCode != "" {
					t.Fatalf("error %v (code %s), want code %q", last, got, tt.wantCode)
				}
				if texts != tt.wantTexts {
					t.Errorf("got %d text events, want %d", texts, tt.wantTexts)
				}
				if tt.wantCode != "" {
					if elapsed := time.Since(start); elapsed != tt.wantAt {
						t.Errorf("ended after %v (fake time), want %v", elapsed, tt.wantAt)
					}
				}
				if released != 1 {
					t.Errorf("upstream released %d times, want 1", released)
				}
			})
		})
	}
}

// TestTimeoutsSlowConsumer checks that time the caller spends on an event is
// not counted as the upstream's idleness.
func TestTimeoutsSlowConsumer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		released := 0
		p := WithTimeouts(&stallProvider{gap: 100 * time.Millisecond, n: 3, released: &released}, Timeouts{Idle: time.Second})
		s, err := p.Stream(t.Context(), &sluice.Request{})
		if err != nil {
			t.Fatal(err)
		}
		for _, err := range s.All() {
			if err != nil {
				t.Fatalf("slow consumer timed out the upstream: %v", err)
			}
			time.Sleep(5 * time.Second)
		}
	})
}

func TestTimeoutsComplete(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		released := 0
		p := WithTimeouts(&stallProvider{first: 10 * time.Second, n: 1, released: &released}, Timeouts{Total: time.Second})
		_, err := p.Complete(t.Context(), &sluice.Request{})
		if sluice.ErrorCode(err) != sluice.CodeUpstreamTimeout {
			t.Fatalf("err = %v, want upstream_timeout", err)
		}
	})
}
