package gateway

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/anthropic"
	"github.com/sluice-gw/sluice/openai"
	"github.com/sluice-gw/sluice/pipeline"
	"github.com/sluice-gw/sluice/sse"
)

// A dialect is what the chat handler needs of a client API: how to decode a
// request and encode answers, streams and errors.
type dialect struct {
	name       string
	idPrefix   string
	decode     func(h http.Header, body []byte) (*sluice.Request, streamOptions, error)
	writeError func(http.ResponseWriter, *sluice.Error)
	marshal    func(*sluice.Response) ([]byte, error)
	encoder    func(w *sse.Writer, id, model string, created int64, o streamOptions) streamEncoder
}

// streamOptions are the dialect-specific stream settings a request carries.
type streamOptions struct {
	includeUsage bool
}

// A streamEncoder writes one client stream; every write is flushed.
type streamEncoder interface {
	Event(sluice.Event) error
	Error(*sluice.Error) error
	// Done ends a stream that finished normally.
	Done() error
}

var openaiDialect = dialect{
	name:     "openai",
	idPrefix: "chatcmpl-",
	decode: func(_ http.Header, body []byte) (*sluice.Request, streamOptions, error) {
		req, o, err := openai.DecodeRequest(body)
		return req, streamOptions{includeUsage: o.IncludeUsage}, err
	},
	writeError: openai.WriteError,
	marshal:    openai.MarshalResponse,
	encoder: func(w *sse.Writer, id, model string, created int64, o streamOptions) streamEncoder {
		return openai.NewStreamEncoder(w, id, model, created, o.includeUsage)
	},
}

var anthropicDialect = dialect{
	name:     "anthropic",
	idPrefix: "msg_",
	decode: func(h http.Header, body []byte) (*sluice.Request, streamOptions, error) {
		if err := anthropic.CheckVersion(h); err != nil {
			return nil, streamOptions{}, err
		}
		req, err := anthropic.DecodeRequest(body)
		return req, streamOptions{}, err
	},
	writeError: anthropic.WriteError,
	marshal:    anthropic.MarshalResponse,
	encoder: func(w *sse.Writer, id, model string, _ int64, _ streamOptions) streamEncoder {
		return anthropicEncoder{anthropic.NewStreamEncoder(w, id, model)}
	},
}

// anthropicEncoder adapts the Anthropic encoder, whose message_stop is written
// on the finish event, to streamEncoder.
type anthropicEncoder struct{ *anthropic.StreamEncoder }

func (anthropicEncoder) Done() error { return nil }

func (g *Gateway) handleChatCompletions() http.Handler { return g.handleChat(&openaiDialect) }
func (g *Gateway) handleMessages() http.Handler        { return g.handleChat(&anthropicDialect) }

// handleChat serves one chat call in dialect d: decode, call the pipeline,
// answer as JSON or as a stream flushed per event.
func (g *Gateway) handleChat(d *dialect) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		received := time.Now()
		// The body is read whole before anything is written: flushing
		// response headers while the request body is still being read can cut
		// streams under load.
		body, err := g.readBody(w, r)
		if err != nil {
			g.refused(r, err)
			d.writeError(w, g.clientError(r, err))
			return
		}
		req, so, err := d.decode(r.Header, body)
		if err != nil {
			g.refused(r, err)
			d.writeError(w, g.clientError(r, err))
			return
		}
		g.fillCaller(r, req)
		id := d.idPrefix + requestID(r.Context())
		created := g.opts.Now().Unix()

		info := &pipeline.CallInfo{BodyBytes: len(body), Dialect: d.name, Received: received}
		if !req.Stream {
			ctx, stop := g.callContext(r)
			defer stop()
			ctx = pipeline.WithCallInfo(ctx, info)
			resp, err := g.p.Complete(ctx, req)
			setCallHeaders(w.Header(), info)
			if err != nil {
				d.writeError(w, g.clientError(r, err))
				return
			}
			resp.ID, resp.Created = id, created
			b, err := d.marshal(resp)
			if err != nil {
				d.writeError(w, g.clientError(r, err))
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
			w.Write(b)
			return
		}

		// A resumable stream's upstream call does not end with the client's
		// connection: it goes on for the grace period, for the client to
		// resume (see resume.go).
		var (
			ctx  context.Context
			stop func()
			rs   *resumable
		)
		if g.resumable() {
			var cancel context.CancelCauseFunc
			ctx, cancel, stop = g.detachedCallContext(r)
			rs = g.newResumable(r, d, cancel)
			unhook := context.AfterFunc(r.Context(), rs.clientGone)
			defer unhook()
			defer rs.finish()
		} else {
			ctx, stop = g.callContext(r)
		}
		defer stop()
		// Nothing is written until the first content (or the finish): an
		// upstream that fails or times out before its first token gets a
		// plain error answer, not a stream that ends at once (the pipeline's
		// Stream returns at the first content, having fallen back to other
		// targets on the way if need be). The events before it (the start)
		// wait in held. A silence of a heartbeat interval starts the stream
		// anyway, so that proxies see traffic while a slow model thinks.
		var (
			gate  = &commitGate{w: w, rs: rs}
			wt    = &writeTimer{timeout: g.opts.StreamWriteTimeout}
			enc   streamEncoder
			held  [2]sluice.Event
			nHeld int
		)
		stopHeartbeat := g.heartbeat(gate, wt)
		defer stopHeartbeat()
		// encoder starts the stream (if the heartbeat has not) and writes
		// the held events; it returns false if the client is gone.
		encoder := func() bool {
			if enc != nil {
				return true
			}
			gate.start(wt)
			enc = d.encoder(gate.sw, id, req.Model, created, so)
			for _, h := range held[:nHeld] {
				wt.extend(time.Now())
				if err := enc.Event(h); err != nil {
					return false
				}
			}
			return true
		}
		// gone reports whether the client is gone; a resumable stream goes
		// on without it (its events still reach the log).
		gone := func() bool {
			if rs == nil || gate.sw == nil || gate.sw.Err() == nil {
				return false
			}
			rs.clientGone()
			return true
		}
		// fail ends the call with e: a plain error answer if the stream has
		// not started, else a final error event.
		fail := func(e *sluice.Error) {
			e = sluice.WithRequestID(e, requestID(r.Context()))
			if gate.fail(func() { d.writeError(w, e) }) {
				return
			}
			markFailed(r.Context()) // an answer that broke off is not replayed
			if !encoder() {
				return
			}
			wt.extend(time.Now())
			enc.Error(e)
		}
		s, err := g.p.Stream(pipeline.WithCallInfo(ctx, info), req)
		gate.setHeaders(func(h http.Header) { setCallHeaders(h, info) })
		if err != nil {
			if r.Context().Err() != nil && (rs == nil || !rs.created.Load()) {
				return // the client left; there is no one to tell
			}
			// A plain error answer, unless a heartbeat started the stream.
			fail(g.clientError(r, err))
			return
		}
		defer s.Close()
		for ev, err := range s.All() {
			if err != nil {
				if r.Context().Err() != nil && (rs == nil || !rs.created.Load()) {
					return // the client left; there is no one to tell
				}
				if enc == nil && !gate.started() {
					fail(g.clientError(r, err))
					return
				}
				e := g.streamError(err)
				if errors.Is(context.Cause(ctx), errNotResumed) {
					e = &sluice.Error{Code: sluice.CodeStreamInterrupted, Message: "The client left and did not resume the stream in time.", Err: err}
				} else {
					g.logError(r, "stream ended with an error", e)
				}
				fail(e)
				return
			}
			if enc == nil && !committing(ev.Type) && nHeld < len(held) {
				held[nHeld] = ev
				nHeld++
				continue
			}
			if !encoder() {
				return
			}
			// Each write must complete within the write timeout: a client
			// that stops reading is cut off rather than holding the upstream.
			now := time.Now()
			wt.extend(now)
			if err := enc.Event(ev); err != nil {
				// The client went away; leaving the loop releases the upstream.
				return
			}
			if !gone() {
				wt.last.Store(now.UnixNano())
			}
		}
		if enc == nil && !gate.started() {
			// A stream that ended without content or finish is malformed.
			fail(g.clientError(r, sluice.WrapError(sluice.CodeUpstreamError, errors.New("upstream stream ended without an answer"))))
			return
		}
		if !encoder() {
			return
		}
		wt.extend(time.Now())
		enc.Done()
	})
}

// A commitGate decides, once, how a stream call is answered: as a stream
// (headers written, by the handler at the first content or by the
// heartbeat after a silence) or as a plain error. It is safe for the
// handler and its heartbeat to use together.
type commitGate struct {
	mu        sync.Mutex
	w         http.ResponseWriter
	rs        *resumable // nil: the stream is not logged
	decided   bool
	streaming bool
	sw        *sse.Writer
}

// start writes the stream's headers unless the answer is decided already,
// and reports whether the answer is a stream. It gives wt the stream's
// writer.
func (c *commitGate) start(wt *writeTimer) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.decided {
		c.decided, c.streaming = true, true
		var log func(uint64, []byte)
		if c.rs != nil {
			log = c.rs.start(c.w.Header())
		}
		sse.SetHeaders(c.w.Header())
		c.w.WriteHeader(http.StatusOK)
		c.sw = sse.NewWriter(c.w)
		if log != nil {
			c.sw.SetLog(log)
		}
		wt.sw.Store(c.sw)
	}
	return c.streaming
}

// setHeaders runs set on the answer's headers unless the answer has
// started (a heartbeat may have started it).
func (c *commitGate) setHeaders(set func(http.Header)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.decided {
		set(c.w.Header())
	}
}

// fail runs write (a plain error answer) unless the stream has started, and
// reports whether it did.
func (c *commitGate) fail(write func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.decided {
		return !c.streaming
	}
	c.decided = true
	write()
	return true
}

// started reports whether the stream's headers are out.
func (c *commitGate) started() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.streaming
}

// A writeTimer keeps a stream's write deadline ahead of its writes and
// remembers when the last one happened. Moving a connection's deadline costs
// allocations, so extend moves it only once half of the timeout is used up:
// a blocked write then fails after between half and all of the timeout. It
// is safe for the stream's writer and its heartbeat to use together.
type writeTimer struct {
	sw      atomic.Pointer[sse.Writer] // set when the stream starts
	timeout time.Duration
	at      atomic.Int64 // UnixNano of the current deadline
	last    atomic.Int64 // UnixNano of the last event written
}

// extend makes sure a write starting at now has at least half the timeout.
func (t *writeTimer) extend(now time.Time) {
	if t.at.Load()-now.UnixNano() >= int64(t.timeout/2) {
		return
	}
	sw := t.sw.Load()
	if sw == nil {
		return
	}
	at := now.Add(t.timeout)
	sw.SetWriteDeadline(at)
	t.at.Store(at.UnixNano())
}

// heartbeat writes an SSE comment whenever nothing was written for the
// heartbeat interval, starting the stream through gate if it has not
// started, until stop is called or the call was answered with a plain
// error. It runs on a timer, not a goroutine of its own: an open stream
// costs no goroutine for it. stop waits for a beat in progress.
func (g *Gateway) heartbeat(gate *commitGate, wt *writeTimer) (stop func()) {
	every := g.opts.Heartbeat
	if every < 0 {
		return func() {}
	}
	wt.last.Store(time.Now().UnixNano())
	var (
		mu      sync.Mutex // held by a beat and by stop
		stopped bool
		t       *time.Timer
	)
	beat := func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		now := time.Now()
		if idle := time.Duration(now.UnixNano() - wt.last.Load()); idle < every {
			t.Reset(every - idle)
			return
		}
		if !gate.start(wt) {
			return // answered with a plain error
		}
		wt.extend(now)
		if gate.sw.WriteComment("") != nil {
			if gate.rs != nil {
				gate.rs.clientGone() // a silent stream's client stopped reading
			}
			return
		}
		wt.last.Store(now.UnixNano())
		t.Reset(every)
	}
	mu.Lock()
	t = time.AfterFunc(every, beat)
	mu.Unlock()
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		t.Stop()
	}
}

// committing reports whether an event of type t is content or the end of an
// answer, which commits the response to a stream.
func committing(t sluice.EventType) bool {
	return t != sluice.EventStart && t != sluice.EventUsage
}

// readBody reads the whole request body within the size limit.
func (g *Gateway) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > g.opts.MaxBodyBytes {
		return nil, sluice.NewError(sluice.CodeRequestTooLarge, "The request body is larger than "+strconv.FormatInt(g.opts.MaxBodyBytes, 10)+" bytes.")
	}
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(g.opts.BodyTimeout))
	rd := http.MaxBytesReader(w, r.Body, g.opts.MaxBodyBytes)
	// Size the buffer from Content-Length, but reserve no more than 64 KiB
	// before the bytes arrive.
	buf := bytes.NewBuffer(make([]byte, 0, min(max(r.ContentLength, 512), 64<<10)))
	_, err := buf.ReadFrom(rd)
	body := buf.Bytes()
	if err == nil {
		rc.SetReadDeadline(time.Time{})
	} else {
		// Leave the deadline in place, so that the server's discard of the
		// unread body cannot wait on this client either, and do not keep
		// the connection.
		w.Header().Set("Connection", "close")
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, sluice.NewError(sluice.CodeRequestTooLarge, "The request body is larger than "+strconv.FormatInt(g.opts.MaxBodyBytes, 10)+" bytes.")
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, &sluice.Error{Code: sluice.CodeInvalidRequest, Message: "The request body was not received in time.", Err: err}
		}
		return nil, &sluice.Error{Code: sluice.CodeInvalidRequest, Message: "The request body could not be read.", Err: err}
	}
	return body, nil
}

// clientError returns the client-safe form of a failure before the first
// byte, and logs it once with its cause.
func (g *Gateway) clientError(r *http.Request, err error) *sluice.Error {
	e := sluice.AsError(err)
	if g.aborted() {
		e = &sluice.Error{Code: sluice.CodeOverloaded, Message: "The gateway is shutting down; try again.", RetryAfter: time.Second, Err: err}
	}
	if r.Context().Err() != nil {
		return e // the client left: nobody reads the answer, and it is not our failure
	}
	if e.Code.HTTPStatus() >= 500 {
		g.logError(r, "request failed", e)
	}
	return e
}

// streamError returns the client-safe error event for a failure inside a
// stream. After the first byte the code is upstream_timeout or
// stream_interrupted, whatever the upstream said (an overloaded_error event
// mid-stream is an interrupted stream to the client, who cannot retry the
// part already received), or schema_violation for a structured answer that
// came whole but broke its schema.
func (g *Gateway) streamError(err error) *sluice.Error {
	if g.aborted() {
		return &sluice.Error{Code: shutdownError.Code, Message: shutdownError.Message, Err: err}
	}
	var e *sluice.Error
	if errors.As(err, &e) && (e.Code == sluice.CodeUpstreamTimeout || e.Code == sluice.CodeStreamInterrupted || e.Code == sluice.CodeSchemaViolation) {
		return e
	}
	if e == nil && errors.Is(err, context.DeadlineExceeded) {
		return sluice.WrapError(sluice.CodeUpstreamTimeout, err)
	}
	return sluice.WrapError(sluice.CodeStreamInterrupted, err)
}

func (g *Gateway) logError(r *http.Request, msg string, e *sluice.Error) {
	g.logger.LogAttrs(r.Context(), slog.LevelWarn, msg,
		slog.String("request_id", requestID(r.Context())), slog.String("path", r.URL.Path), slog.Any("error", e))
}

// refused records a request refused before its call could be built (its
// body unreadable or not a request), for the ledger and the metrics.
func (g *Gateway) refused(r *http.Request, err error) {
	g.p.Refused(r.Context(), &sluice.Request{ID: requestID(r.Context()), Caller: g.callerOf(r, sluice.Caller{})}, err)
}

// fillCaller records who sent the request, and its id.
func (g *Gateway) fillCaller(r *http.Request, req *sluice.Request) {
	req.ID = requestID(r.Context())
	req.Caller = g.callerOf(r, req.Caller)
}

// callerOf returns c completed with what the connection and the API key
// say of the caller.
func (g *Gateway) callerOf(r *http.Request, c sluice.Caller) sluice.Caller {
	c.IP = clientIP(r, g.opts.TrustedProxies)
	return authCaller(r, c)
}

// clientIP returns the address of the client behind r: the connection's
// peer, or, when the peer is a trusted proxy, the last address in
// X-Forwarded-For that is not one (each proxy appends the address it got
// the request from, so addresses left of the first untrusted one are the
// client's own claims).
func clientIP(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	isTrusted := func(s string) bool {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return false
		}
		a = a.Unmap()
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	if len(trusted) == 0 || !isTrusted(host) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h := strings.TrimSpace(hops[i])
		if h == "" {
			continue
		}
		if _, err := netip.ParseAddr(h); err != nil {
			return host // a malformed chain: trust none of it
		}
		if !isTrusted(h) {
			return h
		}
	}
	return host
}

// handleModels lists the public model names, in the Anthropic shape for
// clients that send anthropic-version (Anthropic's SDKs do) and in OpenAI's
// otherwise.
func (g *Gateway) handleModels() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b []byte
		if r.Header.Get("Anthropic-Version") != "" {
			b = anthropic.MarshalModels(g.p.Models(), g.opts.Now())
		} else {
			b = openai.MarshalModels(g.p.Models(), g.opts.Now().Unix(), "sluice")
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	})
}

func (g *Gateway) handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
}

func (g *Gateway) handleReadyz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if g.draining.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"status":"draining"}` + "\n"))
			return
		}
		w.Write([]byte(`{"status":"ready"}` + "\n"))
	})
}

func (g *Gateway) handleNotFound() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeErrorFor(w, r, &sluice.Error{Code: sluice.CodeNotFound, Message: "There is no such endpoint."})
	})
}

// writeErrorFor writes e in the dialect the path belongs to.
func writeErrorFor(w http.ResponseWriter, r *http.Request, e *sluice.Error) {
	if r.URL.Path == "/v1/messages" || r.Header.Get("Anthropic-Version") != "" {
		anthropic.WriteError(w, e)
		return
	}
	openai.WriteError(w, e)
}
