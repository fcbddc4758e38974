package sluice_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/sluice-gw/sluice"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCollect(t *testing.T) {
	events := []sluice.Event{
		{Type: sluice.EventStart, ID: "r1", Model: "m", Usage: sluice.Usage{InputTokens: 7}},
		{Type: sluice.EventThinking, Text: "hmm"},
		{Type: sluice.EventThinking, Signature: "sig"},
		{Type: sluice.EventText, Text: "Hello"},
		{Type: sluice.EventText, Text: ", world"},
		{Type: sluice.EventToolCall, Index: 0, ToolCallID: "c1", ToolName: "a"},
		{Type: sluice.EventToolCall, Index: 1, ToolCallID: "c2", ToolName: "b", Arguments: `{"y"`},
		{Type: sluice.EventToolCall, Index: 1 << 40, ToolCallID: "bogus"}, // not dense: ignored
		{Type: sluice.EventToolCall, Index: 0, Arguments: `{}`},
		{Type: sluice.EventToolCall, Index: 1, Arguments: `:1}`},
		{Type: sluice.EventUsage, Usage: sluice.Usage{InputTokens: 7, OutputTokens: 3}},
		{Type: sluice.EventFinish, FinishReason: sluice.FinishToolCalls},
	}
	resp, err := sluice.Collect(sluice.EventsStream(events))
	if err != nil {
		t.Fatal(err)
	}
	want := &sluice.Response{
		ID: "r1", Model: "m", FinishReason: sluice.FinishToolCalls,
		Usage: sluice.Usage{InputTokens: 7, OutputTokens: 3},
		Message: sluice.Message{Role: sluice.RoleAssistant, Parts: []sluice.Part{
			{Type: sluice.PartThinking, Text: "hmm", Signature: "sig"},
			sluice.TextPart("Hello, world"),
			{Type: sluice.PartToolCall, ToolCallID: "c1", ToolName: "a", Arguments: `{}`},
			{Type: sluice.PartToolCall, ToolCallID: "c2", ToolName: "b", Arguments: `{"y":1}`},
		}},
	}
	if diff := cmp.Diff(want, resp); diff != "" {
		t.Errorf("Collect (-want +got):\n%s", diff)
	}
}

func TestStreamReleaseOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		use  func(s sluice.Stream)
	}{
		{"ranged to the end", func(s sluice.Stream) {
			for range s.All() {
			}
			s.Close()
		}},
		{"break early", func(s sluice.Stream) {
			for range s.All() {
				break
			}
			s.Close()
		}},
		{"closed unused", func(s sluice.Stream) { s.Close(); s.Close() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			released := 0
			n := 0
			s := sluice.NewStream(func() (sluice.Event, error) {
				if n == 3 {
					return sluice.Event{}, io.EOF
				}
				n++
				return sluice.Event{Type: sluice.EventText, Text: "x"}, nil
			}, func() error { released++; return nil })
			tc.use(s)
			if released != 1 {
				t.Errorf("released %d times, want 1", released)
			}
		})
	}
}

// rangeOnly is a Stream that can only be ranged over, to take Pull's
// iter.Pull2 path.
type rangeOnly struct{ sluice.Stream }

// TestPull checks reading a stream one event at a time, by both of Pull's
// paths: events in order then io.EOF, an error then io.EOF, release once
// whether read to the end or stopped early.
func TestPull(t *testing.T) {
	boom := errors.New("boom")
	for _, wrap := range []struct {
		name string
		f    func(sluice.Stream) sluice.Stream
	}{{"NewStream", func(s sluice.Stream) sluice.Stream { return s }}, {"other", func(s sluice.Stream) sluice.Stream { return rangeOnly{s} }}} {
		for _, tc := range []struct {
			name  string
			fail  bool
			reads int
		}{{"to the end", false, 5}, {"error", true, 5}, {"stopped early", false, 1}} {
			t.Run(wrap.name+"/"+tc.name, func(t *testing.T) {
				released, n := 0, 0
				s := wrap.f(sluice.NewStream(func() (sluice.Event, error) {
					if n == 2 {
						if tc.fail {
							return sluice.Event{}, boom
						}
						return sluice.Event{}, io.EOF
					}
					n++
					return sluice.Event{Type: sluice.EventText, Text: strconv.Itoa(n)}, nil
				}, func() error { released++; return nil }))
				next, stop := sluice.Pull(s)
				var got []string
				for range tc.reads {
					ev, err := next()
					switch {
					case err == nil:
						got = append(got, ev.Text)
					case err == io.EOF:
						got = append(got, "EOF")
					default:
						got = append(got, err.Error())
					}
				}
				stop()
				stop()
				want := map[string]string{"to the end": "1 2 EOF EOF EOF", "error": "1 2 boom EOF EOF", "stopped early": "1"}[tc.name]
				if g := strings.Join(got, " "); g != want {
					t.Errorf("read %q, want %q", g, want)
				}
				if released != 1 {
					t.Errorf("released %d times, want 1", released)
				}
			})
		}
	}
}

func TestStreamErrorAndSingleUse(t *testing.T) {
	boom := errors.New("boom")
	s := sluice.NewStream(func() (sluice.Event, error) { return sluice.Event{}, boom }, nil)
	var got []error
	for _, err := range s.All() {
		got = append(got, err)
	}
	if len(got) != 1 || !errors.Is(got[0], boom) {
		t.Fatalf("errors = %v, want [boom]", got)
	}
	for _, err := range s.All() {
		if err == nil {
			t.Fatal("a second range over a used stream yielded no error")
		}
	}
}

func TestErrorIsClientSafe(t *testing.T) {
	cause := &sluice.UpstreamError{Provider: "p", StatusCode: 429, Message: "org-123 secret detail", RetryAfter: 2 * time.Second}
	e := sluice.FromUpstream(cause)
	if e.Code != sluice.CodeRateLimited || e.RetryAfter != 2*time.Second {
		t.Fatalf("FromUpstream = %+v", e)
	}
	if strings.Contains(e.Error(), "org-123") || strings.Contains(fmt.Sprint(e), "secret") {
		t.Errorf("Error() leaks the cause: %q", e.Error())
	}
	var buf strings.Builder
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "err", e)
	if !strings.Contains(buf.String(), "org-123") {
		t.Errorf("operators' log lacks the cause: %s", buf.String())
	}
	wrapped := fmt.Errorf("call: %w", e)
	if sluice.ErrorCode(wrapped) != sluice.CodeRateLimited || sluice.AsError(wrapped) != e {
		t.Error("the code is lost through wrapping")
	}
	if got := sluice.AsError(context.DeadlineExceeded).Code; got != sluice.CodeUpstreamTimeout {
		t.Errorf("deadline = %s, want upstream_timeout", got)
	}
	if got := sluice.AsError(errors.New("db exploded at 10.0.0.1")); got.Code != sluice.CodeInternal || strings.Contains(got.Error(), "10.0.0.1") {
		t.Errorf("unknown error = %q", got.Error())
	}
}

func TestCodesTable(t *testing.T) {
	for _, c := range sluice.Codes() {
		if s := c.HTTPStatus(); s < 400 || s > 599 {
			t.Errorf("%s: status %d", c, s)
		}
		if c.DefaultMessage() == "" {
			t.Errorf("%s: no message", c)
		}
	}
	for status, want := range map[int]sluice.Code{400: sluice.CodeInvalidRequest, 401: sluice.CodeUpstreamError, 408: sluice.CodeUpstreamTimeout, 413: sluice.CodeRequestTooLarge, 429: sluice.CodeRateLimited, 500: sluice.CodeUpstreamError, 502: sluice.CodeUpstreamUnavailable, 503: sluice.CodeUpstreamUnavailable, 504: sluice.CodeUpstreamTimeout, 529: sluice.CodeOverloaded} {
		if got := sluice.StatusCode(status); got != want {
			t.Errorf("StatusCode(%d) = %s, want %s", status, got, want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		h    http.Header
		want time.Duration
	}{
		{http.Header{"Retry-After": {"3"}}, 3 * time.Second},
		{http.Header{"Retry-After": {"1.5"}}, 1500 * time.Millisecond},
		{http.Header{"Retry-After": {now.Add(10 * time.Second).Format(http.TimeFormat)}}, 10 * time.Second},
		{http.Header{"Retry-After": {"soon"}}, 0},
		{http.Header{"Retry-After": {"-1"}}, 0},
		{http.Header{"Retry-After-Ms": {"250"}, "Retry-After": {"9"}}, 250 * time.Millisecond},
		{http.Header{}, 0},
	} {
		if got := sluice.ParseRetryAfter(tc.h, now); got != tc.want {
			t.Errorf("ParseRetryAfter(%v) = %v, want %v", tc.h, got, tc.want)
		}
	}
}
