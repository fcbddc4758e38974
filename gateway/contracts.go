package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/contract"
	"github.com/sluice-gw/sluice/openai"
	"github.com/sluice-gw/sluice/pipeline"
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
		received := time.Now()
		body, err := g.readBody(w, r)
		if err != nil {
			g.refused(r, err)
			writeErrorFor(w, r, g.clientError(r, err))
			return
		}
		var call contractCall
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&call); err != nil {
			g.refused(r, err)
			writeErrorFor(w, r, &sluice.Error{Code: sluice.CodeInvalidRequest, Message: `The body must be a JSON object: {"input": <string or object>}.`, Err: err})
			return
		}
		ctx, stop := g.callContext(r)
		defer stop()
		ctx = pipeline.WithCaller(ctx, requestID(r.Context()), g.callerOf(r, sluice.Caller{}))
		info := &pipeline.CallInfo{BodyBytes: len(body), Dialect: "sluice", Received: received}
		ctx = pipeline.WithCallInfo(ctx, info)
		if call.Stream {
			g.streamContract(ctx, w, r, call.Input, info)
			return
		}
		out, err := g.p.Contract(ctx, r.PathValue("name"), call.Input)
		setCallHeaders(w.Header(), info)
		setUsageHeaders(w.Header(), info)
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

// streamContract answers a contract call as a stream of server-sent events:
// "partial" events, each the best valid-so-far object as the answer grows
// (sent when it grew), then one "result" event with the validated object,
// or an "error" event (schema_violation when the whole answer breaks the
// schema). A failure before the first content is a plain error answer.
func (g *Gateway) streamContract(ctx context.Context, w http.ResponseWriter, r *http.Request, input json.RawMessage, info *pipeline.CallInfo) {
	s, err := g.p.StreamContract(ctx, r.PathValue("name"), input)
	setCallHeaders(w.Header(), info)
	if err != nil {
		writeErrorFor(w, r, g.clientError(r, err))
		return
	}
	defer s.Close()
	// The first content is here: the answer is a stream. Silences (a model
	// thinking) get heartbeats, as chat streams do.
	gate := &commitGate{w: w}
	wt := &writeTimer{timeout: g.opts.StreamWriteTimeout}
	gate.start(wt)
	sw := gate.sw
	stopHeartbeat := g.heartbeat(gate, wt)
	defer stopHeartbeat()
	var (
		partials contract.Partials
		buf      []byte
		grew     bool
	)
	for ev, err := range s.All() {
		if err != nil {
			if r.Context().Err() != nil {
				return
			}
			e := g.streamError(err)
			g.logError(r, "contract stream ended with an error", e)
			markFailed(r.Context()) // an answer that broke off is not replayed
			wt.extend(time.Now())
			sw.WriteEvent("error", openai.MarshalError(sluice.WithRequestID(e, requestID(r.Context()))))
			return
		}
		if ev.Type != sluice.EventText {
			continue
		}
		if buf, grew = partials.Add(buf[:0], ev.Text); !grew {
			continue
		}
		now := time.Now()
		wt.extend(now)
		if sw.WriteEvent("partial", buf) != nil {
			return
		}
		wt.last.Store(now.UnixNano())
	}
	// The pipeline validated the whole answer: send it, without any fence.
	wt.extend(time.Now())
	sw.WriteEvent("result", []byte(contract.Unfence(partials.Text())))
}
