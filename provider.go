package sluice

import "context"

// A Provider sends requests to one upstream model API.
//
// The Request a Provider receives has Model set to the upstream model name.
// Implementations must not modify the Request.
type Provider interface {
	// Complete sends a non-streaming call and returns the whole answer.
	Complete(ctx context.Context, req *Request) (*Response, error)
	// Stream returns once the upstream has accepted the call, so an error from
	// Stream itself happened before any byte reached the client and may be
	// retried. Cancelling ctx ends the upstream call and releases its
	// connection.
	Stream(ctx context.Context, req *Request) (Stream, error)
}

// Middleware wraps a Provider to add behaviour: retries, breakers, metrics.
type Middleware func(Provider) Provider
