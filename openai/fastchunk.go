package openai

import (
	"unicode/utf8"

	"github.com/sluice-gw/sluice/internal/jsonw"
)

// Most chunks of a streamed answer carry one text delta, in a few shapes that
// differ only in which informational fields are present. encoding/json costs
// about eleven allocations a chunk whatever the struct, so the stream decoder
// reads those shapes by hand and leaves anything else, including any
// irregularity, to encoding/json.

// maxSkipDepth bounds the nesting of ignored values fastChunk skips; deeper
// values go to encoding/json.
const maxSkipDepth = 16

// fastChunk reads data into c when it is a text delta chunk it can read
// exactly as encoding/json would:
//
//	{"id":S,"object":S,"created":N,"model":S,"service_tier":S,
//	 "system_fingerprint":S|null,"choices":[{"index":0,
//	 "delta":{"role":S,"content":S|null,"refusal":null},"logprobs":null,
//	 "finish_reason":null}],"usage":null,"obfuscation":S}
//
// in any key order, with any white space, any of the keys left out, but
// exactly one choice. The values of object, created, service_tier,
// system_fingerprint, obfuscation, logprobs, role and Azure's
// content_filter_results are ignored, as encoding/json ignores them. Strings
// whose text would need repair (invalid UTF-8, lone surrogates) are refused.
// When it returns false it has not touched c, and the caller decodes data in
// full. c's previous ID and Model are reused when they repeat, and buf is
// scratch space for unescaping.
func fastChunk(data []byte, c *wireChunk, buf *[]byte) bool {
	s := chunkScanner{data: data, buf: *buf}
	defer func() { *buf = s.buf[:0] }()
	var id, model, content string
	var seen, choices uint
	ok := s.object(func(key []byte) bool {
		var bit uint
		switch string(key) {
		case "id":
			bit = 1 << 0
			return seen&bit == 0 && s.text(&id, c.ID) && s.mark(&seen, bit)
		case "model":
			bit = 1 << 1
			return seen&bit == 0 && s.text(&model, c.Model) && s.mark(&seen, bit)
		case "choices":
			bit = 1 << 2
			return seen&bit == 0 && s.choices(&content, &choices) && s.mark(&seen, bit)
		case "usage":
			bit = 1 << 3
			return seen&bit == 0 && s.null() && s.mark(&seen, bit)
		case "object":
			bit = 1 << 4
		case "created":
			bit = 1 << 5
		case "service_tier":
			bit = 1 << 6
		case "system_fingerprint":
			bit = 1 << 7
		case "obfuscation":
			bit = 1 << 8
		default:
			return false
		}
		return seen&bit == 0 && s.skip(0) && s.mark(&seen, bit)
	})
	if !ok || choices != 1 {
		return false
	}
	s.ws()
	if s.i != len(s.data) {
		return false
	}
	clear(c.Choices[:cap(c.Choices)])
	*c = wireChunk{ID: id, Model: model, Choices: append(c.Choices[:0], wireChunkChoice{})}
	c.Choices[0].Delta.Content = content
	return true
}

// chunkScanner reads JSON from data by hand, refusing what it is not sure of.
type chunkScanner struct {
	data []byte
	i    int
	buf  []byte
}

func (s *chunkScanner) mark(seen *uint, bit uint) bool {
	*seen |= bit
	return true
}

func (s *chunkScanner) ws() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// lit consumes the byte c after any white space.
func (s *chunkScanner) lit(c byte) bool {
	s.ws()
	if s.i < len(s.data) && s.data[s.i] == c {
		s.i++
		return true
	}
	return false
}

// word consumes w after any white space.
func (s *chunkScanner) word(w string) bool {
	s.ws()
	if len(s.data)-s.i >= len(w) && string(s.data[s.i:s.i+len(w)]) == w {
		s.i += len(w)
		return true
	}
	return false
}

func (s *chunkScanner) null() bool { return s.word("null") }

// object reads an object, calling member for each key with the scanner
// placed before the value. Keys must be plain (no escapes): encoding/json
// matches keys case-insensitively and after unescaping, so only exact keys
// are known to mean what member takes them to mean.
func (s *chunkScanner) object(member func(key []byte) bool) bool {
	if !s.lit('{') {
		return false
	}
	if s.lit('}') {
		return true
	}
	for {
		s.ws()
		raw, escaped, ok := s.str()
		if !ok || escaped || !s.lit(':') {
			return false
		}
		s.ws()
		if !member(raw) {
			return false
		}
		if s.lit(',') {
			continue
		}
		return s.lit('}')
	}
}

// choices reads the choices array, counting its elements in n.
func (s *chunkScanner) choices(content *string, n *uint) bool {
	if !s.lit('[') {
		return false
	}
	if s.lit(']') {
		return true
	}
	for {
		*n++
		if *n > 1 || !s.choice(content) {
			return false
		}
		if s.lit(',') {
			continue
		}
		return s.lit(']')
	}
}

// choice reads a choice with index 0 and a text delta, or none.
func (s *chunkScanner) choice(content *string) bool {
	var seen uint
	return s.object(func(key []byte) bool {
		var bit uint
		switch string(key) {
		case "index":
			bit = 1 << 0
			return seen&bit == 0 && s.word("0") && s.mark(&seen, bit)
		case "delta":
			bit = 1 << 1
			return seen&bit == 0 && s.delta(content) && s.mark(&seen, bit)
		case "finish_reason":
			bit = 1 << 2
			return seen&bit == 0 && s.null() && s.mark(&seen, bit)
		case "logprobs":
			bit = 1 << 3
		case "content_filter_results":
			bit = 1 << 4
		default:
			return false
		}
		return seen&bit == 0 && s.skip(0) && s.mark(&seen, bit)
	})
}

// delta reads a delta with text content or none.
func (s *chunkScanner) delta(content *string) bool {
	var seen uint
	return s.object(func(key []byte) bool {
		var bit uint
		switch string(key) {
		case "content":
			bit = 1 << 0
			if seen&bit != 0 {
				return false
			}
			seen |= bit
			if s.null() {
				*content = ""
				return true
			}
			return s.text(content, "")
		case "refusal", "reasoning_content", "reasoning":
			// null leaves encoding/json's field as it was: empty.
			switch string(key) {
			case "refusal":
				bit = 1 << 1
			case "reasoning_content":
				bit = 1 << 2
			default:
				bit = 1 << 3
			}
			return seen&bit == 0 && s.null() && s.mark(&seen, bit)
		case "role":
			bit = 1 << 4
			return seen&bit == 0 && s.skip(0) && s.mark(&seen, bit)
		}
		return false
	})
}

// str reads a string's body, placing the scanner after its closing quote.
// It checks the syntax of escapes but leaves decoding them to unquote.
func (s *chunkScanner) str() (raw []byte, escaped, ok bool) {
	if s.i >= len(s.data) || s.data[s.i] != '"' {
		return nil, false, false
	}
	start := s.i + 1
	for i := start; i < len(s.data); i++ {
		switch c := s.data[i]; {
		case c == '"':
			s.i = i + 1
			return s.data[start:i], escaped, true
		case c < 0x20:
			return nil, false, false
		case c == '\\':
			escaped = true
			if i+1 >= len(s.data) {
				return nil, false, false
			}
			switch s.data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if _, ok := jsonw.Hex4(s.data[i+2:]); !ok {
					return nil, false, false
				}
				i += 5
			default:
				return nil, false, false
			}
		}
	}
	return nil, false, false
}

// text reads a string into *dst, reusing prev when the text is the same.
func (s *chunkScanner) text(dst *string, prev string) bool {
	raw, escaped, ok := s.str()
	if !ok {
		return false
	}
	if !escaped {
		if !utf8.Valid(raw) {
			return false
		}
		if string(raw) == prev {
			*dst = prev
		} else {
			*dst = string(raw)
		}
		return true
	}
	b, ok := jsonw.AppendUnquoted(s.buf[:0], raw)
	s.buf = b
	if !ok {
		return false
	}
	*dst = string(b)
	return true
}

// skip reads any JSON value whose content does not matter, checking its
// syntax as encoding/json would.
func (s *chunkScanner) skip(depth int) bool {
	if depth > maxSkipDepth {
		return false
	}
	s.ws()
	if s.i >= len(s.data) {
		return false
	}
	switch c := s.data[s.i]; {
	case c == '"':
		_, _, ok := s.str()
		return ok
	case c == '{':
		return s.object(func([]byte) bool { return s.skip(depth + 1) })
	case c == '[':
		s.i++
		if s.lit(']') {
			return true
		}
		for {
			if !s.skip(depth + 1) {
				return false
			}
			if s.lit(',') {
				continue
			}
			return s.lit(']')
		}
	case c == 'n':
		return s.word("null")
	case c == 't':
		return s.word("true")
	case c == 'f':
		return s.word("false")
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	}
	return false
}

// number reads a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *chunkScanner) number() bool {
	d := s.data
	i := s.i
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		i = digits(d, i)
	default:
		return false
	}
	if i < len(d) && d[i] == '.' {
		j := digits(d, i+1)
		if j == i+1 {
			return false
		}
		i = j
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		j := digits(d, i)
		if j == i {
			return false
		}
		i = j
	}
	s.i = i
	return true
}

// digits returns the index after the run of digits at d[i:].
func digits(d []byte, i int) int {
	for i < len(d) && d[i] >= '0' && d[i] <= '9' {
		i++
	}
	return i
}
