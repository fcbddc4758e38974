package anthropic

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/internal/jsonw"
)

// The wire types below are decoded with encoding/json. Fields the gateway does
// not use are left out, so unknown and unused fields cost nothing but a skip.

// wireBlock is any content block: of a request message, of a tool result, of a
// response, or the content_block of a content_block_start event. Type says
// which fields are in use.
type wireBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text"`
	Source    *wireSource     `json:"source"`
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
	IsError   bool            `json:"is_error"`
	Thinking  string          `json:"thinking"`
	Signature string          `json:"signature"`
	Data      string          `json:"data"`
}

// wireSource is an image block's source: base64 data or a URL.
type wireSource struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type"`
	Data      string `json:"data"`
	URL       string `json:"url"`
}

// wireUsage is the usage object of a message and of message_start and
// message_delta events. A count the upstream did not send stays at the value it
// had before decoding: reset sets them to -1 to tell absence from zero.
type wireUsage struct {
	InputTokens              int `json:"input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
}

func (u *wireUsage) reset() { *u = wireUsage{-1, -1, -1, -1} }

// wireErrorBody is the inner object of an error answer or error event.
type wireErrorBody struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// wireError is an error answer: {"type":"error","error":{"type","message"}}.
type wireError struct {
	Type  string        `json:"type"`
	Error wireErrorBody `json:"error"`
}

// toUsage converts Anthropic's counts, whose input_tokens excludes cached
// tokens, to sluice's, whose InputTokens includes them. Negative (absent)
// counts are zero.
func toUsage(in, out, cacheWrite, cacheRead int) sluice.Usage {
	in, out, cacheWrite, cacheRead = max(in, 0), max(out, 0), max(cacheWrite, 0), max(cacheRead, 0)
	return sluice.Usage{
		InputTokens:      in + cacheWrite + cacheRead,
		OutputTokens:     out,
		CacheReadTokens:  cacheRead,
		CacheWriteTokens: cacheWrite,
	}
}

// uncachedInput returns Anthropic's input_tokens for u: the input tokens that
// were neither read from nor written to the cache, never negative.
func uncachedInput(u sluice.Usage) int {
	return max(u.InputTokens-u.CacheReadTokens-u.CacheWriteTokens, 0)
}

// appendUsage appends Anthropic's usage object for u, output tokens given
// separately (message_start reports a placeholder).
func appendUsage(b []byte, u sluice.Usage, out int) []byte {
	b = append(b, `{"input_tokens":`...)
	b = strconv.AppendInt(b, int64(uncachedInput(u)), 10)
	b = append(b, `,"cache_creation_input_tokens":`...)
	b = strconv.AppendInt(b, int64(max(u.CacheWriteTokens, 0)), 10)
	b = append(b, `,"cache_read_input_tokens":`...)
	b = strconv.AppendInt(b, int64(max(u.CacheReadTokens, 0)), 10)
	b = append(b, `,"output_tokens":`...)
	b = strconv.AppendInt(b, int64(max(out, 0)), 10)
	return append(b, '}')
}

// stopReason returns the wire stop_reason for a finish reason. A stop with a
// known stop sequence is "stop_sequence". Anthropic has no word for an error
// finish; end_turn is the closest the wire allows.
func stopReason(f sluice.FinishReason, stopSeq string) string {
	switch f {
	case sluice.FinishLength:
		return "max_tokens"
	case sluice.FinishToolCalls:
		return "tool_use"
	case sluice.FinishContentFilter:
		return "refusal"
	}
	if stopSeq != "" {
		return "stop_sequence"
	}
	return "end_turn"
}

// finishReason maps a wire stop_reason to a finish reason. pause_turn (a
// server-tool turn that paused) is a stop; model_context_window_exceeded is a
// length stop.
func finishReason(s string) sluice.FinishReason {
	switch s {
	case "max_tokens", "model_context_window_exceeded":
		return sluice.FinishLength
	case "tool_use":
		return sluice.FinishToolCalls
	case "refusal":
		return sluice.FinishContentFilter
	}
	return sluice.FinishStop
}

// appendStopSequence appends a stop_sequence value: null when empty.
func appendStopSequence(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendString(b, s)
}

// appendString appends s as a JSON string (see jsonw.AppendString).
func appendString(b []byte, s string) []byte { return jsonw.AppendString(b, s) }

// appendObject appends the JSON object text s compacted, or {} when s is
// blank. It reports false, leaving b as it was, when s is not a JSON object.
func appendObject(b []byte, s string) ([]byte, bool) {
	t := bytes.TrimSpace([]byte(s))
	if len(t) == 0 {
		return append(b, "{}"...), true
	}
	if t[0] != '{' {
		return b, false
	}
	n := len(b)
	buf := bytes.NewBuffer(b)
	if err := json.Compact(buf, t); err != nil {
		return b[:n], false
	}
	return buf.Bytes(), true
}

// compactObject returns the JSON object raw compacted as a string, or "{}"
// when raw is empty. It reports false when raw is not a JSON object.
func compactObject(raw []byte) (string, bool) {
	if len(raw) == 0 {
		return "{}", true
	}
	if raw[0] != '{' {
		return "", false
	}
	// A compact object is common (the wire is compact): skip the copy.
	if !bytes.ContainsAny(raw, " \t\r\n") {
		return string(raw), true
	}
	var buf bytes.Buffer
	buf.Grow(len(raw))
	if err := json.Compact(&buf, raw); err != nil {
		return "", false
	}
	return buf.String(), true
}
