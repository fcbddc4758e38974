package contract

import (
	"net/url"
	"strconv"
	"strings"
)

// maxExpanded bounds a schema's size with every local $ref expanded in
// place. Validation time grows with it, so a small schema whose $refs fan
// out (allOf: [$ref a, $ref a] repeated down a chain of $defs doubles the
// work at each link) could take exponential time on any answer.
const maxExpanded = 100_000

// measure walks a schema document: the size it would have with its local
// $refs expanded (a reference cycle counts once), and the property names
// it declares, so that violation paths may name them and nothing else.
type measure struct {
	root  any
	memo  map[string]int
	busy  map[string]bool
	names map[string]bool
}

func newMeasure(root any) *measure {
	return &measure{root: root, memo: map[string]int{}, busy: map[string]bool{}, names: map[string]bool{}}
}

// size returns the expanded size of v, capped just past maxExpanded.
func (m *measure) size(v any, depth int) int {
	if depth > 512 {
		return maxExpanded + 1
	}
	n := 1
	switch v := v.(type) {
	case map[string]any:
		for k, c := range v {
			if k == "properties" {
				if props, ok := c.(map[string]any); ok {
					for name := range props {
						m.names[name] = true
					}
				}
			}
			if k == "$ref" {
				if ref, ok := c.(string); ok {
					n += m.ref(ref, depth)
				}
				continue
			}
			n += m.size(c, depth+1)
			if n > maxExpanded {
				return n
			}
		}
	case []any:
		for _, c := range v {
			n += m.size(c, depth+1)
			if n > maxExpanded {
				return n
			}
		}
	}
	return n
}

// ref returns the expanded size of a local reference ("#/$defs/x"); other
// references are refused at compile time anyway.
func (m *measure) ref(ref string, depth int) int {
	if !strings.HasPrefix(ref, "#") {
		return 1
	}
	if n, ok := m.memo[ref]; ok {
		return n
	}
	if m.busy[ref] {
		return 1 // a cycle: validation follows it only as deep as the answer
	}
	target, ok := pointerGet(m.root, ref[1:])
	if !ok {
		return 1
	}
	m.busy[ref] = true
	n := m.size(target, depth+1)
	delete(m.busy, ref)
	m.memo[ref] = n
	return n
}

// pointerGet resolves a JSON Pointer (URL-escaped, as in a $ref fragment)
// in doc.
func pointerGet(doc any, ptr string) (any, bool) {
	if p, err := url.PathUnescape(ptr); err == nil {
		ptr = p
	}
	if ptr == "" {
		return doc, true
	}
	if ptr[0] != '/' {
		return nil, false
	}
	cur := doc
	for _, seg := range strings.Split(ptr[1:], "/") {
		seg = strings.ReplaceAll(strings.ReplaceAll(seg, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[seg]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}
