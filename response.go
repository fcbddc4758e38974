package sluice

// FinishReason says why the model stopped.
type FinishReason string

// The finish reasons, in the provider-neutral spelling. Dialects map them:
// OpenAI uses these words; Anthropic's end_turn and stop_sequence are stop,
// max_tokens is length, tool_use is tool_calls, refusal is content_filter.
const (
	FinishStop          FinishReason = "stop"
	FinishLength        FinishReason = "length"
	FinishToolCalls     FinishReason = "tool_calls"
	FinishContentFilter FinishReason = "content_filter"
	FinishError         FinishReason = "error"
)

// Usage counts the tokens of one call.
//
// InputTokens counts every prompt token, including those read from or written
// to a prompt cache (OpenAI's prompt_tokens); CacheReadTokens and
// CacheWriteTokens say how many of them were. The Anthropic dialect, whose
// input_tokens excludes cached tokens, subtracts them when it encodes.
// ReasoningTokens are part of OutputTokens.
type Usage struct {
	InputTokens      int
	OutputTokens     int
	CacheReadTokens  int
	CacheWriteTokens int
	ReasoningTokens  int
}

// TotalTokens returns input plus output tokens.
func (u Usage) TotalTokens() int { return u.InputTokens + u.OutputTokens }

// Add returns the sum of u and v, field by field.
func (u Usage) Add(v Usage) Usage {
	return Usage{
		InputTokens:      u.InputTokens + v.InputTokens,
		OutputTokens:     u.OutputTokens + v.OutputTokens,
		CacheReadTokens:  u.CacheReadTokens + v.CacheReadTokens,
		CacheWriteTokens: u.CacheWriteTokens + v.CacheWriteTokens,
		ReasoningTokens:  u.ReasoningTokens + v.ReasoningTokens,
	}
}

// A Response is the complete answer to a non-streaming call.
type Response struct {
	ID string
	// Model is the model that answered, as the upstream named it. The gateway
	// reports the public model name to clients.
	Model        string
	Message      Message // Role is RoleAssistant
	FinishReason FinishReason
	// StopSequence is the stop sequence that ended the answer, when known.
	StopSequence string
	Usage        Usage
	// Created is the creation time in Unix seconds; zero means now.
	Created int64
}
