// Package anthropic speaks the Anthropic Messages dialect, both ways.
//
// The server side decodes a client's POST /v1/messages body into a
// sluice.Request (DecodeRequest), checks its headers (CheckVersion, APIKey) and
// encodes answers back: a "message" object (MarshalResponse), the named
// server-sent events of a stream (StreamEncoder) and the dialect's error shape
// (WriteError, MarshalError).
//
// The provider side (Provider) calls an upstream that speaks the dialect,
// api.anthropic.com or a compatible server, and turns its answers and streams
// into sluice.Response and sluice.Event values.
//
// What one side cannot express is dropped on purpose; docs/dialects.md lists it
// field by field. The wire format is the one of anthropic-version 2023-06-01,
// which later dated versions extend.
package anthropic
