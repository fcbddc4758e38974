package config

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// Environment references are expanded in the parsed tree, not in the text, so
// that a variable's value can never change the file's structure (a key
// holding "#", ": " or a newline stays one scalar), comments are never
// expanded, and positions stay exact.
//
// A reference such as ${X} is not a valid plain scalar inside a flow mapping
// ({model: ${X}}), so before parsing, protectRefs rewrites each well-formed
// reference into private-use characters that YAML treats as ordinary text:
// "$" becomes refStart, "}" becomes refEnd, and every ASCII character between
// them c becomes refASCII+c. Non-ASCII characters of a default stay as they
// are. The rewrite keeps the number of characters, so the parser's columns
// match the original text. After parsing, expandNode turns the marked runs in
// scalar values into the variables' values and restores keys to their text.
const (
	refStart = '\uE000'
	refEnd   = '\uE002'
	refASCII = '\uE100' // refASCII+c stands for ASCII c inside a reference
	refLast  = '\uE17F' // the last reserved character
)

// protectRefs rewrites the well-formed ${NAME} and ${NAME:-default}
// references of data as described above. $${ is left alone (it is the escape
// for a literal ${). It rejects text that already holds the reserved
// characters.
func protectRefs(data []byte) ([]byte, error) {
	if !bytes.Contains(data, []byte("${")) && !hasReserved(data) {
		return data, nil
	}
	out := make([]byte, 0, len(data)+len(data)/4)
	line, col := 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r >= refStart && r <= refLast:
			return nil, &Error{Line: line, Column: col, Msg: "the characters U+E000 to U+E17F are reserved"}
		case r == '\n':
			line, col = line+1, 0
		case r == '$' && i+2 < len(data) && data[i+1] == '$' && data[i+2] == '{':
			out = append(out, "$$"...)
			i += 2
			col += 2
			continue
		case r == '$' && i+1 < len(data) && data[i+1] == '{':
			if end := refClose(data[i:]); end > 0 {
				out = utf8.AppendRune(out, refStart)
				for _, c := range string(data[i+1 : i+end]) {
					if c < utf8.RuneSelf {
						c += refASCII
					}
					out = utf8.AppendRune(out, c)
					col++
				}
				out = utf8.AppendRune(out, refEnd)
				i += end + 1
				col += 2
				continue
			}
		}
		out = append(out, data[i:i+size]...)
		i += size
		col++
	}
	return out, nil
}

func hasReserved(data []byte) bool {
	// Every reserved character is encoded as EE 80..85 xx in UTF-8.
	for i := 0; i+1 < len(data); i++ {
		if data[i] == 0xEE && data[i+1] >= 0x80 && data[i+1] <= 0x85 {
			return true
		}
	}
	return false
}

// refClose returns the index of the "}" closing the reference at the start of
// s ("${..."), or 0 when s does not start a well-formed reference on this
// line.
func refClose(s []byte) int {
	j := 2
	for j < len(s) && (s[j] == '_' || 'a' <= s[j] && s[j] <= 'z' || 'A' <= s[j] && s[j] <= 'Z' ||
		j > 2 && '0' <= s[j] && s[j] <= '9') {
		j++
	}
	if j == 2 || j >= len(s) {
		return 0
	}
	if s[j] == '}' {
		return j
	}
	if s[j] != ':' || j+1 >= len(s) || s[j+1] != '-' {
		return 0
	}
	for j += 2; j < len(s); j++ {
		switch s[j] {
		case '}':
			return j
		case '\n', '\r':
			return 0
		}
	}
	return 0
}

// expandNode expands references in the scalar values under n and restores
// the text of keys. Errors are *nodeError values.
func expandNode(n ast.Node, getenv func(string) string) error {
	switch v := n.(type) {
	case nil:
		return nil
	case *ast.MappingNode:
		for _, mv := range v.Values {
			if err := expandNode(mv, getenv); err != nil {
				return err
			}
		}
	case *ast.MappingValueNode:
		restoreKey(v.Key)
		return expandNode(v.Value, getenv)
	case *ast.SequenceNode:
		for _, item := range v.Values {
			if err := expandNode(item, getenv); err != nil {
				return err
			}
		}
	case *ast.AnchorNode:
		return expandNode(v.Value, getenv)
	case *ast.TagNode:
		// Only the standard tags (!!str, !!int...) mean anything here; the
		// decoder mishandles others.
		if tok := v.GetToken(); tok == nil || !strings.HasPrefix(tok.Value, "!!") {
			return &nodeError{tok: v.GetToken(), msg: "unsupported YAML tag"}
		}
		return expandNode(v.Value, getenv)
	case *ast.LiteralNode:
		if v.Value != nil {
			return expandNode(v.Value, getenv)
		}
	case *ast.StringNode:
		s, ok := expand(v.Value, getenv)
		if !ok {
			return &nodeError{tok: v.GetToken(), msg: "invalid ${...} reference: want ${NAME} or ${NAME:-default} (write $${ for a literal ${)"}
		}
		v.Value = s
	}
	return nil
}

// expand returns s with its marked references replaced by their values and
// $${ by ${. It reports false when s holds a ${ that is not a well-formed
// reference.
func expand(s string, getenv func(string) string) (string, bool) {
	if !strings.Contains(s, "${") && !strings.ContainsRune(s, refStart) {
		return s, true
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			return "", false
		case strings.HasPrefix(s[i:], string(refStart)):
			end := strings.IndexRune(s[i:], refEnd)
			if end < 0 {
				return "", false
			}
			ref := unmark(s[i+len(string(refStart)) : i+end]) // "{NAME}" or "{NAME:-default}"
			ref = strings.TrimSuffix(strings.TrimPrefix(ref, "{"), "}")
			name, def, hasDef := strings.Cut(ref, ":-")
			val := getenv(name)
			if val == "" && hasDef {
				val = def
			}
			b.WriteString(val)
			i += end + len(string(refEnd))
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), true
}

// unmark maps refASCII+c back to c.
func unmark(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= refASCII && r < refASCII+utf8.RuneSelf {
			return r - refASCII
		}
		return r
	}, s)
}

// restoreKey puts a key's original text back: keys are never expanded.
func restoreKey(k ast.MapKeyNode) {
	var s *ast.StringNode
	switch v := k.(type) {
	case *ast.StringNode:
		s = v
	case *ast.MappingKeyNode:
		s, _ = v.Value.(*ast.StringNode)
	}
	if s == nil || !strings.ContainsRune(s.Value, refStart) {
		return
	}
	restore := func(v string) string {
		v = unmark(v)
		v = strings.ReplaceAll(v, string(refStart), "$")
		return strings.ReplaceAll(v, string(refEnd), "}")
	}
	s.Value = restore(s.Value)
	if tok := s.GetToken(); tok != nil {
		restoreToken(tok, restore)
	}
}

func restoreToken(tok *token.Token, restore func(string) string) {
	tok.Value = restore(tok.Value)
	tok.Origin = restore(tok.Origin)
}
