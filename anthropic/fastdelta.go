package anthropic

import (
	"bytes"
	"unicode/utf8"

	"github.com/sluice-gw/sluice/internal/jsonw"
)

// The Messages API writes most stream events as content block deltas in one
// compact form. encoding/json costs about ten allocations an event whatever
// the struct, so the stream decoder reads that exact form by hand and leaves
// anything else, including any irregularity in the form, to encoding/json.

// Delta kinds fastDelta recognises.
const (
	deltaNone = iota
	deltaText
	deltaInputJSON
	deltaThinking
	deltaSignature
)

var deltaPrefix = []byte(`{"type":"content_block_delta","index":`)

// fastDelta parses
//
//	{"type":"content_block_delta","index":N,"delta":{"type":"T","F":"S"}}
//
// for the delta types text_delta (F text), input_json_delta (partial_json),
// thinking_delta (thinking) and signature_delta (signature). ok is false when
// data is not exactly in this form; the caller then decodes it in full.
func fastDelta(data []byte) (index, kind int, value string, ok bool) {
	rest, found := bytes.CutPrefix(data, deltaPrefix)
	if !found {
		return 0, 0, "", false
	}
	n := 0
	for n < len(rest) && n < 9 && rest[n] >= '0' && rest[n] <= '9' {
		index = index*10 + int(rest[n]-'0')
		n++
	}
	if n == 0 || (n > 1 && rest[0] == '0') {
		return 0, 0, "", false
	}
	if rest, found = bytes.CutPrefix(rest[n:], []byte(`,"delta":{"type":"`)); !found {
		return 0, 0, "", false
	}
	var field string
	switch {
	case bytes.HasPrefix(rest, []byte(`text_delta","text":"`)):
		kind, field = deltaText, `text_delta","text":"`
	case bytes.HasPrefix(rest, []byte(`input_json_delta","partial_json":"`)):
		kind, field = deltaInputJSON, `input_json_delta","partial_json":"`
	case bytes.HasPrefix(rest, []byte(`thinking_delta","thinking":"`)):
		kind, field = deltaThinking, `thinking_delta","thinking":"`
	case bytes.HasPrefix(rest, []byte(`signature_delta","signature":"`)):
		kind, field = deltaSignature, `signature_delta","signature":"`
	default:
		return 0, 0, "", false
	}
	rest = rest[len(field):]
	// The string runs to the first unescaped quote; "}} must end the data.
	end, escaped := -1, false
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if c < 0x20 {
			return 0, 0, "", false
		}
		if c == '\\' {
			escaped = true
			i++
			continue
		}
		if c == '"' {
			end = i
			break
		}
	}
	if end < 0 || string(rest[end:]) != `"}}` {
		return 0, 0, "", false
	}
	s, ok := unquote(rest[:end], escaped)
	if !ok {
		return 0, 0, "", false
	}
	return index, kind, s, true
}

// unquote decodes the body of a JSON string (see jsonw.AppendUnquoted).
func unquote(s []byte, escaped bool) (string, bool) {
	if !escaped {
		if !utf8.Valid(s) {
			return "", false
		}
		return string(s), true
	}
	b, ok := jsonw.AppendUnquoted(make([]byte, 0, len(s)), s)
	return string(b), ok
}
