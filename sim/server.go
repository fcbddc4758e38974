package sim

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/anthropic"
	"github.com/sluice-gw/sluice/openai"
	"github.com/sluice-gw/sluice/sse"
)

// FaultHeader is the request header that chooses faults for one request, in
// ParseFault's syntax. Its fields override the server's own faults.
const FaultHeader = "X-Sim-Fault"

// A Server is the simulator as an upstream HTTP server: it speaks the OpenAI
// Chat Completions API (POST /v1/chat/completions, also without the /v1
// prefix) and the Anthropic Messages API (POST /v1/messages), and lists models
// at GET /v1/models. Faults come from its Options or from FaultHeader; a
// dropped connection is a real one (the response is aborted mid-body).
type Server struct {
	p   *Provider
	mux *http.ServeMux
}

// NewServer returns a simulator server.
func NewServer(opts Options) *Server {
	s := &Server{p: New(opts), mux: http.NewServeMux()}
	s.mux.HandleFunc("POST /v1/chat/completions", s.chat)
	s.mux.HandleFunc("POST /chat/completions", s.chat)
	s.mux.HandleFunc("POST /v1/messages", s.messages)
	s.mux.HandleFunc("GET /v1/models", s.models)
	s.mux.HandleFunc("GET /models", s.models)
	return s
}

// Provider returns the simulator provider behind the server.
func (s *Server) Provider() *Provider { return s.p }

// OpenStreams returns the number of streams being served.
func (s *Server) OpenStreams() int { return s.p.OpenStreams() }

// ServeHTTP serves the simulated APIs.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// upstreamStatus returns the HTTP status a real provider would answer for e:
// the simulated fault's status when there is one.
func upstreamStatus(e *sluice.Error) int {
	var ue *sluice.UpstreamError
	if errors.As(e, &ue) && ue.StatusCode != 0 {
		return ue.StatusCode
	}
	if e.Code == sluice.CodeOverloaded {
		// A provider's overload is a 529 (Anthropic's status for
		// overloaded_error), not the 429 Sluice answers its own clients.
		return 529
	}
	return e.Code.HTTPStatus()
}

func writeUpstreamError(w http.ResponseWriter, err error, marshal func(*sluice.Error) []byte) {
	e := sluice.AsError(err)
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(upstreamStatus(e))
	w.Write(marshal(e))
}

// request reads the body and applies the request's fault header.
func (s *Server) request(w http.ResponseWriter, r *http.Request) ([]byte, *http.Request, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 32<<20))
	if err != nil {
		return nil, r, sluice.NewError(sluice.CodeInvalidRequest, "The request body could not be read.")
	}
	if h := r.Header.Get(FaultHeader); h != "" {
		f, err := ParseFault(h)
		if err != nil {
			return nil, r, &sluice.Error{Code: sluice.CodeInvalidRequest, Param: FaultHeader, Message: err.Error()}
		}
		r = r.WithContext(WithFault(r.Context(), f))
	}
	return body, r, nil
}

// simDialect is what a handler needs of one upstream API.
type simDialect struct {
	idPrefix     string
	decode       func(body []byte) (*sluice.Request, bool, error) // the request, and whether a stream reports usage
	marshal      func(*sluice.Response) ([]byte, error)
	marshalError func(*sluice.Error) []byte
	encoder      func(w *sse.Writer, id, model string, includeUsage bool) simEncoder
}

// simEncoder writes one stream in a dialect. Done ends it after the last
// event; Anthropic's ends with its finish event, so its Done writes nothing.
type simEncoder interface {
	Event(sluice.Event) error
	Error(*sluice.Error) error
	Done() error
}

var openaiSim = &simDialect{
	idPrefix: "chatcmpl-",
	decode: func(body []byte) (*sluice.Request, bool, error) {
		req, opts, err := openai.DecodeRequest(body)
		return req, opts.IncludeUsage, err
	},
	marshal:      openai.MarshalResponse,
	marshalError: openai.MarshalError,
	encoder: func(w *sse.Writer, id, model string, includeUsage bool) simEncoder {
		return openai.NewStreamEncoder(w, id, model, time.Now().Unix(), includeUsage)
	},
}

var anthropicSim = &simDialect{
	idPrefix: "msg_",
	decode: func(body []byte) (*sluice.Request, bool, error) {
		req, err := anthropic.DecodeRequest(body)
		return req, false, err
	},
	marshal:      anthropic.MarshalResponse,
	marshalError: anthropic.MarshalError,
	encoder: func(w *sse.Writer, id, model string, _ bool) simEncoder {
		return &anthropicSimEncoder{StreamEncoder: anthropic.NewStreamEncoder(w, id, model)}
	},
}

// anthropicSimEncoder sends a ping after the first event, as the real API
// does early in every stream.
type anthropicSimEncoder struct {
	*anthropic.StreamEncoder
	pinged bool
}

func (e *anthropicSimEncoder) Event(ev sluice.Event) error {
	if err := e.StreamEncoder.Event(ev); err != nil {
		return err
	}
	if !e.pinged {
		e.pinged = true
		return e.Ping()
	}
	return nil
}

func (e *anthropicSimEncoder) Done() error { return nil }

func (s *Server) chat(w http.ResponseWriter, r *http.Request)     { s.serve(w, r, openaiSim) }
func (s *Server) messages(w http.ResponseWriter, r *http.Request) { s.serve(w, r, anthropicSim) }

// serve answers one call in dialect d, as JSON or as a stream.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, d *simDialect) {
	body, r, err := s.request(w, r)
	if err != nil {
		writeUpstreamError(w, err, d.marshalError)
		return
	}
	req, includeUsage, err := d.decode(body)
	if err != nil {
		writeUpstreamError(w, err, d.marshalError)
		return
	}
	ctx := r.Context()
	if !req.Stream {
		resp, err := s.p.Complete(ctx, req)
		if err != nil {
			writeUpstreamError(w, err, d.marshalError)
			return
		}
		resp.ID = d.idPrefix + resp.ID
		b, err := d.marshal(resp)
		if err != nil {
			writeUpstreamError(w, err, d.marshalError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
		return
	}
	st, err := s.p.Stream(ctx, req)
	if err != nil {
		writeUpstreamError(w, err, d.marshalError)
		return
	}
	defer st.Close()
	sse.SetHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	enc := d.encoder(sse.NewWriter(w), d.idPrefix+randomID(), req.Model, includeUsage)
	for ev, err := range st.All() {
		if err != nil {
			s.streamFailure(err, func(e *sluice.Error) { enc.Error(e) })
			return
		}
		if err := enc.Event(ev); err != nil {
			return
		}
	}
	enc.Done()
}

// streamFailure ends a stream the way the fault asks: a dropped connection is
// aborted without a proper end, anything else becomes an error event.
func (s *Server) streamFailure(err error, writeEvent func(*sluice.Error)) {
	e := sluice.AsError(err)
	if e.Code == sluice.CodeStreamInterrupted {
		panic(http.ErrAbortHandler)
	}
	writeEvent(e)
}

func randomID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openai.MarshalModels([]string{"sim-fast", "sim-smart", "sim-json"}, time.Now().Unix(), "sluice-sim"))
}
