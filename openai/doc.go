// Package openai speaks the OpenAI Chat Completions dialect both ways.
//
// The server side decodes a client's POST /v1/chat/completions body into a
// sluice.Request (DecodeRequest) and encodes answers back: a whole
// "chat.completion" object (MarshalResponse), a stream of
// "chat.completion.chunk" server-sent events (StreamEncoder), the error body
// (WriteError, MarshalError) and the model list (MarshalModels).
//
// The provider side (Provider) calls OpenAI or any OpenAI-compatible server
// (vLLM, llama.cpp, Ollama, LM Studio, Groq, DeepSeek, OpenRouter, Azure
// OpenAI behind its compatible path, ...) and turns its answers, whole or
// streamed, into sluice values.
//
// What one side cannot express is dropped on purpose; docs/dialects.md lists
// every field both ways. In short:
//
//   - system and developer messages all become Request.System, in order; their
//     position among the other messages and the system/developer distinction
//     are lost, and the provider sends them back as leading "system" messages.
//   - consecutive tool messages become one RoleTool message with one
//     PartToolResult each; the encoders send each result as its own tool
//     message.
//   - assistant reasoning_content (or reasoning) decodes to a thinking part;
//     answers carry thinking as "reasoning_content" (the field DeepSeek, vLLM
//     and others use), but the provider never sends thinking back upstream,
//     since OpenAI rejects the field in input messages.
//   - n > 1 is refused; logprobs, penalties, logit_bias, audio, prediction,
//     reasoning_effort and the other fields Sluice has no place for are
//     ignored.
package openai
