package anthropic

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
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

// unquote decodes the body of a JSON string. It refuses (ok false) what
// encoding/json would repair rather than reject, such as invalid UTF-8 and
// lone surrogates, so that the caller's fallback gives the same result.
func unquote(s []byte, escaped bool) (string, bool) {
	if !escaped {
		if !utf8.Valid(s) {
			return "", false
		}
		return string(s), true
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			b = append(b, c)
			i++
			continue
		}
		if i+1 >= len(s) {
			return "", false
		}
		switch s[i+1] {
		case '"', '\\', '/':
			b = append(b, s[i+1])
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := hex4(s[i+2:])
			if !ok {
				return "", false
			}
			i += 6
			if utf16.IsSurrogate(r) {
				r2, ok := rune(0), false
				if i+1 < len(s) && s[i] == '\\' && s[i+1] == 'u' {
					r2, ok = hex4(s[i+2:])
				}
				r = utf16.DecodeRune(r, r2)
				if !ok || r == utf8.RuneError {
					return "", false
				}
				i += 6
			}
			b = utf8.AppendRune(b, r)
			continue
		default:
			return "", false
		}
		i += 2
	}
	if !utf8.Valid(b) {
		return "", false
	}
	return string(b), true
}

// hex4 reads four hex digits.
func hex4(s []byte) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
