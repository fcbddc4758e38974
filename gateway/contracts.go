package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/openai"
)

// contractCall is the body of POST /v1/contracts/{name}.
type contractCall struct {
	Input  json.RawMessage `json:"input"`
	Stream bool            `json:"stream"`
}

// handleContract serves POST /v1/contracts/{name}: the input goes through
// the contract, and the answer is the validated object itself as the JSON
// body. Errors are in the OpenAI shape (the Anthropic one for clients that
// send anthropic-version).
func (g *Gateway) handleContract() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := g.readBody(w, r)
		if err != nil {
			writeErrorFor(w, r, g.clientError(r, err))
			return
		}
		var call contractCall
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&call); err != nil {
			writeErrorFor(w, r, &sluice.Error{Code: sluice.CodeInvalidRequest, Message: `The body must be a JSON object: {"input": <string or object>}.`, Err: err})
			return
		}
		if call.Stream {
			writeErrorFor(w, r, &sluice.Error{Code: sluice.CodeInvalidRequest, Param: "stream", Message: "Streaming contract calls are not available yet."})
			return
		}
		ctx, stop := g.callContext(r)
		defer stop()
		out, err := g.p.Contract(ctx, r.PathValue("name"), call.Input)
		if err != nil {
			writeErrorFor(w, r, g.clientError(r, err))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(out)))
		w.Write(out)
	})
}

// handleContractInfo serves GET /v1/contracts/{name}: the contract's
// schema and description.
func (g *Gateway) handleContractInfo() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, ok := g.p.ContractInfo(r.PathValue("name"))
		if !ok {
			writeErrorFor(w, r, &sluice.Error{Code: sluice.CodeNotFound, Message: "There is no such contract."})
			return
		}
		writeJSON(w, info)
	})
}

// handleContracts serves GET /v1/contracts: every contract.
func (g *Gateway) handleContracts() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"contracts": g.p.Contracts()})
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		openai.WriteError(w, sluice.WrapError(sluice.CodeInternal, err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(b, '\n'))
}
