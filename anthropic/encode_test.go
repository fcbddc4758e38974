package anthropic

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice"
)

func TestMarshalResponseGolden(t *testing.T) {
	tests := []struct {
		name string
		resp *sluice.Response
	}{
		{"response_text", &sluice.Response{
			ID:           "msg_01XFDUDYJgAACzvnptvVoYEL",
			Model:        "claude-sonnet-4-5",
			Message:      sluice.Message{Role: sluice.RoleAssistant, Parts: []sluice.Part{sluice.TextPart("Hello! \"Quoted\" <tag> & a\nnew line.")}},
			FinishReason: sluice.FinishStop,
			Usage:        sluice.Usage{InputTokens: 25, OutputTokens: 12},
		}},
		{"response_stop_sequence", &sluice.Response{
			ID:           "msg_2",
			Model:        "claude-sonnet-4-5",
			Message:      sluice.Message{Role: sluice.RoleAssistant, Parts: []sluice.Part{sluice.TextPart("1, 2, 3")}},
			FinishReason: sluice.FinishStop,
			StopSequence: "4",
			Usage:        sluice.Usage{InputTokens: 100, OutputTokens: 7, CacheReadTokens: 80, CacheWriteTokens: 15},
		}},
		{"response_tool_use", &sluice.Response{
			ID:    "msg_01Aq9w938a90dw8q",
			Model: "claude-sonnet-4-5",
			Message: sluice.Message{Role: sluice.RoleAssistant, Parts: []sluice.Part{
				{Type: sluice.PartThinking, Text: "The user wants the weather.", Signature: "EqQBCgIYAh=="},
				{Type: sluice.PartThinking, Redacted: true, Data: "EmwKAhgB"},
				sluice.TextPart("I'll check the weather."),
				sluice.TextPart(""), // dropped
				{Type: sluice.PartToolCall, ToolCallID: "toolu_01A09q90qw90lq917835lq9", ToolName: "get_weather", Arguments: "{\n  \"location\": \"San Francisco, CA\"\n}"},
				{Type: sluice.PartToolCall, ToolCallID: "toolu_02", ToolName: "get_time", Arguments: ""},
				{Type: sluice.PartImage, ImageURL: "https://example.com/x.png"}, // dropped
			}},
			FinishReason: sluice.FinishToolCalls,
			Usage:        sluice.Usage{InputTokens: 472, OutputTokens: 89},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := MarshalResponse(tt.resp)
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(b) {
				t.Fatalf("not valid JSON: %s", b)
			}
			golden(t, tt.name, append(b, '\n'))
		})
	}
}

func TestMarshalResponseStopReasons(t *testing.T) {
	tests := []struct {
		finish sluice.FinishReason
		seq    string
		want   string
	}{
		{sluice.FinishStop, "", "end_turn"},
		{sluice.FinishStop, "END", "stop_sequence"},
		{sluice.FinishLength, "", "max_tokens"},
		{sluice.FinishToolCalls, "", "tool_use"},
		{sluice.FinishContentFilter, "", "refusal"},
		{sluice.FinishError, "", "end_turn"},
		{"", "", "end_turn"},
	}
	for _, tt := range tests {
		t.Run(string(tt.finish)+tt.seq, func(t *testing.T) {
			b, err := MarshalResponse(&sluice.Response{FinishReason: tt.finish, StopSequence: tt.seq})
			if err != nil {
				t.Fatal(err)
			}
			var w struct {
				StopReason string   `json:"stop_reason"`
				StopSeq    *string  `json:"stop_sequence"`
				Content    []string `json:"content"`
			}
			if err := json.Unmarshal(b, &w); err != nil {
				t.Fatal(err)
			}
			if w.StopReason != tt.want {
				t.Errorf("stop_reason = %q, want %q", w.StopReason, tt.want)
			}
			if (w.StopSeq != nil) != (tt.seq != "") {
				t.Errorf("stop_sequence = %v, want %q", w.StopSeq, tt.seq)
			}
			if w.Content == nil {
				t.Error("content is null, want []")
			}
		})
	}
}

func TestMarshalResponseBadArguments(t *testing.T) {
	for _, args := range []string{`{"a":`, `[1]`, `"x"`} {
		_, err := MarshalResponse(&sluice.Response{Message: sluice.Message{Parts: []sluice.Part{
			{Type: sluice.PartToolCall, ToolCallID: "t", ToolName: "n", Arguments: args},
		}}})
		if sluice.ErrorCode(err) != sluice.CodeUpstreamError {
			t.Errorf("arguments %q: err = %v, want upstream_error", args, err)
		}
	}
}

func TestWriteErrorGolden(t *testing.T) {
	tests := []struct {
		name string
		err  *sluice.Error
	}{
		{"error_invalid_request", &sluice.Error{Code: sluice.CodeInvalidRequest, Message: "max_tokens: this field is required.", Param: "max_tokens"}},
		{"error_rate_limited", &sluice.Error{Code: sluice.CodeRateLimited, Message: sluice.CodeRateLimited.DefaultMessage(), RetryAfter: 2500 * time.Millisecond}},
		{"error_overloaded", &sluice.Error{Code: sluice.CodeOverloaded, Err: errors.New("upstream secret detail")}},
		{"error_nil", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			WriteError(rec, tt.err)
			var sb strings.Builder
			fmt.Fprintf(&sb, "status: %d\n", rec.Code)
			keys := make([]string, 0, len(rec.Header()))
			for k := range rec.Header() {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				fmt.Fprintf(&sb, "%s: %s\n", k, strings.Join(rec.Header()[k], ", "))
			}
			sb.WriteString("\n")
			sb.Write(rec.Body.Bytes())
			sb.WriteString("\n")
			if strings.Contains(sb.String(), "secret") {
				t.Error("the cause leaked into the answer")
			}
			golden(t, tt.name, []byte(sb.String()))
		})
	}
}

func TestErrorType(t *testing.T) {
	documented := map[string]bool{
		"invalid_request_error": true, "authentication_error": true, "permission_error": true,
		"not_found_error": true, "request_too_large": true, "rate_limit_error": true,
		"api_error": true, "overloaded_error": true, "timeout_error": true,
	}
	want := map[sluice.Code]string{
		sluice.CodeInvalidRequest:   "invalid_request_error",
		sluice.CodeUnauthenticated:  "authentication_error",
		sluice.CodePermissionDenied: "permission_error",
		sluice.CodeNotFound:         "not_found_error",
		sluice.CodeRequestTooLarge:  "request_too_large",
		sluice.CodeRateLimited:      "rate_limit_error",
		sluice.CodeOverloaded:       "overloaded_error",
		sluice.CodeUpstreamTimeout:  "timeout_error",
		sluice.CodeInternal:         "api_error",
		sluice.CodeUpstreamError:    "api_error",
	}
	for _, c := range sluice.Codes() {
		got := ErrorType(c)
		if !documented[got] {
			t.Errorf("ErrorType(%s) = %q, not a documented type", c, got)
		}
		if w, ok := want[c]; ok && got != w {
			t.Errorf("ErrorType(%s) = %q, want %q", c, got, w)
		}
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", "quote\" back\\slash", "ctl\x00\x01\x1f\t\n\r", "utf8 é 日本 🎉", "bad \xff\xfe utf8", "line\u2028sep\u2029", "<&>"} {
		b := appendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q: %s is not a JSON string: %v", s, b, err)
		}
		var want string
		jb, _ := json.Marshal(s)
		json.Unmarshal(jb, &want)
		if got != want {
			t.Errorf("round trip of %q = %q, want %q", s, got, want)
		}
	}
}
