package openai

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// The structs below mirror the OpenAI wire format closely enough for
// encoding/json to decode it in one pass. Polymorphic fields (string or array,
// string or object) are json.RawMessage and are looked at by hand.

// wireRequest is a client's chat completion request.
type wireRequest struct {
	Model               string              `json:"model"`
	Messages            []wireMessage       `json:"messages"`
	Tools               []wireTool          `json:"tools"`
	ToolChoice          json.RawMessage     `json:"tool_choice"`
	ParallelToolCalls   *bool               `json:"parallel_tool_calls"`
	ResponseFormat      *wireResponseFormat `json:"response_format"`
	MaxTokens           *int64              `json:"max_tokens"`
	MaxCompletionTokens *int64              `json:"max_completion_tokens"`
	Temperature         *float64            `json:"temperature"`
	TopP                *float64            `json:"top_p"`
	TopK                *int64              `json:"top_k"`
	Stop                json.RawMessage     `json:"stop"`
	Seed                *int64              `json:"seed"`
	User                string              `json:"user"`
	Stream              *bool               `json:"stream"`
	StreamOptions       *wireStreamOptions  `json:"stream_options"`
	Metadata            map[string]string   `json:"metadata"`
	N                   *int64              `json:"n"`
}

type wireStreamOptions struct {
	IncludeUsage *bool `json:"include_usage"`
}

type wireMessage struct {
	Role             string          `json:"role"`
	Content          json.RawMessage `json:"content"`
	Name             string          `json:"name"`
	ToolCalls        []wireToolCall  `json:"tool_calls"`
	ToolCallID       string          `json:"tool_call_id"`
	Refusal          string          `json:"refusal"`
	ReasoningContent string          `json:"reasoning_content"`
	// Reasoning is the name some servers (OpenRouter, Ollama, newer vLLM) give
	// reasoning_content. It is not an OpenAI field, so a value that is not a
	// string is ignored rather than refused.
	Reasoning lenientString `json:"reasoning"`
}

type wireToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name string `json:"name"`
		// Arguments is a JSON string holding JSON text; some clients send the
		// object itself, which is accepted too.
		Arguments json.RawMessage `json:"arguments"`
	} `json:"function"`
}

type wireContentPart struct {
	Type     string          `json:"type"`
	Text     string          `json:"text"`
	ImageURL json.RawMessage `json:"image_url"`
	Refusal  string          `json:"refusal"`
}

type wireImageURL struct {
	URL    string `json:"url"`
	Detail string `json:"detail"`
}

type wireTool struct {
	Type     string        `json:"type"`
	Function *wireFunction `json:"function"`
}

type wireFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
	Strict      *bool           `json:"strict"`
}

type wireToolChoice struct {
	Type     string `json:"type"`
	Function struct {
		Name string `json:"name"`
	} `json:"function"`
}

type wireResponseFormat struct {
	Type       string `json:"type"`
	JSONSchema *struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Schema      json.RawMessage `json:"schema"`
		Strict      *bool           `json:"strict"`
	} `json:"json_schema"`
}

// wireResponse is an upstream's non-streaming answer.
type wireResponse struct {
	ID      string       `json:"id"`
	Model   string       `json:"model"`
	Created lenientInt   `json:"created"`
	Choices []wireChoice `json:"choices"`
	Usage   *wireUsage   `json:"usage"`
	Error   *wireError   `json:"error"`
}

type wireChoice struct {
	Index        int             `json:"index"`
	Message      wireRespMessage `json:"message"`
	FinishReason string          `json:"finish_reason"`
}

type wireRespMessage struct {
	Content          json.RawMessage    `json:"content"`
	Refusal          string             `json:"refusal"`
	ReasoningContent string             `json:"reasoning_content"`
	Reasoning        lenientString      `json:"reasoning"`
	ToolCalls        []wireRespToolCall `json:"tool_calls"`
}

type wireRespToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	} `json:"function"`
}

type wireUsage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	PromptTokensDetails *struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails *struct {
		ReasoningTokens int `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
	// PromptCacheHitTokens is DeepSeek's name for cached prompt tokens.
	PromptCacheHitTokens int `json:"prompt_cache_hit_tokens"`
}

// wireChunk is one "chat.completion.chunk" of an upstream stream.
type wireChunk struct {
	ID      string            `json:"id"`
	Model   string            `json:"model"`
	Choices []wireChunkChoice `json:"choices"`
	Usage   *wireUsage        `json:"usage"`
	Error   *wireError        `json:"error"`
}

type wireChunkChoice struct {
	Index int `json:"index"`
	Delta struct {
		Content          string              `json:"content"`
		Refusal          string              `json:"refusal"`
		ReasoningContent string              `json:"reasoning_content"`
		Reasoning        lenientString       `json:"reasoning"`
		ToolCalls        []wireChunkToolCall `json:"tool_calls"`
	} `json:"delta"`
	FinishReason string `json:"finish_reason"`
}

type wireChunkToolCall struct {
	Index    *int   `json:"index"`
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// wireError is the "error" object of an OpenAI error body or error chunk.
// Code is a string at OpenAI and a number at some compatible servers.
type wireError struct {
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Code    json.RawMessage `json:"code"`
	Param   json.RawMessage `json:"param"`
}

// codeString returns the error's code as text ("" when null or absent).
func (e *wireError) codeString() string {
	c := bytes.TrimSpace(e.Code)
	if len(c) == 0 || bytes.Equal(c, []byte("null")) {
		return ""
	}
	if c[0] == '"' {
		var s string
		if json.Unmarshal(c, &s) == nil {
			return s
		}
		return ""
	}
	return string(c)
}

// lenientString decodes a JSON string and ignores any other value.
type lenientString string

func (s *lenientString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = lenientString(v)
	}
	return nil
}

// lenientInt decodes a JSON number, integral or not, and ignores any other
// value. Some servers send "created" as a float.
type lenientInt int64

func (n *lenientInt) UnmarshalJSON(b []byte) error {
	if f, err := strconv.ParseFloat(string(b), 64); err == nil {
		*n = lenientInt(f)
	}
	return nil
}
