package guard

import (
	"strings"

	"github.com/sluice-gw/sluice"
)

// Token counting before the call.
//
// OpenAI models are counted with their own encoding (see EncodingFor) and
// the chat format of OpenAI's cookbook ("How to count tokens with
// tiktoken"): every message costs 3 tokens, plus the tokens of its role,
// content and name, plus 1 when it has a name; the reply is primed with 3
// more. Each system part counts as one system message, which is how the
// openai provider sends them.
//
// Other models (Anthropic's Claude, Gemini, open-weight models, unknown
// names) have no public tokenizer to compile in. They are counted as if
// they were o200k_base and the result multiplied by EstimateFactor. The
// tokenizers of those families split English prose into about as many
// tokens as o200k_base, up to 30% more for code; published comparisons of
// Claude's tokenizer with gpt-4o's give +16% for English, +21% for math and
// +30% for Python. The factor errs high, so that rate limits and budgets
// reserve enough; the ledger settles with the real count. Starting from
// o200k_base rather than a byte count matters: bytes/4 undercounts
// o200k_base by 5-9% on English prose, 4-13% on Go code and 12-28% on
// Chinese, Japanese and Korean prose (TestTokenRatios), and cl100k_base
// counts 12-55% more than o200k_base on those languages.
//
// Parts that are not plain text are estimated by the providers' published
// rules (see ImageTokens for images): tool definitions count as the tokens
// of their name, description and parameters JSON plus toolDefTokens each,
// and toolsTokens once; tool calls in the history as their name and
// arguments plus toolCallTokens; a JSON Schema output as the schema's
// tokens. Claude models add the tool-use system prompt Anthropic documents
// (claudeToolSystemTokens) when tools are offered. Thinking parts are not
// sent to OpenAI and count only for other models.

// EstimateFactor multiplies the o200k_base count of a prompt for a model
// whose tokenizer is not compiled in.
const EstimateFactor = 1.2

// Chat-format constants.
const (
	// tokensPerMessage frames every message: <|start|>{role}<|message|>…<|end|>
	// is 3 tokens besides the role.
	tokensPerMessage = 3
	// roleTokens is the length of "system", "user", "assistant" and "tool"
	// in both encodings.
	roleTokens = 1
	// tokensPerName is added when a message has a name.
	tokensPerName = 1
	// replyPriming is <|start|>assistant<|message|>, once per request.
	replyPriming = 3
	// toolDefTokens is the wrapper of one tool definition, toolsTokens the
	// wrapper of the tool list (the cookbook's function counting uses 7 and
	// 12 for the same purposes; tool definitions are rendered, not sent as
	// JSON, so their count is an estimate).
	toolDefTokens = 8
	toolsTokens   = 12
	// toolCallTokens frames one tool call in an assistant message (its id,
	// type and the function wrapper).
	toolCallTokens = 8
	// claudeToolSystemTokens is the system prompt Anthropic adds when tools
	// are offered to Claude 4 and 3.7 models (346 with tool_choice auto or
	// none, 313 with any or tool; earlier models need fewer).
	claudeToolSystemTokens = 346
)

// family groups models by how their tokens are counted.
type family int

const (
	familyOther  family = iota // estimated from o200k_base
	familyOpenAI               // exact, with the model's encoding
	familyClaude               // estimated from o200k_base; Anthropic's image rule
)

// modelInfo says how to count for one model.
type modelInfo struct {
	family family
	enc    Encoding
	image  imageRule
}

// baseModel lower-cases model and drops what only names a deployment: a
// provider prefix ("openai/gpt-4o"), a region and vendor prefix
// ("us.anthropic.claude-…") or a fine-tune prefix ("ft:gpt-4o-mini:…").
func baseModel(model string) string {
	m := strings.ToLower(strings.TrimSpace(model))
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		m = m[i+1:]
	}
	m = strings.TrimPrefix(m, "ft:")
	if i := strings.Index(m, "claude"); i > 0 {
		m = m[i:]
	}
	return m
}

// isModel reports whether m is name or a version of it (name followed by
// '-', as in "o3-2025-04-16" or "gpt-4o-mini").
func isModel(m, name string) bool {
	return m == name || strings.HasPrefix(m, name) && m[len(name)] == '-'
}

func lookupModel(model string) modelInfo {
	m := baseModel(model)
	switch {
	case strings.HasPrefix(m, "claude"):
		return modelInfo{familyClaude, O200kBase, imageRule{kind: imageArea}}
	case isModel(m, "gpt-4o-mini"):
		return modelInfo{familyOpenAI, O200kBase, tiles(2833, 5667)}
	case isModel(m, "gpt-4.1-mini"), isModel(m, "gpt-5-mini"):
		return modelInfo{familyOpenAI, O200kBase, patches(1.62)}
	case isModel(m, "gpt-4.1-nano"), isModel(m, "gpt-5-nano"):
		return modelInfo{familyOpenAI, O200kBase, patches(2.46)}
	case isModel(m, "o4-mini"):
		return modelInfo{familyOpenAI, O200kBase, patches(1.72)}
	case isModel(m, "gpt-5"), strings.HasPrefix(m, "gpt-5."):
		return modelInfo{familyOpenAI, O200kBase, tiles(70, 140)}
	case isModel(m, "o1"), isModel(m, "o3"):
		return modelInfo{familyOpenAI, O200kBase, tiles(75, 150)}
	case isModel(m, "gpt-4o"), isModel(m, "chatgpt-4o"), strings.HasPrefix(m, "gpt-4.1"),
		strings.HasPrefix(m, "gpt-4.5"), isModel(m, "o4"), isModel(m, "gpt-oss"),
		isModel(m, "codex-mini"), isModel(m, "computer-use-preview"):
		return modelInfo{familyOpenAI, O200kBase, tiles(85, 170)}
	case isModel(m, "gpt-4"), strings.HasPrefix(m, "gpt-3.5"), strings.HasPrefix(m, "gpt-35"),
		strings.HasPrefix(m, "text-embedding-3"), m == "text-embedding-ada-002":
		return modelInfo{familyOpenAI, Cl100kBase, tiles(85, 170)}
	}
	return modelInfo{familyOther, O200kBase, tiles(85, 170)}
}

// EncodingFor returns the encoding that counts model's tokens, and whether
// it is the model's own (false: the model's tokenizer is not compiled in and
// o200k_base only estimates it). model is an upstream model name; dated
// versions, provider prefixes and fine-tunes are recognised.
func EncodingFor(model string) (enc Encoding, exact bool) {
	info := lookupModel(model)
	return info.enc, info.family == familyOpenAI
}

// CountText returns the number of tokens of s for model, and whether the
// count is exact (see EncodingFor); an estimate is scaled by
// EstimateFactor. It suits counting an answer whose usage the upstream did
// not report.
func CountText(model, s string) (n int, exact bool) {
	info := lookupModel(model)
	n = encoder(info.enc).count(s)
	if info.family != familyOpenAI {
		return estimate(n), false
	}
	return n, true
}

func estimate(n int) int {
	return int(float64(n)*EstimateFactor + 0.999)
}

// CountPrompt returns the number of prompt tokens req would cost model, an
// upstream model name, and whether the count is exact: model is an OpenAI
// model and the request holds only text (system, user and assistant text,
// with names). Otherwise n is an estimate by the rules in this file's
// comment. CountPrompt is safe for concurrent use and does not modify req.
func CountPrompt(req *sluice.Request, model string) (n int, exact bool) {
	return countPrompt(req, req.Tools, lookupModel(model))
}

// countPrompt counts req as if it offered tools.
func countPrompt(req *sluice.Request, tools []sluice.Tool, info modelInfo) (n int, exact bool) {
	c := promptCounter{bpe: encoder(info.enc), info: info, exact: info.family == familyOpenAI}
	n = replyPriming
	for i := range req.System {
		n += tokensPerMessage + roleTokens + c.text(req.System[i].Text)
	}
	for i := range req.Messages {
		n += c.message(&req.Messages[i])
	}
	if len(tools) > 0 {
		c.exact = false
		n += toolsTokens
		for i := range tools {
			t := &tools[i]
			n += toolDefTokens + c.text(t.Name) + c.text(t.Description) + c.text(string(t.Parameters))
		}
	}
	if len(req.Output.Schema) > 0 {
		c.exact = false
		n += c.text(req.Output.Name) + c.text(string(req.Output.Schema))
	}
	if info.family != familyOpenAI {
		n = estimate(n)
		if info.family == familyClaude && len(tools) > 0 {
			n += claudeToolSystemTokens
		}
	}
	// Images are counted by their own rules, not scaled.
	return n + c.images, c.exact
}

type promptCounter struct {
	*bpe
	info   modelInfo
	exact  bool
	images int
}

func (c *promptCounter) text(s string) int {
	if s == "" {
		return 0
	}
	return c.count(s)
}

// message counts one message. Tool results are sent as one message each
// (the openai provider's form), so they carry their own framing.
func (c *promptCounter) message(m *sluice.Message) int {
	n := 0
	framed := false
	for i := range m.Parts {
		p := &m.Parts[i]
		switch p.Type {
		case sluice.PartToolResult:
			c.exact = false
			n += tokensPerMessage + roleTokens + c.text(p.ToolCallID) + c.text(p.Text)
			for j := range p.Content {
				n += c.part(&p.Content[j])
			}
		default:
			framed = true
			n += c.part(p)
		}
	}
	if framed || len(m.Parts) == 0 {
		n += tokensPerMessage + roleTokens
		if m.Name != "" {
			n += c.text(m.Name) + tokensPerName
		}
	}
	return n
}

// part counts the content of one part (text, image, tool call, thinking).
func (c *promptCounter) part(p *sluice.Part) int {
	switch p.Type {
	case sluice.PartText, "":
		return c.text(p.Text)
	case sluice.PartImage:
		c.exact = false
		c.images += c.info.image.tokensOf(p)
		return 0
	case sluice.PartToolCall:
		c.exact = false
		return toolCallTokens + c.text(p.ToolName) + c.text(p.Arguments)
	case sluice.PartThinking:
		if c.info.family == familyOpenAI {
			return 0 // never sent upstream
		}
		if p.Redacted {
			return (len(p.Data) + 3) / 4
		}
		return c.text(p.Text)
	}
	return c.text(p.Text)
}
