package router

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-gw/sluice"
)

// scripted is a provider whose stream yields events and then err (io.EOF
// for a clean end); it records the requests it gets.
type scripted struct {
	events []sluice.Event
	err    error
	reqs   []*sluice.Request
	closed int
}

func (p *scripted) Complete(context.Context, *sluice.Request) (*sluice.Response, error) {
	return nil, errors.New("not used")
}

func (p *scripted) Stream(_ context.Context, req *sluice.Request) (sluice.Stream, error) {
	p.reqs = append(p.reqs, req)
	i := 0
	return sluice.NewStream(func() (sluice.Event, error) {
		if i < len(p.events) {
			i++
			return p.events[i-1], nil
		}
		return sluice.Event{}, p.err
	}, func() error { p.closed++; return nil }), nil
}

var (
	evStart = func(in int) sluice.Event {
		return sluice.Event{Type: sluice.EventStart, Usage: sluice.Usage{InputTokens: in}}
	}
	evText  = func(s string) sluice.Event { return sluice.Event{Type: sluice.EventText, Text: s} }
	evUsage = func(in, out int) sluice.Event {
		return sluice.Event{Type: sluice.EventUsage, Usage: sluice.Usage{InputTokens: in, OutputTokens: out}}
	}
	evFinish = sluice.Event{Type: sluice.EventFinish, FinishReason: sluice.FinishStop}
	broken   = sluice.NewError(sluice.CodeStreamInterrupted, "x")
)

// TestMidStreamFailover checks that a stream breaking after its first
// content is continued on the next target as one stream: one start, the
// text stitched, usage covering both calls, the failover counted; and that
// tool-call streams, routes without the option and cancelled callers are
// not continued.
func TestMidStreamFailover(t *testing.T) {
	first := func() *scripted {
		return &scripted{events: []sluice.Event{evStart(10), evText("Hello world, ")}, err: broken}
	}
	second := func() *scripted {
		return &scripted{events: []sluice.Event{evStart(20), evText(" again."), evUsage(20, 2), evFinish}, err: io.EOF}
	}
	user := sluice.Message{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart("hi")}}
	tests := []struct {
		name      string
		first     *scripted
		second    *scripted
		prefill   bool
		off       bool
		cancel    bool
		wantText  string
		wantErr   sluice.Code
		wantUsage sluice.Usage
		wantMsgs  []sluice.Message // the continuation's messages
	}{
		{
			name: "prefill", first: first(), second: second(), prefill: true,
			wantText:  "Hello world, again.",
			wantUsage: sluice.Usage{InputTokens: 30, OutputTokens: 4 + 2}, // 13 bytes: 4 tokens, estimated
			wantMsgs:  []sluice.Message{user, {Role: sluice.RoleAssistant, Parts: []sluice.Part{sluice.TextPart("Hello world,")}}},
		},
		{
			name: "instruction", first: first(), second: second(),
			wantText:  "Hello world,  again.",
			wantUsage: sluice.Usage{InputTokens: 30, OutputTokens: 6},
			wantMsgs: []sluice.Message{user, {Role: sluice.RoleAssistant, Parts: []sluice.Part{sluice.TextPart("Hello world, ")}},
				{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart(ContinueInstruction)}}},
		},
		{
			name:   "reported usage of the broken call",
			first:  &scripted{events: []sluice.Event{evStart(10), evText("Hello world, "), evUsage(10, 3)}, err: sluice.NewError(sluice.CodeUpstreamTimeout, "idle")},
			second: &scripted{events: []sluice.Event{evStart(20), evText("again."), evFinish}, err: io.EOF}, prefill: true,
			wantText:  "Hello world, again.",
			wantUsage: sluice.Usage{InputTokens: 30, OutputTokens: 3}, // the second reported nothing: what is known
			wantMsgs:  []sluice.Message{user, {Role: sluice.RoleAssistant, Parts: []sluice.Part{sluice.TextPart("Hello world,")}}},
		},
		{
			name:   "tool call is not continued",
			first:  &scripted{events: []sluice.Event{evStart(10), {Type: sluice.EventToolCall, ToolName: "f", Arguments: `{"a":`}}, err: broken},
			second: second(), wantErr: sluice.CodeStreamInterrupted,
		},
		{name: "option off", first: first(), second: second(), off: true, wantText: "Hello world, ", wantErr: sluice.CodeStreamInterrupted},
		{name: "client error is not continued", first: &scripted{events: []sluice.Event{evStart(10), evText("a")}, err: sluice.NewError(sluice.CodeInvalidRequest, "x")},
			second: second(), wantText: "a", wantErr: sluice.CodeInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New([]Route{{Name: "m", MidStreamFailover: !tt.off, Targets: []Target{
				{ProviderName: "p1", Provider: tt.first, Model: "a"},
				{ProviderName: "p2", Provider: tt.second, Model: "b", Prefill: tt.prefill},
			}}})
			if err != nil {
				t.Fatal(err)
			}
			s, err := r.Stream(t.Context(), &sluice.Request{Model: "m", Messages: []sluice.Message{user}})
			if err != nil {
				t.Fatal(err)
			}
			var text strings.Builder
			var usage sluice.Usage
			starts, failovers := 0, -1
			for ev, e := range s.All() {
				if e != nil {
					err = e
					break
				}
				switch ev.Type {
				case sluice.EventStart:
					starts++
				case sluice.EventText:
					text.WriteString(ev.Text)
				case sluice.EventUsage:
					usage = ev.Usage
				case sluice.EventFinish:
					failovers = ev.Failovers
				}
			}
			if tt.wantErr != "" {
				if sluice.ErrorCode(err) != tt.wantErr || len(tt.second.reqs) != 0 {
					t.Fatalf("err %v, second target called %d times; want %s and no failover", err, len(tt.second.reqs), tt.wantErr)
				}
				if tt.wantText != "" && text.String() != tt.wantText {
					t.Errorf("text %q, want %q", text.String(), tt.wantText)
				}
				return
			}
			if err != nil {
				t.Fatalf("stream error %v", err)
			}
			if text.String() != tt.wantText || starts != 1 || failovers != 1 {
				t.Errorf("text %q, %d starts, %d failovers; want %q, 1, 1", text.String(), starts, failovers, tt.wantText)
			}
			if usage != tt.wantUsage {
				t.Errorf("usage %+v, want %+v", usage, tt.wantUsage)
			}
			if diff := cmp.Diff(tt.wantMsgs, tt.second.reqs[0].Messages); diff != "" {
				t.Errorf("continuation messages (-want +got):\n%s", diff)
			}
			if tt.second.reqs[0].Model != "b" || tt.first.closed != 1 || tt.second.closed != 1 {
				t.Errorf("model %q, closed %d and %d", tt.second.reqs[0].Model, tt.first.closed, tt.second.closed)
			}
		})
	}
}

// TestMidStreamFailoverCancelled checks that a caller's cancellation is
// never continued elsewhere.
func TestMidStreamFailoverCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	first := &scripted{events: []sluice.Event{evStart(1), evText("a")}, err: broken}
	second := &scripted{events: []sluice.Event{evStart(1), evFinish}, err: io.EOF}
	r, _ := New([]Route{{Name: "m", MidStreamFailover: true, Targets: []Target{
		{ProviderName: "p1", Provider: first, Model: "a"}, {ProviderName: "p2", Provider: second, Model: "b"},
	}}})
	s, err := r.Stream(ctx, &sluice.Request{Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	for ev, e := range s.All() {
		if ev.Type == sluice.EventText {
			cancel()
		}
		err = e
	}
	if err == nil || len(second.reqs) != 0 {
		t.Errorf("err %v, second called %d times; want the error and no failover", err, len(second.reqs))
	}
}
