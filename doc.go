// Package sluice is the provider-neutral core of the Sluice LLM gateway: the
// request, message, response and streaming event model, the Provider contract
// and the closed set of client-safe error codes.
//
// Every other package imports this one; it imports nothing of ours and only the
// standard library. Dialects (openai, anthropic) translate their wire formats to
// and from these types, so any client dialect reaches any provider through one
// model rather than a translator per pair.
package sluice
