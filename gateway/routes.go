package gateway

import "net/http"

// routes lists the whole API surface.
func (g *Gateway) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /v1/chat/completions", g.withIdempotency(g.handleChatCompletions()))
	mux.Handle("POST /v1/messages", g.withIdempotency(g.handleMessages()))
	mux.Handle("GET /v1/models", g.handleModels())
	mux.Handle("GET /v1/streams/{id}", g.handleResume())
	mux.Handle("GET /v1/contracts", g.handleContracts())
	mux.Handle("GET /v1/contracts/{name}", g.handleContractInfo())
	mux.Handle("POST /v1/contracts/{name}", g.withIdempotency(g.handleContract()))
	if g.opts.Metrics != nil {
		mux.Handle("GET /metrics", g.opts.Metrics)
	}
	mux.Handle("GET /healthz", g.handleHealthz())
	mux.Handle("GET /readyz", g.handleReadyz())
	mux.Handle("/", g.handleNotFound())
	return g.withRequestID(g.withRecovery(g.withAccessLog(mux)))
}
