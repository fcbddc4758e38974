// Package partial parses one JSON value as it arrives in pieces, the way a
// model streams structured output, and after every piece offers the best
// valid-so-far value: a JSON text holding every member and element completed
// so far, with the containers still open closed. Sluice turns these snapshots
// into partial-object events that grow monotonically and end with the whole
// object.
//
// A snapshot follows these rules:
//
//   - A string appears once its closing quote has arrived; a number once a
//     byte after it shows that it ended (so "12" is not shown while it may
//     still become "123"), or at Close for a number that is the whole input;
//     true, false and null once their last letter has arrived.
//   - An object member appears once its value appears. A member or element
//     whose value is an object or array still open appears at once, holding
//     that value's own snapshot, so nested values grow too.
//   - Open objects and arrays are closed.
//
// Each snapshot therefore extends the one before: every member and element
// shown before is shown again at the same place with the same value, or, for
// the one object or array still open, with a value that extends it. The last
// snapshot of a complete value is that value in compact form: its text with
// the insignificant white space removed, as [encoding/json.Compact] gives it.
// Strings are copied as written, escapes included.
//
// Duplicate object keys are kept as written, in document order, so that a
// snapshot is always the compacted input so far, closed. A reader that keeps
// the last of duplicate keys, as encoding/json and JavaScript's JSON.parse
// do, sees the last one, and sees in the final snapshot the same object as
// in the whole text. Dropping the earlier member instead would move a field
// that an earlier event had shown.
//
// The parser reads each byte once (a byte that ends a number, twice) and
// keeps only the compacted value and a stack of open containers, so
// [Parser.Write] costs time linear in its input, and memory is linear in the
// value. [Parser.Snapshot] copies the value: its cost is linear in the
// snapshot's size, so call it when [Parser.Changed] reports that there is
// something new to show.
//
// The input must be JSON as RFC 8259 defines it, in UTF-8. Syntax errors are
// reported as soon as they are certain, with the offset of the offending
// byte.
package partial

import (
	"errors"
	"strconv"
)

// DefaultMaxDepth is the nesting depth allowed when Parser.MaxDepth is zero.
const DefaultMaxDepth = 256

var (
	// ErrTooDeep is wrapped by the *SyntaxError of input nested deeper than
	// Parser.MaxDepth.
	ErrTooDeep = errors.New("nesting too deep")
	// ErrTooLarge is wrapped by the *SyntaxError of input longer than
	// Parser.MaxBytes.
	ErrTooLarge = errors.New("input too large")
)

var errWriteAfterClose = errors.New("partial: Write after Close")

// A SyntaxError reports input that is not a JSON value, or that exceeds one
// of the Parser's limits. Its message describes what was expected, never the
// input's own text.
type SyntaxError struct {
	// Offset is the offset in the whole input of the byte where the error
	// was found, or the input's length if the input ended too early.
	Offset int64
	msg    string
	err    error
}

// Error returns the message and the offset.
func (e *SyntaxError) Error() string {
	return "partial: " + e.msg + " at offset " + strconv.FormatInt(e.Offset, 10)
}

// Unwrap returns ErrTooDeep or ErrTooLarge if a limit was exceeded, or nil.
func (e *SyntaxError) Unwrap() error { return e.err }

// state is what the parser expects next.
type state uint8

const (
	stValue        state = iota // a value: at the top level, after ':', after ',' in an array
	stValueOrClose              // after '[': a value or ']'
	stKeyOrClose                // after '{': a key or '}'
	stKey                       // after ',' in an object: a key
	stColon                     // after a key: ':'
	stCommaOrClose              // after a value in an object or array: ',' or its closer
	stDone                      // after the top-level value: white space only
	stString                    // in a string, a key if p.inKey
	stEscape                    // after '\' in a string
	stHex                       // in the digits of \uXXXX; p.need digits left
	stUTF8                      // in a multi-byte UTF-8 sequence; p.need bytes left in p.lo..p.hi first
	stLiteral                   // in true, false or null: p.lit[p.litPos:] left
	stMinus                     // after a number's '-': a digit
	stZero                      // after a number's leading '0'
	stInt                       // in the integer digits after 1-9
	stDot                       // after '.': a digit
	stFrac                      // in the fraction's digits
	stExp                       // after 'e' or 'E': a sign or a digit
	stExpSign                   // after the exponent's sign: a digit
	stExpDigit                  // in the exponent's digits
)

// A frame is one open object or array.
type frame struct {
	kind byte // '{' or '['
	// full reports whether a member or element is shown, so the next one
	// needs a comma before it.
	full bool
}

// A Parser reads one JSON value in pieces, as a model streams it. Call Write
// with each piece, Snapshot when Changed reports that the value grew, and
// Close at the end of the input.
//
// The zero value is ready to use, with the default limits. A Parser is not
// safe for concurrent use.
type Parser struct {
	// MaxDepth is the deepest nesting of objects and arrays allowed; deeper
	// input is an error wrapping ErrTooDeep. Zero or less means
	// DefaultMaxDepth.
	// Set it before the first Write.
	MaxDepth int
	// MaxBytes is the most input bytes allowed, white space included; longer
	// input is an error wrapping ErrTooLarge. Zero or less means no limit.
	// Set it before the first Write.
	MaxBytes int64

	out     []byte  // the snapshot so far without the closers of stack
	pending []byte  // the member or element being read: [','] ['"key":'] value so far
	stack   []frame // the open objects and arrays, outermost first
	state   state
	inKey   bool   // the string being read is an object key
	need    int    // hex digits or UTF-8 continuation bytes left
	lo, hi  byte   // the range of the next UTF-8 continuation byte
	lit     string // the literal being read
	litPos  int    // how much of lit has been read
	off     int64  // input bytes read before the current Write
	seen    int    // the length of the last snapshot taken
	err     error  // the first error; sticky
	closed  bool

	// steps counts iterations of the scanning loop, with a run of plain
	// string bytes counting as its length; tests use it to show that the
	// work is linear in the input.
	steps int64
}

// Reset makes the Parser ready for a new input, keeping its limits and its
// buffers.
func (p *Parser) Reset() {
	*p = Parser{
		MaxDepth: p.MaxDepth,
		MaxBytes: p.MaxBytes,
		out:      p.out[:0],
		pending:  p.pending[:0],
		stack:    p.stack[:0],
	}
}

// Write feeds the next piece of the input. It returns a *SyntaxError as soon
// as the input so far cannot begin a JSON value (for example `{"a" 1`), and
// the same error on every later call. Write never keeps b.
func (p *Parser) Write(b []byte) error {
	if p.err != nil {
		return p.err
	}
	if p.closed {
		return errWriteAfterClose
	}
	over := false
	if p.MaxBytes > 0 && p.off+int64(len(b)) > p.MaxBytes {
		n := max(p.MaxBytes-p.off, 0)
		b, over = b[:n], true
	}
	if err := p.scan(b); err != nil {
		return err
	}
	p.off += int64(len(b))
	if over {
		return p.fail(0, "input longer than the limit", ErrTooLarge)
	}
	return nil
}

// Close ends the input. It returns nil if the input was exactly one JSON
// value with optional white space around it, and a *SyntaxError otherwise.
// Close may be called more than once; Write after Close is an error.
func (p *Parser) Close() error {
	if p.err != nil || p.closed {
		return p.err
	}
	p.closed = true
	if len(p.stack) == 0 {
		switch p.state {
		case stZero, stInt, stFrac, stExpDigit:
			p.emit() // a number that is the whole input ends with it
		}
	}
	if p.state != stDone {
		return p.fail(0, "unexpected end of input", nil)
	}
	return nil
}

// Done reports whether the top-level value is complete. Only white space may
// follow it. A number that is the whole value is complete once white space
// follows it, or at Close.
func (p *Parser) Done() bool { return p.err == nil && p.state == stDone }

// Changed reports whether Snapshot would return a different value from the
// one it (or AppendSnapshot) returned last. Since snapshots only grow,
// Changed reports whether the value grew. It costs O(1).
func (p *Parser) Changed() bool { return p.size() != p.seen }

// Snapshot returns the best valid-so-far value as compact JSON, in a new
// slice, or nil if nothing of the value is shown yet (see the package
// documentation for what is). After an error it returns the value as it
// stood before the offending byte. Its cost is linear in the size of the
// value; AppendSnapshot saves the allocation.
func (p *Parser) Snapshot() []byte {
	if len(p.out) == 0 {
		return nil
	}
	return p.AppendSnapshot(make([]byte, 0, p.size()))
}

// AppendSnapshot appends what Snapshot would return to dst and returns the
// extended slice, so a caller can reuse one buffer.
func (p *Parser) AppendSnapshot(dst []byte) []byte {
	p.seen = p.size()
	dst = append(dst, p.out...)
	for i := len(p.stack) - 1; i >= 0; i-- {
		dst = append(dst, closer(p.stack[i].kind))
	}
	return dst
}

// size returns the length of the current snapshot. It grows whenever the
// snapshot changes: emitting a value appends to out, opening a container
// appends its opener and adds a closer, and closing one moves its closer
// from the stack to out, which leaves the snapshot unchanged.
func (p *Parser) size() int { return len(p.out) + len(p.stack) }

func closer(kind byte) byte {
	if kind == '{' {
		return '}'
	}
	return ']'
}

// fail records and returns a *SyntaxError at b's offset i in the current
// Write.
func (p *Parser) fail(i int, msg string, err error) error {
	p.err = &SyntaxError{Offset: p.off + int64(i), msg: msg, err: err}
	return p.err
}

// emit shows the value in pending, which has just ended.
func (p *Parser) emit() {
	p.out = append(p.out, p.pending...)
	p.pending = p.pending[:0]
	if n := len(p.stack); n > 0 {
		p.stack[n-1].full = true
	}
	p.afterValue()
}

func (p *Parser) afterValue() {
	if len(p.stack) == 0 {
		p.state = stDone
	} else {
		p.state = stCommaOrClose
	}
}

// plain marks the bytes a string may hold as they are: not '"', '\\', a
// control character or part of a multi-byte UTF-8 sequence.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// scan reads b, whose first byte is at offset p.off of the input.
func (p *Parser) scan(b []byte) error {
	i := 0
	for i < len(b) {
		p.steps++
		c := b[i]
		switch p.state {
		case stString:
			if plain[c] {
				j := i + 1
				for j < len(b) && plain[b[j]] {
					j++
				}
				p.pending = append(p.pending, b[i:j]...)
				p.steps += int64(j - i - 1)
				i = j
				continue
			}
			switch {
			case c == '"':
				p.pending = append(p.pending, c)
				if p.inKey {
					p.state = stColon
				} else {
					p.emit()
				}
			case c == '\\':
				p.pending = append(p.pending, c)
				p.state = stEscape
			case c < 0x20:
				return p.fail(i, "control character in string", nil)
			default:
				if !p.utf8Start(c) {
					return p.fail(i, "invalid UTF-8 in string", nil)
				}
				p.pending = append(p.pending, c)
				p.state = stUTF8
			}
		case stEscape:
			switch c {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.state = stString
			case 'u':
				p.need = 4
				p.state = stHex
			default:
				return p.fail(i, "invalid escape in string", nil)
			}
			p.pending = append(p.pending, c)
		case stHex:
			if !isHex(c) {
				return p.fail(i, "invalid \\u escape in string", nil)
			}
			p.pending = append(p.pending, c)
			if p.need--; p.need == 0 {
				p.state = stString
			}
		case stUTF8:
			if c < p.lo || c > p.hi {
				return p.fail(i, "invalid UTF-8 in string", nil)
			}
			p.pending = append(p.pending, c)
			p.lo, p.hi = 0x80, 0xBF
			if p.need--; p.need == 0 {
				p.state = stString
			}
		case stLiteral:
			if c != p.lit[p.litPos] {
				return p.fail(i, "invalid literal, want true, false or null", nil)
			}
			p.pending = append(p.pending, c)
			if p.litPos++; p.litPos == len(p.lit) {
				p.emit()
			}
		case stMinus, stZero, stInt, stDot, stFrac, stExp, stExpSign, stExpDigit:
			if next, ok := numberStep(p.state, c); ok {
				p.pending = append(p.pending, c)
				p.state = next
				break
			}
			switch p.state {
			case stZero, stInt, stFrac, stExpDigit:
				if p.delimits(c) {
					p.emit()
					continue // read c again after the number
				}
			}
			return p.fail(i, "invalid number", nil)
		case stValue:
			if isSpace(c) {
				break
			}
			if err := p.beginValue(i, c); err != nil {
				return err
			}
		case stValueOrClose:
			if isSpace(c) {
				break
			}
			if c == ']' {
				p.closeContainer(c)
				break
			}
			if err := p.beginValue(i, c); err != nil {
				return err
			}
		case stKeyOrClose, stKey:
			switch {
			case isSpace(c):
			case c == '"':
				p.pending = p.pending[:0]
				if p.stack[len(p.stack)-1].full {
					p.pending = append(p.pending, ',')
				}
				p.pending = append(p.pending, c)
				p.inKey = true
				p.state = stString
			case c == '}' && p.state == stKeyOrClose:
				p.closeContainer(c)
			case p.state == stKeyOrClose:
				return p.fail(i, "want an object key or '}'", nil)
			default:
				return p.fail(i, "want an object key after ','", nil)
			}
		case stColon:
			switch {
			case isSpace(c):
			case c == ':':
				p.pending = append(p.pending, c)
				p.inKey = false
				p.state = stValue
			default:
				return p.fail(i, "want ':' after object key", nil)
			}
		case stCommaOrClose:
			kind := p.stack[len(p.stack)-1].kind
			switch {
			case isSpace(c):
			case c == ',':
				if kind == '{' {
					p.state = stKey
				} else {
					p.state = stValue
				}
			case c == closer(kind):
				p.closeContainer(c)
			case kind == '{':
				return p.fail(i, "want ',' or '}' after object member", nil)
			default:
				return p.fail(i, "want ',' or ']' after array element", nil)
			}
		case stDone:
			if !isSpace(c) {
				return p.fail(i, "data after the top-level value", nil)
			}
		}
		i++
	}
	return nil
}

// delimits reports whether c may follow a number in the current container,
// so that the number has ended.
func (p *Parser) delimits(c byte) bool {
	if isSpace(c) {
		return true
	}
	n := len(p.stack)
	return n > 0 && (c == ',' || c == closer(p.stack[n-1].kind))
}

// numberStep returns the state after c in a number in state s, and whether c
// continues the number.
func numberStep(s state, c byte) (state, bool) {
	digit := isDigit(c)
	switch s {
	case stMinus:
		if c == '0' {
			return stZero, true
		}
		if digit {
			return stInt, true
		}
	case stZero, stInt:
		if digit && s == stInt {
			return stInt, true
		}
		if c == '.' {
			return stDot, true
		}
		if c == 'e' || c == 'E' {
			return stExp, true
		}
	case stDot, stFrac:
		if digit {
			return stFrac, true
		}
		if s == stFrac && (c == 'e' || c == 'E') {
			return stExp, true
		}
	case stExp:
		if c == '+' || c == '-' {
			return stExpSign, true
		}
		if digit {
			return stExpDigit, true
		}
	case stExpSign, stExpDigit:
		if digit {
			return stExpDigit, true
		}
	}
	return s, false
}

// beginValue starts the value whose first byte, c, is at b's offset i.
func (p *Parser) beginValue(i int, c byte) error {
	n := len(p.stack)
	if n > 0 && p.stack[n-1].kind == '[' {
		p.pending = p.pending[:0]
		if p.stack[n-1].full {
			p.pending = append(p.pending, ',')
		}
	}
	switch c {
	case '{', '[':
		limit := p.MaxDepth
		if limit <= 0 {
			limit = DefaultMaxDepth
		}
		if n >= limit {
			return p.fail(i, "nesting deeper than the limit", ErrTooDeep)
		}
		p.out = append(p.out, p.pending...)
		p.out = append(p.out, c)
		p.pending = p.pending[:0]
		if n > 0 {
			p.stack[n-1].full = true
		}
		p.stack = append(p.stack, frame{kind: c})
		if c == '{' {
			p.state = stKeyOrClose
		} else {
			p.state = stValueOrClose
		}
		return nil
	case '"':
		p.inKey = false
		p.state = stString
	case '-':
		p.state = stMinus
	case '0':
		p.state = stZero
	case 't', 'f', 'n':
		switch c {
		case 't':
			p.lit = "true"
		case 'f':
			p.lit = "false"
		default:
			p.lit = "null"
		}
		p.litPos = 1
		p.state = stLiteral
	default:
		if '1' <= c && c <= '9' {
			p.state = stInt
			break
		}
		return p.fail(i, "want a value", nil)
	}
	p.pending = append(p.pending, c)
	return nil
}

// closeContainer ends the innermost object or array with c, its closer. The
// snapshot does not change: the closer it showed is now part of out.
func (p *Parser) closeContainer(c byte) {
	p.out = append(p.out, c)
	p.stack = p.stack[:len(p.stack)-1]
	p.afterValue()
}

// utf8Start reports whether c may begin a multi-byte UTF-8 sequence, and
// sets up the checks of the bytes that follow it (RFC 3629 section 4: no
// overlong forms, no surrogates, nothing above U+10FFFF).
func (p *Parser) utf8Start(c byte) bool {
	p.lo, p.hi = 0x80, 0xBF
	switch {
	case 0xC2 <= c && c <= 0xDF:
		p.need = 1
	case c == 0xE0:
		p.need, p.lo = 2, 0xA0
	case 0xE1 <= c && c <= 0xEC, c == 0xEE, c == 0xEF:
		p.need = 2
	case c == 0xED:
		p.need, p.hi = 2, 0x9F
	case c == 0xF0:
		p.need, p.lo = 3, 0x90
	case 0xF1 <= c && c <= 0xF3:
		p.need = 3
	case c == 0xF4:
		p.need, p.hi = 3, 0x8F
	default:
		return false
	}
	return true
}
