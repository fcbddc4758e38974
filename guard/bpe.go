package guard

import (
	"math"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/tiktoken-go/tokenizer"
)

// Encoding names a tokenizer vocabulary.
type Encoding string

// The encodings compiled in. Their vocabularies come from
// github.com/tiktoken-go/tokenizer, whose token ids match OpenAI's
// tiktoken; nothing is downloaded.
const (
	// O200kBase is the encoding of gpt-4o, gpt-4.1, gpt-4.5, gpt-5 and the
	// o-series.
	O200kBase Encoding = "o200k_base"
	// Cl100kBase is the encoding of gpt-4, gpt-3.5-turbo and the
	// text-embedding-3 models.
	Cl100kBase Encoding = "cl100k_base"
)

// A bpe counts the tokens of text in one encoding. It splits text with a
// hand-written scanner that follows the encoding's pre-tokenizer regular
// expression exactly (regexp2 semantics: ordered alternation, greedy
// quantifiers with backtracking), then merges each piece by byte-pair
// encoding over the encoding's ranks. It gives the same counts as the
// library's own Count (TestCountMatchesLibrary, FuzzCountMatchesLibrary)
// without the regular-expression engine, which costs about a microsecond
// a token and allocates for every piece. A bpe is immutable once built and
// safe for concurrent use.
type bpe struct {
	ranks map[string]uint32
	// next returns the end of the piece that starts at s[i].
	next func(s string, i int) int
}

// The encoders, each built on first use: o200k_base takes about 0.2 s to
// build, cl100k_base 0.1 s, and both together some 25 MB of heap (the
// library's vocabularies and the rank tables read from them); Preload
// builds both up front.
var (
	o200kOnce, cl100kOnce sync.Once
	o200kBPE, cl100kBPE   *bpe
)

// Preload builds the token counters of both encodings now, so that the
// first request to need one does not wait for it (about 0.3 s in all). It
// is safe to call more than once and from several goroutines.
func Preload() {
	encoder(O200kBase)
	encoder(Cl100kBase)
}

// encoder returns the counter of enc, building it on first use. Unknown
// encodings get o200k_base.
func encoder(enc Encoding) *bpe {
	if enc == Cl100kBase {
		cl100kOnce.Do(func() { cl100kBPE = loadBPE(tokenizer.Cl100kBase, 100256, nextCl100k) })
		return cl100kBPE
	}
	o200kOnce.Do(func() { o200kBPE = loadBPE(tokenizer.O200kBase, 199998, nextO200k) })
	return o200kBPE
}

// loadBPE reads the ranks of enc from the library: the token of each id,
// up to the first special token (ids below n).
func loadBPE(enc tokenizer.Encoding, n int, next func(string, int) int) *bpe {
	c, err := tokenizer.Get(enc)
	if err != nil {
		// The encodings are compiled in: this cannot fail at run time.
		panic("guard: load " + string(enc) + ": " + err.Error())
	}
	ranks := make(map[string]uint32, n)
	id := make([]uint, 1)
	for i := range n {
		id[0] = uint(i)
		if tok, err := c.Decode(id); err == nil && tok != "" {
			ranks[tok] = uint32(i)
		}
	}
	return &bpe{ranks: ranks, next: next}
}

// count returns the number of tokens of s.
func (b *bpe) count(s string) int {
	n := 0
	for i := 0; i < len(s); {
		j := b.next(s, i)
		n += b.pieceTokens(s[i:j])
		i = j
	}
	return n
}

// pieceTokens returns the number of tokens of one pre-tokenized piece. A
// piece in the vocabulary is one token whatever its merges (tiktoken checks
// the whole piece first too).
func (b *bpe) pieceTokens(piece string) int {
	if len(piece) <= 1 {
		return len(piece)
	}
	if _, ok := b.ranks[piece]; ok {
		return 1
	}
	if len(piece) < mergeScanMax {
		return b.mergeScan(piece)
	}
	return b.mergeHeap(piece)
}

const noRank = math.MaxUint32

// mergeScanMax is the piece length from which mergeHeap, O(n log n), takes
// over from mergeScan, O(n²) but allocation-free.
const mergeScanMax = 96

// rank returns the rank of s, or noRank.
func (b *bpe) rank(s string) uint32 {
	if r, ok := b.ranks[s]; ok {
		return r
	}
	return noRank
}

// mergeScan merges piece as tiktoken's byte_pair_merge does: repeatedly the
// leftmost adjacent pair with the lowest rank. It returns the number of
// parts left.
func (b *bpe) mergeScan(piece string) int {
	type part struct {
		off  int32
		rank uint32
	}
	var buf [mergeScanMax + 1]part
	parts := buf[:len(piece)+1]
	for i := range parts {
		parts[i] = part{int32(i), noRank}
	}
	// rankAt is the rank of the span from part i to part i+skip+2.
	rankAt := func(i, skip int) uint32 {
		if i+skip+2 < len(parts) {
			return b.rank(piece[parts[i].off:parts[i+skip+2].off])
		}
		return noRank
	}
	for i := 0; i < len(parts)-2; i++ {
		parts[i].rank = rankAt(i, 0)
	}
	for len(parts) > 1 {
		minRank, minAt := uint32(noRank), 0
		for i := 0; i < len(parts)-1; i++ {
			if parts[i].rank < minRank {
				minRank, minAt = parts[i].rank, i
			}
		}
		if minRank == noRank {
			break
		}
		parts[minAt].rank = rankAt(minAt, 1)
		if minAt > 0 {
			parts[minAt-1].rank = rankAt(minAt-1, 1)
		}
		parts = append(parts[:minAt+1], parts[minAt+2:]...)
	}
	return len(parts) - 1
}

// mergeHeap gives mergeScan's result for long pieces in O(n log n): the
// part boundaries form a linked list and the candidate merges a min-heap
// ordered by rank, then position, from which stale entries are skipped.
func (b *bpe) mergeHeap(piece string) int {
	n := int32(len(piece))
	type node struct {
		prev, next int32
		rank       uint32
	}
	nodes := make([]node, n+1)
	for i := range nodes {
		nodes[i] = node{prev: int32(i) - 1, next: int32(i) + 1, rank: noRank}
	}
	nodes[n].next = -1
	rankOf := func(i int32) uint32 {
		j := nodes[i].next
		if j < 0 {
			return noRank
		}
		k := nodes[j].next
		if k < 0 {
			return noRank
		}
		return b.rank(piece[i:k])
	}
	h := make(mergeHeap, 0, n)
	for i := int32(0); i+2 <= n; i++ {
		if r := rankOf(i); r != noRank {
			nodes[i].rank = r
			h = append(h, mergeCand{r, i})
		}
	}
	h.init()
	parts := int(n)
	for len(h) > 0 {
		top := h.pop()
		i := top.off
		if nodes[i].rank != top.rank {
			continue // stale: this boundary's pair changed since
		}
		j := nodes[i].next
		k := nodes[j].next
		nodes[j].rank = noRank
		nodes[i].next = k
		if k >= 0 {
			nodes[k].prev = i
		}
		parts--
		for _, at := range [2]int32{i, nodes[i].prev} {
			if at < 0 {
				continue
			}
			nodes[at].rank = rankOf(at)
			if nodes[at].rank != noRank {
				h.push(mergeCand{nodes[at].rank, at})
			}
		}
	}
	return parts
}

type mergeCand struct {
	rank uint32
	off  int32
}

// mergeHeap is a binary min-heap of merge candidates by rank, then offset,
// so that among equal ranks the leftmost pair merges first.
type mergeHeap []mergeCand

func (h mergeHeap) less(a, b int) bool {
	if h[a].rank != h[b].rank {
		return h[a].rank < h[b].rank
	}
	return h[a].off < h[b].off
}

func (h mergeHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h *mergeHeap) push(c mergeCand) {
	*h = append(*h, c)
	h.up(len(*h) - 1)
}

func (h *mergeHeap) pop() mergeCand {
	old := *h
	top := old[0]
	last := len(old) - 1
	old[0] = old[last]
	*h = old[:last]
	h.down(0)
	return top
}

func (h mergeHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			return
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (h mergeHeap) down(i int) {
	for {
		c := 2*i + 1
		if c >= len(h) {
			return
		}
		if r := c + 1; r < len(h) && h.less(r, c) {
			c = r
		}
		if !h.less(c, i) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}

// Character classes of the pre-tokenizers, as bits. Bytes that are not
// UTF-8 are read as U+FFFD (a symbol), one byte each.
const (
	cUpper  uint8 = 1 << iota // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
	cLower                    // [\p{Ll}\p{Lm}\p{Lo}\p{M}]
	cLetter                   // \p{L}
	cNumber                   // \p{N}
	cSpace                    // \s: Unicode white space, as regexp2 reads it
	cPrefix                   // [^\r\n\p{L}\p{N}]
	cPunct                    // [^\s\p{L}\p{N}]
)

// asciiClass holds the classes of each ASCII character.
var asciiClass = func() (t [utf8.RuneSelf]uint8) {
	for c := range rune(utf8.RuneSelf) {
		t[c] = classOf(c)
	}
	return t
}()

// classOf returns every class of r.
func classOf(r rune) uint8 {
	var c uint8
	if unicode.In(r, unicode.Lu, unicode.Lt, unicode.Lm, unicode.Lo, unicode.M) {
		c |= cUpper
	}
	if unicode.In(r, unicode.Ll, unicode.Lm, unicode.Lo, unicode.M) {
		c |= cLower
	}
	letter, number, space := unicode.IsLetter(r), unicode.IsNumber(r), unicode.IsSpace(r)
	if letter {
		c |= cLetter
	}
	if number {
		c |= cNumber
	}
	if space {
		c |= cSpace
	}
	if r != '\r' && r != '\n' && !letter && !number {
		c |= cPrefix
	}
	if !space && !letter && !number {
		c |= cPunct
	}
	return c
}

// is reports whether r has one of the classes of mask.
func is(r rune, mask uint8) bool {
	if r < utf8.RuneSelf {
		return asciiClass[r]&mask != 0
	}
	return classOf(r)&mask != 0
}

func runeAt(s string, i int) (rune, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// runWhile returns the end of the run of runes from s[i] that have a class
// of mask.
func runWhile(s string, i int, mask uint8) int {
	for i < len(s) {
		if c := s[i]; c < utf8.RuneSelf {
			if asciiClass[c]&mask == 0 {
				break
			}
			i++
			continue
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		if classOf(r)&mask == 0 {
			break
		}
		i += w
	}
	return i
}

// contraction returns the end of (?i:'s|'t|'re|'ve|'m|'ll|'d) at s[i], or
// i when there is none. Case folding adds only ſ (U+017F) to s.
func contraction(s string, i int) int {
	if i+1 >= len(s) || s[i] != '\'' {
		return i
	}
	switch c := s[i+1] | 0x20; c {
	case 's', 't', 'm', 'd':
		return i + 2
	case 'r', 'v':
		if i+2 < len(s) && s[i+2]|0x20 == 'e' {
			return i + 3
		}
	case 'l':
		if i+2 < len(s) && s[i+2]|0x20 == 'l' {
			return i + 3
		}
	}
	if len(s) >= i+3 && s[i+1:i+3] == "ſ" {
		return i + 3
	}
	return i
}

// spaces matches \s*[\r\n]+|\s+(?!\S)|\s+ at s[i], where s[i] is white
// space, and returns the end.
func spaces(s string, i int) int {
	e := runWhile(s, i, cSpace)
	// \s*[\r\n]+: the greedy \s* gives back up to the last line break.
	for k := e - 1; k >= i; k-- {
		if s[k] == '\n' || s[k] == '\r' {
			return k + 1
		}
	}
	if e == len(s) {
		return e
	}
	// \s+(?!\S): all but the last space, when that leaves one.
	_, w := utf8.DecodeLastRuneInString(s[i:e])
	if e-w > i {
		return e - w
	}
	return e // \s+
}

// nextO200k returns the end of the piece at s[i] under o200k_base's
//
//	[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//	|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//	|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
func nextO200k(s string, i int) int {
	r0, w0 := runeAt(s, i)
	pre := is(r0, cPrefix)
	if pre {
		if e, ok := o200kWordLower(s, i+w0); ok {
			return e
		}
	}
	if e, ok := o200kWordLower(s, i); ok {
		return e
	}
	if pre {
		if e, ok := o200kWordUpper(s, i+w0); ok {
			return e
		}
	}
	if e, ok := o200kWordUpper(s, i); ok {
		return e
	}
	if is(r0, cNumber) {
		return digits(s, i)
	}
	if e, ok := punct(s, i, r0, true); ok {
		return e
	}
	return spaces(s, i)
}

// o200kWordLower matches U*L+ contraction? at s[p]: the greedy U* gives
// back runes until an L-class rune starts L+.
func o200kWordLower(s string, p int) (int, bool) {
	if p >= len(s) {
		return 0, false
	}
	eu := runWhile(s, p, cUpper)
	q := -1
	if eu < len(s) {
		if r, _ := runeAt(s, eu); is(r, cLower) {
			q = eu
		}
	}
	if q < 0 {
		// The last L-class rune inside the U-run, if any.
		for k := eu; k > p; {
			r, w := utf8.DecodeLastRuneInString(s[p:k])
			k -= w
			if is(r, cLower) {
				q = k
				break
			}
		}
	}
	if q < 0 {
		return 0, false
	}
	return contraction(s, runWhile(s, q, cLower)), true
}

// o200kWordUpper matches U+L* contraction? at s[p].
func o200kWordUpper(s string, p int) (int, bool) {
	if p >= len(s) {
		return 0, false
	}
	eu := runWhile(s, p, cUpper)
	if eu == p {
		return 0, false
	}
	return contraction(s, runWhile(s, eu, cLower)), true
}

// digits matches \p{N}{1,3} at s[i], which is a number.
func digits(s string, i int) int {
	for k := 0; k < 3 && i < len(s); k++ {
		r, w := runeAt(s, i)
		if !is(r, cNumber) {
			break
		}
		i += w
	}
	return i
}

// punct matches ` ?[^\s\p{L}\p{N}]+` then [\r\n/]* (o200k) or [\r\n]*
// (cl100k) at s[i].
func punct(s string, i int, r0 rune, slash bool) (int, bool) {
	p := i
	if r0 == ' ' && i+1 < len(s) {
		if r, _ := runeAt(s, i+1); is(r, cPunct) {
			p = i + 1
		}
	}
	if p == i && !is(r0, cPunct) {
		return 0, false
	}
	e := runWhile(s, p, cPunct)
	for e < len(s) && (s[e] == '\r' || s[e] == '\n' || slash && s[e] == '/') {
		e++
	}
	return e, true
}

// nextCl100k returns the end of the piece at s[i] under cl100k_base's
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}
//	| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
func nextCl100k(s string, i int) int {
	if e := contraction(s, i); e > i {
		return e
	}
	r0, w0 := runeAt(s, i)
	if is(r0, cPrefix) && i+w0 < len(s) {
		if r1, _ := runeAt(s, i+w0); is(r1, cLetter) {
			return runWhile(s, i+w0, cLetter)
		}
	}
	if is(r0, cLetter) {
		return runWhile(s, i, cLetter)
	}
	if is(r0, cNumber) {
		return digits(s, i)
	}
	if e, ok := punct(s, i, r0, false); ok {
		return e
	}
	return spaces(s, i)
}
