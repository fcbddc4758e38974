package contract

import (
	"strings"

	"github.com/sluice-gw/sluice/contract/partial"
)

// Partials turns the text of a structured answer, as it streams, into
// growing partial values: it skips a leading Markdown code fence and feeds
// the rest, once, to an incremental parser (contract/partial). The zero
// value is ready to use; it is not safe for concurrent use.
type Partials struct {
	text   strings.Builder
	parser partial.Parser
	fed    int  // bytes of text given to the parser
	failed bool // the text is not JSON: no more partial values
}

// Add appends a piece of the answer's text. When the valid-so-far value
// grew, it returns it appended to dst, as compact JSON, and true.
func (ps *Partials) Add(dst []byte, text string) ([]byte, bool) {
	ps.text.WriteString(text)
	if ps.failed || ps.parser.Done() {
		return dst, false
	}
	all := ps.text.String()
	start := jsonStart(all)
	if start < 0 {
		return dst, false // perhaps the start of a fence: wait for more
	}
	from := max(start, ps.fed)
	ps.fed = len(all)
	if ps.parser.Write([]byte(all[from:])) != nil {
		ps.failed = true // the whole answer's check will say what is wrong
		return dst, false
	}
	if !ps.parser.Changed() {
		return dst, false
	}
	return ps.parser.AppendSnapshot(dst), true
}

// Text returns the answer's text so far.
func (ps *Partials) Text() string { return ps.text.String() }

// jsonStart returns where the JSON of an answer starts: after a leading
// code fence line, if any; -1 while the text could still be the start of
// one.
func jsonStart(text string) int {
	t := strings.TrimLeft(text, " \t\r\n")
	lead := len(text) - len(t)
	if len(t) < 3 {
		if strings.HasPrefix("```", t) {
			return -1
		}
		return lead
	}
	if !strings.HasPrefix(t, "```") {
		return lead
	}
	i := strings.IndexByte(t, '\n')
	if i < 0 {
		return -1
	}
	return lead + i + 1
}
