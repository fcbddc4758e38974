package gateway

import "net/http"

// routes lists the whole API surface.
func (g *Gateway) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /v1/chat/completions", g.withAuth(g.withIdempotency(g.handleChatCompletions())))
	mux.Handle("POST /v1/messages", g.withAuth(g.withIdempotency(g.handleMessages())))
	mux.Handle("GET /v1/models", g.withAuth(g.handleModels()))
	mux.Handle("GET /v1/streams/{id}", g.withAuth(g.handleResume()))
	mux.Handle("GET /v1/contracts", g.withAuth(g.handleContracts()))
	mux.Handle("GET /v1/contracts/{name}", g.withAuth(g.handleContractInfo()))
	mux.Handle("POST /v1/contracts/{name}", g.withAuth(g.withIdempotency(g.handleContract())))
	mux.Handle("POST /v1/jobs", g.withAuth(g.handleJobCreate()))
	mux.Handle("GET /v1/jobs/{id}", g.withAuth(g.handleJobGet()))
	admin := g.withAdmin(g.handleAdminKeys())
	mux.Handle("GET /admin/keys", admin)
	mux.Handle("POST /admin/keys", admin)
	mux.Handle("POST /admin/keys/{id}/{op}", admin)
	mux.Handle("GET /admin/usage", g.withAdmin(g.handleAdminUsage()))
	if g.opts.Metrics != nil {
		mux.Handle("GET /metrics", g.opts.Metrics)
	}
	if g.opts.AdminKey != "" {
		newUI(g).routes(mux) // the dashboard, behind the admin key
	}
	mux.Handle("GET /healthz", g.handleHealthz())
	mux.Handle("GET /readyz", g.handleReadyz())
	mux.Handle("/", g.handleNotFound())
	return g.withRequestID(g.withTrace(g.withRecovery(g.withAccessLog(mux))))
}
